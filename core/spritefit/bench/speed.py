"""`spritefit bench speed`: forward/backward time and peak memory of each renderer backend, and
where the time of a real fit goes.

Every (scenario, backend) runs in a fresh process so its peak memory is its own; the speed-up
over the reference renderer is computed from numbers measured in the same invocation. Each
scenario's `fit` row is `spritefit fit` with default options, run as a user runs it, with its
stage clock on (spritefit.timing): the time per iteration next to the kernels' time inside the
same iterations, the share of each stage, and the command's start-up, fit and exports.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# name -> (width, height, N, smallest and largest half-size in pixels)
SCENARIOS = {
    "a-256-n300": (256, 256, 300, 2.0, 20.0),
    "b-diffbmp-512-n1000": (512, 512, 1000, 1.0, 25.0),   # DiffBMP default: sprites of 2-50 px
    "c-1024-n10000": (1024, 1024, 10_000, 1.0, 12.0),
    "d-2048-n50000": (2048, 2048, 50_000, 1.0, 10.0),
}
# scenario -> the real fits measured with it: (label, bundled bench target, working size, N, iterations).
# The larger canvases run fewer iterations: their time per iteration is what the row is about.
FIT_CASES = {
    "a-256-n300": [("fit", "astronaut", 256, 300, 100)],
    "b-diffbmp-512-n1000": [("fit", "astronaut", 512, 1000, 100),
                            ("fit diffbmp-default", "coffee", 512, 1000, 100)],   # a 512x341 photo, as DiffBMP's
    "c-1024-n10000": [("fit", "astronaut", 1024, 10_000, 20)],
    "d-2048-n50000": [("fit", "astronaut", 2048, 50_000, 10)],
}
REFERENCE_BUDGET_BYTES = 6e9   # the dense reference holds ~20 floats per instance and pixel


def reference_fits(width: int, height: int, n: int) -> bool:
    return n * width * height * 4 * 20 < REFERENCE_BUDGET_BYTES


def measure(scenario: str, backend: str, device: str, repeats: int) -> dict:
    """Run in the child process: time forward and backward, report peak memory."""
    import resource

    import torch

    from ..render import render
    from ..sprites import Atlas, load_sprites

    width, height, n, smallest, largest = SCENARIOS[scenario]
    g = torch.Generator().manual_seed(0)
    atlas = Atlas(load_sprites("shapes"), 128, device=device)
    params = dict(xy=torch.rand(n, 2, generator=g) * torch.tensor([width, height]),
                  log_size=torch.log(smallest + torch.rand(n, generator=g) * (largest - smallest)),
                  theta=torch.rand(n, generator=g) * 2 * math.pi, color=torch.rand(n, 3, generator=g),
                  opacity=0.5 + 0.5 * torch.rand(n, generator=g))
    params = {k: v.to(device).requires_grad_(True) for k, v in params.items()}
    sprite = torch.randint(0, atlas.num_sprites, (n,), generator=g).to(device)
    background = torch.rand(3, height, width, generator=g).to(device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    forward, backward = [], []
    for i in range(repeats + 1):             # the first run warms up caches and is not counted
        sync()
        t0 = time.perf_counter()
        out = render(atlas, **params, sprite=sprite, width=width, height=height, background=background,
                     sigma=1.0, backend=backend)
        sync()
        t1 = time.perf_counter()
        out.image.sum().backward()
        sync()
        t2 = time.perf_counter()
        if i:
            forward.append((t1 - t0) * 1e3)
            backward.append((t2 - t1) * 1e3)
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"kind": "kernel", "scenario": scenario, "backend": backend, "device": device, "width": width, "height": height,
            "n": n, "forward_ms": round(min(forward), 2), "backward_ms": round(min(backward), 2),
            "total_ms": round(min(f + b for f, b in zip(forward, backward)), 2),
            "peak_memory_mb": round(peak / 2 ** 20, 1)}


def _run_child(scenario: str, backend: str, device: str, repeats: int) -> dict:
    code = ("import json, sys; from spritefit.bench.speed import measure; "
            f"print(json.dumps(measure({scenario!r}, {backend!r}, {device!r}, {repeats})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        return {"kind": "kernel", "scenario": scenario, "backend": backend, "device": device,
                "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def measure_fit(label: str, scenario: str, target: str, size: int, n: int, iters: int, device: str) -> dict:
    """Run `spritefit fit` in a fresh process with SPRITEFIT_TIMINGS set and read its clock."""
    from ..timing import TIMINGS_ENV
    from .quality import TARGETS_DIR
    row = {"kind": "fit", "label": label, "scenario": scenario, "device": device, "target": target, "size": size,
           "n": n, "iters": iters}
    with tempfile.TemporaryDirectory(prefix="spritefit-bench-") as folder:
        clock_file = Path(folder) / "timings.json"
        command = [sys.executable, "-m", "spritefit.cli", "fit", str(TARGETS_DIR / f"{target}.jpg"), "--sprites", "shapes",
                   "-n", str(n), "--iters", str(iters), "--size", str(size), "--device", device,
                   "--out", str(Path(folder) / "out"), "--force", "--formats", _formats(n)]
        launched = time.time()
        done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, **{TIMINGS_ENV: str(clock_file)}))
        finished = time.time()
        if done.returncode != 0 or not clock_file.exists():
            lines = done.stderr.strip().splitlines()
            return dict(row, error=lines[-1] if lines else "failed")
        clock = json.loads(clock_file.read_text())
    return dict(row, **fit_figures(clock, iters, launched, finished, _cores()))


def _formats(n: int) -> str:
    """Every export a user gets by default, but the PSD where it cannot hold N layers."""
    from ..export.psd import MAX_LAYERS
    return "png,psd,svg,json" if n <= MAX_LAYERS else "png,svg,json"


# The stages of an iteration as the fit row reports them, each a sum (and difference) of clock keys.
ITERATION_STAGES = {
    "kernel forward": ["forward/kernel forward"],
    "forward outside the kernel": ["forward", "-forward/kernel forward"],     # checks, buffers, atlas blur
    "kernel backward": ["backward/kernel backward"],
    "loss and its gradient": ["loss", "backward", "-backward/kernel backward"],
    "optimiser": ["optimiser"],
    "schedules and heuristics": ["schedules", "heuristics"],                 # respawns, checkpoints, ...
    "progress": ["progress"],
}


def fit_figures(clock: dict, iters: int, launched: float, finished: float, cores: int) -> dict:
    """The fit row's numbers from a run's clock (spritefit.timing.StageClock.as_dict)."""
    seconds, counts, marks = clock["seconds"], clock["counts"], clock["marks"]
    inside = lambda key: seconds.get(f"iterations/{key}", 0.0)
    total = seconds["iterations"]
    shares = {name: sum(-inside(k[1:]) if k.startswith("-") else inside(k) for k in keys) / total
              for name, keys in ITERATION_STAGES.items()}
    kernel = inside("forward/kernel forward") + inside("backward/kernel backward")
    per_core = lambda samples, spent: samples / max(spent, 1e-9) / cores
    return {
        "iteration_ms": round(total / iters * 1e3, 2),
        "kernel_ms": round(kernel / iters * 1e3, 2),
        "iteration_over_kernel": round(total / kernel, 3),
        "stage_share": {name: round(share, 4) for name, share in shares.items()},
        "atlas_blur_ms": round(inside("forward/atlas blur") * 1e3, 1),
        "forward_samples_per_s_per_core": round(per_core(counts.get("iterations/forward/kernel forward samples", 0),
                                                         inside("forward/kernel forward"))),
        "backward_samples_per_s_per_core": round(per_core(counts.get("iterations/backward/kernel backward samples", 0),
                                                          inside("backward/kernel backward"))),
        "startup_s": round(marks["first iteration"] - launched, 2),           # process start to 1st iteration
        "setup_s": round(marks["first iteration"] - marks["fit called"], 2),  # of which inside fit()
        "fit_s": round(marks["fit done"] - marks["fit called"], 2),
        "export_s": round(marks["exported"] - marks["fit done"], 2),
        "end_to_end_s": round(finished - launched, 2),
        "cores": cores,
    }


def bench_speed(scenarios: list[str], as_json: bool, repeats: int = 3, fits: bool = True) -> list[dict]:
    from ..render.native import cuda_available
    devices = ["cpu"] + (["cuda"] if cuda_available() else [])
    rows = []
    for scenario in scenarios:
        width, height, n, _, _ = SCENARIOS[scenario]
        results = []
        for device in devices:
            results.append(_run_child(scenario, "native", device, repeats))
        if reference_fits(width, height, n):
            results.append(_run_child(scenario, "reference", "cpu", max(1, repeats // 2)))
        reference = next((r for r in results if r["backend"] == "reference" and "total_ms" in r), None)
        for row in results:
            if reference and "total_ms" in row:
                row["speedup_vs_reference"] = round(reference["total_ms"] / row["total_ms"], 1)
            rows.append(row)
            print(json.dumps(row) if as_json else _format(row), flush=True)
        for case in FIT_CASES[scenario] if fits else []:
            for device in devices:
                row = measure_fit(case[0], scenario, *case[1:], device)
                rows.append(row)
                print(json.dumps(row) if as_json else _format_fit(row), flush=True)
    return rows


def _format_fit(row: dict) -> str:
    head = f"{row['scenario']:22s} {row['label']:9s} {row['device']:4s}"
    if "error" in row:
        return f"{head}  error: {row['error']}"
    shares = ", ".join(f"{name} {share:.0%}" for name, share in row["stage_share"].items())
    return (f"{head}  {row['iters']} its of {row['iteration_ms']:.1f} ms"
            f" = {row['iteration_over_kernel']:.2f} x the kernels' {row['kernel_ms']:.1f} ms"
            f"\n{'':37s}stages: {shares}"
            f"\n{'':37s}samples/s/core: forward {row['forward_samples_per_s_per_core'] / 1e6:.1f} M, backward "
            f"{row['backward_samples_per_s_per_core'] / 1e6:.1f} M; command: start-up {row['startup_s']:.2f} s "
            f"(in fit() {row['setup_s']:.2f} s), "
            f"fit {row['fit_s']:.2f} s, exports {row['export_s']:.2f} s, end to end {row['end_to_end_s']:.2f} s")


def _format(row: dict) -> str:
    if "error" in row:
        return f"{row['scenario']:22s} {row['backend']:9s} {row['device']:4s}  error: {row['error']}"
    speedup = f"  x{row['speedup_vs_reference']}" if "speedup_vs_reference" in row else ""
    return (f"{row['scenario']:22s} {row['backend']:9s} {row['device']:4s}  forward {row['forward_ms']:9.1f} ms"
            f"  backward {row['backward_ms']:9.1f} ms  peak {row['peak_memory_mb']:8.1f} MB{speedup}")
