"""`spritefit bench versus`: SpriteFit against the baselines (bench/baselines.py), in one process,
on the tuning set (the bundled bench targets and packs the defaults were chosen on) and on the
held-out set (data/heldout: photographs, Krita's brush tips and opaque colour tiles no default
was tuned on). DiffBMP's setting: 256 px, N=300, 100 iterations, tint and original colours.

Per case it runs: SpriteFit's defaults; `naive`; `diffbmp`; SpriteFit given the wall time the
naive fit takes (as many iterations as fit in it); SpriteFit with half the sprites. The naive
fit's quality is computed with the native renderer, which gives the dense renderer's images and
gradients (the tests hold them within 1e-3) far faster; its wall time is the dense renderer's,
timed over 2 iterations and scaled to the run. SpriteFit's equal-time run stops at 800
iterations (the quality preset's) even where more would fit, unless told otherwise
(`--equal-time-cap`): with the cap its margin is a lower bound.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data"
# (set, targets folder, colour mode -> sprite set)
SETS = {
    "tuning": (DATA / "targets" / "bench", {"tint": "shapes", "original": "leaves"}),
    "held-out": (DATA / "heldout" / "targets", {"tint": str(DATA / "heldout" / "sprites" / "krita-tips"),
                                                 "original": str(DATA / "heldout" / "sprites" / "colour-tiles")}),
}
METHODS = ("spritefit", "naive", "diffbmp", "spritefit-equal-time", "spritefit-half-n")
# The margins reported: SpriteFit's defaults over every other run, and SpriteFit with half the
# sprites over the baselines with all of them.
MARGINS = tuple(("spritefit", other) for other in METHODS[1:]) + \
    (("spritefit-half-n", "naive"), ("spritefit-half-n", "diffbmp"))


@dataclass
class VersusSettings:
    sets: tuple[str, ...] = ("tuning", "held-out")
    modes: tuple[str, ...] = ("tint", "original")
    size: int = 256
    n: int = 300
    iters: int = 100
    seed: int = 0
    limit: int | None = None          # targets per set (None: all)
    methods: tuple[str, ...] = METHODS
    equal_time_cap: int | None = 800  # iterations of the equal-time run at most (None: as many as fit)


def set_targets(name: str, limit: int | None = None) -> list[Path]:
    return sorted(SETS[name][0].glob("*.jpg"))[:limit]


def _measure(method: str, image: np.ndarray, sprites, mode: str, s: VersusSettings, seconds_budget: float | None):
    import torch

    from ..fitting import fit
    from .baselines import diffbmp_fit, naive_fit
    target = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    if method == "naive":
        return naive_fit(target, sprites, s.n, s.iters, mode, s.seed, backend="native")
    if method == "diffbmp":
        return diffbmp_fit(target, sprites, s.n, s.iters, mode, s.seed)
    if method == "spritefit-half-n":
        return fit(image, sprites, n=s.n // 2, iters=s.iters, color_mode=mode, seed=s.seed)
    if method == "spritefit-equal-time":
        return fit(image, sprites, n=s.n, iters=_iterations_in(seconds_budget, image, sprites, mode, s),
                   color_mode=mode, seed=s.seed)
    return fit(image, sprites, n=s.n, iters=s.iters, color_mode=mode, seed=s.seed)


def _dense_naive_seconds(image: np.ndarray, sprites, mode: str, s: VersusSettings, timed: int = 2) -> float:
    """The naive fit's wall time with its dense renderer: `timed` iterations, scaled to the run."""
    import torch

    from .baselines import naive_fit
    target = torch.from_numpy(image).permute(2, 0, 1).contiguous()
    naive_fit(target, sprites, s.n, 1, mode, s.seed)           # warm-up: allocations, atlas
    start = time.perf_counter()
    naive_fit(target, sprites, s.n, timed, mode, s.seed)
    return (time.perf_counter() - start) / timed * s.iters


def _iterations_in(seconds: float, image, sprites, mode: str, s: VersusSettings) -> int:
    """How many iterations of SpriteFit's default fit take `seconds` here (timed on a short run),
    at most s.equal_time_cap."""
    from ..fitting import fit
    start = time.perf_counter()
    fit(image, sprites, n=s.n, iters=20, color_mode=mode, seed=s.seed)
    per_iteration = (time.perf_counter() - start) / 20
    return min(s.equal_time_cap or 10 ** 9, max(s.iters, int(seconds / per_iteration)))


@dataclass
class Case:
    set: str
    target: str
    mode: str
    pack: str            # the sprite set's name or folder
    image: np.ndarray    # the target at the working size
    sprites: list


def cases(settings: VersusSettings):
    """Every (set, target, colour mode) of the settings, with its target image and sprite set."""
    from ..fitting import prepare_target
    from ..sprites import load_sprites
    for set_name in settings.sets:
        for path in set_targets(set_name, settings.limit):
            image = prepare_target(path, settings.size)
            for mode in settings.modes:
                pack = SETS[set_name][1][mode]
                yield Case(set_name, path.stem, mode, pack, image, load_sprites(pack))


def case_row(kind: str, case: Case, scene, seconds: float, **fields) -> dict:
    """A result row: the case, the scene's PSNR and SSIM against the target, and `fields`."""
    from ..fitting import evaluate
    metrics = evaluate(scene, case.image)
    return {"kind": kind, "set": case.set, "target": case.target, "pack": Path(case.pack).name, "mode": case.mode,
            **fields, "n": len(scene), "psnr": round(metrics["psnr"], 2), "ssim": round(metrics["ssim"], 4),
            "seconds": round(seconds, 1)}


def bench_versus(settings: VersusSettings, as_json: bool = False, report: Path | None = None) -> list[dict]:
    rows = []
    # the dense renderer's time is what the equal-time run gets (and the naive row reports)
    timed = "spritefit-equal-time" in settings.methods
    for case in cases(settings):
        naive_seconds = _dense_naive_seconds(case.image, case.sprites, case.mode, settings) if timed else None
        for method in settings.methods:
            start = time.perf_counter()
            scene = _measure(method, case.image, case.sprites, case.mode, settings, naive_seconds)
            seconds = naive_seconds if method == "naive" and timed else time.perf_counter() - start
            rows.append(case_row("versus", case, scene, seconds, method=method))
            print(json.dumps(rows[-1]) if as_json else _format(rows[-1]), flush=True)
    summaries = versus_summary(rows)
    for summary in summaries:
        print(json.dumps(summary) if as_json else _format_summary(summary), flush=True)
    if report is not None:
        write_versus_report(rows + summaries, settings, Path(report))
    return rows + summaries


def versus_summary(rows: list[dict]) -> list[dict]:
    """Per set and colour mode, the mean margin of each pair in MARGINS."""
    summaries = []
    for set_name in dict.fromkeys(r["set"] for r in rows):
        for mode in dict.fromkeys(r["mode"] for r in rows if r["set"] == set_name):
            cases = {}
            for r in rows:
                if r["set"] == set_name and r["mode"] == mode:
                    cases.setdefault(r["target"], {})[r["method"]] = r
            for method, other in MARGINS:
                pairs = [(c[method], c[other]) for c in cases.values() if method in c and other in c]
                if not pairs:
                    continue
                summaries.append({
                    "kind": "versus-summary", "set": set_name, "mode": mode, "method": method, "versus": other,
                    "cases": len(pairs),
                    "delta_psnr": round(float(np.mean([a["psnr"] - b["psnr"] for a, b in pairs])), 2),
                    "min_delta_psnr": round(float(min(a["psnr"] - b["psnr"] for a, b in pairs)), 2),
                    "delta_ssim": round(float(np.mean([a["ssim"] - b["ssim"] for a, b in pairs])), 4)})
    return summaries


def _format(row: dict) -> str:
    return (f"{row['set']:8s} {row['target']:12s} {row['mode']:8s} {row['method']:21s} N={row['n']:<4d} "
            f"PSNR {row['psnr']:6.2f} dB  SSIM {row['ssim']:.4f}  {row['seconds']:6.1f} s")


def _format_summary(s: dict) -> str:
    return (f"{s['set']:8s} {s['mode']:8s} {s['method']:16s} vs {s['versus']:21s} over {s['cases']} targets: PSNR "
            f"{s['delta_psnr']:+.2f} dB (worst {s['min_delta_psnr']:+.2f}), SSIM {s['delta_ssim']:+.4f}")


def write_versus_report(rows: list[dict], settings: VersusSettings, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["# SpriteFit against the baselines", "",
             f"`spritefit bench versus`: {settings.size} px, N={settings.n}, {settings.iters} iterations, seed "
             f"{settings.seed}, on a 2-core CPU, every method in the same process.", "",
             "| set | target | mode | method | N | PSNR (dB) | SSIM | time (s) |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['set']} | {r['target']} | {r['mode']} | {r['method']} | {r['n']} | {r['psnr']:.2f} | "
              f"{r['ssim']:.4f} | {r['seconds']:.1f} |" for r in rows if r["kind"] == "versus"]
    lines += ["", "## SpriteFit's margin", "", "Mean (and worst) PSNR difference, mean SSIM difference: the "
              "first method minus the second (SpriteFit's defaults, or SpriteFit with half the sprites).", "",
              "| set | mode | method | versus | targets | Δ PSNR (dB) | worst Δ PSNR | Δ SSIM |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {s['set']} | {s['mode']} | {s['method']} | {s['versus']} | {s['cases']} | {s['delta_psnr']:+.2f} | "
              f"{s['min_delta_psnr']:+.2f} | {s['delta_ssim']:+.4f} |" for s in rows if s["kind"] == "versus-summary"]
    (folder / "versus.md").write_text("\n".join(lines) + "\n")
