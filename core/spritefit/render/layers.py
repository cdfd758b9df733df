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

from ..native_module import available as native_available
from ..sprites import Atlas
from . import scaled_canvas, scene_tensors
from .common import mip_levels, mode_color
from .native import instance_patches
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


BLOCK = 256                  # instances drawn together, in painter's order, before their layers are yielded
CHUNK_PIXELS = 1 << 22       # most patch pixels sampled in one batched call (~64 MB of float32 RGBA)


def instance_layers(scene, atlas: Atlas, scale: float = 1.0,
                    canvas: tuple[int, int] | None = None) -> Iterator[InstanceLayer]:
    """One layer per instance that touches the canvas (by default the scaled scene's), bottom first,
    streamed in bounded memory: drawn by the native module on the CPU, else by the reference
    sampler."""
    width, height = canvas or scaled_canvas(scene, scale)
    if native_available() and atlas.device.type == "cpu":
        patches = instance_patches(atlas, scene_tensors(scene, scale=scale), width=width, height=height,
                                   color_mode=scene.color_mode, max_bytes=4 * CHUNK_PIXELS)
    else:
        patches = _reference_patches(scene, atlas, scale, width, height)
    for i, left, top, rgba in patches:
        yield InstanceLayer(i, f"{scene.sprites[scene.sprite[i]].name} #{i}", left, top, rgba,
                            float(np.clip(scene.opacity[i], 0.0, 1.0)))


def _reference_patches(scene, atlas: Atlas, scale: float, width: int, height: int):
    """instance_patches' (index, left, top, rgba) by the reference sampler. Instances are drawn in
    batches of similar patch sizes (one torch call per batch instead of one per instance: ~10x
    faster for a thousand sprites) and yielded in blocks."""
    textures = atlas.textures(0.0)
    for start in range(0, len(scene), BLOCK):
        boxes = {}
        for i in range(start, min(start + BLOCK, len(scene))):
            box = pixel_box(atlas, scene.xy[i] * scale, float(scene.size[i]) * scale, float(scene.theta[i]),
                            int(scene.sprite[i]), width, height)
            if box is not None:
                boxes[i] = box
        drawn = _draw_instances(scene, sorted(boxes), boxes, textures, atlas, scale)
        for i in sorted(boxes):
            rgba, (left, top) = drawn[i], boxes[i][:2]
            rows, cols = np.nonzero(rgba[..., 3].any(1))[0], np.nonzero(rgba[..., 3].any(0))[0]
            if rows.size == 0:   # nothing visible once rounded to 8 bits
                continue
            rgba = rgba[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]   # tight: the editors' own bounds
            yield i, left + int(cols[0]), top + int(rows[0]), rgba


def _draw_instances(scene, indices: list[int], boxes: dict, textures, atlas: Atlas, scale: float) -> dict:
    """Each instance at full opacity on its own patch, as straight RGBA uint8 (index -> array).
    Instances whose patches are within 2x in area share one batch, padded to the largest."""
    by_area = sorted(indices, key=lambda i: math.prod(_patch(boxes[i])))
    drawn, chunk = {}, []
    for i in by_area:
        area = math.prod(_patch(boxes[i]))
        if chunk and (area > 2 * math.prod(_patch(boxes[chunk[0]])) or area * (len(chunk) + 1) > CHUNK_PIXELS):
            drawn.update(_draw_chunk(scene, chunk, boxes, textures, atlas, scale))
            chunk = []
        chunk.append(i)
    if chunk:
        drawn.update(_draw_chunk(scene, chunk, boxes, textures, atlas, scale))
    return drawn


def _patch(box) -> tuple[int, int]:
    left, top, right, bottom = box
    return bottom - top, right - left


def _draw_chunk(scene, chunk: list[int], boxes: dict, textures, atlas: Atlas, scale: float) -> dict:
    as_tensor = lambda values: torch.tensor(np.asarray(values, np.float32))
    origin = as_tensor([boxes[i][:2] for i in chunk])
    height, width = max(_patch(boxes[i])[0] for i in chunk), max(_patch(boxes[i])[1] for i in chunk)
    log_size = as_tensor(np.log(scene.size[chunk].astype(np.float64) * scale))
    ux, uy = unit_box_coords(as_tensor(scene.xy[chunk]) * scale - origin, log_size, as_tensor(scene.theta[chunk]),
                             width, height)
    level = mip_levels(log_size, atlas.resolution, atlas.num_levels)
    sample = sample_sprites(textures, atlas.level_sizes(), torch.as_tensor(scene.sprite[chunk], dtype=torch.int64),
                            level, ux, uy)                                             # (n, 4, h, w)
    color = mode_color(scene.color_mode, sample[:, :3], as_tensor(scene.color[chunk]).view(-1, 3, 1, 1),
                       as_tensor(scene.mix[chunk]).view(-1, 1, 1, 1))
    rgba = torch.cat([color, sample[:, 3:]], 1).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    rgba = np.round(rgba * 255).astype(np.uint8)
    return {i: rgba[k, :_patch(boxes[i])[0], :_patch(boxes[i])[1]] for k, i in enumerate(chunk)}
