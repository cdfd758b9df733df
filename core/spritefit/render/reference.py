"""Pure-torch reference renderer: the ground truth every other backend is checked against.

Dense (every instance is evaluated at every pixel), differentiable by autograd, on any device.
Use it for small canvases and tests; the native backends implement the same math in tiles.

For pixel centre p and instance i (sprite k, size s, angle theta, centre c):
    u = R(-theta) (p - c) / s            position in the sprite's unit box [-1, 1]^2
    (rgb, A) = bilinear sample of mip level l(s) of sprite k at u (zero outside the texture)
    a_i = min(opacity_i * A, ALPHA_MAX),   col_i = mode(rgb, tint_i, mix_i)
    C = sum_i T_i a_i col_i + T_end * background,   T_i = prod_{j above i} (1 - a_j)
Instances are walked from the top (last row) down; a pixel stops once T < T_MIN.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .common import ALPHA_MAX, T_MIN, RenderResult, mip_levels, mode_color


def unit_box_coords(xy, log_size, theta, width: int, height: int):
    """(N, H, W) sprite-space coordinates of every pixel centre for every instance."""
    device = xy.device
    px = torch.arange(width, device=device, dtype=xy.dtype) + 0.5
    py = torch.arange(height, device=device, dtype=xy.dtype) + 0.5
    dx = px.view(1, 1, -1) - xy[:, 0].view(-1, 1, 1)
    dy = py.view(1, -1, 1) - xy[:, 1].view(-1, 1, 1)
    cos, sin = torch.cos(theta).view(-1, 1, 1), torch.sin(theta).view(-1, 1, 1)
    inv_size = torch.exp(-log_size).view(-1, 1, 1)
    return (cos * dx - sin * dy) * inv_size, (sin * dx + cos * dy) * inv_size


def sample_sprites(textures, level_sizes, sprite, level, ux, uy):
    """Bilinear samples (N, 4, H, W) of each instance's sprite at its mip level.

    One grid_sample per (level, sprite) in use, its instances' grids stacked into one tall grid:
    no texture is copied per instance."""
    n, height, width = ux.shape
    order, samples = [], []
    pairs = torch.unique(level.long() * len(textures[0]) + sprite.long())
    for pair in pairs.tolist():
        lvl, k = divmod(pair, len(textures[0]))
        idx = torch.nonzero((level == lvl) & (sprite == k)).flatten()
        tex = textures[lvl][k].permute(2, 0, 1)[None].to(ux.dtype)           # (1, 4, W_l, W_l)
        scale = level_sizes[lvl] / tex.shape[-1]                             # unit box -> grid coords
        grid = torch.stack([ux[idx] * scale, uy[idx] * scale], dim=-1).view(1, -1, width, 2)
        sampled = F.grid_sample(tex, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        samples.append(sampled.view(4, -1, height, width).transpose(0, 1))
        order.append(idx)
    if not samples:
        return ux.new_zeros(0, 4, height, width)
    return torch.cat(samples)[torch.argsort(torch.cat(order))]


def composite(alpha: torch.Tensor, color: torch.Tensor, background):
    """Over-composite (N, H, W) alpha and (N, 3, H, W) colour, row 0 at the bottom.

    Returns the image (3, H, W), the final transmittance T_end (H, W) and each instance's
    visible weight sum_pixels T_i a_i (N,)."""
    alpha_top_down = alpha.flip(0)
    color_top_down = color.flip(0)
    with torch.no_grad():
        t_before = torch.cumprod(torch.cat([torch.ones_like(alpha_top_down[:1]),
                                            1 - alpha_top_down[:-1]]), dim=0)
        contributes = (t_before >= T_MIN).to(alpha.dtype)
    alpha_used = alpha_top_down * contributes
    transmittance = torch.cumprod(1 - alpha_used, dim=0)
    t_before = torch.cat([torch.ones_like(transmittance[:1]), transmittance[:-1]])
    weight = t_before * alpha_used
    image = (weight.unsqueeze(1) * color_top_down).sum(0)
    t_end = transmittance[-1]
    if background is not None:
        bg = background.view(3, 1, 1) if background.dim() == 1 else background
        image = image + t_end * bg
    return image, t_end, weight.detach().sum((1, 2)).flip(0)


def render_reference(textures, level_sizes, xy, log_size, theta, color, opacity, sprite, *,
                     width: int, height: int, color_mode: str = "tint", mix=None,
                     background=None) -> RenderResult:
    """Render N instances; see the module docstring. `background` is None (transparent), an RGB
    colour (3,) or an image (3, H, W). Returns image (3, H, W) and coverage alpha (H, W)."""
    n = xy.shape[0]
    dtype, device = xy.dtype, xy.device
    if n == 0:
        bg = torch.zeros(3, height, width, dtype=dtype, device=device)
        if background is not None:
            bg = bg + (background.view(3, 1, 1) if background.dim() == 1 else background)
        return RenderResult(bg, torch.zeros(height, width, dtype=dtype, device=device),
                            torch.zeros(0, dtype=dtype, device=device))
    ux, uy = unit_box_coords(xy, log_size, theta, width, height)
    level = mip_levels(log_size, level_sizes[0], len(level_sizes))
    sample = sample_sprites(textures, level_sizes, sprite, level, ux, uy)
    alpha = (opacity.view(-1, 1, 1) * sample[:, 3]).clamp(max=ALPHA_MAX)
    mix_b = None if mix is None else mix.view(-1, 1, 1, 1)
    col = mode_color(color_mode, sample[:, :3], color.view(-1, 3, 1, 1), mix_b)
    image, t_end, visibility = composite(alpha, col, background)
    return RenderResult(image, 1 - t_end, visibility)
