"""Spatial constraints of a fit: a mask that weights the loss, keep-in / keep-out regions for the
sprites, and regions that get sprite sets of their own.

Every instance belongs to one *zone*: a set of pixels its centre may occupy and the sprites it may
show. Without constraints there is one zone, the whole canvas with every sprite. Keep-in and
keep-out shrink the zones; each `Region` adds one (its mask, its sprites), and the default sprites
keep what no region covers. The constraints hold by projection: after every optimiser step and
every respawn, a centre outside its zone moves to the nearest pixel inside it and, in footprint
mode, a sprite too large for the room around its centre shrinks, so the result respects them
exactly (frozen instances excepted: they stay as the user left them).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import SpriteFitError
from ..images import load_rgba
from ..sprites import Atlas, Sprite

MASK_THRESHOLD = 0.5      # keep-in, keep-out and region masks: a pixel is in where the mask is above it
FOOTPRINT_MARGIN_PX = 2.0  # room kept around a footprint: bilinear filtering and sub-pixel centres


class MaskWarning(UserWarning):
    """A mask was used after a change the user should know about (it was resized)."""


@dataclass
class Region:
    """Part of the canvas (a mask) filled with sprites of its own."""
    mask: object                                  # image path or (h, w) array in [0, 1]
    sprites: str | os.PathLike | list[Sprite]     # pack name, folder, or sprites
    name: str = ""


def load_mask(source, source_size: tuple[int, int], working_size: tuple[int, int], label: str) -> np.ndarray:
    """A mask as (h, w) float32 in [0, 1] at the working size: the image's alpha where it has
    transparency, else its brightness. `source_size` is the target image's (width, height): a mask
    of another size with the same aspect ratio is scaled with a warning, one of another shape is
    refused (it cannot line up with the target)."""
    if isinstance(source, np.ndarray):
        values = np.asarray(source, np.float32)
        if values.ndim != 2:
            raise SpriteFitError(f"{label} must be a 2-D array, not of shape {values.shape}")
        if not np.isfinite(values).all():
            raise SpriteFitError(f"{label} holds NaN or infinite values")
        values = np.clip(values, 0.0, 1.0)
    else:
        values = mask_values(load_rgba(source, label))
    height, width = values.shape
    if (width, height) != tuple(source_size):
        expected_height = width * source_size[1] / source_size[0]
        if abs(expected_height - height) > max(1.0, 0.01 * height):
            raise SpriteFitError(f"{label} is {width}x{height} px but the target is {source_size[0]}x{source_size[1]} "
                                 f"px: a mask must have the target's shape")
        warnings.warn(f"{label} is {width}x{height} px, the target {source_size[0]}x{source_size[1]} px: "
                      f"the mask was scaled to match", MaskWarning, stacklevel=2)
    return _resize(values, working_size)


def mask_values(rgba: np.ndarray) -> np.ndarray:
    """(h, w) mask of an RGBA image: its alpha where it has transparency, else its brightness."""
    alpha = rgba[..., 3]
    return alpha if (alpha < 1).any() else rgba[..., :3] @ np.float32([0.299, 0.587, 0.114])


def _resize(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image
    if values.shape[::-1] == tuple(size):
        return values.astype(np.float32)
    return np.asarray(Image.fromarray(values.astype(np.float32), mode="F").resize(size, Image.BILINEAR), np.float32)


def spatial_constraints(config, sprites: list[Sprite], source_size, working_size):
    """The masks of `config` read at the working size, and its regions' sprites appended to
    `sprites`. Returns (every sprite, a builder the fit calls with (height, width, atlas,
    smallest size) once it has its atlas), or (sprites, None) without constraints."""
    from ..sprites import load_sprites

    masks = {}
    for name, label in (("mask", "loss mask"), ("keep_in", "keep-in mask"), ("keep_out", "keep-out mask")):
        if getattr(config.constraints, name) is not None:
            masks[name] = load_mask(getattr(config.constraints, name), source_size, working_size, label)
    regions, everything = [], list(sprites)
    for number, region in enumerate(config.constraints.regions):
        name = f"region {region.name or number + 1}"
        own = load_sprites(region.sprites) if isinstance(region.sprites, (str, os.PathLike)) else list(region.sprites)
        if not own:
            raise SpriteFitError(f"{name} has no sprites")
        indices = list(range(len(everything), len(everything) + len(own)))
        everything += own
        regions.append((name, load_mask(region.mask, source_size, working_size, f"{name} mask"), indices))
    if not masks and not regions:
        return everything, None

    def build(height, width, atlas, smallest):
        return Constraints.build(height, width, atlas, smallest, loss_mask=masks.get("mask"),
                                 keep_in=masks.get("keep_in"), keep_out=masks.get("keep_out"),
                                 footprint=config.constraints.keep_footprint, regions=regions)
    return everything, build


class Zone:
    """Where a group of instances may lie and which sprites they may show, with the maps that
    project a centre into it: the nearest allowed pixel of every pixel and, for footprints, the
    room (distance to the nearest pixel outside) around every pixel."""

    def __init__(self, name: str, allowed: np.ndarray, sprites: list[int], footprint: bool,
                 radius: torch.Tensor | None, smallest: float, device):
        self.name, self.footprint = name, footprint
        self.sprites = torch.tensor(sprites, dtype=torch.int64, device=device)
        self.radius = radius                              # (K,) footprint radius per unit size (footprints)
        # The whole canvas: nothing to project, so no maps (they cost memory and time on every fit).
        self.unconstrained = bool(allowed.all())
        self.targets = torch.from_numpy(allowed).to(device)          # (H, W) bool: where centres may go
        self.nearest = self.room = None
        if not self.unconstrained:
            self._build_maps(allowed, smallest, device)

    def _build_maps(self, allowed: np.ndarray, smallest: float, device) -> None:
        from scipy.ndimage import distance_transform_edt

        targets = allowed
        if self.footprint:
            # Room to the nearest pixel outside; off the canvas nothing shows, so it counts as inside.
            room = distance_transform_edt(np.pad(allowed, 1, constant_values=True))[1:-1, 1:-1]
            needed = float(self.radius[self.sprites].max()) * smallest + FOOTPRINT_MARGIN_PX
            targets = room >= needed
            if not targets.any():
                raise SpriteFitError(f"{self.name} is too narrow for the smallest sprites: their footprints need "
                                     f"{needed:.1f} px of room around the centre and no pixel has that much")
            self.room = torch.from_numpy(room.astype(np.float32)).to(device)
            self.targets = torch.from_numpy(targets).to(device)
        _, nearest = distance_transform_edt(~targets, return_indices=True)
        self.nearest = torch.from_numpy(nearest[0] * allowed.shape[1] + nearest[1]).to(device).flatten()

    @property
    def area(self) -> int:
        return int(self.targets.sum())

    def pixel_of(self, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Column and row of the pixel holding each centre (the canvas' far edges included)."""
        height, width = self.targets.shape
        return xy[:, 0].floor().long().clamp(0, width - 1), xy[:, 1].floor().long().clamp(0, height - 1)

    def project_(self, xy: torch.Tensor, log_size: torch.Tensor, sprite: torch.Tensor) -> None:
        """Move centres outside the zone to the nearest pixel inside; shrink footprints that do
        not fit (in place, on the zone's instances only; an unconstrained zone has none to move)."""
        width = self.targets.shape[1]
        px, py = self.pixel_of(xy)
        outside = ~self.targets[py, px]
        if outside.any():
            flat = self.nearest[py[outside] * width + px[outside]]
            xy[outside] = torch.stack([flat % width, flat // width], 1).to(xy.dtype) + 0.5
            px, py = self.pixel_of(xy)
        if self.footprint:
            largest = (self.room[py, px] - FOOTPRINT_MARGIN_PX) / self.radius[sprite]
            log_size.copy_(torch.minimum(log_size, torch.log(largest.clamp_min(1e-6))))


class Constraints:
    """The zones of a fit and its loss mask, at the working size."""

    def __init__(self, zones: list[Zone], loss_mask: torch.Tensor | None = None):
        self.zones, self.loss_mask = zones, loss_mask

    @classmethod
    def build(cls, height: int, width: int, atlas: Atlas, smallest: float, *, loss_mask=None, keep_in=None,
              keep_out=None, footprint: bool = False, regions: list[tuple[str, np.ndarray, list[int]]] = ()):
        """Masks are (h, w) float arrays at the working size; regions are (name, mask, sprite
        indices), and the sprites no region names fill the rest of the canvas."""
        device = atlas.device
        radius = footprint_radius(atlas) if footprint else None
        allowed = np.ones((height, width), bool)
        if keep_in is not None:
            allowed &= keep_in > MASK_THRESHOLD
            if not allowed.any():
                raise SpriteFitError("the keep-in mask is empty: no pixel is inside it")
        if keep_out is not None:
            allowed &= ~(keep_out > MASK_THRESHOLD)
        if not allowed.any():
            raise SpriteFitError("the keep-in and keep-out masks leave no pixel where a sprite may go")
        zones, claimed, region_sprites = [], np.zeros_like(allowed), set()
        for name, mask, sprites in regions:
            inside = (mask > MASK_THRESHOLD) & allowed
            if not inside.any():
                raise SpriteFitError(f"{name} has no pixel where a sprite may go")
            zones.append(Zone(name, inside, sprites, footprint, radius, smallest, device))
            claimed |= inside
            region_sprites.update(sprites)
        rest = allowed & ~claimed
        default_sprites = [k for k in range(atlas.num_sprites) if k not in region_sprites]
        if rest.any() and default_sprites:
            zones.insert(0, Zone("the canvas outside the regions" if regions else "the allowed region", rest,
                                 default_sprites, footprint, radius, smallest, device))
        mask = None if loss_mask is None else torch.tensor(np.asarray(loss_mask), dtype=torch.float32, device=device)[None]
        if mask is not None and not (mask > 0).any():
            raise SpriteFitError("the loss mask is empty: every pixel has weight 0")
        return cls(zones, mask)

    @classmethod
    def none(cls, height: int, width: int, atlas: Atlas) -> "Constraints":
        return cls.build(height, width, atlas, 1.0)

    # -- instances ------------------------------------------------------------------------------

    def counts(self, n: int) -> list[int]:
        """Instances per zone, in proportion to its area (largest remainders), at least one each."""
        areas = np.array([z.area for z in self.zones], np.float64)
        if n < len(self.zones):
            raise SpriteFitError(f"{n} sprites cannot fill {len(self.zones)} regions: use at least one per region")
        share = 1 + (n - len(self.zones)) * areas / areas.sum()
        counts = np.floor(share).astype(int)
        counts[np.argsort(-(share - counts), kind="stable")[: n - counts.sum()]] += 1
        return counts.tolist()

    def zone_of(self, xy: torch.Tensor) -> torch.Tensor:
        """(N,) the first zone whose pixels hold each centre (0 where none does)."""
        zone = torch.zeros(len(xy), dtype=torch.int64, device=xy.device)
        for index in reversed(range(len(self.zones))):
            px, py = self.zones[index].pixel_of(xy)
            zone[self.zones[index].targets[py, px]] = index
        return zone

    def project_(self, params) -> None:
        """Put every unfrozen instance of `params` (fit.loop._Parameters) back in its zone."""
        with torch.no_grad():
            for index, zone in enumerate(self.zones):
                if zone.unconstrained:       # every fit without constraints: skip the per-step gathers
                    continue
                members = torch.nonzero((params.zone == index) & ~params.frozen).flatten()
                if members.numel() == 0:
                    continue
                xy, log_size = params.xy[members], params.log_size[members]
                zone.project_(xy, log_size, params.sprite[members])
                params.xy[members], params.log_size[members] = xy, log_size

    # -- loss -----------------------------------------------------------------------------------

    def masked_target(self, target: torch.Tensor) -> torch.Tensor:
        """The target with pixels of weight 0 replaced by the mean colour of the rest, so that
        nothing the fit computes (initial colours, densities) depends on them."""
        if self.loss_mask is None:
            return target
        weight = self.loss_mask
        mean = (target * weight).sum((1, 2), keepdim=True) / weight.sum()
        return torch.where(weight > 0, target, mean.expand_as(target))

    def loss_target(self, image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """What the render is compared with: the target where the mask is 1, the render itself
        (no error, no gradient) where it is 0, a blend between."""
        if self.loss_mask is None:
            return target
        return self.loss_mask * target + (1 - self.loss_mask) * image.detach()


def footprint_radius(atlas: Atlas) -> torch.Tensor:
    """(K,) for each sprite the largest distance from its centre to a texel that can show, in
    units of the instance's size (the unit box's half side): a rotated instance of size s stays
    inside the circle of radius s * radius around its centre. Coarser mip levels reach at most
    one canvas pixel further, which FOOTPRINT_MARGIN_PX covers."""
    support = atlas.flat_textures(0.0).support[0]              # (K, 4) u0, u1, v0, v1 at level 0
    reach_u = support[:, :2].abs().amax(1)
    reach_v = support[:, 2:].abs().amax(1)
    return torch.sqrt(reach_u ** 2 + reach_v ** 2)
