"""Respawn: instances that no longer show are moved to where the error is largest.

An instance that shrank to nothing, faded out or is buried under others costs time and adds
nothing; reusing it where the render is still wrong is far better than leaving it there. Respawned
instances go to the top of the painter's order so they are seen at once.
"""
from __future__ import annotations

import torch

from ..sprites import gaussian_blur
from .init import choose_sprites, sample_pixels
from .placement import FRESH_RANGE

# An instance showing less than this many pixels' worth (sum of T_i a_i) counts as invisible.
MIN_VISIBLE_PIXELS = 2.0


def _reorder(params, optimizer, order: torch.Tensor) -> None:
    """Permute every per-instance tensor (parameters, Adam moments, buffers) by `order`."""
    with torch.no_grad():
        for p in params.parameters():
            p.copy_(p[order])
            for moment in optimizer.state.get(p, {}).values():
                if torch.is_tensor(moment) and moment.dim() > 0 and moment.shape[0] == order.numel():
                    moment.copy_(moment[order])
        for buffer in params.buffers():
            buffer.copy_(buffer[order])


def respawn_invisible(params, optimizer, visibility, image, target, atlas, generator,
                      uses_sprite_colors: bool, on_top: bool, zones) -> int:
    """Move invisible instances to high-error pixels of their zone, on top; returns how many
    moved. Frozen instances stay; moved ones are no longer tied to where they started (video)."""
    hidden = torch.nonzero((visibility < MIN_VISIBLE_PIXELS) & ~params.frozen).flatten()
    if hidden.numel() == 0 or hidden.numel() == visibility.numel():
        return 0
    error = gaussian_blur(((image.detach() - target) ** 2).sum(0)[None, None], 1.0)[0, 0]
    smooth_target = gaussian_blur(target[None], 1.0)[0].flatten(1)
    visible_sizes = params.log_size.detach()[visibility >= MIN_VISIBLE_PIXELS]
    new_log_size = visible_sizes.median() - 0.7        # half the typical size: respawns fill in detail
    with torch.no_grad():
        for number, zone in enumerate(zones):
            moved = hidden[params.zone[hidden] == number]
            if moved.numel() == 0:
                continue
            xy, index = sample_pixels((error + 1e-8) * zone.targets, moved.numel(), generator)
            colors = smooth_target[:, index].t()
            params.xy[moved] = xy
            params.color_logit[moved] = torch.logit(colors.clamp(*FRESH_RANGE))
            if uses_sprite_colors:
                params.sprite[moved] = choose_sprites(atlas, colors, True, generator, zone.sprites)
        params.log_size[hidden] = new_log_size
        params.theta[hidden] = 0.0
        params.opacity_logit[hidden] = 2.0
        params.anchored[hidden] = 0.0
        for p in params.parameters():
            for moment in optimizer.state.get(p, {}).values():
                if torch.is_tensor(moment) and moment.dim() > 0:
                    moment[hidden] = 0.0
    if on_top:
        keep = torch.ones_like(visibility, dtype=torch.bool)
        keep[hidden] = False
        _reorder(params, optimizer, torch.cat([torch.nonzero(keep).flatten(), hidden]))
    return hidden.numel()
