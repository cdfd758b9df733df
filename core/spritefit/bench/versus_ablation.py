"""`spritefit bench versus --ablation`: SpriteFit at the versus setting (256 px, N=300, 100
iterations, tuning and held-out sets, tint and original colours) with each technique chosen for
the margins over the baselines undone in turn (or an optional one added), so that each row shows
what that technique is worth on both sets. Every choice was made on the tuning set only."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .quality import LEARNING_RATES_BEFORE
from .versus import VersusSettings, case_row, cases

DEFAULTS = "today's defaults"
# name -> fit options changed from the defaults
ABLATIONS: dict[str, dict] = {
    DEFAULTS: {},
    "the learning rates before (size 0.02, angle 0.03, colour 0.05, opacity 0.05, decay to 0.1)": LEARNING_RATES_BEFORE,
    "SSIM weight 0.1": {"ssim": 0.1},
    "SSIM weight 0.2": {"ssim": 0.2},
    "original colours: coverage 2.5, as in tint": {"coverage": 2.5},
    "original colours: starting opacity 0.9, as in tint": {"start_opacity": 0.9},
    "no sprite choice during the fit": {"sprite_choice_every": 0},
    "+ closed-form colour refit every 10 iterations": {"color_refit_every": 10},
}


def bench_versus_ablation(settings: VersusSettings, as_json: bool = False, report: Path | None = None,
                          variants: dict[str, dict] = ABLATIONS) -> list[dict]:
    from ..fitting import fit
    rows = []
    for case in cases(settings):
        for variant, options in variants.items():
            start = time.perf_counter()
            scene = fit(case.image, case.sprites, n=settings.n, iters=settings.iters, color_mode=case.mode,
                        seed=settings.seed, **options)
            rows.append(case_row("ablation", case, scene, time.perf_counter() - start, variant=variant))
            row = rows[-1]
            print(json.dumps(row) if as_json else f"{row['set']:8s} {row['target']:12s} {row['mode']:8s} "
                  f"PSNR {row['psnr']:6.2f} dB  SSIM {row['ssim']:.4f}  {row['seconds']:5.1f} s  {variant}", flush=True)
    summaries = ablation_summary(rows)
    for s in summaries:
        print(json.dumps(s) if as_json else f"{s['set']:8s} {s['mode']:8s} mean PSNR {s['psnr']:6.2f} dB "
              f"({s['delta_psnr']:+.2f})  SSIM {s['ssim']:.4f} ({s['delta_ssim']:+.4f})  {s['variant']}", flush=True)
    if report is not None:
        write_ablation_report(summaries, settings, Path(report))
    return rows + summaries


def ablation_summary(rows: list[dict]) -> list[dict]:
    """Per variant, set and colour mode: the mean PSNR and SSIM, and their change from the defaults."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["variant"], r["set"], r["mode"]), []).append(r)
    means = {key: (float(np.mean([r["psnr"] for r in group])), float(np.mean([r["ssim"] for r in group])))
             for key, group in groups.items()}
    summaries = []
    for (variant, set_name, mode), (psnr, ssim) in means.items():
        base = means.get((DEFAULTS, set_name, mode), (psnr, ssim))
        summaries.append({"kind": "ablation-summary", "variant": variant, "set": set_name, "mode": mode,
                          "targets": len(groups[(variant, set_name, mode)]), "psnr": round(psnr, 2),
                          "ssim": round(ssim, 4), "delta_psnr": round(psnr - base[0], 2),
                          "delta_ssim": round(ssim - base[1], 4)})
    return summaries


def write_ablation_report(summaries: list[dict], settings: VersusSettings, folder: Path) -> None:
    columns = list(dict.fromkeys((s["set"], s["mode"]) for s in summaries))
    cell = {(s["variant"], s["set"], s["mode"]): s for s in summaries}
    lines = ["# What each technique is worth", "",
             f"`spritefit bench versus --ablation`: {settings.size} px, N={settings.n}, {settings.iters} iterations, "
             f"seed {settings.seed}. Mean PSNR (dB) / SSIM over each set's targets; the change from today's "
             "defaults in brackets.", "",
             "| variant | " + " | ".join(f"{set_name} {mode}" for set_name, mode in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for variant in dict.fromkeys(s["variant"] for s in summaries):
        values = []
        for set_name, mode in columns:
            s = cell.get((variant, set_name, mode))
            values.append("" if s is None else f"{s['psnr']:.2f} / {s['ssim']:.4f}" + (
                "" if variant == DEFAULTS else f" ({s['delta_psnr']:+.2f} / {s['delta_ssim']:+.4f})"))
        lines.append(f"| {variant} | " + " | ".join(values) + " |")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "versus-ablation.md").write_text("\n".join(lines) + "\n")
