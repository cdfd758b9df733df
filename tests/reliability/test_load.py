"""Load: one worker serving 20 fits in a row keeps its memory flat, and two workers run side by
side on the same machine."""
from __future__ import annotations

import sys
import threading

import spritefit_client as client
from test_faults import job_inputs


def resident_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_twenty_fits_in_one_worker_keep_memory_flat(tmp_path, count_case):
    target, sprites = job_inputs(tmp_path)
    memory = []
    with client.WorkerProcess(sys.executable) as worker:
        for i in range(20):
            manifest = worker.run(f"fit{i}", str(tmp_path), target, sprites, {"n": 60, "iters": 8, "size": 64}, "BGRA8")
            assert len(manifest["layers"]) > 0
            memory.append(resident_mb(worker.process.pid))
            count_case("load: fits in one worker")
    print(f"worker memory after fits 3, 10, 20: {memory[2]:.0f}, {memory[9]:.0f}, {memory[19]:.0f} MB")
    assert memory[19] - memory[2] < max(30.0, 0.1 * memory[2])


def test_two_workers_at_once(tmp_path):
    results, errors = {}, []

    def run(name):
        folder = tmp_path / name
        folder.mkdir()
        target, sprites = job_inputs(folder)
        try:
            with client.WorkerProcess(sys.executable) as worker:
                results[name] = worker.run(name, str(folder), target, sprites, {"n": 80, "iters": 20, "size": 64}, "RGBA8")
        except client.WorkerError as exc:
            errors.append(exc)
    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors and sorted(results) == ["a", "b"]
    assert all(len(m["layers"]) > 0 and m["job"] == name for name, m in results.items())
