"""Where a fit's instances start: the Placement the init strategies (init.py, search.py) return
and the loop turns into parameters, and the ranges new instances start in."""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch

START_MIX = 0.5   # where new instances' mix weight starts (their opacity: FitConfig.starting_opacity)
# New instances' colours stay inside this range, where the sigmoid behind them still moves freely.
FRESH_RANGE = (0.02, 0.98)


@dataclass
class Placement:
    xy: torch.Tensor       # (N, 2)
    size: torch.Tensor     # (N,)
    theta: torch.Tensor    # (N,)
    color: torch.Tensor    # (N, 3)
    sprite: torch.Tensor   # (N,) int64
    opacity: torch.Tensor | None = None   # (N,), None: the optimiser's starting opacity
    mix: torch.Tensor | None = None
    frozen: torch.Tensor | None = None    # (N,) bool: kept exactly as they are; None: none
    zone: torch.Tensor | None = None      # (N,) int64 index into Constraints.zones; None: all 0

    def permuted(self, order: torch.Tensor) -> "Placement":
        return Placement(*(None if t is None else t[order] for t in self._tensors()))

    def bottom_to_top_by_size(self) -> "Placement":
        return self.permuted(torch.argsort(self.size, descending=True, stable=True))

    def _tensors(self) -> list:
        return [getattr(self, f.name) for f in fields(self)]

    @staticmethod
    def concatenate(parts: list["Placement"]) -> "Placement":
        columns = zip(*(p._tensors() for p in parts))
        return Placement(*(None if any(t is None for t in ts) else torch.cat(ts) for ts in columns))
