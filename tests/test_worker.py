"""The worker process, driven through the plugins' standard-library client exactly as the hosts
drive it: protocol, results in the hosts' byte orders, cancel, bad input, and its lifetime."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import spritefit_client as client
from spritefit.worker import pixels

TARGET = os.path.join(os.path.dirname(__file__), "..", "core", "spritefit", "data", "targets", "chelsea.png")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(np.mean((a - b) ** 2), 1e-12)))


@pytest.fixture
def worker():
    process = client.WorkerProcess(sys.executable)
    yield process
    process.kill()


def target_bgra(folder, width=96, height=64) -> dict:
    rgba = np.asarray(Image.open(TARGET).convert("RGBA").resize((width, height)))
    return client.write_pixels(str(folder), "target.raw", rgba[..., [2, 1, 0, 3]].tobytes(), width, height, "BGRA8")


def sprite_layers(folder) -> list[dict]:
    """A disc and a square as a host would send its layers (BGRA, transparent around them)."""
    yy, xx = np.mgrid[:12, :12]
    disc = np.zeros((12, 12, 4), np.uint8)
    disc[(yy - 5.5) ** 2 + (xx - 5.5) ** 2 < 30] = (0, 0, 255, 255)   # BGRA: red
    square = np.zeros((12, 12, 4), np.uint8)
    square[2:10, 2:10] = (255, 0, 0, 255)                            # blue
    return [dict(client.write_pixels(str(folder), f"layer{i}.raw", a.tobytes(), 12, 12, "BGRA8"), name=name)
            for i, (name, a) in enumerate([("disc", disc), ("square", square)])]


def composite(manifest: dict) -> np.ndarray:
    """What an editor shows: the background, then every patch with its opacity, normal blending."""
    height, width = manifest["height"], manifest["width"]
    image = np.zeros((height, width, 3)) + np.asarray(manifest["background"])
    for layer, data in client.iter_patches(manifest):
        rgba = pixels.decode(data, layer["width"], layer["height"], manifest["pixel_format"])
        x, y, w, h = layer["x"], layer["y"], layer["width"], layer["height"]
        alpha = rgba[..., 3:] * layer["opacity"]
        region = image[y:y + h, x:x + w]
        region[:] = rgba[..., :3] * alpha + region * (1 - alpha)
    return image


def test_hello_ping_and_protocol_errors(worker):
    assert worker.hello["protocol"] == client.PROTOCOL_VERSION and worker.hello["device"] == "cpu"
    from spritefit.options import described
    assert worker.hello["options"] == described()     # what the editors build their controls from
    worker.send(client.encode_request("ping"))
    assert worker.next_event(10)["event"] == "pong"
    worker.send(b"not json\n")
    error = worker.next_event(10)
    assert error["event"] == "error" and error["kind"] == "protocol" and "not valid JSON" in error["message"]
    worker.send(client.encode_request("fly", job="j"))
    assert "unknown op 'fly'" in worker.next_event(10)["message"]
    worker.send(b"[1, 2]\n")
    assert "must be a JSON object" in worker.next_event(10)["message"]


@pytest.mark.parametrize("pixel_format", ["BGRA8", "RGBA8", "RGBAF32"])
def test_run_returns_layers_that_composite_to_the_render(worker, tmp_path, pixel_format):
    progress = []
    manifest = worker.run("job1", str(tmp_path), target_bgra(tmp_path), {"layers": sprite_layers(tmp_path)},
                          {"n": 40, "iters": 25, "size": 64}, pixel_format, on_progress=progress.append)
    assert progress and progress[-1]["iteration"] == progress[-1]["total"] == 25
    assert any("preview" in p and os.path.exists(p["preview"]) for p in progress)
    assert (manifest["width"], manifest["height"]) == (96, 64) and not manifest["cancelled"]
    assert 0 < len(manifest["layers"]) <= 40
    assert {layer["name"].split(" #")[0] for layer in manifest["layers"]} <= {"disc", "square"}
    for layer in manifest["layers"]:
        assert 0 <= layer["x"] and layer["x"] + layer["width"] <= 96 and 0 < layer["opacity"] <= 1
    rendered = np.asarray(Image.open(tmp_path / manifest["composite"]).convert("RGB"), np.float64) / 255
    if pixel_format == "RGBAF32":
        # Blender's layout: bottom row first; flip back before compositing.
        for layer, data in client.iter_patches(manifest):
            rows = np.frombuffer(data, np.float32).reshape(layer["height"], layer["width"], 4)
            top_down = pixels.decode(data, layer["width"], layer["height"], "RGBAF32")
            assert np.allclose(rows[::-1], top_down)
            break
    assert psnr(composite(manifest), rendered) > 35
    assert manifest["psnr"] > 12


def test_mask_layers_constrain_the_fit(worker, tmp_path):
    """A keep-out layer (painted where sprites must not go) as a host sends it: BGRA, alpha = mask."""
    keep_out = np.zeros((64, 96, 4), np.uint8)
    keep_out[:, :48] = (0, 0, 0, 255)                                  # the left half
    masks = {"keep_out": client.write_pixels(str(tmp_path), "keep-out.raw", keep_out.tobytes(), 96, 64, "BGRA8")}
    manifest = worker.run("m", str(tmp_path), target_bgra(tmp_path), {"pack": "shapes"},
                          {"n": 30, "iters": 10, "size": 64, "keep_footprint": True, "background": "transparent"},
                          "RGBA8", inputs=masks)
    for layer in manifest["layers"]:
        assert layer["x"] >= 48                                       # every footprint right of the mask
    with pytest.raises(client.WorkerError, match="keep_footprint' must be true or false"):
        worker.run("b", str(tmp_path), target_bgra(tmp_path), {"pack": "shapes"},
                   {"n": 5, "iters": 1, "keep_footprint": 1}, "RGBA8")
    with pytest.raises(client.WorkerError, match="keep-in mask is empty"):
        empty = client.write_pixels(str(tmp_path), "empty.raw", bytes(96 * 64 * 4), 96, 64, "BGRA8")
        worker.run("e", str(tmp_path), target_bgra(tmp_path), {"pack": "shapes"}, {"n": 5, "iters": 1}, "RGBA8",
                   inputs={"keep_in": empty})


def test_refit_from_an_edited_scene_keeps_locked_instances(worker, tmp_path):
    first = tmp_path / "first"
    first.mkdir()
    manifest = worker.run("a", str(first), target_bgra(first), {"pack": "shapes"}, {"n": 30, "iters": 10, "size": 64},
                          "RGBA8")
    scene = json.loads((first / manifest["scene"]).read_text())
    scene["instances"][3]["x"] += 5.0                               # the user moved one sprite
    second = tmp_path / "second"
    second.mkdir()
    (second / "start.json").write_text(json.dumps(scene))
    result = worker.run("b", str(second), target_bgra(second), {}, {"iters": 10, "size": 64, "lock": "all-edited"},
                        "RGBA8", inputs={"init_scene": {"file": "start.json"}})
    refit = json.loads((second / result["scene"]).read_text())["instances"]
    kept = [i for i in refit if i["frozen"]]
    assert len(refit) == 30 and len(kept) == 1
    for k in ("x", "y", "size", "angle"):        # exactly, to float32's precision (the fit's)
        assert kept[0][k] == pytest.approx(scene["instances"][3][k], rel=1e-6), k
    with pytest.raises(client.WorkerError, match="'lock' needs an init_scene"):
        worker.run("c", str(second), target_bgra(second), {"pack": "shapes"}, {"n": 5, "iters": 1, "lock": "all"},
                   "RGBA8")
    with pytest.raises(client.WorkerError, match="instances 40 do not exist"):
        worker.run("d", str(second), target_bgra(second), {}, {"iters": 1, "size": 64, "lock": "40"}, "RGBA8",
                   inputs={"init_scene": {"file": "start.json"}})


def test_cancel_returns_the_best_result_so_far(worker, tmp_path):
    progress = []
    manifest = worker.run("job2", str(tmp_path), target_bgra(tmp_path), {"pack": "shapes"},
                          {"n": 60, "iters": 5000, "size": 64}, "BGRA8", on_progress=progress.append,
                          cancel=lambda: len(progress) >= 3)
    assert manifest["cancelled"] and len(manifest["layers"]) > 0
    assert progress[-1]["iteration"] < 5000
    worker.send(client.encode_request("ping"))   # still serving
    assert worker.next_event(10)["event"] == "pong"


@pytest.mark.parametrize("change, message", [
    (lambda r: r.pop("target"), "target must be an object"),
    (lambda r: r["target"].update(file="../../etc/passwd"), "outside the job folder"),
    (lambda r: r["target"].update(width=95), "expected 24,320 bytes for 95x64 BGRA8"),
    (lambda r: r["target"].update(format="CMYK16"), "unknown pixel format 'CMYK16'"),
    (lambda r: r["options"].update(n=0), "option 'n' must be an integer in 1..100000"),
    (lambda r: r["options"].update(size="big"), "option 'size' must be an integer"),
    (lambda r: r["options"].update(preset="best"), "option 'preset' must be one of"),
    (lambda r: r["options"].update(wobble=1), "unknown option 'wobble'"),
    (lambda r: r.update(sprites={"layers": []}), "no sprite layers were sent"),
    (lambda r: r.update(sprites={"pack": "nope"}), "no sprite folder or built-in pack named 'nope'"),
    (lambda r: r.update(sprites={"pack": "shapes", "alpha": "magic"}), "'alpha' must be one of auto, keep, key"),
    (lambda r: r["options"].update(cluster=7), "option 'cluster' must be a Ray address"),
    (lambda r: r.update(dir="/nonexistent/job"), "job folder /nonexistent/job does not exist"),
])
def test_bad_requests_get_an_error_naming_the_problem(worker, tmp_path, change, message):
    request = {"op": "run", "job": "bad", "dir": str(tmp_path), "target": target_bgra(tmp_path),
               "sprites": {"pack": "shapes"}, "options": {"n": 10, "iters": 2}}
    change(request)
    worker.send((json.dumps(request) + "\n").encode())
    event = worker.next_event(60)
    assert event["event"] == "error" and event["kind"] == "input" and event["job"] == "bad"
    assert message in event["message"]
    assert not (tmp_path / "manifest.json").exists()


def test_transparent_inputs_are_refused(worker, tmp_path):
    empty = client.write_pixels(str(tmp_path), "empty.raw", bytes(12 * 12 * 4), 12, 12, "BGRA8")
    with pytest.raises(client.WorkerError, match="every pixel is transparent"):
        worker.run("t", str(tmp_path), empty, {"pack": "shapes"}, {"n": 5, "iters": 1}, "BGRA8")
    with pytest.raises(client.WorkerError, match="every sprite layer is fully transparent"):
        worker.run("s", str(tmp_path), target_bgra(tmp_path), {"layers": [dict(empty, name="blank")]},
                   {"n": 5, "iters": 1}, "BGRA8")


def test_worker_exits_when_stdin_closes(worker):
    worker.process.stdin.close()
    assert worker.process.wait(timeout=30) == 0


def test_a_killed_worker_is_reported_not_waited_for(worker, tmp_path):
    def kill_on_first_progress(_event):
        os.kill(worker.process.pid, signal.SIGKILL)
    with pytest.raises(client.WorkerError, match="stopped unexpectedly"):
        worker.run("k", str(tmp_path), target_bgra(tmp_path), {"pack": "shapes"}, {"n": 20, "iters": 1000},
                   "BGRA8", on_progress=kill_on_first_progress, timeout=60)


def test_worker_dies_with_its_parent(tmp_path):
    """An editor that crashes takes its worker with it."""
    parent = subprocess.Popen([sys.executable, "-c", (
        "import sys, spritefit_client as c\n"
        "w = c.WorkerProcess(sys.executable)\n"
        "print(w.hello['pid'], flush=True)\n"
        "import time; time.sleep(600)\n")], stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=os.path.dirname(client.__file__)))
    worker_pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _alive(worker_pid):
        time.sleep(0.1)
    assert not _alive(worker_pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_client_cleans_the_environment_and_finds_python(monkeypatch, tmp_path):
    env = client.clean_environment({"PYTHONPATH": "/krita", "PYTHONHOME": "/x", "HOME": "/home/a"})
    assert env["HOME"] == "/home/a" and "PYTHONPATH" not in env and "PYTHONHOME" not in env
    monkeypatch.delenv("SPRITEFIT_PYTHON", raising=False)
    with pytest.raises(client.WorkerError, match="is not set"):
        client.find_python(None)
    with pytest.raises(client.WorkerError, match="not found at /no/python"):
        client.find_python("/no/python")
    monkeypatch.setenv("SPRITEFIT_PYTHON", sys.executable)
    assert client.find_python("/no/python") == sys.executable


def test_line_decoder_joins_chunks_and_flags_garbage():
    decoder = client.LineDecoder()
    assert decoder.feed(b'{"event": "pro') == []
    assert decoder.feed(b'gress", "iteration": 1}\n{"event"') == [{"event": "progress", "iteration": 1}]
    assert decoder.feed(b': "pong"}\nWARNING something\n') [0] == {"event": "pong"}
    assert decoder.feed(b"oops\n")[0]["kind"] == "protocol"


@pytest.mark.parametrize("name", list(pixels.FORMATS))
def test_pixel_formats_round_trip(name):
    rgba8 = np.random.default_rng(0).integers(0, 256, (5, 7, 4)).astype(np.uint8)
    data = pixels.encode(rgba8, name)
    assert len(data) == 5 * 7 * pixels.bytes_per_pixel(name)
    assert np.array_equal(np.round(pixels.decode(data, 7, 5, name) * 255).astype(np.uint8), rgba8)


def test_target_may_be_an_image_file_in_the_job_folder(worker, tmp_path):
    Image.open(TARGET).convert("RGB").resize((90, 60)).save(tmp_path / "target.png")
    manifest = worker.run("png", str(tmp_path), {"file": "target.png"}, {"pack": "shapes"},
                          {"n": 10, "iters": 2, "size": 60}, "RGBA8")
    assert (manifest["width"], manifest["height"]) == (90, 60) and manifest["layers"]


def test_settings_the_fit_chooses_are_sent_as_warnings(worker, tmp_path):
    warned = []
    worker.run("few", str(tmp_path), target_bgra(tmp_path), {"pack": "shapes"}, {"n": 4, "iters": 2, "size": 48},
               "RGBA8", on_warning=warned.append)
    assert any("placed by search" in w["message"] and "blur_schedule=none" in w["message"] for w in warned), warned
    assert all(w["job"] == "few" for w in warned)


def test_a_folder_of_opaque_images_is_keyed_as_asked(worker, tmp_path):
    from spritefit.scene import Scene
    folder = tmp_path / "tips"
    folder.mkdir()
    Image.new("RGB", (16, 16), "white").save(folder / "blank-white.png")
    tip = Image.new("RGB", (16, 16), "white")
    tip.paste((40, 40, 40), (4, 4, 12, 12))
    tip.save(folder / "tip.png")
    for alpha, expected in (("auto", ["keep", "luminance"]), ("keep", ["keep", "keep"])):
        job = tmp_path / alpha
        job.mkdir()
        worker.run(alpha, str(job), target_bgra(job), client.file_sprites("folder", str(folder), alpha),
                   {"n": 6, "iters": 2}, "BGRA8")
        assert [s.alpha for s in Scene.load(job / "scene.json").sprites] == expected


# --- live sessions ------------------------------------------------------------------------------

def _stroke(folder, base: np.ndarray, name: str, x: int) -> dict:
    """The target with one more brush stroke (a dark bar) painted at column x, as BGRA8."""
    rgba = _stroke_rgba(base, x)
    return client.write_pixels(str(folder), name, rgba[..., [2, 1, 0, 3]].tobytes(), 96, 64, "BGRA8")


def _next(worker, kinds, timeout=120):
    while True:
        event = worker.next_event(timeout)
        if event["event"] in kinds:
            return event


def test_live_session_coalesces_updates_refuses_bad_ones_applies_and_stops(worker, tmp_path):
    base = np.asarray(Image.open(TARGET).convert("RGBA").resize((96, 64))).copy()
    start = client.run_request("live", str(tmp_path), target_bgra(tmp_path), {"pack": "shapes"},
                               {"n": 30, "iters": 20, "size": 64}, "RGBA8", op="live_start")
    worker.send(start)
    first = _next(worker, ("live_frame", "error"))
    assert first["event"] == "live_frame" and first["scene_id"] == 0 and os.path.exists(first["preview"])
    # Five strokes sent at once: the session works on the latest, never on a queue of them.
    for k in range(5):
        worker.send(client.encode_request("live_update", job="live", id=k,
                                          target=_stroke(tmp_path, base, f"t{k}.raw", 5 + 15 * k)))
    frames = [_next(worker, ("live_frame", "error"))]
    while frames[-1].get("id") != 4:
        frames.append(_next(worker, ("live_frame", "error")))
    assert all(f["event"] == "live_frame" for f in frames) and len(frames) <= 3, frames
    assert frames[-1]["frozen"] > 0 and not frames[-1]["restarted"]
    # A bad update is refused and the session goes on.
    worker.send(client.encode_request("live_update", job="live", id="bad", target={"file": "missing.raw"}))
    error = _next(worker, ("live_frame", "error"))
    assert error["event"] == "error" and error["kind"] == "input" and "missing.raw" in error["message"]
    worker.send(client.encode_request("live_update", job="live", id="far", options={"cluster": "head.example:6379"}))
    error = _next(worker, ("live_frame", "error"))
    assert error["event"] == "error" and "live mode fits on this machine" in error["message"]
    worker.send(client.encode_request("live_update", job="live", id="n", options={"n": 34}))
    grown = _next(worker, ("live_frame", "error"))
    assert grown["event"] == "live_frame" and grown["id"] == "n"
    from spritefit.scene import Scene
    assert len(Scene.load(grown["scene"])) == 34
    # Apply: the current scene as a run's result files; then stop.
    worker.send(client.encode_request("live_apply", job="live"))
    result = _next(worker, ("result", "error"))
    assert result["event"] == "result" and client.read_manifest(result["manifest"])["layers"]
    worker.send(client.encode_request("live_stop", job="live"))
    stopped = _next(worker, ("live_stopped", "error"))
    assert stopped["event"] == "live_stopped" and stopped["dropped"] >= 2
    worker.send(client.encode_request("ping"))
    assert _next(worker, ("pong",), 10)["event"] == "pong"


def test_live_client_follows_the_hosts_target_and_options_and_sets_unchosen_ones_back(worker, tmp_path):
    """spritefit_live as every host uses it: a changed target or option, once settled, is one
    update; an option the controls no longer set goes back to its default."""
    from spritefit.scene import Scene
    from spritefit_live import DEBOUNCE_S, LiveClient
    base = np.asarray(Image.open(TARGET).convert("RGBA").resize((96, 64))).copy()
    host = {"target": base, "options": {"n": 30, "iters": 20, "size": 64}, "applied": []}

    def write_target(folder):
        rgba = host["target"]
        return client.write_pixels(folder, "target.raw", rgba.tobytes(), 96, 64, "RGBA8")

    live = LiveClient("test", signature=lambda: host["target"].tobytes(), write_target=write_target,
                      sprites=lambda folder: {"pack": "shapes"}, options=lambda: dict(host["options"]),
                      apply=lambda manifest: host["applied"].append(manifest) or "Added.", pixel_format="RGBA8")

    def frame_for(update):
        worker.send(update)
        while True:
            event = worker.next_event(120)
            live.handle(event)
            if event["event"] in ("live_frame", "error") and event.get("id") is not None:
                return event

    worker.send(live.start)
    while live.state == "starting":
        live.handle(worker.next_event(120))
    assert live.state == "live" and live.poll(1.0) is None
    host["options"]["n"] = 36                                        # an option changed in the controls
    assert live.poll(10.0) is None and live.poll(10.0 + DEBOUNCE_S / 2) is None
    update = json.loads(live.poll(10.0 + DEBOUNCE_S + 0.01))
    assert update["options"] == {"n": 36, "iters": 20, "size": 64} and "target" not in update
    frame = frame_for(json.dumps(update).encode() + b"\n")
    assert frame["event"] == "live_frame" and len(Scene.load(frame["scene"])) == 36
    host["target"] = _stroke_rgba(base, 30)                          # a stroke: the target, no options
    live.poll(20.0)
    update = json.loads(live.poll(21.0))
    assert "target" in update and "options" not in update
    assert frame_for(json.dumps(update).encode() + b"\n")["event"] == "live_frame"
    del host["options"]["n"]                                         # n set back to its default
    live.poll(30.0)
    update = json.loads(live.poll(31.0))
    assert update["options"] == {"n": None, "iters": 20, "size": 64}
    frame = frame_for(json.dumps(update).encode() + b"\n")
    assert frame["event"] == "live_frame" and len(Scene.load(frame["scene"])) == 500   # the schema's default
    worker.send(live.apply_request())
    while not host["applied"]:
        live.handle(worker.next_event(120))
    assert live.message == "Added. Live goes on."
    worker.send(live.stop_request())
    while live.state == "live":
        live.handle(worker.next_event(120))
    assert live.state == "stopped" and not os.path.exists(live.folder)


def _stroke_rgba(base: np.ndarray, x: int) -> np.ndarray:
    rgba = base.copy()
    rgba[20:30, x:x + 14, :3] = (20, 200, 40)
    return rgba
