"""`spritefit bench video`: temporal coherence measured on three clips in one run.

Every clip is fitted by three methods at the same iterations: `plain` (the warm start of
`--no-temporal`), `diffbmp` (DiffBMP's video recipe on our renderer: spritefit.video) and
`spritefit` (temporal coherence, the default). On the two tuning clips, an ablation adds one row
per technique of temporal coherence, each turned off alone. The third clip is held out: made from
held-out photographs, no default was chosen on it, and its numbers are reported apart.

Reported per run: mean PSNR and SSIM, flicker (SpriteFit's measure) and E_warp (Lai et al.'s,
as DiffBMP reports it; spritefit.flicker), and seconds per later frame.
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data"


@dataclass(frozen=True)
class Clip:
    name: str
    path: Path
    held_out: bool
    motion: str


CLIPS = (
    Clip("coffee-pan", DATA / "clips" / "coffee-pan.gif", False, "camera pan and zoom"),
    Clip("cat-walk", DATA / "clips" / "cat-walk.gif", False, "still camera, moving subject"),
    Clip("hopper-cut", DATA / "heldout" / "clips" / "hopper-cut.gif", True, "pan, cut, zoom"),
)
METHODS = {"plain": {"temporal": False}, "diffbmp": {"diffbmp_recipe": True}, "spritefit": {}}
# Each technique of temporal coherence turned off alone (spritefit.video.VideoSettings).
ABLATION = {
    "no carry along the flow": {"carry": False},
    "no warm optimiser": {"warm_optimizer": False},
    "no sharp refinement": {"sharp_refine": False},
    "no pull": {"temporal_weight": 0.0},
    "no render term": {"temporal_render_weight": 0.0},
    "render term trusted everywhere": {"trusted_error": 0.0},
    "pulled everywhere": {"free_above": 0.0},
    "no freezing": {"freeze": False},
    # Not a technique undone: the carried scene without any fitting, the flicker a render moved
    # with the picture measures by itself (resampling and flow error), below which refitting
    # cannot go.
    "carried, not refitted": {"refit": False},
}
# The goals of temporal coherence against the baselines, at the same iterations.
GOALS = {"plain_flicker_ratio": 3.0, "plain_psnr_cost": 0.5, "diffbmp_flicker_ratio": 1.5}


def bench_video(n: int = 300, iters: int = 200, frame_iters: int = 50, frames: int | None = None,
                pack: str = "shapes", as_json: bool = False, ablation: bool = True,
                gif: str | None = None) -> list[dict]:
    """Run the methods (and the ablation) on every clip; print a row per run and a summary per
    clip. gif: write the held-out clip's comparison (target | plain | spritefit) there."""
    from ..sprites import load_sprites
    from ..video import VideoSettings, read_frames
    sprites = load_sprites(pack)
    rows = []
    for clip in CLIPS:
        targets = read_frames(clip.path, stop=frames)
        base = VideoSettings(options=dict(n=n, preset="balanced", iters=iters), frame_iters=frame_iters)
        runs = dict(METHODS, **(ABLATION if ablation and not clip.held_out else {}))
        results = {}
        for label, change in runs.items():
            row, rendered = _run(clip, targets, sprites, replace(base, **change), label)
            results[label] = rendered
            rows.append(row)
            print(json.dumps(row) if as_json else _format(row), flush=True)
        summary = _summary(clip, [r for r in rows if r["clip"] == clip.name])
        rows.append(summary)
        print(json.dumps(summary) if as_json else _format_summary(summary), flush=True)
        if gif and clip.held_out:
            _comparison_gif(Path(gif), targets, results["plain"], results["spritefit"])
    return rows


def _run(clip: Clip, targets: list[np.ndarray], sprites, settings, label: str) -> tuple[dict, list[np.ndarray]]:
    from ..video import VideoFit, frame_file, read_frame_image
    with tempfile.TemporaryDirectory(prefix="spritefit-bench-video-") as out:
        start = time.perf_counter()
        fit = VideoFit(targets, sprites, settings, Path(out))
        fit.run()
        seconds = time.perf_counter() - start
        metrics = json.loads((Path(out) / "metrics.json").read_text())
        rendered = [read_frame_image(frame_file(Path(out), t)) for t in range(len(targets))]
    row = {"clip": clip.name, "held_out": clip.held_out, "method": label, "frames": len(targets),
           "shots": len(fit.shots.starts), "n": settings.config().run.n, "psnr": metrics["mean_psnr"], "ssim": metrics["mean_ssim"],
           "flicker": metrics["flicker"], "e_warp": metrics["e_warp"],
           "seconds_per_frame": metrics["seconds_per_frame"], "seconds": round(seconds, 1)}
    return row, rendered


def _summary(clip: Clip, rows: list[dict]) -> dict:
    by = {r["method"]: r for r in rows}
    ours, plain, diffbmp = by["spritefit"], by["plain"], by["diffbmp"]
    ratio = lambda other, key: round(other[key] / max(ours[key], 1e-12), 2)
    summary = {"kind": "summary", "clip": clip.name, "held_out": clip.held_out,
               "plain_flicker_ratio": ratio(plain, "flicker"), "plain_psnr_cost": round(plain["psnr"] - ours["psnr"], 2),
               "diffbmp_flicker_ratio": ratio(diffbmp, "flicker"),
               "diffbmp_psnr_cost": round(diffbmp["psnr"] - ours["psnr"], 2),
               "plain_e_warp_ratio": ratio(plain, "e_warp"), "diffbmp_e_warp_ratio": ratio(diffbmp, "e_warp")}
    summary["goals_met"] = (summary["plain_flicker_ratio"] >= GOALS["plain_flicker_ratio"]
                            and summary["plain_psnr_cost"] <= GOALS["plain_psnr_cost"]
                            and summary["diffbmp_flicker_ratio"] >= GOALS["diffbmp_flicker_ratio"])
    return summary


def _comparison_gif(path: Path, targets, plain, ours) -> None:
    from ..video import write_gif
    gap = np.ones((targets[0].shape[0], 2, 3), np.float32)
    write_gif(path, [np.concatenate([t, gap, p, gap, o], axis=1) for t, p, o in zip(targets, plain, ours)], fps=8)
    print(f"wrote {path}", flush=True)


def _format(row: dict) -> str:
    return (f"{row['clip']:<10} {row['method']:<24} {row['frames']} frames N={row['n']}: PSNR {row['psnr']:.2f} dB, "
            f"SSIM {row['ssim']:.4f}, flicker {row['flicker']:.5f}, E_warp {row['e_warp']:.5f}, "
            f"{row['seconds_per_frame']:.2f} s a frame")


def _format_summary(s: dict) -> str:
    held = " (held out)" if s["held_out"] else ""
    return (f"{s['clip']}{held}: spritefit flickers {s['plain_flicker_ratio']:.2f}x less than plain for "
            f"{s['plain_psnr_cost']:+.2f} dB PSNR cost, {s['diffbmp_flicker_ratio']:.2f}x less than diffbmp "
            f"({s['diffbmp_psnr_cost']:+.2f} dB); E_warp {s['plain_e_warp_ratio']:.2f}x / "
            f"{s['diffbmp_e_warp_ratio']:.2f}x; goals {'met' if s['goals_met'] else 'missed'}")
