"""The compiled module (spritefit._native), loaded once, and what to do without it.

A wheel for another platform, or a source install whose build failed, has no working native
module. SpriteFit then still runs on the pure-PyTorch reference renderer, with one line saying
why and how to get the fast one.
"""
from __future__ import annotations

import warnings

import numpy as np

from .errors import NativeModuleError

try:
    from . import _native
    _LOAD_ERROR: str | None = None
except ImportError as exc:   # not built for this platform, or a library it needs is missing
    _native = None
    _LOAD_ERROR = str(exc).splitlines()[0] if str(exc) else type(exc).__name__

FIX = ("reinstall SpriteFit from a wheel for this platform (pip install --force-reinstall spritefit), "
       "or build it from source with a C++ compiler and CMake (python build.py setup)")


class NativeRendererMissing(UserWarning):
    """The compiled renderer could not be loaded; the slow pure-PyTorch reference renders instead."""


def native_problem() -> str | None:
    """One line saying why the native renderer cannot be used and how to fix it, or None."""
    if _native is None:
        return f"SpriteFit's native renderer could not be loaded ({_LOAD_ERROR}): {FIX}"
    return None


def available() -> bool:
    return _native is not None


def require() -> None:
    problem = native_problem()
    if problem:
        raise NativeModuleError(problem)


def check_backend(backend: str) -> None:
    """Before a fit: "native" needs the module; "auto" says now (not mid-fit) that it falls back."""
    if backend == "native":
        require()
    elif backend == "auto" and not available():
        warn_missing_once()


_warned = False


def warn_missing_once() -> None:
    """Say once per process that fits run on the reference renderer, and how to get the fast one."""
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(NativeRendererMissing(f"{native_problem()}. Using the pure-PyTorch reference "
                                            "renderer meanwhile: same results, many times slower."), stacklevel=3)


def downsample_rgba(image):
    """Halve an (h, w, 4) straight-alpha float32 image with a premultiplied 2x2 box filter (the
    native kernel, or the same filter in NumPy without it)."""
    if _native is not None:
        return _native.downsample_rgba(image)
    h, w = image.shape[:2]
    padded = np.zeros((h + h % 2, w + w % 2, 4), np.float32)
    padded[:h, :w] = image
    premul = np.concatenate([padded[..., :3] * padded[..., 3:], padded[..., 3:]], axis=-1)
    box = premul.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2, 4).sum((1, 3))
    alpha = box[..., 3:]
    rgb = np.where(alpha > 0, np.minimum(box[..., :3] / np.maximum(alpha, 1e-30), 1.0), 0.0)
    return np.concatenate([rgb, alpha * 0.25], axis=-1).astype(np.float32)
