#!/usr/bin/env bash
# GPU readiness, on a machine with an NVIDIA GPU, nvcc and a CUDA build of PyTorch: builds the
# wheel with the CUDA kernels and installs it, runs the CUDA tests, `spritefit bench speed` (CPU
# and CUDA rows in one run, then the fit rows of scenario (b) on each device: time per iteration
# and the kernels' share) and a DiffBMP-default fit on the GPU (512 px, N=1000, 100 iterations),
# then prints one summary. Each step is bounded so that the whole stays within 8 minutes.
# Usage: bash scripts/gpu-check.sh [PYTHON]   (default python3; it must have torch with CUDA)
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-python3}
OUT=${OUT:-$(mktemp -d)}
summary=()
step() {   # step NAME SECONDS COMMAND...: runs it, logs to $OUT/NAME.log, notes the outcome
  local name=$1 limit=$2; shift 2
  local start=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local status=$?
  summary+=("$(printf '%-10s %-6s %4ss' "$name" "$([ $status = 0 ] && echo ok || echo "FAIL($status)")" $((SECONDS - start)))")
  return $status
}

"$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name())" \
  || { echo "gpu-check: $PYTHON has no CUDA build of PyTorch, or no GPU is visible"; exit 2; }
export SPRITEFIT_CUDA=on PYTHONUNBUFFERED=1
step wheel 240 "$PYTHON" -m pip wheel --no-deps --no-build-isolation -w "$OUT/wheel" . &&
  step install 60 "$PYTHON" -m pip install --no-deps --force-reinstall "$OUT"/wheel/spritefit-*.whl
step cuda-tests 120 "$PYTHON" -m pytest -q tests/test_native_render.py -k cuda -p no:cacheprovider
step bench 90 "$PYTHON" -m spritefit.cli bench speed --repeats 3 --no-fit
# A real fit on each device: time per iteration next to the kernels' share of it.
step bench-fit 90 "$PYTHON" -m spritefit.cli bench speed --scenario b-diffbmp-512-n1000 --repeats 1
step fit 90 "$PYTHON" -m spritefit.cli fit core/spritefit/data/targets/chelsea.png --sprites shapes \
  -n 1000 --iters 100 --size 512 --device cuda --out "$OUT/fit" --force

echo "== gpu-check summary ($(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null))"
printf '%s\n' "${summary[@]}"
echo "-- CUDA tests:"; tail -n 1 "$OUT/cuda-tests.log"
echo "-- bench speed:"; cat "$OUT/bench.log"
echo "-- fits (per iteration, kernels' share):"; grep -A2 " fit" "$OUT/bench-fit.log"
echo "-- fit:"; grep -iE "psnr|seconds| s$" "$OUT/fit.log" | tail -n 3
grep -q FAIL <<<"${summary[*]}" && exit 1 || exit 0
