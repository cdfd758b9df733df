"""Reading and writing images, with errors that say what is wrong with the file."""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import InputImageError, SpriteFitError
from .files import atomic_path
from .options import DEFAULT_WORKING_SIZE, OPTIONS

# Larger images are refused before they are decoded (decompression bombs).
MAX_IMAGE_PIXELS = 100_000_000
# What a folder of images (video frames, a batch) is read for.
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


def _open_rgba(source: str | os.PathLike | bytes, label: str) -> np.ndarray:
    """Decode an image file into straight-alpha RGBA float32 (h, w, 4) in [0, 1]."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise InputImageError(f"{label} not found: {path}")
        if path.is_dir():
            raise InputImageError(f"{label} is a folder, not an image: {path}")
        data = path.read_bytes()
    else:
        data = source
    if not data:
        raise InputImageError(f"{label} is empty (0 bytes)")
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                rgba = _to_rgba8(image)
    except UnidentifiedImageError:
        raise InputImageError(f"{label} is not an image file SpriteFit can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputImageError(f"{label} is too large (over {MAX_IMAGE_PIXELS:,} pixels)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputImageError(f"{label} is damaged or truncated: {exc}") from None
    if rgba.shape[0] == 0 or rgba.shape[1] == 0:
        raise InputImageError(f"{label} has no pixels")
    return rgba


def _to_rgba8(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits instead of clipping.
        values = np.asarray(image, dtype=np.float32)
        scale = 65535.0 if values.max(initial=0) > 255 else 255.0
        grey = np.clip(values / scale, 0, 1)
        return np.dstack([grey, grey, grey, np.ones_like(grey)]).astype(np.float32)
    return np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0


def load_rgba(source: str | os.PathLike | bytes, label: str = "image") -> np.ndarray:
    """Straight-alpha RGBA float32 (h, w, 4). Images without alpha come back opaque."""
    return _open_rgba(source, label)


def load_rgb(path: str | os.PathLike, label: str = "target image",
             background=(1.0, 1.0, 1.0)) -> np.ndarray:
    """RGB float32 (h, w, 3); transparent pixels are composited over `background`."""
    rgba = _open_rgba(path, label)
    alpha = rgba[..., 3:4]
    return (rgba[..., :3] * alpha + np.asarray(background, np.float32) * (1 - alpha)).astype(np.float32)


def resize_to_longest(image: np.ndarray, longest: int) -> np.ndarray:
    """Resize an (h, w, c) float image so its longer side is `longest` pixels (Lanczos)."""
    h, w = image.shape[:2]
    scale = longest / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if size == (w, h):
        return image
    channels = [Image.fromarray(image[..., c].astype(np.float32), mode="F").resize(size, Image.LANCZOS)
                for c in range(image.shape[2])]
    resized = np.stack([np.asarray(c, dtype=np.float32) for c in channels], axis=-1)
    return np.clip(resized, 0, 1, out=resized)


def load_target(target) -> np.ndarray:
    """The target (path or array) as float32 RGB (h, w, 3) at its own size."""
    if isinstance(target, (str, os.PathLike)):
        return load_rgb(target)
    image = np.asarray(target, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise SpriteFitError(f"target array must be (h, w, 3), not {image.shape}")
    return image


def prepare_target(target, size: int | None = None) -> np.ndarray:
    """The target as float32 RGB (h, w, 3), resized so its longer side is `size` pixels
    (by default the image's own size, at most 512)."""
    image = load_target(target)
    if size is None:
        size = min(max(image.shape[:2]), DEFAULT_WORKING_SIZE)
    check_working_size(size)
    return resize_to_longest(image, size)


def check_working_size(size: int | None) -> None:
    """The option size's own check (spritefit.options), for targets prepared outside a fit."""
    OPTIONS["size"].check(size, "working size")


def to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an (h, w, 3|4) float image in [0, 1] as PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(to_uint8(image)).save(tmp, format="PNG")


def encode_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="PNG")
    return buffer.getvalue()
