"""`spritefit bench speed` and `spritefit bench quality` run and report every field."""
import json
import subprocess
import sys


def test_bench_speed_json_smallest_scenario():
    run = subprocess.run([sys.executable, "-m", "spritefit.cli", "bench", "speed", "--json",
                          "--scenario", "a-256-n300", "--repeats", "1"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    kernels = [row for row in rows if row["kind"] == "kernel"]
    assert {"native", "reference"} <= {row["backend"] for row in kernels}
    native = next(r for r in kernels if r["backend"] == "native" and r["device"] == "cpu")
    assert native["forward_ms"] > 0 and native["backward_ms"] > 0 and native["peak_memory_mb"] > 0
    assert native["speedup_vs_reference"] > 1
    # the real fit: `spritefit fit` with its clock on, the kernels' time inside its iterations
    fit = next(r for r in rows if r["kind"] == "fit")
    assert "error" not in fit, fit
    assert fit["iteration_ms"] > fit["kernel_ms"] > 0 and fit["iteration_over_kernel"] > 1
    shares = fit["stage_share"]
    assert set(shares) == {"kernel forward", "forward outside the kernel", "kernel backward",
                           "loss and its gradient", "optimiser", "schedules and heuristics", "progress"}
    assert all(share >= 0 for share in shares.values()) and 0.8 < sum(shares.values()) <= 1.0001
    assert fit["forward_samples_per_s_per_core"] > 1e5 and fit["backward_samples_per_s_per_core"] > 1e5
    assert 0 < fit["setup_s"] < fit["startup_s"] < fit["end_to_end_s"] and fit["export_s"] > 0
    assert fit["startup_s"] + (fit["fit_s"] - fit["setup_s"]) + fit["export_s"] <= fit["end_to_end_s"] + 0.02


def test_bench_quality_quick_runs_every_preset_and_ablation_row(tmp_path):
    from spritefit.bench import ABLATIONS
    run = subprocess.run([sys.executable, "-m", "spritefit.cli", "bench", "quality", "--quick", "--json",
                          "--report", str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    presets = [r for r in rows if r["kind"] == "preset"]
    assert [r["preset"] for r in presets] == ["fast", "balanced", "quality"]
    assert {r["variant"] for r in rows if r["kind"] == "ablation"} == set(ABLATIONS)
    summaries = [r for r in rows if r["kind"] == "ablation-summary"]
    assert len(summaries) == len(ABLATIONS) - 1
    assert all(0 < r["psnr"] < 60 and 0 < r["ssim"] <= 1 for r in presets)
    report = (tmp_path / "quality.md").read_text()
    assert "## Ablation" in report and "off: respawn" in report
    assert len(list((tmp_path / "quality").glob("*.jpg"))) == 4   # the target and one result per preset


def test_bench_quality_rejects_unknown_targets():
    run = subprocess.run([sys.executable, "-m", "spritefit.cli", "bench", "quality", "--targets", "mars"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "unknown target mars" in run.stderr


def test_bench_batch_quick_measures_in_process_and_on_one_and_two_nodes():
    run = subprocess.run([sys.executable, "-m", "spritefit.cli", "bench", "batch", "--quick", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    runs = [r for r in rows if r["kind"] == "run"]
    assert [(r["where"], r["nodes"], r["done"]) for r in runs] == [("in-process", 0, 4), ("ray-1-node", 1, 4),
                                                                   ("ray-2-nodes", 2, 4)]
    assert all(r["seconds"] > 0 and r["peak_memory_mb"] > 50 for r in runs)
    summary = rows[-1]
    assert summary["kind"] == "summary" and summary["speedup_2_nodes"] > 0 and summary["memory_per_task_mb"] > 50


def test_bench_versus_quick_runs_every_method_and_the_margins(tmp_path):
    from spritefit.bench.versus import MARGINS, METHODS
    run = subprocess.run([sys.executable, "-m", "spritefit.cli", "bench", "versus", "--quick", "--json",
                          "--report", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["method"] for r in rows if r["kind"] == "versus"] == list(METHODS)
    assert {(r["method"], r["versus"]) for r in rows if r["kind"] == "versus-summary"} == set(MARGINS)
    half = next(r for r in rows if r.get("method") == "spritefit-half-n")
    assert half["n"] == 10 and all(0 < r["psnr"] < 60 for r in rows if r["kind"] == "versus")
    assert "## SpriteFit's margin" in (tmp_path / "versus.md").read_text()


def test_bench_versus_ablation_quick_runs_every_variant(tmp_path):
    from spritefit.bench.versus_ablation import ABLATIONS, DEFAULTS
    run = subprocess.run([sys.executable, "-m", "spritefit.cli", "bench", "versus", "--ablation", "--quick", "--json",
                          "--report", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["variant"] for r in rows if r["kind"] == "ablation"] == list(ABLATIONS)
    summaries = {r["variant"]: r for r in rows if r["kind"] == "ablation-summary"}
    assert set(summaries) == set(ABLATIONS) and summaries[DEFAULTS]["delta_psnr"] == 0
    # the SSIM weight changes the fit: an ablation row that changed nothing would be a bug. Both
    # scores are compared, as printed (2 and 4 decimals): a changed fit can round to the same PSNR.
    scores = {name: (summaries[name]["psnr"], summaries[name]["ssim"]) for name in ("SSIM weight 0.2", DEFAULTS)}
    assert scores["SSIM weight 0.2"] != scores[DEFAULTS]
    assert "| SSIM weight 0.2 |" in (tmp_path / "versus-ablation.md").read_text()


def test_bench_few_quick_compares_the_search_with_the_structure_start():
    run = subprocess.run([sys.executable, "-m", "spritefit.cli", "bench", "few", "--quick", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert sorted((r["set"], r["init"]) for r in rows if r["kind"] == "few") == \
        [("held-out", "auto"), ("held-out", "structure"), ("tuning", "auto"), ("tuning", "structure")]
    assert all(0 < r["psnr"] < 80 for r in rows if r["kind"] == "few")
    assert len([r for r in rows if r["kind"] == "few-summary"]) == 4


def test_bench_video_quick_runs_every_method_and_ablation_row_on_every_clip(tmp_path):
    from spritefit.bench.video import ABLATION, CLIPS, METHODS
    from spritefit.video import decode_video
    gif = tmp_path / "heldout.gif"
    run = subprocess.run([sys.executable, "-m", "spritefit.cli", "bench", "video", "--quick", "--json", "--gif", str(gif)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    rows, summaries = [r for r in lines if "method" in r], [r for r in lines if r.get("kind") == "summary"]
    for clip in CLIPS:
        methods = [r["method"] for r in rows if r["clip"] == clip.name]
        assert methods == list(METHODS) + ([] if clip.held_out else list(ABLATION)), clip.name
    assert [s["held_out"] for s in summaries] == [c.held_out for c in CLIPS]
    assert all(r["flicker"] > 0 and r["e_warp"] > 0 and r["psnr"] > 10 for r in rows)
    assert [r["shots"] for r in rows if r["clip"] == "hopper-cut"] == [1, 1, 1]     # 3 frames: before the cut
    frames = decode_video(gif)
    assert len(frames) == 3 and frames[0].shape[1] == 3 * 160 + 4                  # target | plain | spritefit
