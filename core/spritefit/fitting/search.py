"""Placement by search, for fits of few sprites: each instance in turn goes where it lowers the
error most, over every sprite, size, angle and position, found by template matching against
what is still wrong (FFT correlation).

Gradient descent cannot find a far-away answer: with a handful of sprites a fit started at random
spreads large faint sprites over the canvas and stays there (the local minima the DiffBMP paper
names as its limitation). Search sees the whole canvas at once. For a stamp M (the sprite's
coverage at one size and angle), its premultiplied colours P, the current render R and the
residual E = R - T, laying the stamp at p changes the squared error by, per channel,

    original colours:  2 (P*E) - 2 (M*ER) + (P^2*1) - 2 (PM*R) + (M^2*R^2)
    tint (colour c):   2c (M*E) - 2 (M*ER) + c^2 (M^2*1) - 2c (M^2*R) + (M^2*R^2),
                       best c = ((M^2*R) - (M*E)) / (M^2*1)

where K*X is the correlation of stamp K with image X at p: a handful of FFTs per stamp give the
change at every position. The search works on the target scaled to SEARCH_SIDE pixels; gradient
descent then refines every parameter at full size.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..render import render
from .placement import FRESH_RANGE, Placement

SEARCH_MAX_N = 12        # init "auto" searches for this many sprites or fewer
SEARCH_SIDE = 96         # longest side of the canvas the search works on
SEARCH_SCALES = 8        # sizes tried, geometric between a quarter and twice the typical size
SEARCH_ANGLES = 16       # angles tried over the full turn
SEARCH_SPRITES = 6       # sprites tried (a random choice when the zone has more)
CHUNK = 16               # stamps correlated at once
PLACED_OPACITY = 0.98    # placed instances are opaque, as the search assumed
REFINE_LR = 0.1          # after a search, learning rates are this share of the defaults: every
                         # instance is nearly in place, and the default steps would throw it out


def refining(config):
    """The fit after a search only refines: smaller steps, and none of the noisy background, blur
    and respawns that help a fit out of poor starts but shake a good one. Options the user set
    stay as set."""
    from .config import overridden, scaled_learning_rates
    return overridden(config, f"{config.run.n} sprites are placed by search, then refined with small steps "
                              "(init 'structure' fits them from the target's structure instead)",
                      noisy_canvas=False, blur_schedule="none", respawn_every=0, sprite_choice_every=0,
                      **scaled_learning_rates(config, REFINE_LR))


def search_strategy(config, device):
    """search_init as an init strategy, over the fit's final background (black when transparent)."""
    background = torch.tensor(config.run.background or (0.0, 0.0, 0.0), device=device)
    return lambda *args: search_init(*args, background=background)


def search_init(target, atlas, n, typical_size, generator, uses_sprite_colors, zone, *, background) -> Placement:
    """n instances placed one after the other where each lowers the error most (bottom first)."""
    device = target.device
    _, height, width = target.shape
    scale = min(1.0, SEARCH_SIDE / max(height, width))
    small_h, small_w = max(1, round(height * scale)), max(1, round(width * scale))
    wanted = F.interpolate(target[None], size=(small_h, small_w), mode="area")[0]
    allowed = F.interpolate(zone.targets[None, None].float(), size=(small_h, small_w), mode="nearest")[0, 0] > 0
    stamps = _stamps(atlas, _candidate_sprites(zone.sprites, generator), _candidate_sizes(typical_size, height, width),
                     scale, uses_sprite_colors, device)
    _cache_spectra(stamps, (small_h, small_w), uses_sprite_colors)
    blank = background.to(device)[:, None, None].expand(3, small_h, small_w)
    canvas, chosen = blank.clone(), []
    for _ in range(n):
        chosen.append(_best_placement(canvas, wanted, allowed, stamps, uses_sprite_colors))
        _lay(canvas, stamps, *chosen[-1])
    chosen = _replaced(chosen, canvas, blank, wanted, allowed, stamps, uses_sprite_colors)
    chosen = [(i, (y, x), wanted[:, y, x] if color is None else color) for i, (y, x), color in chosen]
    sprite, size, theta = (torch.tensor([stamps["meta"][i][k] for i, _, _ in chosen], device=device,
                                        dtype=dtype) for k, dtype in ((0, torch.int64), (1, torch.float32),
                                                                      (2, torch.float32)))
    xy = torch.tensor([[(x + 0.5) / scale, (y + 0.5) / scale] for _, (y, x), _ in chosen], device=device)
    colors = torch.stack([c for _, _, c in chosen]).clamp(*FRESH_RANGE)
    return Placement(xy, size, theta, colors, sprite, opacity=torch.full((n,), PLACED_OPACITY, device=device))


def _composite(blank, stamps, chosen) -> torch.Tensor:
    """The search canvas with the chosen placements laid in order over `blank`."""
    canvas = blank.clone()
    for index, position, color in chosen:
        _lay(canvas, stamps, index, position, color)
    return canvas


def _replaced(chosen, canvas, blank, wanted, allowed, stamps, uses_sprite_colors: bool) -> list:
    """One pass of second thoughts: each placement in turn is taken out and searched again over
    all the others (going on top). A greedy search lays its first sprites where later ones would
    have served better (one large sprite over two copies); this undoes that where it lowers the
    error. `canvas`: the chosen placements laid over `blank`."""
    def error(laid):
        return float((((laid - wanted) ** 2).sum(0) * allowed).sum())
    current = error(canvas)
    for placement in list(chosen):
        others = [p for p in chosen if p is not placement]
        canvas = _composite(blank, stamps, others)
        again = _best_placement(canvas, wanted, allowed, stamps, uses_sprite_colors)
        _lay(canvas, stamps, *again)                     # now the canvas of others + [again]
        if (lower := error(canvas)) < current:
            chosen, current = others + [again], lower
    return chosen


def _candidate_sprites(sprites: torch.Tensor, generator) -> torch.Tensor:
    if sprites.numel() <= SEARCH_SPRITES:
        return sprites
    return sprites[torch.randperm(sprites.numel(), generator=generator, device=sprites.device)[:SEARCH_SPRITES]]


def _candidate_sizes(typical_size: float, height: int, width: int) -> list[float]:
    low, high = typical_size / 4, min(2 * typical_size, max(height, width) / 2)
    high = max(high, low)
    return [low * (high / low) ** (i / max(1, SEARCH_SCALES - 1)) for i in range(SEARCH_SCALES)]


def _stamps(atlas, sprites, sizes, scale: float, uses_sprite_colors: bool, device) -> dict:
    """Every candidate drawn by the renderer itself (so sizes and angles mean what they mean in a
    fit), centred on a pixel of its own small canvas: coverage M (S, H, W) and premultiplied
    colours P (S, 3, H, W), zero-padded to one shape, with (sprite, size, angle) per stamp."""
    side = 2 * math.ceil(max(sizes) * scale * math.sqrt(2)) + 3
    centre = side // 2
    coverage, colors, meta = [], [], []
    for k in sprites.tolist():
        for size in sizes:
            for a in range(SEARCH_ANGLES):
                angle = 2 * math.pi * a / SEARCH_ANGLES
                drawn = render(atlas, torch.tensor([[centre + 0.5, centre + 0.5]], device=device),
                               torch.tensor([math.log(max(size * scale, 0.5))], device=device),
                               torch.tensor([angle], device=device), torch.ones(1, 3, device=device),
                               torch.ones(1, device=device), torch.tensor([k], device=device),
                               width=side, height=side, color_mode="original" if uses_sprite_colors else "tint")
                coverage.append(drawn.alpha)
                colors.append(drawn.image)
                meta.append((k, size, angle))
    return {"M": torch.stack(coverage), "P": torch.stack(colors), "centre": centre, "meta": meta}


# What each colour mode correlates: sums of (weight, kernel, image) terms, from the stamp's
# kernels (M, P_c and their products) and the canvas maps (E = R - T, R and their products), one
# sum per inverse FFT. Linear parts are summed before the inverse transform; in tint only what the
# best colour needs stays per channel.
TINT_KERNELS = ("M", "MM")
TINT_SUMS = ([[(1, "M", "E0")], [(1, "M", "E1")], [(1, "M", "E2")],
              [(1, "MM", "R0")], [(1, "MM", "R1")], [(1, "MM", "R2")], [(1, "MM", "1")],
              [(w, k, f"{i}{c}") for c in range(3) for w, k, i in ((-2, "M", "ER"), (1, "MM", "RR"))]])
ORIGINAL_KERNELS = ("P0", "P1", "P2", "M", "PP0", "PP1", "PP2", "PM0", "PM1", "PM2", "MM")
ORIGINAL_SUMS = ([[term for c in range(3) for term in ((2, f"P{c}", f"E{c}"), (-2, "M", f"ER{c}"), (1, f"PP{c}", "1"),
                                                       (-2, f"PM{c}", f"R{c}"), (1, "MM", f"RR{c}"))]])
CACHE_BYTES = 256 * 2 ** 20      # kernel spectra kept between steps up to this size


def _kernel_planes(M: torch.Tensor, P: torch.Tensor, uses_sprite_colors: bool) -> torch.Tensor:
    """(S, K, H, W) kernels of the mode, in the order of its *_KERNELS."""
    if not uses_sprite_colors:
        return torch.stack([M, M * M], 1)
    return torch.cat([P, M[:, None], P * P, P * M[:, None], (M * M)[:, None]], 1)


def _fast_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c at least n: FFTs of such lengths are several times faster."""
    while True:
        m = n
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return n
        n += 1


def _fft_size(stamps: dict, shape: tuple[int, int]) -> tuple[int, int]:
    """Canvas plus a stamp's width of zeros: the correlation does not wrap around."""
    side = stamps["M"].shape[-1]
    return _fast_length(shape[0] + side), _fast_length(shape[1] + side)


def _kernel_spectra(stamps: dict, chunk: slice, size: tuple[int, int], uses_sprite_colors: bool) -> torch.Tensor:
    """Spectra of the chunk's kernels, each rolled so that the stamp's centre is at the origin."""
    planes = _kernel_planes(stamps["M"][chunk], stamps["P"][chunk], uses_sprite_colors)
    side, centre = planes.shape[-1], stamps["centre"]
    padded = F.pad(planes, (0, size[1] - side, 0, size[0] - side)).roll((-centre, -centre), (-2, -1))
    return torch.fft.rfft2(padded, s=size)


def _correlations(kernel_spectra, canvas, residual, size, uses_sprite_colors: bool) -> torch.Tensor:
    """(S, sums, h, w): the mode's sums of correlations, for every stamp at every position."""
    h, w = canvas.shape[1:]
    maps = {"1": torch.ones_like(canvas[0])}
    for c in range(3):
        maps.update({f"E{c}": residual[c], f"ER{c}": residual[c] * canvas[c], f"R{c}": canvas[c],
                     f"RR{c}": canvas[c] * canvas[c]})
    names, sums = (ORIGINAL_KERNELS, ORIGINAL_SUMS) if uses_sprite_colors else (TINT_KERNELS, TINT_SUMS)
    used = list(dict.fromkeys(i for terms in sums for _, _, i in terms))
    spectra = torch.fft.rfft2(F.pad(torch.stack([maps[i] for i in used]), (0, size[1] - w, 0, size[0] - h)), s=size)
    kernels = kernel_spectra.conj()
    product = torch.stack([sum(weight * kernels[:, names.index(k)] * spectra[used.index(i)] for weight, k, i in terms)
                           for terms in sums], 1)
    return torch.fft.irfft2(product, s=size)[..., :h, :w]


def _best_placement(canvas, wanted, allowed, stamps, uses_sprite_colors: bool):
    """(stamp index, (y, x), tint or None) of the placement that lowers the squared error most."""
    residual = canvas - wanted
    size = _fft_size(stamps, canvas.shape[1:])
    best = (-math.inf, 0, (0, 0), None)
    count = stamps["M"].shape[0]
    for number, start in enumerate(range(0, count, CHUNK)):
        chunk = slice(start, start + CHUNK)
        spectra = stamps["spectra"][number] if stamps.get("spectra") else \
            _kernel_spectra(stamps, chunk, size, uses_sprite_colors)
        gain, color = _gain(_correlations(spectra, canvas, residual, size, uses_sprite_colors), uses_sprite_colors)
        gain = gain.masked_fill(~allowed, -math.inf)
        value, flat = gain.flatten().max(0)
        if float(value) > best[0]:
            s, rest = divmod(int(flat), gain.shape[1] * gain.shape[2])
            y, x = divmod(rest, gain.shape[2])
            best = (float(value), start + s, (y, x), None if color is None else color[s, :, y, x])
    return best[1], best[2], best[3]


def _cache_spectra(stamps: dict, shape, uses_sprite_colors: bool) -> None:
    """Keep the kernels' spectra for every step when they are small enough."""
    size = _fft_size(stamps, shape)
    kernels = len(ORIGINAL_KERNELS if uses_sprite_colors else TINT_KERNELS)
    if stamps["M"].shape[0] * kernels * size[0] * (size[1] // 2 + 1) * 8 <= CACHE_BYTES:
        stamps["spectra"] = [_kernel_spectra(stamps, slice(start, start + CHUNK), size, uses_sprite_colors)
                             for start in range(0, stamps["M"].shape[0], CHUNK)]


def _gain(correlations: torch.Tensor, uses_sprite_colors: bool):
    """How much laying each stamp at each position lowers the squared error, summed over the
    channels (S, h, w), and the best tints (S, 3, h, w) (None in original colours)."""
    if uses_sprite_colors:
        return -correlations[:, 0], None
    ME, MMR, MM, rest = correlations[:, 0:3], correlations[:, 3:6], correlations[:, 6:7], correlations[:, 7]
    color = ((MMR - ME) / MM.clamp_min(1e-6)).clamp(0, 1)
    return -((2 * color * ME + color * color * MM - 2 * color * MMR).sum(1) + rest), color


def _lay(canvas, stamps, index: int, position: tuple[int, int], color) -> None:
    """Composite the chosen stamp onto the search canvas at `position` (its centre pixel), in
    `color` (tint) or its own colours (None)."""
    _, h, w = canvas.shape
    M, P, centre = stamps["M"][index], stamps["P"][index], stamps["centre"]
    side = M.shape[-1]
    top, left = position[0] - centre, position[1] - centre
    ys, xs = slice(max(0, top), min(h, top + side)), slice(max(0, left), min(w, left + side))
    inside = (slice(ys.start - top, ys.stop - top), slice(xs.start - left, xs.stop - left))
    coverage = M[inside]
    laid = P[(slice(None), *inside)] if color is None else color[:, None, None] * coverage
    canvas[:, ys, xs] = canvas[:, ys, xs] * (1 - coverage) + laid
