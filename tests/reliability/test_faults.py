"""Faults injected into the worker: killed at any moment, its stdout closed, a full disk, too
little memory, folders left by dead processes. The client reports each one; nothing
half-written is ever left under a final name."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

import spritefit_client as client
from spritefit.worker import pixels

TARGET = (64, 48)


def job_inputs(folder) -> tuple[dict, dict]:
    width, height = TARGET
    data = bytes(b for i in range(width * height) for b in (i % 251, (7 * i) % 253, (3 * i) % 255, 255))
    return client.write_pixels(str(folder), "target.raw", data, width, height, "BGRA8"), {"pack": "shapes"}


def complete_or_absent(folder) -> str:
    """'complete' when the job's manifest and every file it names are whole, 'absent' when there
    is no manifest; anything else fails."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        return "absent"
    manifest = client.read_manifest(str(manifest_path))
    patches = list(client.iter_patches(manifest))
    for layer, data in patches:
        assert len(data) == layer["width"] * layer["height"] * pixels.bytes_per_pixel(manifest["pixel_format"])
    for name in (manifest["composite"], manifest["scene"]):
        assert (folder / name).stat().st_size > 0
    json.loads((folder / manifest["scene"]).read_text())
    return "complete"


JOB_OPTIONS = {"n": 300, "iters": 200, "size": 64}


def job_seconds(folder) -> float:
    """How long the job takes on this machine, from its request to its result, in a fresh worker."""
    target, sprites = job_inputs(folder)
    with client.WorkerProcess(sys.executable) as worker:
        start = time.monotonic()
        worker.run("timing", str(folder), target, sprites, JOB_OPTIONS, "BGRA8")
        return time.monotonic() - start


def test_worker_killed_at_random_moments_leaves_whole_results_or_none(tmp_path, count_case):
    # Kill times are drawn over the job's own length on this machine (and a little past it), so
    # that kills land during the start, the fit and the writing however fast the machine is.
    timing_folder = tmp_path / "timing"
    timing_folder.mkdir()
    seconds = job_seconds(timing_folder)
    rng = random.Random(0)
    outcomes = []
    for trial in range(12):
        folder = tmp_path / f"job{trial}"
        folder.mkdir()
        target, sprites = job_inputs(folder)
        worker = client.WorkerProcess(sys.executable)
        worker.send(client.run_request("k", str(folder), target, sprites, JOB_OPTIONS, "BGRA8"))
        time.sleep(rng.uniform(0.0, 1.25 * seconds))
        worker.process.send_signal(signal.SIGKILL)
        with pytest.raises(client.WorkerError, match="stopped unexpectedly"):
            while True:
                if worker.next_event(30).get("event") in ("result", "error"):
                    worker.next_event(30)
        outcomes.append(complete_or_absent(folder))
        count_case("faults: kill at random time")
    assert "absent" in outcomes, f"every job finished before its kill (a job takes {seconds:.2f} s)"


def test_worker_with_closed_stdout_leaves(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "spritefit.worker"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=client.clean_environment())
    assert json.loads(process.stdout.readline())["event"] == "hello"
    process.stdout.close()
    target, sprites = job_inputs(tmp_path)
    process.stdin.write(client.run_request("c", str(tmp_path), target, sprites, {"n": 20, "iters": 2000, "size": 64}, "BGRA8"))
    process.stdin.flush()
    assert process.wait(timeout=60) == 0     # its first progress event finds nobody listening


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small file system needs root")
def test_full_disk_is_reported_and_leaves_no_result(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(disk)], check=True)
    try:
        target, sprites = job_inputs(disk)
        with client.WorkerProcess(sys.executable) as worker:
            with pytest.raises(client.WorkerError, match="No space left on device"):
                worker.run("d", str(disk), target, sprites, {"n": 400, "iters": 3, "size": 64}, "BGRA8")
        assert complete_or_absent(disk) == "absent"
        assert not [p.name for p in disk.iterdir() if p.name.endswith(".tmp")]
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_too_little_memory_is_refused_with_advice(tmp_path):
    """A worker under an address-space cap (as a container or ulimit sets) is asked for a fit that
    cannot fit in it."""
    import resource

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))
    process = subprocess.Popen([sys.executable, "-m", "spritefit.worker"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=client.clean_environment(),
                               preexec_fn=cap)
    try:
        assert json.loads(process.stdout.readline())["event"] == "hello"
        target, sprites = job_inputs(tmp_path)
        process.stdin.write(client.run_request("m", str(tmp_path), target, sprites, {"n": 500, "iters": 2, "size": 4096}, "BGRA8"))
        process.stdin.flush()
        event = json.loads(process.stdout.readline())
        assert event["event"] == "error" and event["kind"] == "input"
        assert "GB of memory" in event["message"] and "--size" in event["message"]
    finally:
        process.kill()
        process.wait()


def test_job_folders_of_dead_processes_are_removed_on_the_next_start(tmp_path, monkeypatch):
    monkeypatch.setattr(client.tempfile, "gettempdir", lambda: str(tmp_path))
    root = tmp_path / client.JOBS_FOLDER
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (root / f"krita-{dead.pid}-abc123").mkdir(parents=True)
    (root / f"gimp-{os.getppid()}-def456").mkdir()          # a live process's job
    (root / "unrelated").mkdir()
    folder = client.new_job_folder("blender-")
    left = sorted(p.name for p in root.iterdir())
    assert f"krita-{dead.pid}-abc123" not in left
    assert f"gimp-{os.getppid()}-def456" in left and "unrelated" in left and os.path.basename(folder) in left
