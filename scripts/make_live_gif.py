"""Writes docs/krita-live.gif, the README's picture of live mode: a real Krita (on a virtual
display) with the SpriteFit plugin installed from its zip, Live on, and strokes painted onto the
target layer through Krita's API; the window is grabbed after each live frame.

    .venv/bin/python scripts/make_live_gif.py      (needs krita and Xvfb, as the Krita tests do)
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "plugins")]
from hosts import install_krita_plugin, run_krita_gui  # noqa: E402

OUT = ROOT / "docs" / "krita-live.gif"
TARGET = ROOT / "core" / "spritefit" / "data" / "targets" / "chelsea.png"
CHECK = {"SPRITEFIT_CHECK_WIDTH": "300", "SPRITEFIT_CHECK_HEIGHT": "200", "SPRITEFIT_CHECK_N": "150",
         "SPRITEFIT_CHECK_STROKES": "5", "SPRITEFIT_CHECK_MODE": "live"}
GIF_WIDTH = 640          # the window (1280 px wide) scaled to this
FRAME_MS, LAST_FRAME_MS = 900, 2500


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        install_krita_plugin(home)
        frames, out = home / "frames", home / "report.json"
        done = run_krita_gui(home, dict(CHECK, SPRITEFIT_CHECK_OUT=str(out), SPRITEFIT_CHECK_TARGET=str(TARGET),
                                        SPRITEFIT_CHECK_LIVE_FRAMES=str(frames), SPRITEFIT_PYTHON=sys.executable),
                             timeout=900)
        if not out.exists():
            sys.exit(f"Krita wrote no report:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        report = json.loads(out.read_text())
        strokes = report.get("live_strokes", [])
        pictures = [_scaled(Image.open(path)) for path in sorted(frames.glob("frame-*.png"))]
        if len(pictures) < 2:
            sys.exit(f"Krita saved {len(pictures)} live frames: {report.get('live_message', report.get('exception'))}")
        durations = [FRAME_MS] * (len(pictures) - 1) + [LAST_FRAME_MS]
        OUT.parent.mkdir(exist_ok=True)
        pictures[0].save(OUT, save_all=True, append_images=pictures[1:], duration=durations, loop=0, optimize=True)
    seconds = ", ".join(f"{s['seconds']:.2f}" for s in strokes if s.get("seconds") is not None)
    print(f"{OUT.relative_to(ROOT)}: {len(pictures)} frames, {OUT.stat().st_size / 1024:.0f} KiB; "
          f"fit seconds per stroke: {seconds}")


def _scaled(picture: Image.Image) -> Image.Image:
    picture = picture.convert("RGB")
    height = round(picture.height * GIF_WIDTH / picture.width)
    return picture.resize((GIF_WIDTH, height), Image.LANCZOS).quantize(colors=96, method=Image.MEDIANCUT)


if __name__ == "__main__":
    main()
