"""SVG: each distinct sprite once in <defs>, each instance a <use> with its transform and opacity.

Colour modes become one feColorMatrix per distinct colour, computed in sRGB like the renderer:
tint replaces the sprite's colour, multiply scales it, mix blends the two. Sprites are embedded as
PNG data, or with `linked=True` written as PNG files beside the SVG and referenced by path.
"""
from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from ..files import write_bytes_atomic
from ..images import encode_png
from ..sprites import resize_premultiplied, sprite_extents

# Longest side of an embedded sprite: sharp when the SVG is scaled up, without megabytes per sprite.
MAX_EMBEDDED_SIDE = 512


def write_svg(path: str | os.PathLike, scene, linked: bool = False, scale: float = 1.0) -> None:
    """Write the scene as SVG, atomically. With `linked`, sprite PNGs go to <stem>-sprites/.
    `scale` sets the drawing's width and height; the content keeps the scene's own units."""
    path = Path(path)
    hrefs = _sprite_links(scene, path) if linked else [_data_uri(s) for s in scene.sprites]
    filters: dict[str, str] = {}   # colour matrix -> filter id
    uses = _uses(scene, filters)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
             f'width="{scene.width * scale:.6g}" height="{scene.height * scale:.6g}" '
             f'viewBox="0 0 {scene.width} {scene.height}">',
             "<defs>"]
    for k, (sprite, href) in enumerate(zip(scene.sprites, hrefs)):
        half_w, half_h = sprite_extents(sprite)
        parts.append(f'<image id="sprite-{k}" x="{-half_w:.6g}" y="{-half_h:.6g}" width="{2 * half_w:.6g}" '
                     f'height="{2 * half_h:.6g}" preserveAspectRatio="none" xlink:href={quoteattr(href)}>'
                     f"<title>{_escape(sprite.name)}</title></image>")
    for matrix, filter_id in filters.items():
        parts.append(f'<filter id="{filter_id}" color-interpolation-filters="sRGB">'
                     f'<feColorMatrix type="matrix" values="{matrix}"/></filter>')
    parts.append("</defs>")
    if scene.background is not None:
        parts.append(f'<rect width="{scene.width}" height="{scene.height}" fill="{_hex(scene.background)}"/>')
    parts += ['<g id="sprites">', *uses, "</g>", "</svg>"]
    write_bytes_atomic(path, "\n".join(parts).encode("utf-8"))


def _uses(scene, filters: dict[str, str]) -> list[str]:
    """One <use> per instance; the scene's columns are read as Python numbers once (per-instance
    numpy indexing was most of the time of a 50,000-sprite SVG)."""
    clipped = lambda values: np.clip(values, 0.0, 1.0).tolist()
    columns = zip(scene.xy.tolist(), np.degrees(-scene.theta.astype(np.float64)).tolist(), scene.size.tolist(),
                  scene.sprite.tolist(), clipped(scene.opacity), clipped(scene.color), clipped(scene.mix))
    return [_use(x, y, angle, size, sprite, opacity, _color_matrix(scene.color_mode, tint, mix), filters)
            for (x, y), angle, size, sprite, opacity, tint, mix in columns]


def _use(x: float, y: float, angle: float, size: float, sprite: int, opacity: float, matrix: str | None,
         filters: dict[str, str]) -> str:
    # The renderer maps unit-box u to c + size * R(-theta) u; SVG's rotate(a) is R(a) in y-down space.
    attributes = (f'xlink:href="#sprite-{sprite}" '
                  f'transform="translate({x:.6g} {y:.6g}) rotate({angle:.6g}) scale({size:.6g})"')
    if opacity < 1.0:
        attributes += f' opacity="{opacity:.4g}"'
    if matrix is not None:
        filter_id = filters.setdefault(matrix, f"c{len(filters)}")
        attributes += f' filter="url(#{filter_id})"'
    return f"<use {attributes}/>"


# feColorMatrix values of each colour mode (rows R, G, B, A; columns r, g, b, a, 1), the numbers
# that vary as %.4g: one formatting a sprite instead of one a value, for 50,000 of them.
_COLOR_MATRICES = {
    "tint": "0 0 0 0 %.4g 0 0 0 0 %.4g 0 0 0 0 %.4g 0 0 0 1 0",                     # the tint r, g, b
    "multiply": "%.4g 0 0 0 0 0 %.4g 0 0 0 0 0 %.4g 0 0 0 0 0 1 0",                 # sprite colour * tint
    "mix": "%.4g 0 0 0 %.4g 0 %.4g 0 0 %.4g 0 0 %.4g 0 %.4g 0 0 0 1 0",             # mix, (1 - mix) * tint
}


def _color_matrix(mode: str, tint: list[float], mix: float) -> str | None:
    """feColorMatrix values of the colour mode, for a tint and mix already in [0, 1]; None in
    original colours."""
    r, g, b = tint
    if mode == "original":
        return None
    if mode == "mix":   # mix * sprite colour + (1 - mix) * tint
        return _COLOR_MATRICES[mode] % (mix, (1 - mix) * r, mix, (1 - mix) * g, mix, (1 - mix) * b)
    return _COLOR_MATRICES[mode] % (r, g, b)


def _embedded_pixels(sprite) -> np.ndarray:
    h, w = sprite.rgba.shape[:2]
    if max(h, w) <= MAX_EMBEDDED_SIDE:
        return sprite.rgba
    scale = MAX_EMBEDDED_SIDE / max(h, w)
    return resize_premultiplied(sprite.rgba, max(1, round(w * scale)), max(1, round(h * scale)))


def _data_uri(sprite) -> str:
    return "data:image/png;base64," + base64.b64encode(encode_png(_embedded_pixels(sprite))).decode("ascii")


def _sprite_links(scene, svg_path: Path) -> list[str]:
    """Write every sprite as a PNG in <stem>-sprites/ and return their paths relative to the SVG."""
    folder = svg_path.parent / f"{svg_path.stem}-sprites"
    folder.mkdir(exist_ok=True)
    links = []
    for k, sprite in enumerate(scene.sprites):
        name = f"{k:03d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', sprite.name)[:60]}.png"
        write_bytes_atomic(folder / name, encode_png(_embedded_pixels(sprite)))
        links.append(f"{folder.name}/{name}")
    return links


def _hex(color) -> str:
    return "#" + "".join(f"{int(round(float(np.clip(c, 0, 1)) * 255)):02x}" for c in color)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
