"""Times the native kernels of another commit beside this checkout's, alternating in one run (the
machine's load then affects both alike): forward and backward at `spritefit bench speed`'s
scenarios, each measured in a fresh process, the best of each side's rounds kept. With --fit,
also `spritefit fit` at DiffBMP's default (the 512x341 coffee photo, N=1000, 100 iterations),
end to end (the command's wall time), its fitting time (what the command reports), and its time per
iteration and iteration / kernels (from the fit's stage clock).

    git worktree add /tmp/base f8246ca
    cmake -S /tmp/base/csrc -B /tmp/base-build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPRITEFIT_CUDA=off \
        -Dpybind11_DIR=$(.venv/bin/python -c "import pybind11; print(pybind11.get_cmake_dir())")
    ninja -C /tmp/base-build
    .venv/bin/python scripts/compare_kernels.py /tmp/base /tmp/base-build [--rounds 3] [--fit] [--scenarios a-256-n300,...]

The other commit runs its own Python package (its render wrapper and bench) with its own module.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEASURE = """
import json, sys
if sys.argv[1] == "other":   # the editable install's finder would win over PYTHONPATH
    sys.meta_path = [f for f in sys.meta_path if "ScikitBuild" not in type(f).__name__]
from spritefit.bench.speed import measure
print(json.dumps(measure(sys.argv[2], "native", "cpu", int(sys.argv[3]))))
"""
FIT = """
import runpy, sys
if sys.argv[1] == "other":
    sys.meta_path = [f for f in sys.meta_path if "ScikitBuild" not in type(f).__name__]
sys.argv = ["spritefit", *sys.argv[2:]]
runpy.run_module("spritefit.cli", run_name="__main__")
"""
FIT_TARGET = Path(__file__).resolve().parents[1] / "core" / "spritefit" / "data" / "targets" / "bench" / "coffee.jpg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="the other commit's checkout")
    parser.add_argument("build", type=Path, help="the folder its native module was built in")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measurement")
    parser.add_argument("--scenarios", default="a-256-n300,b-diffbmp-512-n1000")
    parser.add_argument("--fit", action="store_true", help="also the DiffBMP-default fit, end to end")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        package = Path(folder) / "spritefit"
        shutil.copytree(args.checkout / "core" / "spritefit", package)
        for module in args.build.glob("_native*.so"):
            shutil.copy(module, package)
        best: dict = {}
        fits: dict = {}
        for _ in range(args.rounds):
            for scenario in args.scenarios.split(","):
                for side in ("other", "this"):
                    env = {"PYTHONPATH": folder} if side == "other" else {}
                    row = _measure(side, scenario, args.repeats, env)
                    key = (scenario, side)
                    if key not in best or row["total_ms"] < best[key]["total_ms"]:
                        best[key] = row
            if args.fit:
                for side in ("other", "this"):
                    seconds = _fit(side, {"PYTHONPATH": folder} if side == "other" else {}, Path(folder))
                    fits.setdefault(side, []).append(seconds)
    print(f"{'scenario':24} {'other fwd+bwd ms':>18} {'this fwd+bwd ms':>18} {'speed-up':>9}")
    for scenario in args.scenarios.split(","):
        other, this = best[(scenario, "other")], best[(scenario, "this")]
        print(f"{scenario:24} {other['forward_ms']:7.2f}+{other['backward_ms']:<9.2f} "
              f"{this['forward_ms']:7.2f}+{this['backward_ms']:<9.2f} {other['total_ms'] / this['total_ms']:8.2f}x")
    for side, runs in fits.items():
        print(f"DiffBMP-default fit, {side}: end to end " + ", ".join(f"{run[0]:.2f}" for run in runs)
              + " s; fitting " + ", ".join(f"{run[1]:.1f}" for run in runs) + " s; PSNR "
              + ", ".join(f"{run[2]:.2f}" for run in runs) + " dB; per iteration "
              + ", ".join(f"{run[3]:.1f}" for run in runs) + " ms; iteration / kernels "
              + ", ".join(f"{run[4]:.2f}" for run in runs))
    print(json.dumps({f"{s}/{side}": row for (s, side), row in best.items()}))


def _fit(side: str, env: dict, folder: Path) -> tuple[float, float, float, float, float]:
    """Of one DiffBMP-default fit: wall seconds, fitting seconds and PSNR as the command reports
    them, and from its stage clock the milliseconds per iteration and iteration / kernels."""
    clock = folder / f"timings-{side}.json"
    command = [sys.executable, "-c", FIT, side, "fit", str(FIT_TARGET), "--sprites", "shapes", "-n", "1000",
               "--iters", "100", "--size", "512", "--out", str(folder / f"fit-{side}"), "--force"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True,
                          env=dict(os.environ, SPRITEFIT_TIMINGS=str(clock), **env))
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{side} fit: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'failed'}")
    fitted = re.search(r"px, ([0-9.]+) s", done.stdout)      # "N sprites, WxH px, S s, PSNR P dB, ..."
    psnr = re.search(r"PSNR ([0-9.]+) dB", done.stdout)
    per_iteration = ratio = float("nan")     # commits before the stage clock write none
    if clock.exists():
        seconds = json.loads(clock.read_text())["seconds"]
        kernels = seconds["iterations/forward/kernel forward"] + seconds["iterations/backward/kernel backward"]
        per_iteration, ratio = seconds["iterations"] * 10, seconds["iterations"] / kernels   # ms of 100 iterations
    return (wall, float(fitted.group(1)) if fitted else float("nan"), float(psnr.group(1)) if psnr else float("nan"),
            per_iteration, ratio)


def _measure(side: str, scenario: str, repeats: int, env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", MEASURE, side, scenario, str(repeats)], capture_output=True,
                          text=True, env=dict(os.environ, **env))
    if done.returncode != 0:
        sys.exit(f"{side} {scenario}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'failed'}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
