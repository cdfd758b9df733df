"""Dense optical flow between video frames (pyramidal Lucas-Kanade), and warping by it.

Video uses it twice: sprites of the previous frame are carried along the forward flow before the
next frame is fitted (so they move with the picture), and the previous frame is warped into the
next one to tell which pixels changed by more than the motion (temporal terms, flicker metric).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..sprites import gaussian_blur

LEVELS = 4
ITERATIONS = 4
WINDOW_SIGMA = 2.5     # pixels: the neighbourhood each flow vector is fitted over
# Added to the structure tensor's diagonal: flat neighbourhoods keep the coarser estimate, and
# along edges and stripes (the aperture problem) the flow across them is still found.
REGULARISER = 1e-5


def _gray(image: torch.Tensor) -> torch.Tensor:
    return (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None, None]


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample image (C, H, W) at p + flow(p) for every pixel p (borders clamped)."""
    _, height, width = image.shape
    ys, xs = torch.meshgrid(torch.arange(height, dtype=image.dtype, device=image.device),
                            torch.arange(width, dtype=image.dtype, device=image.device), indexing="ij")
    gx = (xs + flow[0] + 0.5) / width * 2 - 1
    gy = (ys + flow[1] + 0.5) / height * 2 - 1
    grid = torch.stack([gx, gy], dim=-1)[None]
    return F.grid_sample(image[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0]


def _refine(first: torch.Tensor, second: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Lucas-Kanade steps at one pyramid level: flow such that second(p + flow) ~ first(p)."""
    for _ in range(ITERATIONS):
        moved = warp(second[0], flow)[None]
        gy, gx = torch.gradient(moved[0, 0])
        it = (moved - first)[0, 0]
        window = lambda t: gaussian_blur(t[None, None], WINDOW_SIGMA)[0, 0]
        sxx, syy, sxy = window(gx * gx), window(gy * gy), window(gx * gy)
        sxt, syt = window(gx * it), window(gy * it)
        sxx, syy = sxx + REGULARISER, syy + REGULARISER
        det = sxx * syy - sxy * sxy
        du = -(syy * sxt - sxy * syt) / det
        dv = -(sxx * syt - sxy * sxt) / det
        flow = flow + torch.stack([du, dv]).clamp(-1.0, 1.0)
    return flow


def optical_flow(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """(2, H, W) flow in pixels: the content at p in `first` is at p + flow(p) in `second`."""
    with torch.no_grad():
        pyramid = [(gaussian_blur(_gray(first), 1.0), gaussian_blur(_gray(second), 1.0))]
        for _ in range(LEVELS - 1):
            a, b = pyramid[-1]
            if min(a.shape[-2:]) < 16:
                break
            pyramid.append((F.avg_pool2d(a, 2), F.avg_pool2d(b, 2)))
        flow = torch.zeros(2, *pyramid[-1][0].shape[-2:], dtype=first.dtype, device=first.device)
        for level, (a, b) in enumerate(reversed(pyramid)):
            if level > 0:
                flow = 2 * F.interpolate(flow[None], size=a.shape[-2:], mode="bilinear", align_corners=False)[0]
            flow = _refine(a, b, flow)
        return flow


def sample_flow(flow: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """The flow (2, H, W) at canvas points xy (N, 2), bilinearly: (N, 2)."""
    _, height, width = flow.shape
    grid = torch.stack([xy[:, 0] / width * 2 - 1, xy[:, 1] / height * 2 - 1], dim=-1)[None, None]
    return F.grid_sample(flow[None], grid.to(flow.dtype), mode="bilinear", padding_mode="border",
                         align_corners=False)[0, :, 0].t()
