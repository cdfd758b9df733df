"""Fitting: place sprites so that their render reproduces a target image.

    scene = spritefit.fit("photo.jpg", "leaves", n=1000, iters=300)
"""
from __future__ import annotations

import os
import warnings
from typing import Callable

import numpy as np
import torch

from ..errors import SpriteFitError
from ..images import load_rgb, resize_to_longest
from ..scene import Scene
from ..sprites import Sprite, load_sprites
from .config import BLUR_SCHEDULES, INIT_STRATEGIES, PRESETS, FitConfig, make_config
from .loop import FitProgress, optimise
from .losses import psnr, ssim

__all__ = ["fit", "FitConfig", "FitProgress", "INIT_STRATEGIES", "PRESETS", "BLUR_SCHEDULES", "make_config",
           "prepare_target", "evaluate", "image_metrics",
           "MIN_WORKING_SIZE", "MAX_WORKING_SIZE"]

MIN_WORKING_SIZE = 8
MAX_WORKING_SIZE = 4096
DEFAULT_WORKING_SIZE = 512


def resolve_device(device: str) -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        raise SpriteFitError("--device cuda was asked for, but no CUDA GPU is available to torch")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise SpriteFitError(f"unknown device {device!r} (use cpu or cuda)")
    return torch.device(device)


def prepare_target(target, size: int | None = None) -> np.ndarray:
    """The target as float32 RGB (h, w, 3), resized so its longer side is `size` pixels
    (by default the image's own size, at most 512)."""
    if isinstance(target, (str, os.PathLike)):
        image = load_rgb(target)
    else:
        image = np.asarray(target, dtype=np.float32)
        if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
            raise SpriteFitError(f"target array must be (h, w, 3), not {image.shape}")
    if size is None:
        size = min(max(image.shape[:2]), DEFAULT_WORKING_SIZE)
    if not MIN_WORKING_SIZE <= size <= MAX_WORKING_SIZE:
        raise SpriteFitError(f"working size {size} px is outside the supported range "
                             f"{MIN_WORKING_SIZE}..{MAX_WORKING_SIZE} px")
    return resize_to_longest(image, size)


def fit(target, sprites: str | os.PathLike | list[Sprite], n: int = 500, iters: int | None = None,
        size: int | None = None, progress: Callable[[FitProgress], None] | None = None,
        cancel=None, preset: str = "balanced", perceptual=None, previous=None, **options) -> Scene:
    """Fit n sprites to a target (path or (h, w, 3) float array).

    preset: "fast", "balanced" or "quality"; iters and any other FitConfig field (or loss weight:
    l2, l1, ssim, ms_ssim, gradient, perceptual) override it. perceptual: a PerceptualLoss, needed
    when its weight is set. previous: the previous video frame (fit.temporal.PreviousFrame)."""
    config = make_config(preset, n=n, iters=iters, **options)
    device = resolve_device(config.device)
    image = prepare_target(target, size)
    sprite_list = load_sprites(sprites) if isinstance(sprites, (str, os.PathLike)) else list(sprites)
    target_tensor = torch.from_numpy(image).permute(2, 0, 1).contiguous().to(device)
    if perceptual is not None:
        perceptual = perceptual.to(device)
    try:
        return optimise(target_tensor, sprite_list, config, progress=progress, cancel=cancel, perceptual=perceptual,
                        previous=previous)
    except torch.cuda.OutOfMemoryError:
        if device.type != "cuda":
            raise
        # The estimate let it start, but the GPU filled up (other programs use it too).
        warnings.warn("the GPU ran out of memory; fitting on the CPU instead", RuntimeWarning, stacklevel=2)
        torch.cuda.empty_cache()
        return fit(target, sprite_list, n=n, iters=config.iters, size=size, progress=progress, cancel=cancel,
                   preset=preset, perceptual=perceptual, previous=previous, **dict(options, device="cpu"))


def evaluate(scene: Scene, target: np.ndarray) -> dict:
    """PSNR (dB) and SSIM of the scene's render on its own background against the target."""
    from ..render import render_scene
    return image_metrics(render_scene(scene).image, target)


def image_metrics(image: torch.Tensor, target: np.ndarray) -> dict:
    """PSNR (dB) and SSIM of a (3, H, W) render against an (h, w, 3) target."""
    reference = torch.from_numpy(np.ascontiguousarray(target)).permute(2, 0, 1)
    return {"psnr": psnr(image, reference), "ssim": float(ssim(image, reference))}
