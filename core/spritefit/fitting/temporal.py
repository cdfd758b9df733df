"""Temporal coherence for video: a frame's fit is tied to the previous frame's result.

Two terms, both zero for a still image:
- parameter change: each instance carried over from the previous frame is pulled towards where it
  was (`_Parameters.temporal_penalty`), so sprites move with the picture instead of re-shuffling;
- rendered change where the target did not change: the sprites' own layer (the render less its
  background, so the noisy canvas does not count) should stay as it was on those pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

# A pixel whose target changed by less than this (max over channels) counts as still.
STILL_THRESHOLD = 0.03


@dataclass
class PreviousFrame:
    target: torch.Tensor        # (3, H, W) the previous frame's target
    foreground: torch.Tensor    # (3, H, W) its final render less the background (premultiplied)

    def still_mask(self, target: torch.Tensor) -> torch.Tensor:
        return ((target - self.target).abs().amax(0) < STILL_THRESHOLD).float()


def foreground(image: torch.Tensor, coverage: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """The sprites' premultiplied colour: the render less the background showing through."""
    background = background.view(3, 1, 1) if background.dim() == 1 else background
    return image - (1 - coverage) * background


def render_change(rendered, background, previous: PreviousFrame, still: torch.Tensor) -> torch.Tensor:
    """Mean squared change of the sprites' layer on the pixels where the target stood still."""
    change = (foreground(rendered.image, rendered.alpha, background) - previous.foreground) ** 2
    return (change.sum(0) * still).sum() / still.sum().clamp_min(1.0)
