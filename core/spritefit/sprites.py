"""Sprite sets and the atlas the renderers sample from.

A `Sprite` is one bitmap (straight RGBA float32) with its name and where it came from. An `Atlas`
packs K sprites into square cells of `resolution` texels (the longer side fills the cell, the
aspect ratio is kept by transparent margins) with a pre-filtered mip pyramid, so that a sprite
drawn at 6 px is as clean as one drawn at 200 px.
"""
from __future__ import annotations

import functools
import hashlib
import math
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import timing
from .errors import SpriteError
from .native_module import _native, downsample_rgba
from .images import load_rgba
from .sprite_alpha import ALPHA_MODES, apply_alpha

SPRITE_EXTENSIONS = {".png", ".webp", ".jpg", ".jpeg"}
PACKS_DIR = Path(__file__).parent / "data" / "sprites"
# Texels with less alpha than this do not count as visible when trimming or validating sprites.
VISIBLE_ALPHA = 1.0 / 255.0
# Transparent border (texels) around every mip level: room for the blur of soft rasterisation.
ATLAS_PAD = 12
MAX_BLUR_TEXELS = ATLAS_PAD / 3.0
# The blur's sigma is rounded to this step, so a fit's schedule (2 texels down to 0 over 60
# iterations by default) blurs the atlas 20 times, not once an iteration: at 256 px and 300
# sprites a blur of the whole atlas costs as much as a tenth of an iteration. Steps of a tenth of a
# texel are far finer than the blur itself, and `spritefit bench versus` showed no change.
BLUR_STEP = 0.1


class SpriteWarning(UserWarning):
    """A sprite was skipped; the message says which and why."""


@dataclass
class Sprite:
    name: str
    rgba: np.ndarray            # (h, w, 4) straight alpha, float32 in [0, 1], trimmed to its alpha
    source: dict                # {"builtin": "pack/name"} or {"path": str}: where it was loaded from
    data: bytes                 # the original file, kept so a scene can embed it verbatim
    alpha: str = "keep"         # how its transparency was made (sprite_alpha: keep, key, luminance)
    note: str = ""              # why: what --sprite-alpha auto saw in the image

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def aspect(self) -> float:
        return self.rgba.shape[1] / self.rgba.shape[0]


def builtin_packs() -> dict[str, list[Path]]:
    """Built-in packs: name -> PNG files."""
    return {d.name: sorted(d.glob("*.png")) for d in sorted(PACKS_DIR.iterdir()) if d.is_dir()}


def _trim_to_visible(rgba: np.ndarray) -> np.ndarray | None:
    rows = np.flatnonzero((rgba[..., 3] >= VISIBLE_ALPHA).any(axis=1))
    cols = np.flatnonzero((rgba[..., 3] >= VISIBLE_ALPHA).any(axis=0))
    if rows.size == 0:
        return None
    return np.ascontiguousarray(rgba[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1])


def check_alpha_mode(mode: str) -> str:
    if mode not in ALPHA_MODES:
        raise SpriteError(f"unknown sprite alpha mode {mode!r} (choose {', '.join(ALPHA_MODES)})")
    return mode


def sprite_from_bytes(name: str, data: bytes, source: dict, alpha: str = "keep") -> Sprite | None:
    """Decode one sprite, its transparency made by `alpha` (sprite_alpha.ALPHA_MODES); None (with
    a warning) when it has no visible pixel."""
    from .limits import MAX_SPRITE_SIDE
    rgba = load_rgba(data, label=f"sprite {name!r}")
    if max(rgba.shape[:2]) > MAX_SPRITE_SIDE:
        raise SpriteError(f"sprite {name!r} is {rgba.shape[1]}x{rgba.shape[0]} px; sprites may be at most "
                          f"{MAX_SPRITE_SIDE} px a side (scale it down)")
    rgba, applied, note = apply_alpha(rgba, check_alpha_mode(alpha))
    rgba = _trim_to_visible(rgba)
    if rgba is None:
        warnings.warn(f"sprite {name!r} has no opaque pixel and was skipped", SpriteWarning, stacklevel=2)
        return None
    return Sprite(name, rgba, source, data, applied, note)


def load_sprite_files(paths: list[Path], source_of, alpha: str = "keep") -> list[Sprite]:
    sprites = []
    for path in paths:
        sprite = sprite_from_bytes(path.stem, path.read_bytes(), source_of(path), alpha)
        if sprite is not None:
            sprites.append(sprite)
    return sprites


def load_sprites(spec: str | os.PathLike, alpha: str = "auto") -> list[Sprite]:
    """Load a sprite set: a folder of PNG/WebP/JPEG files or the name of a built-in pack.

    alpha: how images without transparency become sprites (sprite_alpha.ALPHA_MODES): by default
    each is looked at (`auto`), and each sprite's `alpha` and `note` say what was done."""
    path = Path(spec)
    packs = builtin_packs()
    check_alpha_mode(alpha)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in SPRITE_EXTENSIONS and p.is_file())
        if not files:
            raise SpriteError(f"sprite folder {path} holds no PNG, WebP or JPEG files")
        sprites = load_sprite_files(files, lambda p: {"path": str(p.resolve())}, alpha)
    elif str(spec) in packs:
        sprites = load_sprite_files(packs[str(spec)], lambda p: {"builtin": f"{spec}/{p.stem}"}, alpha)
    elif path.exists():
        raise SpriteError(f"sprites must be a folder or a built-in pack, not a file: {path}")
    else:
        raise SpriteError(f"no sprite folder or built-in pack named {str(spec)!r} "
                          f"(built-in packs: {', '.join(packs)})")
    if not sprites:
        raise SpriteError(f"no usable sprites in {spec}: every sprite is fully transparent")
    return sprites


def load_builtin_sprite(ref: str) -> Sprite:
    """One sprite of a built-in pack by its reference "pack/name"."""
    pack, _, name = ref.partition("/")
    path = PACKS_DIR / pack / f"{name}.png"
    if not name or not path.is_file() or PACKS_DIR not in path.resolve().parents:
        raise SpriteError(f"unknown built-in sprite {ref!r}")
    sprite = sprite_from_bytes(name, path.read_bytes(), {"builtin": ref})
    if sprite is None:
        raise SpriteError(f"built-in sprite {ref!r} has no visible pixel")
    return sprite


# ---------------------------------------------------------------------------------------------
# Atlas


def resize_premultiplied(rgba: np.ndarray, width: int, height: int, box=None) -> np.ndarray:
    """Lanczos resize done on premultiplied colour so transparent texels do not bleed dark.

    box: the source region (x0, y0, x1, y1) in pixels mapped onto the output, may be fractional
    and reach beyond the image, which is transparent there."""
    alpha = rgba[..., 3:4]
    planes = np.concatenate([rgba[..., :3] * alpha, alpha], axis=-1)
    if box is not None:   # pad with transparency so that the box lies inside the image
        h, w = rgba.shape[:2]
        pad = int(math.ceil(max(-box[0], -box[1], box[2] - w, box[3] - h, 0))) + 4 + \
            int(math.ceil(3 * max(w / width, h / height)))
        planes = np.pad(planes, ((pad, pad), (pad, pad), (0, 0)))
        box = tuple(float(v) + pad for v in box)
    resized = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(planes[..., c]), mode="F").resize(
        (width, height), Image.LANCZOS, box=box)) for c in range(4)], axis=-1)
    resized = np.clip(resized, 0.0, 1.0)
    a = resized[..., 3:4]
    rgb = np.where(a > 1e-6, np.clip(resized[..., :3] / np.maximum(a, 1e-6), 0, 1), 0.0)
    return np.concatenate([rgb, a], axis=-1).astype(np.float32)


def sprite_extents(sprite: Sprite) -> tuple[float, float]:
    """Half width and half height of the sprite in the unit box: its longer side spans [-1, 1]."""
    h, w = sprite.rgba.shape[:2]
    return w / max(w, h), h / max(w, h)


def _sprite_cell(sprite: Sprite, resolution: int) -> tuple[np.ndarray, tuple[float, float]]:
    """The sprite exactly centred in a (resolution, resolution) cell (sub-texel placement, so its
    geometry does not depend on the atlas resolution); also its half extents in the unit box."""
    h, w = sprite.rgba.shape[:2]
    scale = resolution / max(h, w)
    left, top = (resolution - w * scale) / 2, (resolution - h * scale) / 2
    x0, y0 = math.floor(left), math.floor(top)
    x1, y1 = resolution - x0, resolution - y0
    box = ((x0 - left) / scale, (y0 - top) / scale, (x1 - left) / scale, (y1 - top) / scale)
    cell = np.zeros((resolution, resolution, 4), np.float32)
    cell[y0:y1, x0:x1] = resize_premultiplied(sprite.rgba, x1 - x0, y1 - y0, box)
    return cell, sprite_extents(sprite)


def _cell_coverage(cells, device) -> torch.Tensor:
    """(K,) the mean alpha of each sprite's cell: how much of its square a sprite fills."""
    return torch.tensor([float((c[..., 3]).mean()) for c in cells], device=device)


def sprite_coverage(sprites: list[Sprite], resolution: int, device="cpu") -> torch.Tensor:
    """Atlas(sprites, resolution).coverage without building the atlas (its mip levels and colour
    bleed take most of its time) unless a shared one is built already: a fit asks for the
    sprites' fill before it knows its atlas's resolution."""
    atlas = _shared_atlases.get(_shared_key(sprites, resolution, device))
    if atlas is not None:
        return atlas.coverage
    return _cell_coverage([_sprite_cell(s, resolution)[0] for s in sprites], device)


def gaussian_radius(sigma: float) -> int:
    """Taps on each side of gaussian_kernel's centre."""
    return max(1, math.ceil(3 * sigma))


@functools.lru_cache(maxsize=64)
def _gaussian_kernel(sigma: float, device: str, radius: int) -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_kernel(sigma: float, device=None, radius: int | None = None) -> torch.Tensor:
    """The normalised Gaussian taps of `sigma`, 2 * radius + 1 of them (radius: gaussian_radius(sigma)
    unless given). Made once per sigma, device and radius (the loss and the atlas's blur ask at
    every iteration): shared, so read only."""
    radius = gaussian_radius(sigma) if radius is None else radius
    return _gaussian_kernel(float(sigma), str(torch.device(device or "cpu")), int(radius))


def _blur_taps(sigma: float) -> torch.Tensor:
    """The atlas blur's taps: gaussian_kernel's, or the single tap 1 of no blur (sigma 0)."""
    return gaussian_kernel(sigma) if sigma > 0 else torch.ones(1)


def gaussian_blur(planes: torch.Tensor, sigma: float, radius: int | None = None) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) with zero padding (in the native module for CPU
    float32, ~10x faster than torch's depthwise convolution; the same numbers), with
    gaussian_kernel's taps."""
    if sigma <= 0:
        return planes
    kernel = gaussian_kernel(sigma, planes.device, radius)
    channels, radius = planes.shape[1], kernel.numel() // 2
    if _native is not None and hasattr(_native, "blur_planes_cpu") and planes.device.type == "cpu" \
            and planes.dtype == torch.float32 and not planes.requires_grad:
        planes = planes.contiguous()
        out = torch.empty_like(planes)
        _native.blur_planes_cpu(planes.data_ptr(), planes.shape[0] * channels, planes.shape[2], planes.shape[3],
                                kernel.data_ptr(), radius, out.data_ptr())
        return out
    horizontal = kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    planes = F.conv2d(planes, horizontal, padding=(0, radius), groups=channels)
    return F.conv2d(planes, vertical, padding=(radius, 0), groups=channels)


def bleed_colors(premul: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Straight colour (B, 3, H, W) in which transparent texels take the colour of nearby visible
    ones, so bilinear sampling at sprite edges (and of blurred sprites) never mixes in black."""
    rgb = premul / alpha.clamp_min(1e-6)
    filled = alpha > 1e-6
    for sigma in (1.0, 3.0, 9.0):
        spread_alpha = gaussian_blur(alpha, sigma)
        bleed = gaussian_blur(premul, sigma) / spread_alpha.clamp_min(1e-12)
        reached = spread_alpha > 1e-6
        rgb = torch.where(filled, rgb, torch.where(reached, bleed, rgb))
        filled = filled | reached
    mean = (premul.sum((2, 3)) / alpha.sum((2, 3)).clamp_min(1e-6))[:, :, None, None]
    return torch.where(filled, rgb, mean.expand_as(rgb)).clamp(0, 1)


class FlatTextures(NamedTuple):
    """Every mip level in one contiguous buffer, as the native kernels read them."""
    data: torch.Tensor      # all levels, flattened and concatenated
    offsets: torch.Tensor   # (levels,) int64 offset of each level
    sizes: torch.Tensor     # (levels,) int32 S_l
    support: torch.Tensor   # (levels, K, 4) unit-box bounds u0, u1, v0, v1 outside which alpha is 0
    sigma: float            # the blur the textures were made with
    alpha: torch.Tensor     # data's alpha channel alone (a quarter of its size): what tint reads


_SHARED_ATLASES, _SHARED_MAX_RESOLUTION = 4, 256
BLURRED_CACHE_BYTES = 128 * 2 ** 20    # blurred copies of the textures one atlas keeps
_shared_atlases: dict = {}
_shared_lock = threading.Lock()


def _shared_key(sprites: list[Sprite], resolution: int, device) -> tuple:
    return tuple((s.sha256, s.alpha, s.rgba.shape) for s in sprites), resolution, str(torch.device(device))


class Atlas:
    """K sprites as padded mip levels of channels-last textures (K, S_l + 2*pad, S_l + 2*pad, 4).

    Level l holds the sprites at S_l = resolution >> l texels; texel (pad, pad) is the corner of
    the unit box [-1, 1]^2 that an instance maps onto its square of side 2 * size.
    """

    def __init__(self, sprites: list[Sprite], resolution: int = 128, device="cpu"):
        if not sprites:
            raise SpriteError("an atlas needs at least one sprite")
        if resolution < 2 or resolution & (resolution - 1):
            raise ValueError(f"atlas resolution must be a power of two, not {resolution}")
        self.sprites = sprites
        self.resolution = resolution
        self.pad = ATLAS_PAD
        cells, extents = zip(*(_sprite_cell(s, resolution) for s in sprites))
        self.extents = torch.tensor(extents, dtype=torch.float32, device=device)   # (K, 2) half sizes
        pyramid = [np.stack(cells)]
        while pyramid[-1].shape[1] > 1:
            pyramid.append(np.stack([downsample_rgba(cell) for cell in pyramid[-1]]))
        self._premul_levels = [self._padded_premultiplied(level, device) for level in pyramid]
        self._bleed, self._bleed_lock = None, threading.Lock()
        self._blurred_cache: dict[tuple, FlatTextures] = {}   # (sigma, alpha only) -> textures, most recently used last
        mean = [s.rgba[..., :3][s.rgba[..., 3] > 0.5].mean(0) if (s.rgba[..., 3] > 0.5).any()
                else s.rgba[..., :3].mean((0, 1)) for s in sprites]
        self.mean_colors = torch.tensor(np.stack(mean), dtype=torch.float32, device=device)
        self.coverage = _cell_coverage(cells, device)

    @classmethod
    def shared(cls, sprites: list[Sprite], resolution: int = 128, device="cpu") -> "Atlas":
        """An atlas of these sprites, built once for the last few sets asked for: a command builds
        the same one for its fit, its checkpoints, its exports and its metrics (atlases above
        256 texels, drawn for large exports, are not kept)."""
        if resolution > _SHARED_MAX_RESOLUTION:
            return cls(sprites, resolution, device)
        key = _shared_key(sprites, resolution, device)
        with _shared_lock:
            atlas = _shared_atlases.pop(key, None) or cls(sprites, resolution, device)
            _shared_atlases[key] = atlas                    # most recently used last
            while len(_shared_atlases) > _SHARED_ATLASES:
                _shared_atlases.pop(next(iter(_shared_atlases)))
        return atlas

    def _padded_premultiplied(self, level: np.ndarray, device) -> torch.Tensor:
        planes = torch.from_numpy(level).to(device).permute(0, 3, 1, 2)   # (K, 4, S, S)
        premul = torch.cat([planes[:, :3] * planes[:, 3:], planes[:, 3:]], dim=1)
        return F.pad(premul, (self.pad,) * 4).contiguous()   # the native blur reads it as (K, 4, W, W)

    @property
    def _bleed_levels(self) -> list[torch.Tensor]:
        """Each level's colour with transparent texels filled (bleed_colors), made on first use:
        a tint fit on the CPU reads only alpha and never needs it."""
        with self._bleed_lock:
            if self._bleed is None:
                self._bleed = [bleed_colors(p[:, :3], p[:, 3:]).contiguous() for p in self._premul_levels]
            return self._bleed

    @property
    def num_sprites(self) -> int:
        return len(self.sprites)

    @property
    def num_levels(self) -> int:
        return len(self._premul_levels)

    @property
    def device(self) -> torch.device:
        return self.extents.device

    def level_sizes(self) -> list[int]:
        return [self.resolution >> level for level in range(self.num_levels)]

    @staticmethod
    def effective_sigma(sigma: float) -> float:
        """The blur actually applied: clamped to what the padding holds, rounded to BLUR_STEP."""
        return round(min(max(sigma, 0.0), MAX_BLUR_TEXELS) / BLUR_STEP) * BLUR_STEP

    def flat_textures(self, sigma: float = 0.0, alpha_only: bool = False) -> FlatTextures:
        """Every level blurred by `sigma` (see textures()) in one buffer. BLUR_STEP rounds sigma,
        and the blurred atlases are kept (up to BLURRED_CACHE_BYTES, least recently used dropped
        first): a fit's checkpoints at sigma 0 between its blurred steps, and every later fit with
        the same sprites (video frames, live updates) find theirs built. alpha_only: only the
        alpha plane is needed (tint on the CPU reads nothing else): a quarter of the work where
        the native module does it, no colour bleed to make, and `data` may then be empty."""
        sigma = self.effective_sigma(sigma)
        alpha_only = alpha_only and self._native_cpu()
        whole = (sigma, False)
        key = whole if whole in self._blurred_cache or not alpha_only else (sigma, True)   # a whole one serves too
        flat = self._blurred_cache.pop(key, None)
        if flat is None:
            with timing.stage("atlas blur"):
                flat = self._blurred_alpha(sigma) if alpha_only else self._blurred(sigma)
        self._blurred_cache[key] = flat
        kept = lambda f: (f.data.numel() + f.alpha.numel()) * 4
        while len(self._blurred_cache) > 1 and sum(map(kept, self._blurred_cache.values())) > BLURRED_CACHE_BYTES:
            self._blurred_cache.pop(next(iter(self._blurred_cache)))
        return flat

    def _native_cpu(self) -> bool:
        return _native is not None and hasattr(_native, "atlas_levels_cpu") and self.device.type == "cpu"

    def textures(self, sigma: float = 0.0) -> list[torch.Tensor]:
        """Mip levels, each (K, S_l + 2*pad, S_l + 2*pad, 4) straight RGBA, blurred by `sigma`
        texels of their own level (soft rasterisation): views into flat_textures(sigma)."""
        flat = self.flat_textures(sigma)
        return [flat.data[offset:offset + math.prod(shape)].view(shape)
                for offset, shape in zip(flat.offsets.tolist(), self._level_shapes())]

    def _level_shapes(self) -> list[tuple[int, int, int, int]]:
        return [(self.num_sprites, p.shape[2], p.shape[3], 4) for p in self._premul_levels]

    def _blurred(self, sigma: float) -> FlatTextures:
        shapes = self._level_shapes()
        sizes = [math.prod(shape) for shape in shapes]
        offsets = [0] + np.cumsum(sizes[:-1]).tolist()
        data = torch.empty(sum(sizes), device=self.device)
        if self._native_cpu():   # the same numbers as below, ~20x faster than torch's depthwise convolution
            occupied = self._native_blur(sigma, self._bleed_levels, offsets, data)
        else:
            occupied = torch.empty(self.num_levels, self.num_sprites, 4, dtype=torch.int32, device=self.device)
            for level, (premul, bleed) in enumerate(zip(self._premul_levels, self._bleed_levels)):
                blurred = _blurred_level(premul, bleed, sigma)
                data[offsets[level]:offsets[level] + sizes[level]].copy_(blurred.flatten())
                occupied[level] = _occupied(blurred[..., 3])
        return FlatTextures(data, torch.tensor(offsets, dtype=torch.int64, device=self.device),
                            torch.tensor(self.level_sizes(), dtype=torch.int32, device=self.device),
                            self._support(occupied), sigma, data.view(-1, 4)[:, 3].contiguous())

    def _blurred_alpha(self, sigma: float) -> FlatTextures:
        """_blurred's alpha plane and support alone, by the native module; `data` is empty (the
        offsets still count RGBA floats, as the kernels take them)."""
        sizes = [math.prod(shape[:3]) for shape in self._level_shapes()]    # one float a texel
        starts = [0] + np.cumsum(sizes[:-1]).tolist()
        alpha = torch.empty(sum(sizes))
        occupied = self._native_blur(sigma, [], starts, alpha)
        return FlatTextures(torch.empty(0), torch.tensor([4 * start for start in starts], dtype=torch.int64),
                            torch.tensor(self.level_sizes(), dtype=torch.int32), self._support(occupied), sigma, alpha)

    def _native_blur(self, sigma: float, bleed: list[torch.Tensor], starts: list[int], out: torch.Tensor):
        """Every level blurred by the native module in one call, into `out` from each level's start
        (straight RGBA, or alpha alone when `bleed` is empty); returns the occupied boxes."""
        occupied = torch.empty(self.num_levels, self.num_sprites, 4, dtype=torch.int32)
        taps = _blur_taps(sigma)
        _native.atlas_levels_cpu([p.data_ptr() for p in self._premul_levels], [b.data_ptr() for b in bleed],
                                 [p.shape[2] for p in self._premul_levels], starts, self.num_sprites,
                                 taps.data_ptr(), taps.numel() // 2, out.data_ptr(), occupied.data_ptr())
        return occupied

    def _support(self, occupied: torch.Tensor) -> torch.Tensor:
        """(levels, K, 4) unit-box bounds u0, u1, v0, v1 of where bilinear samples can have
        non-zero alpha: one texel beyond the outermost non-zero texels. The native renderer skips
        every pixel outside them, so they must be exact, not a guess from the blur radius. A
        sprite with nothing visible gets u0 > u1: an empty box."""
        widths = torch.tensor([shape[1] for shape in self._level_shapes()], dtype=torch.float32,
                              device=occupied.device)[:, None, None]
        scale, centre = (widths - 2 * self.pad) / 2, widths / 2 - 0.5
        first_last = occupied.float() + torch.tensor([-1.0, 1.0, -1.0, 1.0], device=occupied.device)
        return ((first_last - centre) / scale).contiguous()


def _blurred_level(premul: torch.Tensor, bleed: torch.Tensor, sigma: float) -> torch.Tensor:
    """One level (K, 4, W, W) premultiplied -> (K, W, W, 4) straight RGBA blurred by sigma (as
    the native module's atlas_levels_cpu)."""
    premul = gaussian_blur(premul, sigma)
    alpha = premul[:, 3:].clamp(0, 1)
    rgb = torch.where(alpha > 1e-6, (premul[:, :3] / alpha.clamp_min(1e-6)).clamp(0, 1), bleed)
    return torch.cat([rgb, alpha], 1).permute(0, 2, 3, 1).contiguous()


def _occupied(alpha: torch.Tensor) -> torch.Tensor:
    """(K, 4) first and last column, first and last row of each (W, W) alpha plane that is above 0
    (W and -1 when none is)."""
    width = alpha.shape[1]
    index = torch.arange(width, device=alpha.device)
    bounds = []
    for occupied in ((alpha > 0).any(1), (alpha > 0).any(2)):      # columns (u), then rows (v)
        bounds += [torch.where(occupied, index, width).amin(1), torch.where(occupied, index, -1).amax(1)]
    return torch.stack(bounds, 1).to(torch.int32)
