"""Temporal coherence for video: a frame's fit is tied to the previous frame's result.

Two terms, both zero for a still image, and the optimiser's memory between frames:
- parameter change: each instance carried over from the previous frame is pulled towards where it
  was (`_Parameters.temporal_penalty`), so sprites move with the picture instead of re-shuffling;
- rendered change where the target did not change: the sprites' own layer (the render less its
  background, so the noisy canvas does not count) should stay as it was on those pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

from ..sprites import gaussian_blur
from .adam import Adam

# A pixel whose target changed by less than this (max over channels) counts as still.
STILL_THRESHOLD = 0.03
# Changes of a render finer than this Gaussian (px) are resampling, not flicker: a sharp render
# moved by a fraction of a pixel and warped back differs at every edge. The rendered-change term
# and the flicker measure (spritefit.flicker) compare renders blurred by it.
RESAMPLING_BLUR = 1.5


def resampling_blur(image: torch.Tensor) -> torch.Tensor:
    """(C, H, W) blurred by RESAMPLING_BLUR."""
    return gaussian_blur(image[None], RESAMPLING_BLUR)[0]


def motion_residual(target: torch.Tensor, moved_previous: torch.Tensor) -> torch.Tensor:
    """(H, W): how far each pixel of the target differs from the previous target warped along the
    flow (max over channels): its change beyond the motion."""
    return (moved_previous - target).abs().amax(0)


@dataclass
class PreviousFrame:
    target: torch.Tensor        # (3, H, W) the previous frame's target
    foreground: torch.Tensor    # (3, H, W) its final render less the background (premultiplied)
    # (N,) in [0, 1]: how strongly each instance is pulled to where it was carried (None: fully);
    # 0 where the picture under it changed by more than its motion, so new content is fitted freely
    pull_weight: torch.Tensor | None = None

    # (H, W) in [0, 1]: how far the previous render is trusted on each pixel (None: everywhere)
    trust: torch.Tensor | None = None

    def still_mask(self, target: torch.Tensor) -> torch.Tensor:
        """Where the rendered-change term holds: the picture only moved, and the previous render
        is trusted there."""
        still = (motion_residual(target, self.target) < STILL_THRESHOLD).float()
        return still if self.trust is None else still * self.trust.to(still.device)

    @cached_property
    def blurred_foreground(self) -> torch.Tensor:
        """The foreground as the rendered-change term compares it (once, not every iteration)."""
        return resampling_blur(self.foreground)


class OptimizerMemory:
    """Adam's moments at the end of one frame's fit, for the next frame's. With them a later frame
    steps each parameter by its gradient against the size of its gradients so far: an instance
    the new frame leaves settled takes small steps instead of Adam's first steps, which are as
    long as the learning rate whatever the gradient (jitter)."""

    def __init__(self):
        self.state: list[dict] | None = None

    def keep(self, optimizer: Adam, params: torch.nn.Module) -> None:
        self.state = [{k: v.detach().clone() if torch.is_tensor(v) else v for k, v in optimizer.state[p].items()}
                      for p in params.parameters() if p in optimizer.state]

    def restore(self, optimizer: Adam, params: torch.nn.Module) -> None:
        parameters = list(params.parameters())
        if not self.state or len(self.state) != len(parameters):
            return
        if any(state["exp_avg"].shape != p.shape for state, p in zip(self.state, parameters)):
            return      # another number of instances: start afresh
        for state, p in zip(self.state, parameters):
            optimizer.state[p] = {k: v.clone().to(p.device) if torch.is_tensor(v) else v for k, v in state.items()}


def foreground(image: torch.Tensor, coverage: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """The sprites' premultiplied colour: the render less the background showing through."""
    background = background.view(3, 1, 1) if background.dim() == 1 else background
    return image - (1 - coverage) * background


def render_change(rendered, background, previous: PreviousFrame, still: torch.Tensor) -> torch.Tensor:
    """Mean squared change of the sprites' layer on the pixels where the target stood still."""
    layer = resampling_blur(foreground(rendered.image, rendered.alpha, background))
    change = (layer - previous.blurred_foreground) ** 2
    return (change.sum(0) * still).sum() / still.sum().clamp_min(1.0)
