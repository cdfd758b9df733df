"""Initial placements: where instances start before gradient descent.

`structure` puts many small sprites where the target has detail (edges, colour variance) and a
few large ones in flat areas, turned along the local edges and coloured like the target there;
`random` spreads them uniformly. Both return parameters in canvas units, largest at the bottom.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..sprites import Atlas, gaussian_blur

INIT_STRATEGIES = ("structure", "random")
# Sum of the instances' box areas relative to the canvas: > 1 so sprites overlap and no gap is
# left once their transparent corners are counted.
COVERAGE = 2.5


@dataclass
class Placement:
    xy: torch.Tensor       # (N, 2)
    size: torch.Tensor     # (N,)
    theta: torch.Tensor    # (N,)
    color: torch.Tensor    # (N, 3)
    sprite: torch.Tensor   # (N,) int64

    def bottom_to_top_by_size(self) -> "Placement":
        order = torch.argsort(self.size, descending=True, stable=True)
        return Placement(*(t[order] for t in (self.xy, self.size, self.theta, self.color, self.sprite)))


def base_size(width: int, height: int, n: int) -> float:
    """Half-size that lets n square boxes cover the canvas COVERAGE times."""
    return 0.5 * math.sqrt(COVERAGE * width * height / n)


def _sobel(gray: torch.Tensor):
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=gray.device) / 8
    g = F.pad(gray[None, None], (1, 1, 1, 1), mode="replicate")
    gx = F.conv2d(g, kx[None, None])[0, 0]
    gy = F.conv2d(g, kx.t()[None, None])[0, 0]
    return gx, gy


def detail_density(target: torch.Tensor) -> torch.Tensor:
    """(H, W) density, mean 1: edge strength plus local colour variance, with a uniform floor."""
    smooth = gaussian_blur(target[None], 1.0)[0]
    gx, gy = _sobel(smooth.mean(0))
    edges = torch.sqrt(gx ** 2 + gy ** 2)
    mean = gaussian_blur(target[None], 3.0)[0]
    variance = (gaussian_blur(target[None] ** 2, 3.0)[0] - mean ** 2).clamp_min(0).sum(0)
    density = edges / edges.mean().clamp_min(1e-8) + variance / variance.mean().clamp_min(1e-8)
    density = gaussian_blur((density + 0.3)[None, None], 2.0)[0, 0]
    return density / density.mean()


def _sample_pixels(weights: torch.Tensor, n: int, generator: torch.Generator):
    h, w = weights.shape
    index = torch.multinomial(weights.flatten(), n, replacement=True, generator=generator)
    jitter = torch.rand(n, 2, generator=generator, device=weights.device)
    xy = torch.stack([index % w, index // w], dim=1).to(torch.float32) + jitter
    return xy, index


def _choose_sprites(atlas: Atlas, colors: torch.Tensor, uses_sprite_colors: bool, generator):
    """Sprite index per instance: by colour match when the sprites' own colours show, else uniform."""
    n, k = colors.shape[0], atlas.num_sprites
    if not uses_sprite_colors:
        return torch.randint(0, k, (n,), generator=generator, device=colors.device)
    distance = torch.cdist(colors, atlas.mean_colors.to(colors.device))        # (N, K)
    weights = torch.exp(-(distance / 0.15) ** 2) + 1e-6
    return torch.multinomial(weights, 1, generator=generator).flatten()


def structure_init(target, atlas, n, generator, uses_sprite_colors: bool) -> Placement:
    _, h, w = target.shape
    density = detail_density(target)
    xy, index = _sample_pixels(density, n, generator)
    # Where detail is dense, sprites are small: size ~ density^-1/2, normalised to cover the canvas.
    local = density.flatten()[index].clamp_min(1e-3) ** -0.5
    local = local.clamp(0.35 * local.median(), 2.5 * local.median())
    size = base_size(w, h, n) * local / torch.sqrt((local ** 2).mean())
    gx, gy = _sobel(gaussian_blur(target[None], 2.0)[0].mean(0))
    edge = torch.sqrt(gx ** 2 + gy ** 2).flatten()[index]
    # Align each sprite's long axis with the edge (perpendicular to the gradient); flat areas keep 0.
    along_edge = torch.atan2(-gx.flatten()[index], -gy.flatten()[index])
    theta = torch.where(edge > edge.median(), along_edge, torch.zeros_like(along_edge))
    colors = gaussian_blur(target[None], 2.0)[0].flatten(1)[:, index].t().contiguous()
    sprite = _choose_sprites(atlas, colors, uses_sprite_colors, generator)
    return Placement(xy, size, theta, colors, sprite).bottom_to_top_by_size()


def random_init(target, atlas, n, generator, uses_sprite_colors: bool) -> Placement:
    _, h, w = target.shape
    device = target.device
    xy = torch.rand(n, 2, generator=generator, device=device) * torch.tensor([w, h], device=device)
    size = base_size(w, h, n) * (0.5 + torch.rand(n, generator=generator, device=device))
    theta = (torch.rand(n, generator=generator, device=device) * 2 - 1) * math.pi
    pixel = xy.long()
    colors = target[:, pixel[:, 1].clamp(0, h - 1), pixel[:, 0].clamp(0, w - 1)].t().contiguous()
    sprite = _choose_sprites(atlas, colors, uses_sprite_colors, generator)
    return Placement(xy, size, theta, colors, sprite).bottom_to_top_by_size()


def initial_placement(strategy: str, target, atlas, n, generator, uses_sprite_colors) -> Placement:
    if strategy == "structure":
        return structure_init(target, atlas, n, generator, uses_sprite_colors)
    if strategy == "random":
        return random_init(target, atlas, n, generator, uses_sprite_colors)
    raise ValueError(f"unknown init strategy {strategy!r}; choose one of {', '.join(INIT_STRATEGIES)}")
