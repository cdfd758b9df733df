"""`spritefit bench speed`: forward/backward time and peak memory of each renderer backend.

Every (scenario, backend) runs in a fresh process so its peak memory is its own; the speed-up
over the reference renderer is computed from numbers measured in the same invocation.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time

# name -> (width, height, N, smallest and largest half-size in pixels)
SCENARIOS = {
    "a-256-n300": (256, 256, 300, 2.0, 20.0),
    "b-diffbmp-512-n1000": (512, 512, 1000, 1.0, 25.0),   # DiffBMP default: sprites of 2-50 px
    "c-1024-n10000": (1024, 1024, 10_000, 1.0, 12.0),
    "d-2048-n50000": (2048, 2048, 50_000, 1.0, 10.0),
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
    return {"scenario": scenario, "backend": backend, "device": device, "width": width, "height": height,
            "n": n, "forward_ms": round(min(forward), 2), "backward_ms": round(min(backward), 2),
            "total_ms": round(min(f + b for f, b in zip(forward, backward)), 2),
            "peak_memory_mb": round(peak / 2 ** 20, 1)}


def _run_child(scenario: str, backend: str, device: str, repeats: int) -> dict:
    code = ("import json, sys; from spritefit.bench.speed import measure; "
            f"print(json.dumps(measure({scenario!r}, {backend!r}, {device!r}, {repeats})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        return {"scenario": scenario, "backend": backend, "device": device,
                "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_speed(scenarios: list[str], as_json: bool, repeats: int = 3) -> list[dict]:
    import torch

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
    return rows


def _format(row: dict) -> str:
    if "error" in row:
        return f"{row['scenario']:22s} {row['backend']:9s} {row['device']:4s}  error: {row['error']}"
    speedup = f"  x{row['speedup_vs_reference']}" if "speedup_vs_reference" in row else ""
    return (f"{row['scenario']:22s} {row['backend']:9s} {row['device']:4s}  forward {row['forward_ms']:9.1f} ms"
            f"  backward {row['backward_ms']:9.1f} ms  peak {row['peak_memory_mb']:8.1f} MB{speedup}")
