"""Raw pixel buffers in the hosts' own layouts, so that a host adapter only copies bytes.

    BGRA8    Krita's 8-bit RGBA documents (blue first), top row first
    RGBA8    GIMP's "R'G'B'A u8", top row first
    RGBAF32  Blender's float RGBA image pixels, bottom row first

A buffer is described by {"file", "width", "height", "format"}; "rows" ("top-down" or
"bottom-up") overrides the format's usual row order.
"""
from __future__ import annotations

import numpy as np

from ..errors import SpriteFitError

FORMATS = {"BGRA8": (np.uint8, "top-down"), "RGBA8": (np.uint8, "top-down"), "RGBAF32": (np.float32, "bottom-up")}
ROW_ORDERS = ("top-down", "bottom-up")


def check_format(name: str, rows: str | None = None) -> str:
    """The row order of a pixel format, naming what is wrong with either."""
    if name not in FORMATS:
        raise SpriteFitError(f"unknown pixel format {name!r} (use {', '.join(FORMATS)})")
    rows = rows or FORMATS[name][1]
    if rows not in ROW_ORDERS:
        raise SpriteFitError(f"unknown row order {rows!r} (use top-down or bottom-up)")
    return rows


def bytes_per_pixel(name: str) -> int:
    return 4 * np.dtype(FORMATS[name][0]).itemsize


def decode(data: bytes, width: int, height: int, name: str, rows: str | None = None,
           label: str = "image") -> np.ndarray:
    """Raw bytes -> straight RGBA float32 (height, width, 4), top row first."""
    rows = check_format(name, rows)
    expected = width * height * bytes_per_pixel(name)
    if len(data) != expected:
        raise SpriteFitError(f"{label}: expected {expected:,} bytes for {width}x{height} {name}, "
                             f"found {len(data):,}")
    dtype = FORMATS[name][0]
    pixels = np.frombuffer(data, dtype=dtype).reshape(height, width, 4)
    if name == "BGRA8":
        pixels = pixels[..., [2, 1, 0, 3]]
    rgba = pixels.astype(np.float32) / (255.0 if dtype == np.uint8 else 1.0)
    if not np.isfinite(rgba).all():
        raise SpriteFitError(f"{label}: holds values that are not finite numbers")
    rgba = np.clip(rgba, 0.0, 1.0)
    return np.ascontiguousarray(rgba[::-1] if rows == "bottom-up" else rgba)


def encode(rgba8: np.ndarray, name: str, rows: str | None = None) -> bytes:
    """Straight RGBA uint8 (h, w, 4), top row first -> raw bytes in the host's layout."""
    rows = check_format(name, rows)
    pixels = rgba8[::-1] if rows == "bottom-up" else rgba8
    if name == "BGRA8":
        pixels = pixels[..., [2, 1, 0, 3]]
    elif name == "RGBAF32":
        pixels = pixels.astype(np.float32) / 255.0
    return np.ascontiguousarray(pixels).tobytes()
