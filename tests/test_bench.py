"""`spritefit bench speed` runs and reports every field, with the reference speed-up."""
import json
import subprocess
import sys


def test_bench_speed_json_smallest_scenario():
    run = subprocess.run([sys.executable, "-m", "spritefit.cli", "bench", "speed", "--json",
                          "--scenario", "a-256-n300", "--repeats", "1"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    backends = {row["backend"] for row in rows}
    assert {"native", "reference"} <= backends
    native = next(r for r in rows if r["backend"] == "native" and r["device"] == "cpu")
    assert native["forward_ms"] > 0 and native["backward_ms"] > 0 and native["peak_memory_mb"] > 0
    assert native["speedup_vs_reference"] > 1
