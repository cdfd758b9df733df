"""Fitting: place sprites so that their render reproduces a target image.

    scene = spritefit.fit("photo.jpg", "leaves", n=1000, iters=300)

The package is `spritefit.fitting` and its entry point the function `spritefit.fit` (also
`spritefit.fitting.fit`): different names, so `import spritefit.fitting.config` and the
function never shadow each other.
"""
from __future__ import annotations

import os
import warnings
from typing import Callable

import numpy as np
import torch

from ..errors import SpriteFitError
from ..images import check_working_size, load_target, prepare_target
from ..options import BLUR_SCHEDULES, DEFAULT_WORKING_SIZE, INIT_STRATEGIES, MAX_WORKING_SIZE, MIN_WORKING_SIZE
from ..scene import Scene
from ..sprites import Sprite, load_sprites
from .constraints import Region, spatial_constraints
from .config import PRESETS, FitConfig, make_config
from .loop import FitProgress, optimise
from .losses import psnr, ssim

__all__ = ["fit", "FitConfig", "Region", "FitProgress", "INIT_STRATEGIES", "PRESETS", "BLUR_SCHEDULES", "make_config",
           "prepare_target", "check_working_size", "evaluate", "image_metrics",
           "MIN_WORKING_SIZE", "MAX_WORKING_SIZE"]



def resolve_device(device: str) -> torch.device:
    """The torch device of the option `device` (auto: cuda when torch sees a GPU)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SpriteFitError("--device cuda was asked for, but no CUDA GPU is available to torch")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise SpriteFitError(f"unknown device {device!r} (use cpu or cuda)")
    return torch.device(device)


def fit(target, sprites: str | os.PathLike | list[Sprite], *, progress: Callable[[FitProgress], None] | None = None,
        cancel=None, perceptual=None, previous=None, guidance=None, canvas: tuple[int, int] | None = None,
        memory=None, **options) -> Scene:
    """Fit sprites to a target (path or (h, w, 3) float array).

    options: any fit option of spritefit.options by name (n, iters, size, preset, color_mode,
    sprite_alpha, lr_position, ssim, ...; `spritefit fit --help` and the README list them); the
    preset ("fast", "balanced" or "quality") changes a few defaults, and an option given here
    always wins over it and over every automatic setting (each override that applies is a
    FitOverride warning). perceptual: a PerceptualLoss, needed when its weight is set. previous:
    the previous video frame (fitting.temporal.PreviousFrame); memory: a
    fitting.temporal.OptimizerMemory that carries the optimiser's moments from one frame's fit to
    the next. guidance: a loss on the render (spritefit.guidance.ClipGuidance) added to the image
    loss; with it the target may be None, and the canvas (width, height) is `canvas` (default
    512 x 512). With init "auto" (the default) and 12 sprites or fewer, the sprites are placed by
    search and the fit only refines them (smaller steps, no noisy background, blur or respawns)."""
    if target is None:
        if guidance is None:
            raise SpriteFitError("a fit needs a target image, a text prompt, or both")
        target = _blank_canvas(canvas, options.get("seed") or 0)
        options = {"size": max(target.shape[:2]), **options, "image_weight": 0.0}
    config = make_config(**options)
    if guidance is not None and config.losses.image_weight == 0 and "respawn_every" not in config.given:
        # Nothing to respawn towards without an image loss; an automatic setting, not the user's.
        config = config.with_options(respawn_every=0)
    device = resolve_device(config.run.device)
    source = load_target(target)
    image = prepare_target(source, config.run.size)
    sprite_list = (load_sprites(sprites, config.run.sprite_alpha) if isinstance(sprites, (str, os.PathLike))
                   else list(sprites))
    sprite_list, constraints = spatial_constraints(config, sprite_list, source.shape[1::-1], image.shape[1::-1])
    target_tensor = torch.from_numpy(image).permute(2, 0, 1).contiguous().to(device)
    perceptual = perceptual.to(device) if perceptual is not None else None
    guidance = guidance.to(device) if guidance is not None else None
    try:
        return optimise(target_tensor, sprite_list, config,
                        progress=progress, cancel=cancel, perceptual=perceptual, previous=previous,
                        constraints=constraints, guidance=guidance, memory=memory)
    except torch.cuda.OutOfMemoryError:
        if device.type != "cuda":
            raise
        # The estimate let it start, but the GPU filled up (other programs use it too).
        warnings.warn("the GPU ran out of memory; fitting on the CPU instead", RuntimeWarning, stacklevel=2)
        torch.cuda.empty_cache()
        return fit(target, sprite_list, progress=progress, cancel=cancel, perceptual=perceptual, previous=previous,
                   guidance=guidance, memory=memory, **dict(options, device="cpu"))


def _blank_canvas(canvas: tuple[int, int] | None, seed: int) -> np.ndarray:
    """What a prompt-only fit starts from: smooth random colours (they give the sprites varied
    starting colours; the image loss is off)."""
    width, height = canvas or (DEFAULT_WORKING_SIZE, DEFAULT_WORKING_SIZE)
    if not (MIN_WORKING_SIZE <= width <= MAX_WORKING_SIZE and MIN_WORKING_SIZE <= height <= MAX_WORKING_SIZE):
        raise SpriteFitError(f"canvas {width}x{height} px is outside the supported range "
                             f"{MIN_WORKING_SIZE}..{MAX_WORKING_SIZE} px a side")
    from PIL import Image
    coarse = (np.random.default_rng(seed).random((4, 4, 3)) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), np.float32) / 255


def evaluate(scene: Scene, target: np.ndarray) -> dict:
    """PSNR (dB) and SSIM of the scene's render on its own background against the target."""
    from ..render import render_scene
    return image_metrics(render_scene(scene).image, target)


def image_metrics(image: torch.Tensor, target: np.ndarray) -> dict:
    """PSNR (dB) and SSIM of a (3, H, W) render against an (h, w, 3) target."""
    reference = torch.from_numpy(np.ascontiguousarray(target)).permute(2, 0, 1)
    return {"psnr": psnr(image, reference), "ssim": float(ssim(image, reference))}
