"""`spritefit bench live`: a painting session replayed through the worker protocol.

A worker is started as an editor starts it; the photo (by default the bundled one) goes to
`live_start`, then one brush stroke after another is painted onto it (a soft-edged band in a
random colour) and sent as `live_update`. Each update's time runs from writing the stroke's
pixels to receiving its `live_frame`, the round trip through the protocol included. The still
shift is the mean displacement of the instances whose pixel box does not touch the stroke's
pixels (they should not move at all).
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_TARGET = Path(__file__).resolve().parents[1] / "data" / "targets" / "chelsea.png"


def paint_stroke(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The image (h, w, 3) float with one more stroke, and the stroke's pixels (h, w) bool."""
    h, w = image.shape[:2]
    x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
    angle, length, width = rng.uniform(0, np.pi), rng.uniform(0.1, 0.3) * w, rng.uniform(3, 8)
    yy, xx = np.mgrid[:h, :w] + 0.5
    along = (xx - x0) * np.cos(angle) + (yy - y0) * np.sin(angle)
    across = -(xx - x0) * np.sin(angle) + (yy - y0) * np.cos(angle)
    cover = np.clip(width - np.abs(across), 0, 1) * (along >= 0) * (along <= length)
    painted = image * (1 - cover[..., None]) + rng.uniform(0, 1, 3) * cover[..., None]
    return painted.astype(np.float32), cover > 0


def _instances_touching(scene, region: np.ndarray) -> np.ndarray:
    from ..render import scene_atlas
    from ..render.layers import pixel_box
    atlas = scene_atlas(scene)
    touched = np.zeros(len(scene), bool)
    for i in range(len(scene)):
        box = pixel_box(atlas, scene.xy[i], float(scene.size[i]), float(scene.theta[i]), int(scene.sprite[i]),
                        scene.width, scene.height)
        touched[i] = box is not None and region[box[1]:box[3], box[0]:box[2]].any()
    return touched


def bench_live(target: str | None = None, sprites: str = "shapes", n: int = 300, size: int = 256,
               strokes: int = 12, seed: int = 0, as_json: bool = False) -> dict:
    client = _client()
    from ..fitting import prepare_target
    from ..scene import Scene
    image = prepare_target(target or DEFAULT_TARGET, size)
    rng = np.random.default_rng(seed)
    sprite_field = client.file_sprites("folder", str(Path(sprites).resolve())) if Path(sprites).is_dir() \
        else {"pack": sprites}
    updates, shifts, psnrs = [], [], []
    with tempfile.TemporaryDirectory(prefix="spritefit-live-") as folder, client.WorkerProcess(sys.executable) as worker:
        started = time.perf_counter()
        worker.send(client.run_request("live", folder, _pixels(client, folder, "start.raw", image), sprite_field,
                                       {"n": n, "size": size}, "RGBA8", op="live_start"))
        frame = _frame(worker, None)
        first_fit = time.perf_counter() - started
        scene = Scene.load(frame["scene"])
        for k in range(strokes):
            image, stroke = paint_stroke(image, rng)
            sent = time.perf_counter()
            descriptor = _pixels(client, folder, f"stroke-{k}.raw", image)
            worker.send(client.encode_request("live_update", job="live", id=k, target=descriptor))
            frame = _frame(worker, k)
            updates.append(time.perf_counter() - sent)
            psnrs.append(frame["psnr"])
            after = Scene.load(frame["scene"])
            still = ~_instances_touching(scene, stroke)[:len(after)]
            shifts.append(float(np.linalg.norm(after.xy[still] - scene.xy[still], axis=1).mean()) if still.any() else 0.0)
            scene = after
            if not as_json:
                print(f"stroke {k + 1:2d}: frame in {updates[-1]:.2f} s ({frame['seconds']:.2f} s fitting), "
                      f"{frame['frozen']} of {len(after)} sprites frozen, still shift {shifts[-1]:.3f} px", flush=True)
        worker.send(client.encode_request("live_stop", job="live"))
    ordered = sorted(updates)
    summary = {"kind": "live", "target": str(target or DEFAULT_TARGET.name), "sprites": sprites, "n": n,
               "size": size, "strokes": strokes, "first_fit_s": round(first_fit, 3),
               "median_update_s": round(statistics.median(updates), 3),
               "p90_update_s": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 3),
               "still_shift_px": round(float(np.mean(shifts)), 4),
               "mean_frame_psnr": round(float(np.mean(psnrs)), 3)}   # each frame against its own target
    print(json.dumps(summary) if as_json else
          f"median update {summary['median_update_s']:.2f} s, p90 {summary['p90_update_s']:.2f} s, still sprites moved "
          f"{summary['still_shift_px']:.3f} px on average (first fit {summary['first_fit_s']:.1f} s)")
    return summary


def _client():
    """The editors' worker client (plugins/client), which the bench drives as a host would."""
    from ..errors import SpriteFitError
    folder = Path(__file__).resolve().parents[3] / "plugins" / "client"
    if not (folder / "spritefit_client.py").is_file():
        raise SpriteFitError("bench live drives the editors' worker client: run it from a source checkout "
                             "(plugins/client/spritefit_client.py)")
    sys.path.insert(0, str(folder))
    import spritefit_client
    return spritefit_client


def _pixels(client, folder: str, name: str, image: np.ndarray) -> dict:
    rgba = np.concatenate([image, np.ones(image.shape[:2] + (1,), np.float32)], axis=2)
    data = np.round(np.clip(rgba, 0, 1) * 255).astype(np.uint8).tobytes()
    return client.write_pixels(folder, name, data, image.shape[1], image.shape[0], "RGBA8")


def _frame(worker, request_id) -> dict:
    """The live_frame answering request_id (None: the first fit); an error event raises."""
    from ..errors import SpriteFitError
    while True:
        event = worker.next_event(600)
        if event["event"] == "error":
            raise SpriteFitError(f"the live session failed: {event['message']}")
        if event["event"] == "live_frame" and event.get("id") == request_id:
            return event
