"""Native tile renderer (spritefit._native) as a torch.autograd.Function, and the native drawing of
each instance alone (the pixel layers of exports and of the editors' results).

The kernels see raw pointers: this module checks dtypes, shapes, devices and finiteness first and
makes every buffer contiguous, so bad input is a Python exception, never a crash. The backend
follows the tensors' device (CPU kernels, or CUDA kernels when the module was built with them).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from .. import timing
from ..native_module import _native, require
from .common import COLOR_MODES, RenderResult, mip_levels

BACKGROUND_KINDS = {"transparent": 0, "color": 1, "image": 2}
_PARAMETERS = ("xy", "log_size", "theta", "color", "opacity", "mix")
_SHAPES = {"xy": (2,), "log_size": (), "theta": (), "color": (3,), "opacity": (), "mix": ()}


def cuda_available() -> bool:
    return bool(getattr(_native, "with_cuda", False)) and torch.cuda.is_available()


def _check_inputs(params: dict, sprite, n: int, device) -> None:
    for name in _PARAMETERS:
        value = params[name]
        if not torch.is_tensor(value):
            raise TypeError(f"{name} must be a torch tensor")
        if value.shape != (n, *_SHAPES[name]):
            raise ValueError(f"{name} must have shape {(n, *_SHAPES[name])}, not {tuple(value.shape)}")
        if value.device != device:
            raise ValueError(f"{name} is on {value.device}, but xy is on {device}")
        if not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, not {value.dtype}")
    if sprite.shape != (n,) or sprite.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"sprite must be an integer tensor of shape ({n},)")


def _check_values(buffers: "_Buffers", params: dict, sprite, num_sprites: int) -> None:
    """NaN or infinite parameters and sprite indices out of range, as one clear error before any
    kernel runs."""
    if buffers.scene["n"] == 0:
        return
    if sprite.device.type == "cpu":   # the float32 copies the kernels read, in one native pass
        bad = _native.first_non_finite_cpu([(buffers.tensors[name].data_ptr(), buffers.tensors[name].numel())
                                            for name in _PARAMETERS])
        bad_name = _PARAMETERS[bad] if bad >= 0 else None
        sprite = sprite.contiguous()
        sprites_in_range = _native.indices_in_range_cpu(sprite.data_ptr(), sprite.numel(),
                                                        sprite.dtype == torch.int64, num_sprites)
    elif _any_bad_value(params, sprite, num_sprites):   # one wait for the device when all is well
        bad_name = next((name for name in _PARAMETERS if not bool(torch.isfinite(params[name]).all())), None)
        sprites_in_range = bool(((sprite >= 0) & (sprite < num_sprites)).all())
    else:
        return
    if bad_name is not None:
        raise ValueError(f"{bad_name} contains NaN or infinite values")
    if not sprites_in_range:
        raise ValueError(f"sprite indices must be in 0..{num_sprites - 1}")


def _any_bad_value(params: dict, sprite, num_sprites: int) -> bool:
    """Whether any parameter is NaN or infinite or any sprite index out of range, with one wait
    for the device instead of one per tensor (each wait stalls a GPU's queue)."""
    with torch.no_grad():
        bad = [~torch.isfinite(params[name]).all() for name in _PARAMETERS]
        bad.append(((sprite < 0) | (sprite >= num_sprites)).any())
        return bool(torch.stack(bad).any())


def _background(background, width, height, device):
    if background is None:
        return "transparent", torch.zeros(3, device=device)
    background = background.detach().to(device=device, dtype=torch.float32).contiguous()
    if background.shape == (3,):
        return "color", background
    if background.shape == (3, height, width):
        return "image", background
    raise ValueError(f"background must be (3,) or (3, {height}, {width}), not {tuple(background.shape)}")


class _Buffers:
    """Keeps the contiguous float32 tensors alive while the kernels use their pointers."""

    def __init__(self, atlas, sigma, params, sprite, width, height, color_mode, background):
        device = params["xy"].device
        textures = atlas.flat_textures(sigma, alpha_only=color_mode == "tint" and device.type == "cpu")
        self.tensors = {name: params[name].detach().to(torch.float32).contiguous() for name in _PARAMETERS}
        self.tensors["sprite"] = sprite.to(device=device, dtype=torch.int32).contiguous()
        self.tensors["level"] = mip_levels(self.tensors["log_size"], atlas.resolution,
                                           atlas.num_levels).to(torch.int32).contiguous()
        kind, self.background = _background(background, width, height, device)
        self.tensors.update(textures=textures.data, alpha=textures.alpha, level_offset=textures.offsets,
                            level_size=textures.sizes, support=textures.support,
                            background=self.background)
        self.scene = {name: t.data_ptr() for name, t in self.tensors.items()}
        self.samples = 0   # the (instance, pixel) pairs the kernels visit, counted when a timing clock runs
        self.scene.update(n=params["xy"].shape[0], width=width, height=height, pad=atlas.pad,
                          num_sprites=atlas.num_sprites, color_mode=COLOR_MODES.index(color_mode), background_kind=BACKGROUND_KINDS[kind])


def box_pixels(atlas, tensors: dict, width: int, height: int) -> int:
    """How many (instance, pixel) pairs the kernels visit: the pixels of each instance's rotated
    box's bounding rectangle on the canvas (the samples of `spritefit bench speed`)."""
    size = torch.exp(tensors["log_size"])
    extent = atlas.extents[tensors["sprite"].long()] * size[:, None]      # half width, half height
    cos, sin = torch.cos(tensors["theta"]).abs(), torch.sin(tensors["theta"]).abs()
    half = torch.stack([cos * extent[:, 0] + sin * extent[:, 1], sin * extent[:, 0] + cos * extent[:, 1]], 1)
    low = (tensors["xy"] - half).floor().clamp_min(0)
    high = torch.minimum((tensors["xy"] + half).ceil(), torch.tensor([width, height], device=size.device))
    return int((high - low).clamp_min(0).prod(1).sum())


class NativeRender(torch.autograd.Function):
    @staticmethod
    def forward(ctx, xy, log_size, theta, color, opacity, mix, background, buffers):
        s = buffers.scene
        device = xy.device
        image = torch.empty(3, s["height"], s["width"], device=device)
        t_end = torch.empty(s["height"], s["width"], device=device)
        n_contrib = torch.empty(s["height"], s["width"], dtype=torch.int32, device=device)
        visibility = torch.empty(s["n"], device=device)
        with timing.stage("kernel forward"):
            if device.type == "cuda":
                bins = _native.forward_cuda(s, image.data_ptr(), t_end.data_ptr(), n_contrib.data_ptr(),
                                            visibility.data_ptr(), torch.cuda.current_stream(device).cuda_stream)
                alpha = 1 - t_end
            else:   # the CPU kernel writes alpha too: a pass over the canvas less (0.1 ms at 512 x 341)
                alpha = torch.empty(s["height"], s["width"])
                bins = _native.forward_cpu(s, image.data_ptr(), t_end.data_ptr(), alpha.data_ptr(),
                                           n_contrib.data_ptr(), visibility.data_ptr())
        timing.count("kernel forward samples", buffers.samples)
        ctx.buffers, ctx.bins = buffers, bins
        # Outputs the loss does not use (a fit's alpha) reach backward as None, not as zeros the
        # size of the canvas made for them, that the kernel would then read.
        ctx.set_materialize_grads(False)
        ctx.background_shape = None if background is None else background.shape
        ctx.save_for_backward(t_end, n_contrib)
        ctx.mark_non_differentiable(visibility)
        return image, alpha, visibility

    @staticmethod
    def backward(ctx, grad_image, grad_alpha, _grad_visibility):
        t_end, n_contrib = ctx.saved_tensors
        s = ctx.buffers.scene
        device = t_end.device
        grad_image = torch.zeros(3, s["height"], s["width"], device=device) if grad_image is None \
            else grad_image.to(torch.float32).contiguous()
        grad_alpha = None if grad_alpha is None else grad_alpha.to(torch.float32).contiguous()
        grads = torch.empty(s["n"], _native.GRADS_PER_INSTANCE, device=device)
        args = (s, ctx.bins, t_end.data_ptr(), n_contrib.data_ptr(), grad_image.data_ptr(),
                0 if grad_alpha is None else grad_alpha.data_ptr(), grads.data_ptr())
        with timing.stage("kernel backward"):
            if device.type == "cuda":
                _native.backward_cuda(*args, torch.cuda.current_stream(device).cuda_stream)
            else:
                _native.backward_cpu(*args)
        timing.count("kernel backward samples", ctx.buffers.samples)
        grad_background = None
        if ctx.background_shape is not None and ctx.needs_input_grad[6]:
            per_pixel = grad_image * t_end   # d image / d background = T_end
            grad_background = per_pixel.sum((1, 2)) if len(ctx.background_shape) == 1 else per_pixel
        return (grads[:, 0:2], grads[:, 2], grads[:, 3], grads[:, 4:7], grads[:, 7], grads[:, 8],
                grad_background, None)


def set_cpu_threads(count: int) -> int:
    """Use `count` threads for torch's CPU ops and the native CPU kernels (as a Ray task with
    `count` CPUs gets); returns the count before."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    if _native is not None:
        _native.set_cpu_threads(count)
    return before


def _sharp_buffers(atlas, params: dict, width: int, height: int, color_mode: str) -> "_Buffers":
    """The kernels' buffers of scene_tensors' CPU tensors, unblurred, checked."""
    require()
    sprite = params["sprite"]
    _check_inputs(params, sprite, sprite.shape[0], sprite.device)
    buffers = _Buffers(atlas, 0.0, params, sprite, width, height, color_mode, None)
    _check_values(buffers, params, sprite, atlas.num_sprites)
    return buffers


def _instance_rects(buffers: "_Buffers") -> np.ndarray:
    rects = np.empty((buffers.scene["n"], 4), np.int32)
    _native.instance_rects_cpu(buffers.scene, rects.ctypes.data)
    return rects


def instance_rects(atlas, params: dict, *, width: int, height: int, color_mode: str) -> np.ndarray:
    """(N, 4) int32: the canvas pixels x0, x1, y0, y1 (inclusive; x0 > x1 or y0 > y1: none) where
    each instance's alpha can be non-zero, as the renderer bounds them. params: scene_tensors'
    CPU tensors."""
    return _instance_rects(_sharp_buffers(atlas, params, width, height, color_mode))


def instance_patches(atlas, params: dict, *, width: int, height: int, color_mode: str,
                     max_bytes: int) -> Iterator[tuple[int, int, int, np.ndarray]]:
    """Each instance drawn alone at full opacity with the native module, bottom first: (index,
    left, top, straight RGBA uint8) cropped to its pixels whose alpha is above 0 once rounded,
    instances that show none left out. params: scene_tensors' CPU tensors. The patches are drawn
    in runs of at most max_bytes (one instance at least), so any scene streams in bounded memory."""
    buffers = _sharp_buffers(atlas, params, width, height, color_mode)
    n = params["sprite"].shape[0]
    rects = _instance_rects(buffers)
    cols, rows = (rects[:, 1] - rects[:, 0] + 1).clip(0), (rects[:, 3] - rects[:, 2] + 1).clip(0)
    ends = np.cumsum(cols.astype(np.int64) * rows * 4)   # byte offset after each patch, in one buffer
    first = 0
    while first < n:
        start = int(ends[first - 1]) if first else 0
        last = max(first + 1, int(np.searchsorted(ends, start + max_bytes, side="right")))
        offsets = np.concatenate([[0], ends[first:last] - start]).astype(np.int64)
        patches, tight = np.empty(int(offsets[-1]), np.uint8), np.empty((last - first, 4), np.int32)
        _native.instance_patches_cpu(buffers.scene, first, last, rects.ctypes.data, offsets.ctypes.data,
                                     patches.ctypes.data, tight.ctypes.data)
        for k, i in enumerate(range(first, last)):
            x0, x1, y0, y1 = tight[k].tolist()
            if x0 <= x1:
                patch = patches[offsets[k]:offsets[k + 1]].reshape(int(rows[i]), int(cols[i]), 4)
                yield i, int(rects[i, 0]) + x0, int(rects[i, 2]) + y0, patch[y0:y1 + 1, x0:x1 + 1]
        first = last


def render_native(atlas, xy, log_size, theta, color, opacity, sprite, *, width: int, height: int,
                  color_mode: str = "tint", mix=None, background=None, sigma: float = 0.0) -> RenderResult:
    if color_mode not in COLOR_MODES:
        raise ValueError(f"unknown colour mode {color_mode!r}; choose one of {', '.join(COLOR_MODES)}")
    if not (isinstance(width, int) and isinstance(height, int) and width >= 1 and height >= 1):
        raise ValueError(f"canvas size must be positive integers, not {width}x{height}")
    require()
    device = xy.device
    if device.type == "cuda" and not getattr(_native, "with_cuda", False):
        raise RuntimeError("this SpriteFit build has no CUDA backend; rebuild with nvcc available "
                           "or use backend='reference'")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"the native renderer runs on cpu or cuda tensors, not {device.type}")
    n = xy.shape[0] if xy.dim() == 2 else -1
    if mix is None:
        mix = torch.full((max(n, 0),), 0.5, device=device)
    params = dict(xy=xy, log_size=log_size, theta=theta, color=color, opacity=opacity, mix=mix)
    _check_inputs(params, sprite, n, device)
    if atlas.device != device:
        raise ValueError(f"the atlas is on {atlas.device}, the instances on {device}")
    buffers = _Buffers(atlas, sigma, params, sprite, width, height, color_mode, background)
    _check_values(buffers, params, sprite, atlas.num_sprites)
    if timing.is_active():
        with timing.unclocked():
            buffers.samples = box_pixels(atlas, buffers.tensors, width, height)
    image, alpha, visibility = NativeRender.apply(xy, log_size, theta, color, opacity, mix, background, buffers)
    return RenderResult(image, alpha, visibility)
