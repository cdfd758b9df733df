"""Makes the clips of `spritefit bench video` from bundled photographs (licences:
core/spritefit/data/targets/README.md and scripts/make_heldout_set.py):

- core/spritefit/data/clips/coffee-pan.gif: a slow camera move over the coffee photograph, 24
  frames of 192x144 px, panning right by 1.5 px and down by 0.5 px a frame with a slight zoom, so
  the picture moves the way a real shot does (sub-pixel steps, content entering at the edges);
- core/spritefit/data/clips/cat-walk.gif: a still camera on the rocket photograph, with the cat's
  head (an ellipse cut from chelsea.png, soft edge) crossing it, 20 frames of 160x120 px;
- core/spritefit/data/heldout/clips/hopper-cut.gif: the held-out clip, from held-out photographs
  only: 10 frames panning down over grace-hopper.jpg, a cut, 10 frames zooming into camera.jpg;
  160x120 px. No default was chosen on it.

Each clip has one palette and no dithering: dither patterns that change from frame to frame would
be flicker in the target itself. Run: python scripts/make_clip.py
"""
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "core" / "spritefit" / "data"


def coffee_pan() -> list[Image.Image]:
    photo = Image.open(DATA / "targets" / "bench" / "coffee.jpg").convert("RGB")
    width, height = 192, 144
    frames = []
    for t in range(24):
        zoom = 1.0 + 0.004 * t
        w, h = 320 / zoom, 240 / zoom
        left, top = 60 + 1.5 * t * 320 / width, 60 + 0.5 * t * 240 / height
        frames.append(photo.resize((width, height), Image.LANCZOS, box=(left, top, left + w, top + h)))
    return frames


def cat_walk() -> list[Image.Image]:
    background = Image.open(DATA / "targets" / "bench" / "rocket.jpg").convert("RGB")
    background = background.resize((160, 120), Image.LANCZOS, box=(60, 20, 460, 320))
    cat = Image.open(DATA / "targets" / "chelsea.png").convert("RGB")
    head = cat.resize((60, 56), Image.LANCZOS, box=(70, 10, 400, 300))
    mask = Image.new("L", head.size, 0)
    ImageDraw.Draw(mask).ellipse((1, 1, head.size[0] - 2, head.size[1] - 2), fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(1.2))
    frames = []
    for t in range(20):
        # Pasting at whole pixels keeps the head's own pixels the same in every frame; the path
        # is resampled instead, by drawing at 4x and reducing.
        x, y = 14 + 2.25 * t, 34 + 6 * np.sin(t / 3.0)
        big = background.resize((640, 480), Image.LANCZOS)
        big.paste(head.resize((240, 224), Image.LANCZOS), (round(4 * x), round(4 * y)),
                  mask.resize((240, 224), Image.LANCZOS))
        frames.append(big.resize((160, 120), Image.LANCZOS))
    return frames


def hopper_cut() -> list[Image.Image]:
    hopper = Image.open(DATA / "heldout" / "targets" / "grace-hopper.jpg").convert("RGB")
    camera = Image.open(DATA / "heldout" / "targets" / "camera.jpg").convert("RGB")
    frames = []
    for t in range(10):            # pan down over the portrait
        top = 40 + 2.0 * t
        frames.append(hopper.resize((160, 120), Image.LANCZOS, box=(4, top, 324, top + 240)))
    for t in range(10):            # cut; zoom into the cameraman
        zoom = 1.0 + 0.01 * t
        w, h = 320 / zoom, 240 / zoom
        left, top = 32 + (320 - w) / 2, 60 + (240 - h) / 2
        frames.append(camera.resize((160, 120), Image.LANCZOS, box=(left, top, left + w, top + h)))
    return frames


def save(path: Path, frames: list[Image.Image], shot_starts: tuple[int, ...] = (0,)) -> None:
    """The palette is made from the first frame of each shot."""
    strip = Image.new("RGB", (frames[0].width, frames[0].height * len(shot_starts)))
    for i, start in enumerate(shot_starts):
        strip.paste(frames[start], (0, i * frames[0].height))
    palette = strip.quantize(256, dither=Image.Dither.NONE)
    quantized = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    quantized[0].save(path, save_all=True, append_images=quantized[1:], duration=83, loop=0)
    print(f"wrote {path} ({len(frames)} frames, {frames[0].width}x{frames[0].height})")


def main() -> None:
    save(DATA / "clips" / "coffee-pan.gif", coffee_pan())
    save(DATA / "clips" / "cat-walk.gif", cat_walk())
    save(DATA / "heldout" / "clips" / "hopper-cut.gif", hopper_cut(), shot_starts=(0, 10))


if __name__ == "__main__":
    main()
