"""`spritefit bench batch`: the same batch of images fitted in this process, on a Ray cluster of
one node and on a cluster of two nodes (1 CPU each, started on this machine), in one run: the
speed-up of the second node, Ray's overhead per image (the time outside the fit itself, on one
node, less the same in this process) and the memory each task needs."""
from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

BENCH_TARGETS = Path(__file__).resolve().parents[1] / "data" / "targets" / "bench"


def crop_images(folder: Path, count: int, size: int) -> list[Path]:
    """`count` different square pictures of `size` px: crops of the bundled bench photographs."""
    folder.mkdir(parents=True, exist_ok=True)
    photos = sorted(BENCH_TARGETS.glob("*.jpg"))
    paths = []
    for i in range(count):
        photo = Image.open(photos[i % len(photos)]).convert("RGB")
        side = min(photo.size)
        left = (i // len(photos)) * side // 5 % max(1, photo.width - side // 2)
        crop = photo.crop((left, 0, left + side // 2, side // 2)).resize((size, size), Image.LANCZOS)
        paths.append(folder / f"img{i}.png")
        crop.save(paths[-1])
    return paths


@contextmanager
def cpu_threads(count: int):
    """This process's CPU threads, for the block, as a Ray task with `count` CPUs gets."""
    from ..render.native import set_cpu_threads
    before = set_cpu_threads(count)
    try:
        yield
    finally:
        set_cpu_threads(before)


def bench_batch(images: int = 8, n: int = 300, iters: int = 100, size: int = 128, as_json: bool = False) -> list[dict]:
    from ..batch import BatchSettings, collect_inputs, run_batch
    from ..cluster.connect import disconnect
    from ..cluster.executors import LocalExecutor, RayExecutor
    from ..cluster.local import LocalCluster
    from ..sprites import load_sprites

    settings = BatchSettings(formats=("png", "json"), options=dict(n=n, iters=iters, size=size))
    sprites = load_sprites("shapes")
    rows = []
    with tempfile.TemporaryDirectory(prefix="spritefit-bench-batch-") as tmp:
        inputs = collect_inputs([str(p) for p in crop_images(Path(tmp) / "in", images, size)])

        def measure(label: str, nodes: int, executor) -> None:
            out = Path(tmp) / label
            start = time.perf_counter()
            summary = run_batch(inputs, sprites, settings, out, executor)
            seconds = time.perf_counter() - start
            records = [json.loads((out / image.folder / "result.json").read_text()) for image in inputs]
            fitting = sum(r["seconds"] for r in records)
            row = {"kind": "run", "where": label, "nodes": nodes, "images": images, "n": n, "iters": iters,
                   "size": size, "seconds": round(seconds, 2), "done": sum(r.status == "done" for r in summary),
                   "fit_seconds_per_image": round(fitting / images, 2),
                   # the CPU time of the run (wall time x CPUs) spent on anything but the fit itself:
                   # reading, exporting, writing (and on Ray: scheduling, moving bytes, starting workers)
                   "other_seconds_per_image": round((seconds * max(1, nodes) - fitting) / images, 2),
                   "peak_memory_mb": max(r["peak_memory_mb"] or 0 for r in records)}
            rows.append(row)
            print(json.dumps(row) if as_json else _format(row), flush=True)

        with cpu_threads(1):
            run_batch(inputs[:1], sprites, settings, Path(tmp) / "warm-up", LocalExecutor())   # imports, caches
            measure("in-process", 0, LocalExecutor())
        token = secrets.token_hex(32)       # Ray keeps the first token it reads: one for both clusters
        for nodes in (1, 2):
            with LocalCluster(cpus=[1] * nodes, token=token) as cluster:
                os.environ.update(cluster.environment)
                measure(f"ray-{nodes}-node{'s' if nodes > 1 else ''}", nodes, RayExecutor(cluster.address))
                disconnect()
    local, one, two = rows
    summary = {"kind": "summary", "speedup_2_nodes": round(one["seconds"] / two["seconds"], 2),
               "ray_overhead_s_per_image": round(one["other_seconds_per_image"] - local["other_seconds_per_image"], 2),
               "memory_per_task_mb": one["peak_memory_mb"]}
    print(json.dumps(summary) if as_json else
          f"2 nodes: {summary['speedup_2_nodes']:.2f}x faster than 1; Ray's overhead "
          f"{summary['ray_overhead_s_per_image']:.2f} s an image; a task's peak memory "
          f"{summary['memory_per_task_mb']:.0f} MB", flush=True)
    return rows + [summary]


def _format(row: dict) -> str:
    return (f"{row['where']:12s} {row['images']} images ({row['size']} px, N={row['n']}, {row['iters']} it): "
            f"{row['seconds']:.1f} s, {row['done']} done; an image: fit {row['fit_seconds_per_image']:.2f} s, "
            f"the rest {row['other_seconds_per_image']:.2f} s; peak memory {row['peak_memory_mb']:.0f} MB")
