"""Definitions shared by every renderer backend."""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ..options import COLOR_MODES  # noqa: F401  (the renderers check against it)

# Per-instance alpha is clamped below 1 so that T can be recovered by division in the backward pass.
ALPHA_MAX = 0.99
# A pixel stops accumulating once its transmittance falls below this.
T_MIN = 1e-4


class RenderResult(NamedTuple):
    image: torch.Tensor       # (3, H, W); premultiplied by coverage when the background is transparent
    alpha: torch.Tensor       # (H, W) coverage, 1 - T_end
    visibility: torch.Tensor  # (N,) sum over pixels of T_i a_i: how much of each instance shows (no grad)


def mip_levels(log_size: torch.Tensor, resolution: int, num_levels: int) -> torch.Tensor:
    """Mip level of each instance: the coarsest level with at least one texel per canvas pixel.

    Level 0 spans `resolution` texels over the instance's 2 * size pixels, so the footprint is
    resolution / (2 size) texels per pixel; the level is floor(log2(footprint)), clamped. Bilinear
    sampling then minifies by less than 2x: sharp, like an SVG or PSD rasteriser draws the sprite,
    where rounding to the nearest level would magnify a coarser one and blur edges."""
    with torch.no_grad():
        footprint = math.log2(resolution / 2.0) - log_size / math.log(2.0)
        return torch.floor(footprint).clamp(0, num_levels - 1).to(torch.int64)


def mode_color(mode: str, sprite_rgb, tint, mix=None):
    """Instance colour from the sprite's own colour, the learned tint and the mix weight."""
    if mode == "original":
        return sprite_rgb
    if mode == "tint":
        return tint.expand_as(sprite_rgb)
    if mode == "multiply":
        return sprite_rgb * tint
    if mode == "mix":
        if mix is None:
            raise ValueError("colour mode 'mix' needs per-instance mix weights")
        return mix * sprite_rgb + (1 - mix) * tint
    raise ValueError(f"unknown colour mode {mode!r}; choose one of {', '.join(COLOR_MODES)}")
