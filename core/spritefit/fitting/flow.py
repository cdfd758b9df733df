"""Dense optical flow between video frames (DIS, through OpenCV), and warping by it.

Video uses it twice: sprites of the previous frame are carried along the forward flow before the
next frame is fitted (so they move with the picture), and the previous frame is warped into the
next one to tell which pixels changed by more than the motion (temporal terms, flicker metric).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# DIS (Kroeger et al. 2016, OpenCV's implementation): patch search from coarse to fine, then a
# variational refinement that keeps the field smooth inside objects and sharp at their edges.
# Finest scale 0 (full resolution) and 10 refinement passes: on the tuning clips (the bench's
# pan-and-zoom, a disc moving over a still background) the mean end-point error is 0.07 px, against
# 0.49 / 0.31 px for the pyramidal Lucas-Kanade this replaced. Sprites are carried along it, so
# its error is jitter.
DIS_FINEST_SCALE = 0
DIS_PATCH_SIZE, DIS_PATCH_STRIDE = 8, 4
DIS_REFINEMENT_PASSES = 10


def _gray8(image: torch.Tensor):
    """(3, H, W) float RGB in [0, 1] -> (H, W) uint8 luma, as DIS takes it."""
    gray = 0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]
    return (gray.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def warp(image: torch.Tensor, flow: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Sample image (C, H, W) at p + flow(p) for every pixel p (borders clamped); mode: as
    grid_sample's."""
    _, height, width = image.shape
    ys, xs = torch.meshgrid(torch.arange(height, dtype=image.dtype, device=image.device),
                            torch.arange(width, dtype=image.dtype, device=image.device), indexing="ij")
    gx = (xs + flow[0] + 0.5) / width * 2 - 1
    gy = (ys + flow[1] + 0.5) / height * 2 - 1
    grid = torch.stack([gx, gy], dim=-1)[None]
    return F.grid_sample(image[None], grid, mode=mode, padding_mode="border", align_corners=False)[0]


def optical_flow(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """(2, H, W) flow in pixels: the content at p in `first` is at p + flow(p) in `second`."""
    import cv2
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    dis.setFinestScale(DIS_FINEST_SCALE)
    dis.setPatchSize(DIS_PATCH_SIZE)
    dis.setPatchStride(DIS_PATCH_STRIDE)
    dis.setVariationalRefinementIterations(DIS_REFINEMENT_PASSES)
    flow = dis.calc(_gray8(first), _gray8(second), None)
    return torch.from_numpy(flow).permute(2, 0, 1).to(first.device, first.dtype).contiguous()


def sample_flow(flow: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """The flow (2, H, W) at canvas points xy (N, 2), bilinearly: (N, 2)."""
    _, height, width = flow.shape
    grid = torch.stack([xy[:, 0] / width * 2 - 1, xy[:, 1] / height * 2 - 1], dim=-1)[None, None]
    return F.grid_sample(flow[None], grid.to(flow.dtype), mode="bilinear", padding_mode="border",
                         align_corners=False)[0, :, 0].t()


def local_motion(flow: torch.Tensor, xy: torch.Tensor, reach: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """How the picture moves around canvas points xy (N, 2), as the similarity nearest to the
    flow's local affine motion over +-reach (N,) px: (shift (N, 2) px, scale (N,), turn (N,)
    radians from +x towards +y, which is clockwise as seen with y down). Carrying a sprite along
    a zoom or a turn needs its size and angle to follow, not only its centre."""
    step = reach.clamp_min(1.0)[:, None]
    dx, dy = torch.zeros_like(xy), torch.zeros_like(xy)
    dx[:, 0], dy[:, 1] = step[:, 0], step[:, 0]
    shift = sample_flow(flow, xy)
    along_x = (sample_flow(flow, xy + dx) - sample_flow(flow, xy - dx)) / (2 * step)   # d flow / dx
    along_y = (sample_flow(flow, xy + dy) - sample_flow(flow, xy - dy)) / (2 * step)   # d flow / dy
    # I + J = [[1 + fx_x, fx_y], [fy_x, 1 + fy_y]]; its nearest similarity is [[a, -b], [b, a]].
    a = 1 + 0.5 * (along_x[:, 0] + along_y[:, 1])
    b = 0.5 * (along_x[:, 1] - along_y[:, 0])
    return shift, torch.sqrt(a * a + b * b), torch.atan2(b, a)
