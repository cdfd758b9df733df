"""Writes the held-out bench set (core/spritefit/data/heldout/) from files that packages on the
registries ship, so that no default is tuned on it:

    targets/   photographs from scikit-image's and matplotlib's sample data (CC0 / public domain)
    sprites/krita-tips/     brush tips of Krita 4's default resource bundle (CC-0; Debian's krita-data),
                            opaque grey-on-white images, as editors store them
    sprites/colour-tiles/   opaque JPEG tiles cut from scikit-image's colour wheel

Needs scikit-image and matplotlib wheels unpacked (or installed) and Krita's bundle:
    python scripts/make_heldout_set.py SKIMAGE_DATA MATPLOTLIB_SAMPLE_DATA KRITA_4_BUNDLE
"""
import sys
import zipfile
from io import BytesIO
from pathlib import Path

from PIL import Image

OUT = Path(__file__).resolve().parents[1] / "core" / "spritefit" / "data" / "heldout"
TARGETS = {"retina": "retina.jpg", "ihc": "ihc.png", "camera": "camera.png"}
TIPS = ["chalk_round_hard", "chisel_soft", "freckles", "leaves", "smoke", "spike_blob", "splat_dots",
        "square_rough"]


def save_target(image: Image.Image, name: str) -> None:
    image = image.convert("RGB")
    image.thumbnail((384, 384), Image.LANCZOS)
    image.save(OUT / "targets" / f"{name}.jpg", quality=92)


def main(skimage_data: str, matplotlib_data: str, krita_bundle: str) -> None:
    for folder in ("targets", "sprites/krita-tips", "sprites/colour-tiles"):
        (OUT / folder).mkdir(parents=True, exist_ok=True)
    for name, file in TARGETS.items():
        save_target(Image.open(Path(skimage_data) / file), name)
    save_target(Image.open(Path(matplotlib_data) / "grace_hopper.jpg"), "grace-hopper")
    with zipfile.ZipFile(krita_bundle) as bundle:
        for tip in TIPS:
            image = Image.open(BytesIO(bundle.read(f"brushes/{tip}.png"))).convert("RGB")
            image.thumbnail((128, 128), Image.LANCZOS)
            image.save(OUT / "sprites" / "krita-tips" / f"{tip}.png")
    wheel = Image.open(Path(skimage_data) / "color.png").convert("RGB")
    side = min(wheel.size) // 4
    for i in range(8):
        x, y = (i % 4) * side, (i // 4 + 1) * side
        wheel.crop((x, y, x + side, y + side)).resize((48, 48), Image.LANCZOS).save(
            OUT / "sprites" / "colour-tiles" / f"tile-{i}.jpg", quality=90)


if __name__ == "__main__":
    main(*sys.argv[1:4])
