"""How much a fitted video flickers: the change of the render from frame to frame beyond the
picture's own motion, measured along the optical flow of the target frames.

`flicker` is SpriteFit's measure: on the pixels whose change in the target is all motion (the
previous target frame warped along the flow matches this one), the mean absolute difference of
this render and the previous render warped along the same flow (bicubic), both blurred by
fitting.temporal.RESAMPLING_BLUR (1.5 px) first. The blur is what makes a pure sub-pixel
translation measure about 0: resampling a sharp render by half a pixel changes its edges almost
as much as sprites jittering would (0.006 against 0.013 on a 300-sprite render moved by
(0.5, 0.5) px, or every sprite moved at random by 0.5 px), blurred 0.001 against 0.009.

`e_warp` is the warping error of Lai et al. (ECCV 2018), the flicker measure DiffBMP reports:
the mean squared colour difference of this render and the warped previous render, unblurred, on
the pixels the flow does not mark occluded (forward-backward check).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class FrameChange:
    render_change: float     # mean |R_t - R_t-1|
    target_change: float     # mean |T_t - T_t-1|
    flicker: float           # see the module's docstring
    e_warp: float


def tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) float array -> (3, H, W) tensor."""
    return torch.from_numpy(np.ascontiguousarray(image[..., :3], np.float32)).permute(2, 0, 1).contiguous()


def explained_by_motion(target: torch.Tensor, previous_target: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """(H, W) bool: pixels where the previous target, warped along the flow, matches this one."""
    from .fitting.flow import warp
    from .fitting.temporal import STILL_THRESHOLD, motion_residual
    return motion_residual(target, warp(previous_target, backward)) < STILL_THRESHOLD


def not_occluded(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """(H, W) bool: pixels of frame t whose backward flow, followed forward again, comes back
    (Sundaram et al.'s consistency check, as Lai et al. use it for E_warp)."""
    from .fitting.flow import warp
    returned = warp(forward, backward)                    # forward flow at p + backward(p)
    gap = ((backward + returned) ** 2).sum(0)
    return gap < 0.01 * ((backward ** 2).sum(0) + (returned ** 2).sum(0)) + 0.5


def flicker(render: torch.Tensor, previous_render: torch.Tensor, backward: torch.Tensor,
            where: torch.Tensor) -> float:
    """Mean |blur(R_t) - blur(warp(R_t-1))| over `where` (all pixels when it is empty)."""
    from .fitting.flow import warp
    from .fitting.temporal import resampling_blur
    residual = (resampling_blur(render) - resampling_blur(warp(previous_render, backward, mode="bicubic"))).abs().mean(0)
    return float(residual[where].mean()) if where.any() else float(residual.mean())


def e_warp(render: torch.Tensor, previous_render: torch.Tensor, forward: torch.Tensor,
           backward: torch.Tensor) -> float:
    from .fitting.flow import warp
    mask = not_occluded(forward, backward)
    squared = ((render - warp(previous_render, backward)) ** 2).sum(0)
    return float(squared[mask].mean()) if mask.any() else float(squared.mean())


def frame_change(render: np.ndarray, previous_render: np.ndarray, target: np.ndarray, previous_target: np.ndarray,
                 forward: torch.Tensor, backward: torch.Tensor) -> FrameChange:
    """Every measure of one frame against the one before (float (H, W, 3) images, the target
    frames' flow from t-1 to t and back)."""
    now, before = tensor(render), tensor(previous_render)
    moved = explained_by_motion(tensor(target), tensor(previous_target), backward)
    return FrameChange(float(np.abs(render - previous_render).mean()), float(np.abs(target - previous_target).mean()),
                       flicker(now, before, backward, moved), e_warp(now, before, forward, backward))
