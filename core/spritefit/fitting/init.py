"""Initial placements: where instances start before gradient descent.

`structure` puts many small sprites where the target has detail (edges, colour variance) and a
few large ones in flat areas, turned along the local edges and coloured like the target there;
`random` spreads them uniformly, `grid` on a jittered grid, and `scene` starts from a previous
scene. All return parameters in canvas units, largest at the bottom (except `scene`, which keeps
its order).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import SpriteFitError
from ..sprites import Atlas, gaussian_blur
from .placement import FRESH_RANGE, START_MIX, Placement
from .search import SEARCH_MAX_N, search_strategy


def _sobel(gray: torch.Tensor):
    """The Sobel gradients (x, y) of an (H, W) image, edges replicated, as torch's 3x3
    convolution makes them on the CPU (the same numbers) in a tenth of its time, which has no
    fast path for one channel (0.3 s of a fit's start at 2048 px): shifted copies of the padded
    image added in the convolution's order, row by row. The taps are powers of two, so every
    product, and the division by 8 at the end, is exact: only the order of the sums counts."""
    h, w = gray.shape
    padded = F.pad(gray[None, None], (1, 1, 1, 1), mode="replicate")[0, 0]
    at = lambda row, column: padded[row:row + h, column:column + w]
    # taps of x:  -1 0 1 / -2 0 2 / -1 0 1; of y, their transpose
    gx = (at(0, 2) - at(0, 0)).sub_(at(1, 0), alpha=2).add_(at(1, 2), alpha=2).sub_(at(2, 0)).add_(at(2, 2))
    gy = (-at(0, 0)).sub_(at(0, 1), alpha=2).sub_(at(0, 2)).add_(at(2, 0)).add_(at(2, 1), alpha=2).add_(at(2, 2))
    return gx.mul_(0.125), gy.mul_(0.125)


def detail_density(target: torch.Tensor) -> torch.Tensor:
    """(H, W) density, mean 1: edge strength plus local colour variance, with a uniform floor.

    The maps are worked on in place where they are not needed after: at 2048 px each new map is
    16 to 50 MB of fresh memory, whose first writes cost more than the arithmetic (the same
    numbers either way: squares are products in both)."""
    smooth = gaussian_blur(target[None], 1.0)[0]
    gx, gy = _sobel(smooth.mean(0))
    edges = gx.square_().add_(gy.square_()).sqrt_()
    mean = gaussian_blur(target[None], 3.0)[0]
    variance = gaussian_blur(target[None] ** 2, 3.0)[0].sub_(mean.square_()).clamp_min_(0).sum(0)
    density = edges.div_(edges.mean().clamp_min(1e-8)).add_(variance.div_(variance.mean().clamp_min(1e-8)))
    density = gaussian_blur(density.add_(0.3)[None, None], 2.0)[0, 0]
    return density.div_(density.mean())


def sample_pixels(weights: torch.Tensor, n: int, generator: torch.Generator):
    h, w = weights.shape
    index = torch.multinomial(weights.flatten(), n, replacement=True, generator=generator)
    jitter = torch.rand(n, 2, generator=generator, device=weights.device)
    xy = torch.stack([index % w, index // w], dim=1).to(torch.float32) + jitter
    return xy, index


def choose_sprites(atlas: Atlas, colors: torch.Tensor, uses_sprite_colors: bool, generator,
                   allowed: torch.Tensor | None = None):
    """Sprite index per instance, among the `allowed` indices (default: all): by colour match
    when the sprites' own colours show, else uniform."""
    if allowed is None:
        allowed = torch.arange(atlas.num_sprites, device=colors.device)
    n, k = colors.shape[0], allowed.numel()
    if not uses_sprite_colors:
        return allowed[torch.randint(0, k, (n,), generator=generator, device=colors.device)]
    distance = torch.cdist(colors, atlas.mean_colors.to(colors.device)[allowed])        # (N, K)
    weights = torch.exp(-(distance / 0.15) ** 2) + 1e-6
    return allowed[torch.multinomial(weights, 1, generator=generator).flatten()]


def _smoothed(target: torch.Tensor) -> torch.Tensor:
    """The target slightly smoothed: what instances take their colour from."""
    return gaussian_blur(target[None], 2.0)[0]


def _target_colors(smooth: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """(N, 3) colours of the smoothed target (_smoothed) at the given positions."""
    _, h, w = smooth.shape
    pixel = xy.long()
    return smooth[:, pixel[:, 1].clamp(0, h - 1), pixel[:, 0].clamp(0, w - 1)].t().contiguous()


def _placed(target, atlas, xy, size, theta, generator, uses_sprite_colors: bool, zone, smooth=None) -> Placement:
    """A placement at the given positions, coloured like the target there, sprites chosen among
    the zone's to match. smooth: _smoothed(target), when the caller has made it."""
    colors = _target_colors(_smoothed(target) if smooth is None else smooth, xy).clamp(*FRESH_RANGE)
    return Placement(xy, size, theta, colors, choose_sprites(atlas, colors, uses_sprite_colors, generator, zone.sprites))


def structure_init(target, atlas, n, typical_size, generator, uses_sprite_colors: bool, zone) -> Placement:
    density = detail_density(target) * zone.targets
    xy, index = sample_pixels(density, n, generator)
    # Where detail is dense, sprites are small: size ~ density^-1/2, normalised to cover the canvas.
    local = density.flatten()[index].clamp_min(1e-3) ** -0.5
    local = local.clamp(0.35 * local.median(), 2.5 * local.median())
    size = typical_size * local / torch.sqrt((local ** 2).mean())
    smooth = _smoothed(target)
    gx, gy = _sobel(smooth.mean(0))
    gx, gy = gx.flatten()[index], gy.flatten()[index]   # the gradient at the sampled pixels alone
    edge = torch.sqrt(gx ** 2 + gy ** 2)
    # Align each sprite's long axis with the edge (perpendicular to the gradient); flat areas keep 0.
    along_edge = torch.atan2(-gx, -gy)
    theta = torch.where(edge > edge.median(), along_edge, torch.zeros_like(along_edge))
    return _placed(target, atlas, xy, size, theta, generator, uses_sprite_colors, zone, smooth)


def random_init(target, atlas, n, typical_size, generator, uses_sprite_colors: bool, zone) -> Placement:
    device = target.device
    xy, _ = sample_pixels(zone.targets.to(torch.float32), n, generator)   # uniform over the zone
    size = typical_size * (0.5 + torch.rand(n, generator=generator, device=device))
    theta = (torch.rand(n, generator=generator, device=device) * 2 - 1) * math.pi
    return _placed(target, atlas, xy, size, theta, generator, uses_sprite_colors, zone)


def grid_init(target, atlas, n, typical_size, generator, uses_sprite_colors: bool, zone) -> Placement:
    """Rows and columns in the canvas' aspect ratio, each position jittered by a quarter cell
    (in a zone smaller than the canvas, projection then moves the ones outside it in)."""
    _, h, w = target.shape
    device = target.device
    columns = max(1, round(math.sqrt(n * w / h)))
    rows = math.ceil(n / columns)
    cell = torch.tensor([w / columns, h / rows], device=device)
    index = torch.arange(n, device=device)
    centres = torch.stack([index % columns, index // columns], 1).to(torch.float32) + 0.5
    jitter = (torch.rand(n, 2, generator=generator, device=device) - 0.5) * 0.5
    xy = (centres + jitter) * cell
    size = torch.full((n,), typical_size, device=device)
    return _placed(target, atlas, xy, size, torch.zeros(n, device=device), generator, uses_sprite_colors, zone)


def scene_init(config, target, atlas, typical_size, generator, uses_sprite_colors: bool, constraints) -> Placement:
    """The instances of config.run.init_scene (its sprite indices refer to the same sprite list); when
    N is larger, structure-initialised instances are added on top, when smaller the top ones kept."""
    scene, device = config.run.init_scene, target.device
    if (scene.width, scene.height) != tuple(target.shape[:0:-1]):
        raise SpriteFitError(f"the starting scene is {scene.width}x{scene.height} px, the target "
                             f"{target.shape[2]}x{target.shape[1]} px")
    keep = slice(max(0, len(scene) - config.run.n), len(scene))
    as_tensor = lambda a, dtype=torch.float32: torch.as_tensor(a[keep], dtype=dtype, device=device)
    xy = as_tensor(scene.xy)
    placement = Placement(xy, as_tensor(scene.size), as_tensor(scene.theta),
                          as_tensor(scene.color), as_tensor(scene.sprite, torch.int64),
                          as_tensor(scene.opacity), as_tensor(scene.mix), as_tensor(scene.frozen, torch.bool),
                          constraints.zone_of(xy))
    missing = config.run.n - len(scene)
    if missing <= 0:
        return placement
    extra = new_placement(structure_init, target, atlas, missing, typical_size, generator, uses_sprite_colors,
                          constraints).bottom_to_top_by_size()
    extra.opacity = torch.full((missing,), config.starting_opacity(), device=device)
    extra.mix = torch.full((missing,), START_MIX, device=device)
    extra.frozen = torch.zeros(missing, dtype=torch.bool, device=device)
    return Placement.concatenate([placement, extra])


def new_placement(strategy, target, atlas, n, typical_size, generator, uses_sprite_colors, constraints) -> Placement:
    """n instances placed by `strategy`, shared among the constraints' zones by their areas."""
    parts = []
    for index, (zone, count) in enumerate(zip(constraints.zones, constraints.counts(n))):
        part = strategy(target, atlas, count, typical_size, generator, uses_sprite_colors, zone)
        part.zone = torch.full((count,), index, dtype=torch.int64, device=target.device)
        parts.append(part)
    return Placement.concatenate(parts)


def initial_placement(config, target, atlas, typical_size, generator, uses_sprite_colors, constraints) -> Placement:
    if config.run.init == "scene":
        return scene_init(config, target, atlas, typical_size, generator, uses_sprite_colors, constraints)
    strategies = {"structure": structure_init, "random": random_init, "grid": grid_init,
                  "search": search_strategy(config, target.device)}
    strategy = chosen_strategy(config)
    if strategy not in strategies:
        raise ValueError(f"unknown init strategy {config.run.init!r}")
    placement = new_placement(strategies[strategy], target, atlas, config.run.n, typical_size, generator,
                              uses_sprite_colors, constraints)
    # grid keeps its rows; search already placed each instance over the ones before it
    return placement if strategy in ("grid", "search") else placement.bottom_to_top_by_size()


def chosen_strategy(config) -> str:
    """The init strategy `config.run.init` names; "auto" searches for few sprites in the colour modes
    the search models (tint, original), and starts from the target's structure otherwise."""
    if config.run.init != "auto":
        return config.run.init
    return "search" if config.run.n <= SEARCH_MAX_N and config.run.color_mode in ("tint", "original") else "structure"
