"""`spritefit bench video`: the bundled clip fitted with the temporal terms on and off, in the
same run: quality (PSNR, SSIM), flicker (the render's change beyond the picture's motion) and
time per frame."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

CLIP = Path(__file__).resolve().parents[1] / "data" / "clips" / "coffee-pan.gif"


def bench_video(n: int = 300, iters: int = 200, frame_iters: int = 50, frames: int | None = None,
                pack: str = "shapes", as_json: bool = False) -> list[dict]:
    from ..sprites import load_sprites
    from ..video import VideoFit, VideoSettings, read_frames
    clip = read_frames(CLIP, stop=frames)
    sprites = load_sprites(pack)
    rows = []
    for temporal in (True, False):
        settings = VideoSettings(n=n, preset="balanced", first_iters=iters, frame_iters=frame_iters,
                                 temporal=temporal)
        with tempfile.TemporaryDirectory(prefix="spritefit-bench-video-") as out:
            start = time.perf_counter()
            VideoFit(clip, sprites, settings, Path(out)).run()
            seconds = time.perf_counter() - start
            metrics = json.loads((Path(out) / "metrics.json").read_text())
        row = {"clip": CLIP.stem, "frames": len(clip), "n": n, "temporal": temporal,
               "psnr": metrics["mean_psnr"], "ssim": metrics["mean_ssim"], "flicker": metrics["flicker"],
               "render_change": metrics["render_change"], "target_change": metrics["target_change"],
               "seconds_per_frame": metrics["seconds_per_frame"], "seconds": round(seconds, 1)}
        rows.append(row)
        print(json.dumps(row) if as_json else _format(row), flush=True)
    on, off = rows
    ratio = off["flicker"] / max(on["flicker"], 1e-9)
    summary = {"kind": "summary", "flicker_reduction": round(ratio, 2), "psnr_cost": round(off["psnr"] - on["psnr"], 2)}
    print(json.dumps(summary) if as_json else
          f"temporal terms: flicker {ratio:.2f}x lower, PSNR {on['psnr'] - off['psnr']:+.2f} dB", flush=True)
    return rows + [summary]


def _format(row: dict) -> str:
    label = "temporal on " if row["temporal"] else "temporal off"
    return (f"{row['clip']} {row['frames']} frames N={row['n']} {label}: PSNR {row['psnr']:.2f} dB, "
            f"SSIM {row['ssim']:.4f}, flicker {row['flicker']:.4f} (render change {row['render_change']:.4f}, "
            f"target change {row['target_change']:.4f}), {row['seconds_per_frame']:.2f} s a frame")
