"""Writes the README's pictures of spatial constraints to docs/examples/: the masks it uses, and
for each example the mask beside the result.

    .venv/bin/python scripts/make_examples.py
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from spritefit import fit
from spritefit.fitting import Region, prepare_target
from spritefit.images import to_uint8
from spritefit.render import render_scene_array
from spritefit.scene import Scene

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "core" / "spritefit" / "data" / "targets" / "chelsea.png"
OUT = ROOT / "docs" / "examples"
SETTINGS = dict(n=600, iters=200, size=256, seed=0)


def write_masks() -> dict[str, Path]:
    """An ellipse around the cat's head, at the target's own size (451x300)."""
    width, height = Image.open(TARGET).size
    head = Image.new("L", (width, height), 0)
    ImageDraw.Draw(head).ellipse((120, 20, 330, 230), fill=255)
    paths = {"head": OUT / "mask-head.png"}
    head.save(paths["head"])
    return paths


def picture(name: str, *images: np.ndarray) -> None:
    """The images side by side, 256 px high, as docs/examples/<name>.jpg."""
    tiles = [Image.fromarray(to_uint8(i if i.ndim == 3 else np.dstack([i] * 3))) for i in images]
    tiles = [t.resize((round(t.width * 256 / t.height), 256), Image.LANCZOS) for t in tiles]
    strip = Image.new("RGB", (sum(t.width for t in tiles) + 8 * (len(tiles) - 1), 256), "white")
    x = 0
    for tile in tiles:
        strip.paste(tile, (x, 0))
        x += tile.width + 8
    strip.save(OUT / f"{name}.jpg", quality=88)
    print(f"wrote {OUT / name}.jpg")


def mask_at(path: Path, target: np.ndarray) -> np.ndarray:
    mask = Image.open(path).convert("L").resize(target.shape[1::-1], Image.BILINEAR)
    return np.asarray(mask, np.float32) / 255


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    masks = write_masks()
    if "lock" in sys.argv[1:]:
        return lock_example()
    target = prepare_target(TARGET, SETTINGS["size"])
    head = mask_at(masks["head"], target)
    fitted = fit(TARGET, "shapes", mask=masks["head"], **SETTINGS)
    picture("mask", head, render_scene_array(fitted))
    fitted = fit(TARGET, "shapes", keep_in=masks["head"], keep_footprint=True, **SETTINGS)
    picture("keep-in", head, render_scene_array(fitted))
    fitted = fit(TARGET, "shapes", keep_out=masks["head"], keep_footprint=True, **SETTINGS)
    picture("keep-out", head, render_scene_array(fitted))
    fitted = fit(TARGET, "shapes", regions=(Region(masks["head"], "leaves", "head"),), **SETTINGS)
    picture("region", head, render_scene_array(fitted))
    lock_example()


def lock_example() -> None:
    """Fit, then move the ten topmost sprites into a red row by hand, lock them and fit again."""
    first = fit(TARGET, "shapes", **SETTINGS)
    with tempfile.TemporaryDirectory() as folder:
        first.save(Path(folder) / "scene.json")
        data = json.loads((Path(folder) / "scene.json").read_text())
        for column, i in enumerate(range(len(first) - 10, len(first))):
            record = data["instances"][i]
            record.update(x=20.0 + column * 24.0, y=150.0, size=12.0, angle=0.0, color=[0.9, 0.1, 0.1], opacity=1.0)
        (Path(folder) / "edited.json").write_text(json.dumps(data))
        edited = Scene.load(Path(folder) / "edited.json")
    edited.lock("all-edited")
    refit = fit(TARGET, edited.sprites, init="scene", init_scene=edited, **SETTINGS)
    picture("lock", render_scene_array(edited), render_scene_array(refit))


if __name__ == "__main__":
    main()
