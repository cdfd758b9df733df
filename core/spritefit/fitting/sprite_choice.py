"""Sprites chosen again during the fit, where the sprites' own colours show (original colours).

Which sprite an instance shows is a discrete choice that gradients cannot make: in original
colours an instance whose sprite has the wrong colour can only fade or hide under others. Every
few iterations each instance takes the sprite whose colour, laid at the instance's weight over what
lies beneath it, best matches the target there:

    w  = the instance's share of the final colour over its box (its visibility per covered pixel)
    B  = (R - w c) / (1 - w)         what lies beneath, from the render R and its sprite's colour c
    k* = argmin_k | w c_k + (1 - w) B - T |^2        T: the target's mean over the same box

Means over each instance's box come from summed-area tables, so the cost is two cumulative sums
and a few lookups per instance, whatever the sizes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

BOX_HALF = 0.7        # of the instance's size: the part of its box its sprite mostly covers
MAX_WEIGHT = 0.95     # keeps the estimate of what lies beneath finite
SHARE = 0.1          # of a zone's instances that may change sprite at once
CHUNK = 4096          # instances scored at once (N x K x 3 floats)


def box_means(image: torch.Tensor, xy: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
    """(N, C) means of `image` (C, H, W) over the boxes centre `xy` (N, 2), half-width `half` (N,),
    clipped to the canvas (at least one pixel)."""
    channels, height, width = image.shape
    table = F.pad(image.cumsum(1).cumsum(2), (1, 0, 1, 0))           # (C, H + 1, W + 1)
    x0 = (xy[:, 0] - half).floor().clamp(0, width - 1).long()
    y0 = (xy[:, 1] - half).floor().clamp(0, height - 1).long()
    x1 = torch.maximum((xy[:, 0] + half).ceil().clamp(0, width).long(), x0 + 1)
    y1 = torch.maximum((xy[:, 1] + half).ceil().clamp(0, height).long(), y0 + 1)
    total = table[:, y1, x1] - table[:, y0, x1] - table[:, y1, x0] + table[:, y0, x0]
    return (total / ((x1 - x0) * (y1 - y0)).to(image.dtype)).t()


def rechoose_sprites(params, visibility: torch.Tensor, image: torch.Tensor, target: torch.Tensor, atlas,
                     zones) -> int:
    """Give each instance the sprite that best matches the target at its place; returns how many
    changed. Frozen instances keep theirs; each instance chooses among its zone's sprites."""
    with torch.no_grad():
        xy, size = params.xy.detach(), params.log_size.detach().exp()
        sprite = params.sprite
        colors = atlas.mean_colors.to(image.device)
        footprint = atlas.coverage.to(image.device)[sprite] * (2 * size) ** 2
        weight = (visibility / footprint.clamp_min(1.0)).clamp(0.0, MAX_WEIGHT)[:, None]
        half = BOX_HALF * size
        rendered, wanted = box_means(image.detach(), xy, half), box_means(target, xy, half)
        beneath = (rendered - weight * colors[sprite]) / (1 - weight)
        changed = 0
        for number, zone in enumerate(zones):
            members = torch.nonzero((params.zone == number) & ~params.frozen).flatten()
            allowed = zone.sprites.to(image.device)
            if members.numel() == 0 or allowed.numel() < 2:
                continue
            best, gain = [], []
            for part in members.split(CHUNK):
                # the zone's sprites' colours, then the instance's own (last): (n, K + 1, 3)
                palette = torch.cat([colors[allowed][None].expand(part.numel(), -1, -1),
                                     colors[sprite[part]][:, None]], 1)
                w = weight[part][:, None]                                       # (n, 1, 1)
                error = ((w * palette + (1 - w) * beneath[part][:, None] - wanted[part][:, None]) ** 2).sum(2)
                lowest, choice = error[:, :-1].min(1)
                best.append(allowed[choice])
                gain.append(error[:, -1] - lowest)
            best, gain = torch.cat(best), torch.cat(gain)
            # Instances decide at once on the same residual: all of them changing would overshoot
            # it together, so only the share with the largest gains changes.
            count = int((gain > 1e-6).sum().clamp(max=max(1, int(SHARE * members.numel()))))
            chosen = torch.topk(gain, count).indices if count else gain[:0].long()
            changed += count
            sprite[members[chosen]] = best[chosen]
        return changed
