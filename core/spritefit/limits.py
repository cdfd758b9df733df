"""What a fit may ask of the machine: sizes and counts SpriteFit supports, and the memory a fit
will need, estimated before it starts so that an impossible run is refused with advice instead
of being killed half-way (or taking the editor's machine down with it).

The estimate was measured on fits (peak resident memory minus the process before the fit):
about 160 MB of fixed cost, 700 bytes per canvas pixel (image, gradient, noise, loss and
renderer buffers) and 1 KB per instance; the constants below round those up.
"""
from __future__ import annotations

import os

from .errors import SpriteFitError

MAX_SPRITES = 100_000            # instances in one fit
MAX_SPRITE_SIDE = 8192           # pixels, either side of one sprite image
FIXED_BYTES = 200 * 2**20
BYTES_PER_PIXEL = 800
BYTES_PER_INSTANCE = 1500


def fit_memory(width: int, height: int, n: int) -> int:
    """Bytes a fit of n instances on a width x height canvas needs beyond the loaded program."""
    return FIXED_BYTES + BYTES_PER_PIXEL * width * height + BYTES_PER_INSTANCE * n


def available_memory() -> int | None:
    """Bytes this process can still use: the system's available memory, and the address-space
    limit (ulimit -v) less what is mapped, whichever is smaller; None when neither is known."""
    limits = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    limit = _address_space_limit()
    if limit is not None:
        limits.append(max(0, limit - _mapped_bytes()))
    return min(limits) if limits else None


def _address_space_limit() -> int | None:
    """ulimit -v in bytes; None where there is none, or no such thing (Windows has no `resource`)."""
    try:
        import resource
    except ImportError:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else soft


def _mapped_bytes() -> int:
    try:
        with open(f"/proc/{os.getpid()}/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def check_fit(width: int, height: int, n: int, device=None) -> None:
    """Refuse, with advice, a fit that exceeds the limits or the memory at hand."""
    if n > MAX_SPRITES:
        raise SpriteFitError(f"{n:,} sprites is more than the {MAX_SPRITES:,} one fit supports")
    need = fit_memory(width, height, n)
    free = _cuda_free(device) if device is not None and str(device).startswith("cuda") else available_memory()
    if free is not None and need > free:
        scale = ((free - FIXED_BYTES - BYTES_PER_INSTANCE * n) / (BYTES_PER_PIXEL * width * height)) ** 0.5
        side = int(max(width, height) * max(scale, 0.0) * 0.9)
        advice = (f"use a working size of at most {side} px (--size {side}), or fewer sprites" if side >= 8
                  else "use fewer sprites")
        raise SpriteFitError(f"a {width}x{height} px fit of {n:,} sprites needs about {need / 2**30:.1f} GB of "
                             f"memory and {free / 2**30:.1f} GB is free: {advice}")


def _cuda_free(device) -> int | None:
    import torch
    try:
        return torch.cuda.mem_get_info(device)[0]
    except (RuntimeError, AssertionError):
        return None
