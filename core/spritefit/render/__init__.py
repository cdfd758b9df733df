"""Rendering: instances + atlas -> image.

`render()` is the one entry point for every backend; `render_scene()` renders a saved scene at
any scale from its original sprite bitmaps.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..options import BACKENDS
from ..native_module import available as native_available, warn_missing_once
from ..sprites import Atlas
from .common import ALPHA_MAX, COLOR_MODES, T_MIN, RenderResult
from .native import render_native
from .reference import render_reference

__all__ = ["render", "render_scene", "RenderResult", "COLOR_MODES", "ALPHA_MAX", "T_MIN",
           "atlas_resolution_for", "render_scene_array", "as_array", "scene_atlas", "scaled_canvas", "BACKENDS"]


def render(atlas: Atlas, xy, log_size, theta, color, opacity, sprite, *, width: int, height: int,
           color_mode: str = "tint", mix=None, background=None, sigma: float = 0.0,
           backend: str = "auto") -> RenderResult:
    """Render N instances onto a width x height canvas.

    xy (N, 2) pixels; log_size (N,) log of the half longer side in pixels; theta (N,) radians
    counter-clockwise; color (N, 3) tint in [0, 1]; opacity (N,) in [0, 1]; sprite (N,) atlas
    indices; mix (N,) for the "mix" colour mode. background: None (transparent), (3,) or
    (3, H, W). sigma: soft-rasterisation blur in texels of each instance's mip level.
    backend: "auto" (native tile renderer on the tensors' device), "native" or "reference"
    (the dense pure-torch renderer; "auto" uses it when the native module is missing).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    # The native kernels work in float32; "auto" leaves float64 input (gradient checks) to the
    # reference, and falls back to it (with a warning) where the native module could not load.
    if backend == "auto" and xy.dtype == torch.float32 and not native_available():
        warn_missing_once()
    elif backend == "native" or (backend == "auto" and xy.dtype == torch.float32):
        return render_native(atlas, xy, log_size, theta, color, opacity, sprite, width=width,
                             height=height, color_mode=color_mode, mix=mix, background=background,
                             sigma=sigma)
    textures = atlas.textures(sigma)
    return render_reference(textures, atlas.level_sizes(), xy, log_size, theta, color, opacity,
                            sprite, width=width, height=height, color_mode=color_mode, mix=mix,
                            background=background)


def atlas_resolution_for(max_drawn_size: float, sprites=None, lowest: int = 64, highest: int = 1024) -> int:
    """Smallest power-of-two atlas resolution that keeps the largest drawn sprite sharp
    (never more than the sprites' own resolution calls for)."""
    needed = max(2.0 * max_drawn_size, lowest)
    if sprites:
        needed = min(needed, max(max(s.rgba.shape[:2]) for s in sprites))
    return int(min(max(2 ** math.ceil(math.log2(max(needed, 2))), lowest), highest))


def scene_tensors(scene, device="cpu", scale: float = 1.0) -> dict:
    """The scene's instance parameters as renderer inputs, scaled to a canvas `scale` times larger."""
    as_tensor = lambda a, dtype=torch.float32: torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=device)
    return {"xy": as_tensor(scene.xy) * scale,
            "log_size": torch.log(as_tensor(scene.size) * scale),
            "theta": as_tensor(scene.theta), "color": as_tensor(scene.color),
            "opacity": as_tensor(scene.opacity), "sprite": as_tensor(scene.sprite, torch.int64),
            "mix": as_tensor(scene.mix)}


def scene_atlas(scene, scale: float = 1.0, device="cpu") -> Atlas:
    """An atlas of the scene's own sprite bitmaps, as sharp as its largest drawn sprite needs."""
    largest = float(scene.size.max() * scale) if len(scene) else 1.0
    return Atlas.shared(scene.sprites, atlas_resolution_for(largest, scene.sprites), device=device)


def scaled_canvas(scene, scale: float) -> tuple[int, int]:
    """The canvas size of a scene drawn `scale` times larger."""
    return max(1, round(scene.width * scale)), max(1, round(scene.height * scale))


def render_scene(scene, scale: float = 1.0, atlas: Atlas | None = None, device="cpu",
                 backend: str = "auto", canvas: tuple[int, int] | None = None) -> RenderResult:
    """Render a scene at `scale` times its canvas size on its own background. canvas: the
    output's (width, height) when it must be exactly that (a host document whose aspect ratio
    the working size rounded), else the scaled canvas."""
    width, height = canvas or scaled_canvas(scene, scale)
    params = scene_tensors(scene, device, scale)
    if atlas is None:
        atlas = scene_atlas(scene, scale, device)
    background = None if scene.background is None else torch.tensor(scene.background, device=device)
    with torch.no_grad():
        return render(atlas, width=width, height=height, color_mode=scene.color_mode,
                      background=background, backend=backend, **params)


def render_scene_array(scene, scale: float = 1.0, device="cpu", backend: str = "auto",
                       canvas: tuple[int, int] | None = None) -> np.ndarray:
    """The scene rendered as an (h, w, 3) float image, or (h, w, 4) straight RGBA when its
    background is transparent."""
    return as_array(scene, render_scene(scene, scale=scale, device=device, backend=backend, canvas=canvas))


def as_array(scene, result: RenderResult) -> np.ndarray:
    """A render of the scene as render_scene_array returns it."""
    image = result.image.permute(1, 2, 0).cpu().numpy()
    if scene.background is not None:
        return image
    alpha = result.alpha.cpu().numpy()[..., None]
    return np.concatenate([image / np.maximum(alpha, 1e-6), alpha], axis=-1)
