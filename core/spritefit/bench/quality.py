"""`spritefit bench quality`: PSNR, SSIM and time of every preset on bundled targets and sprite
packs, and an ablation that turns each technique of the balanced preset off (or an optional one
on) in turn, at DiffBMP's default setting (512 px, N=1000, 100 iterations).

`--report DIR` writes the tables as Markdown (DIR/quality.md) with a picture grid of the
results; the project's own copy is docs/quality.md.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..options import PRESETS

TARGETS_DIR = Path(__file__).resolve().parents[1] / "data" / "targets" / "bench"
PACKS = ("shapes", "leaves")
SPRITE_COUNTS = (200, 1000, 5000)
PRESET_NAMES = tuple(PRESETS)

# The learning rates before issue 16 raised them (docs/versus.md).
LEARNING_RATES_BEFORE = {"lr_log_size": 0.02, "lr_angle": 0.03, "lr_color": 0.05, "lr_opacity": 0.05,
                         "lr_final_fraction": 0.1}
# name -> fit options changed from the balanced preset. "off" rows remove a default technique,
# "+" rows add an optional one, the others swap a choice for an alternative.
ABLATIONS: dict[str, dict] = {
    "balanced (all defaults)": {},
    "off: soft rasterisation (no blur)": {"blur_schedule": "none"},
    "alt: DiffBMP's blur schedule (linear to 0 at the end)": {"blur_end_fraction": 1.0},
    "alt: blur ends at 80% of the run": {"blur_end_fraction": 0.8},
    "alt: blur from 1 texel": {"blur_start": 1.0},
    "alt: blur from 3 texels": {"blur_start": 3.0},
    "alt: cosine blur schedule": {"blur_schedule": "cosine"},
    "alt: exponential blur schedule": {"blur_schedule": "exponential"},
    "off: structure-aware init (random)": {"init": "random"},
    "alt: grid init": {"init": "grid"},
    "off: noisy canvas": {"noisy_canvas": False},
    "alt: noisy canvas all run": {"noise_until": 1.0},
    "off: respawn": {"respawn_every": 0},
    "off: SSIM term": {"ssim": 0.0},
    "+ L1 term": {"l1": 0.2},
    "+ MS-SSIM term": {"ms_ssim": 0.2},
    "+ gradient term": {"gradient": 0.1},
    "+ size-range regulariser": {"size_range_weight": 0.1},
    "+ overlap regulariser": {"overlap_weight": 0.01},
    "+ closed-form colour refit every 10 iterations": {"color_refit_every": 10},
    "alt: the learning rates before issue 16": LEARNING_RATES_BEFORE,
    "alt: SSIM weight 0.1": {"ssim": 0.1},
    "alt: SSIM weight 0.2 (before issue 16)": {"ssim": 0.2},
}


@dataclass
class BenchSettings:
    targets: list[str]
    packs: list[str]
    counts: list[int]
    size: int = 512
    iters: int | None = None          # None: each preset's own
    ablation_count: int = 1000
    ablation_iters: int = 100
    presets: bool = True
    ablation: bool = True
    seed: int = 0

    @classmethod
    def quick(cls) -> "BenchSettings":
        """The reduced form CI runs: one small target, one N, a few iterations."""
        return cls(targets=[bundled_targets()[0]], packs=["shapes"], counts=[40], size=48, iters=4,
                   ablation_count=40, ablation_iters=4)


def bundled_targets() -> list[str]:
    return sorted(p.stem for p in TARGETS_DIR.glob("*.jpg"))


def _run(target: str, pack: str, n: int, size: int, preset: str, iters: int | None, seed: int,
         options: dict) -> tuple[dict, np.ndarray]:
    from ..fitting import evaluate, fit, prepare_target
    from ..render import render_scene_array

    image = prepare_target(TARGETS_DIR / f"{target}.jpg", size)
    start = time.perf_counter()
    scene = fit(image, pack, n=n, iters=iters, preset=preset, seed=seed, **options)
    seconds = time.perf_counter() - start
    metrics = evaluate(scene, image)
    row = {"target": target, "pack": pack, "n": n, "size": size, "preset": preset,
           "psnr": round(metrics["psnr"], 2), "ssim": round(metrics["ssim"], 4), "seconds": round(seconds, 1)}
    return row, render_scene_array(scene)


def bench_quality(settings: BenchSettings, as_json: bool = False, report: Path | None = None,
                  earlier_rows: list[dict] = ()) -> list[dict]:
    """Run the benchmark; `earlier_rows` (from an earlier --json run) join the report's tables."""
    rows, pictures = list(earlier_rows), {}
    emit = (lambda row: print(json.dumps(row), flush=True)) if as_json else (lambda row: print(_format(row), flush=True))
    if settings.presets:
        for target in settings.targets:
            for pack in settings.packs:
                for n in settings.counts:
                    for preset in PRESET_NAMES:
                        row, image = _run(target, pack, n, settings.size, preset, settings.iters, settings.seed, {})
                        rows.append({"kind": "preset", **row})
                        emit(rows[-1])
                        pictures[(target, pack, n, preset)] = image
    if settings.ablation:
        for target in settings.targets:
            for variant, options in ABLATIONS.items():
                row, _ = _run(target, settings.packs[0], settings.ablation_count, settings.size, "balanced",
                              settings.ablation_iters, settings.seed, options)
                rows.append({"kind": "ablation", "variant": variant, **row})
                emit(rows[-1])
        for summary in ablation_summary(rows):
            emit(summary)
            rows.append(summary)
    if report is not None:
        write_report(rows, pictures, settings, Path(report))
    return rows


def ablation_summary(rows: list[dict]) -> list[dict]:
    """Per variant, the mean change of PSNR and SSIM against the balanced defaults."""
    ablation = [r for r in rows if r["kind"] == "ablation"]
    baseline = {r["target"]: r for r in ablation if ABLATIONS[r["variant"]] == {}}
    summaries = []
    for variant in ABLATIONS:
        runs = [r for r in ablation if r["variant"] == variant and r["target"] in baseline]
        if not runs or ABLATIONS[variant] == {}:
            continue
        summaries.append({
            "kind": "ablation-summary", "variant": variant, "targets": len(runs),
            "delta_psnr": round(float(np.mean([r["psnr"] - baseline[r["target"]]["psnr"] for r in runs])), 2),
            "delta_ssim": round(float(np.mean([r["ssim"] - baseline[r["target"]]["ssim"] for r in runs])), 4),
            "delta_seconds": round(float(np.mean([r["seconds"] - baseline[r["target"]]["seconds"] for r in runs])), 1)})
    return summaries


def _format(row: dict) -> str:
    if row["kind"] == "ablation-summary":
        return (f"ablation  {row['variant']:38s} over {row['targets']} targets: PSNR {row['delta_psnr']:+.2f} dB, "
                f"SSIM {row['delta_ssim']:+.4f}, time {row['delta_seconds']:+.1f} s")
    label = row["variant"] if row["kind"] == "ablation" else row["preset"]
    return (f"{row['kind']:9s} {row['target']:10s} {row['pack']:7s} N={row['n']:<5d} {label:38s} "
            f"PSNR {row['psnr']:6.2f} dB  SSIM {row['ssim']:.4f}  {row['seconds']:7.1f} s")


def write_report(rows: list[dict], pictures: dict, settings: BenchSettings, folder: Path) -> None:
    """folder/quality.md with the tables, and folder/quality/*.jpg for the picture grid."""
    from PIL import Image

    images = folder / "quality"
    images.mkdir(parents=True, exist_ok=True)
    lines = ["# Fit quality", "",
             f"`spritefit bench quality` on a 2-core CPU: {len(settings.targets)} targets "
             f"(`core/spritefit/data/targets/bench/`), packs {', '.join(settings.packs)}, working size "
             f"{settings.size} px, seed {settings.seed}.", ""]
    preset_rows = [r for r in rows if r["kind"] == "preset"]
    if preset_rows:
        lines += ["## Presets", "", "| target | pack | N | preset | PSNR (dB) | SSIM | time (s) |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['target']} | {r['pack']} | {r['n']} | {r['preset']} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
                  f"{r['seconds']:.1f} |" for r in preset_rows]
        lines += ["", "### Pictures", "", "| target | " + " | ".join(PRESET_NAMES) + " |",
                  "|---|" + "---|" * len(PRESET_NAMES)]
        n_shown = settings.counts[len(settings.counts) // 2]
        for target in settings.targets:
            cells = [_picture(np.asarray(Image.open(TARGETS_DIR / f"{target}.jpg").convert("RGB"), np.float32) / 255,
                              images / f"{target}.jpg")]
            for preset in PRESET_NAMES:
                key = (target, settings.packs[0], n_shown, preset)
                if key in pictures:
                    cells.append(_picture(pictures[key], images / f"{target}-{preset}-n{n_shown}.jpg"))
            lines.append("| " + " | ".join(f"![{Path(c).stem}](quality/{Path(c).name})" for c in cells) + " |")
        lines.append("")
    summaries = [r for r in rows if r["kind"] == "ablation-summary"]
    if summaries:
        lines += ["## Ablation", "",
                  f"Balanced preset, pack {settings.packs[0]}, N={settings.ablation_count}, "
                  f"{settings.ablation_iters} iterations; each row changes one thing. Mean change over the targets:", "",
                  "| variant | Δ PSNR (dB) | Δ SSIM | Δ time (s) |", "|---|---|---|---|"]
        lines += [f"| {r['variant']} | {r['delta_psnr']:+.2f} | {r['delta_ssim']:+.4f} | {r['delta_seconds']:+.1f} |"
                  for r in summaries]
        lines.append("")
    (folder / "quality.md").write_text("\n".join(lines))


def _picture(image: np.ndarray, path: Path) -> str:
    from PIL import Image

    from ..images import to_uint8
    picture = Image.fromarray(to_uint8(image[..., :3]))
    picture.thumbnail((256, 256), Image.LANCZOS)
    picture.save(path, quality=85)
    return str(path)
