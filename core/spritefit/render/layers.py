"""Each instance drawn on its own, cropped to the canvas pixels it covers: the pixel layers of
layered exports (PSD) and of the host plugins.

A layer holds the instance's colour and its sprite's alpha; the instance's opacity stays apart as
the layer's opacity, so that an editor compositing the layers (normal blending, painter's order)
reproduces `render()`, up to 8-bit rounding and the renderer's ALPHA_MAX clamp.
"""
from __future__ import annotations

import math
from typing import Iterator, NamedTuple

import numpy as np
import torch

from ..sprites import Atlas
from . import scaled_canvas
from .common import mip_levels, mode_color
from .reference import sample_sprites, unit_box_coords


class InstanceLayer(NamedTuple):
    index: int            # row in the scene (painter's order)
    name: str             # "<sprite name> #<index>"
    left: int             # canvas pixel of the patch's first column
    top: int              # canvas pixel of the patch's first row
    rgba: np.ndarray      # (h, w, 4) uint8, straight (not premultiplied) colour
    opacity: float        # the instance's opacity, in [0, 1]


def pixel_box(atlas: Atlas, xy, size: float, theta: float, sprite: int, width: int, height: int):
    """(left, top, right, bottom) canvas pixels (right/bottom exclusive) where the instance's alpha
    can be non-zero, clipped to the canvas; None when it covers no pixel."""
    level = int(mip_levels(torch.tensor(math.log(size)), atlas.resolution, atlas.num_levels))
    u0, u1, v0, v1 = atlas.flat_textures(0.0).support[level, sprite].tolist()
    if u0 > u1 or v0 > v1:
        return None
    c, s = math.cos(theta) * size, math.sin(theta) * size
    corners = [(c * u + s * v, -s * u + c * v) for u in (u0, u1) for v in (v0, v1)]   # see sprite_math.h
    xs, ys = [xy[0] + dx for dx, _ in corners], [xy[1] + dy for _, dy in corners]
    left, right = max(math.ceil(min(xs) - 0.5), 0), min(math.floor(max(xs) - 0.5), width - 1) + 1
    top, bottom = max(math.ceil(min(ys) - 0.5), 0), min(math.floor(max(ys) - 0.5), height - 1) + 1
    if left >= right or top >= bottom:
        return None
    return left, top, right, bottom


def instance_layers(scene, atlas: Atlas, scale: float = 1.0,
                    canvas: tuple[int, int] | None = None) -> Iterator[InstanceLayer]:
    """One layer per instance that touches the canvas (by default the scaled scene's), bottom first."""
    width, height = canvas or scaled_canvas(scene, scale)
    textures = atlas.textures(0.0)
    for i in range(len(scene)):
        xy, size = scene.xy[i] * scale, float(scene.size[i]) * scale
        box = pixel_box(atlas, xy, size, float(scene.theta[i]), int(scene.sprite[i]), width, height)
        if box is None:
            continue
        left, top, right, bottom = box
        rgba = _draw_instance(scene, i, textures, atlas, xy - (left, top), size, right - left, bottom - top)
        rows, cols = np.nonzero(rgba[..., 3].any(1))[0], np.nonzero(rgba[..., 3].any(0))[0]
        if rows.size == 0:   # nothing visible once rounded to 8 bits
            continue
        rgba = rgba[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]   # tight: the editors' own bounds
        yield InstanceLayer(i, f"{scene.sprites[scene.sprite[i]].name} #{i}", left + int(cols[0]),
                            top + int(rows[0]), rgba, float(np.clip(scene.opacity[i], 0.0, 1.0)))


def _draw_instance(scene, i: int, textures, atlas: Atlas, xy, size: float, width: int, height: int) -> np.ndarray:
    """The instance at full opacity on a width x height patch, as straight RGBA uint8."""
    one = lambda values: torch.tensor(np.asarray(values, np.float32)[None])
    log_size = one(math.log(size))
    ux, uy = unit_box_coords(one(xy), log_size, one(scene.theta[i]), width, height)
    level = mip_levels(log_size, atlas.resolution, atlas.num_levels)
    sprite = torch.tensor([int(scene.sprite[i])])
    sample = sample_sprites(textures, atlas.level_sizes(), sprite, level, ux, uy)[0]   # (4, h, w)
    color = mode_color(scene.color_mode, sample[:3], one(scene.color[i]).view(3, 1, 1),
                       one(scene.mix[i]).view(1, 1, 1))
    rgba = torch.cat([color, sample[3:]]).clamp(0, 1).permute(1, 2, 0).numpy()
    return np.round(rgba * 255).astype(np.uint8)
