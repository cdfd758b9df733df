"""Exports of a scene: PNG (the render), layered PSD, SVG and the scene JSON.

Every file is written atomically (temporary name, then rename), so an interrupted export never
leaves a half-written file under a final name. Raster formats are rendered from the original
sprite bitmaps at any `scale`; the SVG is scaled by its width and height.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import SpriteFitError
from ..images import save_png
from ..render import render_scene_array, scene_atlas
from ..render.layers import instance_layers
from .svg import write_svg

FORMATS = ("png", "psd", "svg", "json")
DEFAULT_NAMES = {"png": "result.png", "psd": "result.psd", "svg": "result.svg", "json": "scene.json"}
SUFFIXES = {".png": "png", ".psd": "psd", ".svg": "svg", ".json": "json"}

__all__ = ["FORMATS", "DEFAULT_NAMES", "parse_formats", "format_of", "export_scene", "write_psd", "write_svg"]


def __getattr__(name: str):
    """write_psd on first use: psd_tools takes 0.2 s to import, which a fit's start need not wait for."""
    if name == "write_psd":
        from .psd import write_psd
        return write_psd
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_formats(text: str) -> list[str]:
    """'png,psd' -> ['png', 'psd'], naming any unknown format."""
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise SpriteFitError(f"unknown format {', '.join(unknown) or repr(text)}; choose from {', '.join(FORMATS)}")
    return list(dict.fromkeys(formats))


def format_of(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise SpriteFitError(f"cannot tell the format of {path}: use a .png, .psd, .svg or .json name")
    return SUFFIXES[suffix]


def export_scene(scene, outputs: dict[str, Path], *, scale: float = 1.0, target: np.ndarray | None = None,
                 svg_linked: bool = False, progress: Callable[[int, int], None] | None = None) -> None:
    """Write `scene` in each format of `outputs` (format -> path).

    target: the (h, w, 3) image that was fitted, added to the PSD as a hidden reference layer when
    its size matches the exported canvas. progress(done, total) is called while PSD layers are drawn.
    """
    image = render_scene_array(scene, scale=scale) if {"png", "psd"} & outputs.keys() else None
    # The PNG is written on a thread of its own while the other formats are made: its compression
    # runs without the interpreter lock (1 s at 2048 px), the other formats mostly with it.
    with ThreadPoolExecutor(max_workers=1) as png_writer:
        png = png_writer.submit(save_png, outputs["png"], image) if "png" in outputs else None
        if "psd" in outputs:
            from .psd import write_psd
            atlas = scene_atlas(scene, scale)
            layers = _reporting(instance_layers(scene, atlas, scale), len(scene), progress)
            reference = target if target is not None and target.shape[:2] == image.shape[:2] else None
            write_psd(outputs["psd"], image, layers, f"SpriteFit ({len(scene)} sprites)", scene.background,
                      reference)
        if "svg" in outputs:
            write_svg(outputs["svg"], scene, linked=svg_linked, scale=scale)
        if "json" in outputs:
            scene.save(outputs["json"])
        if png is not None:
            png.result()   # its error, if any, raised here


def _reporting(layers, total: int, progress):
    for layer in layers:
        yield layer
        if progress is not None:
            progress(layer.index + 1, total)
