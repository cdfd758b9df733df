"""spritefit batch in this process: inputs from files, folders, globs and lists; one folder an
image; resume; a bad image reported by name while the rest go on; the summary files."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spritefit.batch import collect_inputs
from spritefit.bench.batch import crop_images
from spritefit.errors import SpriteFitError
from spritefit.scene import Scene

FAST = ["--sprites", "shapes", "-n", "20", "--iters", "8", "--size", "40", "--formats", "png,json"]


def small_images(folder: Path, count: int, size: int = 40) -> list[Path]:
    return crop_images(folder, count, size)


def spritefit(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spritefit.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_inputs_from_files_folders_globs_and_lists_get_distinct_folders(tmp_path):
    first = small_images(tmp_path / "a", 2)
    second = small_images(tmp_path / "b", 2)
    (tmp_path / "list.txt").write_text("# the second set\nb/img0.png\n\nb/img1.png  # again\n")
    images = collect_inputs([str(tmp_path / "a"), str(tmp_path / "list.txt"), str(tmp_path / "a" / "img0.png"),
                             str(tmp_path / "b" / "*.png")])
    assert [i.path for i in images] == [p.resolve() for p in first + second]        # each image once
    assert [i.folder for i in images] == ["img0", "img1", "img0-2", "img1-2"]
    with pytest.raises(SpriteFitError, match="no file, folder or pattern"):
        collect_inputs([str(tmp_path / "missing-*.png")])
    (tmp_path / "bad.txt").write_text("nowhere.png\n")
    with pytest.raises(SpriteFitError, match="line 1: nowhere.png is not a file"):
        collect_inputs([str(tmp_path / "bad.txt")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpriteFitError, match="holds no images"):
        collect_inputs([str(tmp_path / "empty")])


def test_a_batch_fits_every_image_reports_the_bad_one_and_resumes(tmp_path):
    small_images(tmp_path / "in", 3)
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "out"
    run = spritefit("batch", tmp_path / "in", *FAST, "--out", out)
    assert run.returncode == 1, run.stderr                       # one image failed
    assert "failed: image " in run.stdout and "broken.png is not an image file" in run.stdout
    rows = {row["folder"]: row for row in csv.DictReader(open(out / "summary.csv"))}
    assert {r["status"] for k, r in rows.items() if k != "broken"} == {"done"} and rows["broken"]["status"] == "failed"
    assert json.loads((out / "summary.json").read_text())[0]["folder"] == "broken"
    for name in ("img0", "img1", "img2"):
        record = json.loads((out / name / "result.json").read_text())
        assert sorted(record["files"]) == ["result.png", "scene.json"] and record["psnr"] > 5
        assert len(Scene.load(out / name / "scene.json")) == 20
        assert float(rows[name]["psnr"]) == record["psnr"]
    assert not list(out.rglob("*.tmp"))

    # An interrupted image (its result.json missing) is fitted again; finished ones are skipped.
    (out / "img1" / "result.json").unlink()
    finished_before = (out / "img0" / "scene.json").stat().st_mtime_ns
    (tmp_path / "in" / "broken.png").unlink()
    again = spritefit("batch", tmp_path / "in", *FAST, "--out", out)
    assert again.returncode == 0, again.stderr
    statuses = {r["folder"]: r["status"] for r in json.loads((out / "summary.json").read_text())}
    assert statuses == {"img0": "skipped", "img1": "done", "img2": "skipped"}
    assert (out / "img0" / "scene.json").stat().st_mtime_ns == finished_before
    assert (out / "img1" / "result.json").exists()


def test_same_seed_same_result_and_bad_options_fail_before_any_fit(tmp_path):
    small_images(tmp_path / "in", 1)
    for out in ("x", "y"):
        assert spritefit("batch", tmp_path / "in", *FAST, "--out", tmp_path / out).returncode == 0
    a, b = Scene.load(tmp_path / "x" / "img0" / "scene.json"), Scene.load(tmp_path / "y" / "img0" / "scene.json")
    assert np.array_equal(a.xy, b.xy) and np.array_equal(a.color, b.color)
    for bad, message in ((["--size", "3"], "--size must be an integer in 8..4096, not 3"),
                         (["-n", "0"], "-n must be an integer in 1..100000, not 0"),
                         (["--cpus-per-task", "0"], "--cpus-per-task must be at least 1"),
                         (["--ray", "nowhere"], "write it as HOST:PORT")):
        run = spritefit("batch", tmp_path / "in", *FAST, *bad, "--out", tmp_path / "z")
        assert run.returncode == 2 and message in run.stderr, (bad, run.stderr)
        assert not (tmp_path / "z" / "img0").exists()
