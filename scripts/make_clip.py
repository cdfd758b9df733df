"""Makes core/spritefit/data/clips/coffee-pan.gif, the clip of `spritefit bench video`.

A slow camera move over the bundled coffee photograph (CC0, see ../core/spritefit/data/targets/
README.md): 24 frames of 192x144 px, panning right by 1.5 px and down by 0.5 px a frame, with
a slight zoom, so the picture moves the way a real shot does (sub-pixel steps, content entering
at the edges), in one palette. Run: python scripts/make_clip.py
"""
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "core" / "spritefit" / "data" / "targets" / "bench" / "coffee.jpg"
OUT = ROOT / "core" / "spritefit" / "data" / "clips" / "coffee-pan.gif"
FRAMES, WIDTH, HEIGHT = 24, 192, 144


def main() -> None:
    photo = Image.open(SOURCE).convert("RGB")
    frames = []
    for t in range(FRAMES):
        zoom = 1.0 + 0.004 * t
        w, h = 320 / zoom, 240 / zoom
        left, top = 60 + 1.5 * t * 320 / WIDTH, 60 + 0.5 * t * 240 / HEIGHT
        frames.append(photo.resize((WIDTH, HEIGHT), Image.LANCZOS, box=(left, top, left + w, top + h)))
    # One palette for every frame and no dithering: dither patterns that change from frame to
    # frame would be flicker in the target itself.
    palette = frames[0].quantize(256, dither=Image.Dither.NONE)
    frames = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(OUT, save_all=True, append_images=frames[1:], duration=83, loop=0)
    print(f"wrote {OUT} ({FRAMES} frames, {WIDTH}x{HEIGHT})")


if __name__ == "__main__":
    main()
