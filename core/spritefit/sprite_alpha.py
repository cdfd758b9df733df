"""Where a sprite is transparent, for images that have no alpha of their own.

A JPEG sticker on white, a brush tip painted grey on white (Krita's own tips are such images), a
dab on black: drawn as they are, each would be an opaque rectangle. The modes:

    keep       the image's alpha as it is (no alpha channel: opaque)
    key        the border's colour is the background: pixels near it become transparent, with a
               tolerance for JPEG noise and a soft ramp for anti-aliased edges; the colours of
               half-transparent pixels are un-mixed from the background
    luminance  the image is a mask, as editors read brush tips: dark is paint (alpha = 1 - luminance,
               the colour black, so a tint colours it)
    auto       keep when the image has transparency, when its border is not one colour (a
               photograph) or when it is one colour throughout (a plain rectangle); luminance for
               a grey image on a light border; key otherwise

`apply_alpha` returns the new pixels, the mode it applied and a one-line note saying why.
"""
from __future__ import annotations

import numpy as np

from .options import ALPHA_MODES

KEY_TOLERANCE = 0.06        # RGB distance (0..1) still counted as background
KEY_RAMP = 0.18             # distance over which alpha rises from 0 to 1 past the tolerance
UNIFORM_SPREAD = 0.1        # a border pixel this far from the border's median colour is "different"
UNIFORM_SHARE = 0.05        # ... and a border with more than this share of them is not one colour
GREY_SPREAD = 0.06          # largest channel difference of a grey image
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def border_pixels(rgb: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels, (k, 3)."""
    return np.concatenate([rgb[0], rgb[-1], rgb[1:-1, 0], rgb[1:-1, -1]]) if min(rgb.shape[:2]) > 1 else rgb.reshape(-1, 3)


def border_colour(rgb: np.ndarray) -> np.ndarray:
    """The median colour of the border: the background that `key` removes."""
    return np.median(border_pixels(rgb), axis=0)


def uniform_border(rgb: np.ndarray) -> np.ndarray | None:
    """The border's colour when the border is (nearly) one colour, else None."""
    colour = border_colour(rgb)
    different = np.abs(border_pixels(rgb) - colour).max(axis=1) > UNIFORM_SPREAD
    return colour if different.mean() <= UNIFORM_SHARE else None


def distance_from(rgb: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Per pixel RGB distance (0..1, root mean square over the channels) from the background."""
    return np.sqrt(((rgb - background) ** 2).mean(axis=-1))


def key_out(rgba: np.ndarray, background: np.ndarray) -> np.ndarray:
    rgb = rgba[..., :3]
    distance = distance_from(rgb, background)
    alpha = np.clip((distance - KEY_TOLERANCE) / KEY_RAMP, 0.0, 1.0)
    unmixed = (rgb - (1 - alpha[..., None]) * background) / np.maximum(alpha[..., None], 1e-3)
    colour = np.where(alpha[..., None] > 0, np.clip(unmixed, 0.0, 1.0), rgb)
    return np.dstack([colour, alpha * rgba[..., 3]]).astype(np.float32)


def luminance_mask(rgba: np.ndarray) -> np.ndarray:
    paint = 1.0 - rgba[..., :3] @ LUMA
    return np.dstack([np.zeros_like(rgba[..., :3]), np.clip(paint, 0, 1) * rgba[..., 3]]).astype(np.float32)


def _hex(colour: np.ndarray) -> str:
    return "#" + "".join(f"{int(round(float(c) * 255)):02x}" for c in colour)


def choose_mode(rgba: np.ndarray) -> tuple[str, str]:
    """(mode, why) that auto applies to this image."""
    if rgba[..., 3].min() < 0.99:
        return "keep", "has transparency: its alpha is kept"
    rgb = rgba[..., :3]
    background = uniform_border(rgb)
    if background is None:
        return "keep", "opaque and its border is not one colour: kept as an opaque picture"
    if distance_from(rgb, background).max() <= KEY_TOLERANCE:
        return "keep", "one colour throughout: kept as an opaque rectangle"
    grey = float((rgb.max(axis=-1) - rgb.min(axis=-1)).max()) <= GREY_SPREAD
    if grey and float(background @ LUMA) > 0.5:
        return "luminance", "grey on a light background: read as a mask, dark is paint"
    return "key", f"background {_hex(background)} (its border) keyed out"


def apply_alpha(rgba: np.ndarray, mode: str) -> tuple[np.ndarray, str, str]:
    """(pixels, applied mode, note) for `mode` in ALPHA_MODES."""
    if mode not in ALPHA_MODES:
        raise ValueError(f"unknown sprite alpha mode {mode!r} (choose {', '.join(ALPHA_MODES)})")
    note = f"--sprite-alpha {mode}"
    if mode == "auto":
        mode, note = choose_mode(rgba)
    if mode == "key":   # auto keys only a uniform border; asked for by name, any border's median
        return key_out(rgba, border_colour(rgba[..., :3])), mode, note
    if mode == "luminance":
        return luminance_mask(rgba), mode, note
    return rgba, mode, note
