"""Regularisers on the instance parameters, added to the image loss when their weight is set."""
from __future__ import annotations

import torch

NEIGHBOURS = 4          # the overlap penalty looks at this many nearest instances
CHUNK = 4096            # rows of the distance matrix computed at once


def size_range_penalty(log_size: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Squared distance (in log size) of sizes outside [exp(low), exp(high)]; 0 inside."""
    return (torch.relu(low - log_size) ** 2 + torch.relu(log_size - high) ** 2).mean()


def overlap_penalty(xy: torch.Tensor, log_size: torch.Tensor) -> torch.Tensor:
    """How much instances crowd their nearest neighbours: for each of its NEIGHBOURS nearest
    centres, the overlap of two discs of the instances' sizes, relative to the smaller disc."""
    n = xy.shape[0]
    if n < 2:
        return xy.sum() * 0
    size = log_size.exp()
    k = min(NEIGHBOURS, n - 1)
    with torch.no_grad():   # which neighbours is not differentiated, only how close they are
        neighbours = torch.cat([torch.cdist(xy[i:i + CHUNK], xy).topk(k + 1, largest=False).indices[:, 1:]
                                for i in range(0, n, CHUNK)])
    distance = (xy[:, None, :] - xy[neighbours]).norm(dim=-1)
    reach = size[:, None] + size[neighbours]
    smaller = torch.minimum(size[:, None], size[neighbours])
    return (torch.relu(reach - distance) / (2 * smaller)).clamp(max=1).pow(2).mean()
