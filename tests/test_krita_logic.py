"""The Krita plugin's logic without Krita: reading the document, the run's states, and Apply as
one undo step, on the fake document of fake_krita.py and the real worker. The plugin's typing
against krita.pyi is checked too (the real-Krita test checks krita.pyi against Krita)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import spritefit_client as client
from fake_krita import Document
from spritefit_krita import document as doc_io
from spritefit_krita.job import FitJob
from spritefit_krita.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "core" / "spritefit" / "data" / "targets" / "chelsea.png"


def photo_bgra(width, height) -> np.ndarray:
    rgba = np.asarray(Image.open(TARGET).convert("RGBA").resize((width, height)))
    return np.ascontiguousarray(rgba[..., [2, 1, 0, 3]])


def blob(width, height, rect, bgra=(0, 0, 255, 255)) -> np.ndarray:
    pixels = np.zeros((height, width, 4), np.uint8)
    x, y, w, h = rect
    pixels[y:y + h, x:x + w] = bgra
    return pixels


@pytest.fixture
def document():
    doc = Document(64, 48)
    doc.target = doc.add_layer("photo", photo_bgra(64, 48))
    doc.sprites = [doc.add_layer("red", blob(64, 48, (3, 4, 6, 5))),
                   doc.add_layer("blue", blob(64, 48, (20, 8, 4, 4), (255, 0, 0, 255)))]
    return doc


@pytest.mark.parametrize("model, depth", [("CMYKA", "U8"), ("RGBA", "U16"), ("GRAYA", "U8"), ("RGBA", "F32")])
def test_only_8_bit_rgba_documents_are_accepted(model, depth):
    with pytest.raises(doc_io.DocumentError, match=f"this one is {model} {depth}"):
        doc_io.check_document(Document(8, 8, model, depth))
    with pytest.raises(doc_io.DocumentError, match="Open an image first"):
        doc_io.check_document(None)


def test_target_is_the_whole_image_or_one_layer(document):
    data, width, height = doc_io.read_target(document, document.target)
    assert (width, height) == (64, 48) and data == document.target.pixels.tobytes()
    whole, _, _ = doc_io.read_target(document)
    assert whole == document.composite().tobytes()
    empty = document.add_layer("empty", np.zeros((48, 64, 4), np.uint8))
    with pytest.raises(doc_io.DocumentError, match="'empty' is fully transparent"):
        doc_io.read_target(document, empty)


def test_sprite_layers_are_cropped_to_their_pixels(document):
    sprites = doc_io.read_sprite_layers(document.sprites)
    assert [(name, w, h) for name, _, w, h in sprites] == [("red", 6, 5), ("blue", 4, 4)]
    assert sprites[0][1] == bytes((0, 0, 255, 255)) * 30


@pytest.mark.parametrize("node_type, message", [("grouplayer", "'odd' is a group layer; sprites must be paint layers"),
                                                ("vectorlayer", "'odd' is a vector layer"),
                                                ("filelayer", "'odd' is a file layer")])
def test_sprite_layers_of_other_kinds_are_refused_by_name(document, node_type, message):
    odd = document.add_layer("odd", blob(64, 48, (0, 0, 4, 4)), node_type)
    with pytest.raises(doc_io.DocumentError, match=message):
        doc_io.read_sprite_layers([document.sprites[0], odd])


def test_empty_or_missing_sprite_selection_is_explained(document):
    with pytest.raises(doc_io.DocumentError, match="No sprite layers are selected"):
        doc_io.read_sprite_layers([])
    helper = document.add_layer("", np.zeros((48, 64, 4), np.uint8), "")   # Krita's nameless helper nodes
    with pytest.raises(doc_io.DocumentError, match="No sprite layers are selected"):
        doc_io.read_sprite_layers([helper])
    blank = document.add_layer("blank", np.zeros((48, 64, 4), np.uint8))
    with pytest.raises(doc_io.DocumentError, match="'blank' is empty"):
        doc_io.read_sprite_layers([blank])


def test_paint_layers_lists_the_target_candidates_top_first(document):
    assert [n.name() for n in doc_io.paint_layers(document)] == ["blue", "red", "photo"]


def run_job(job: FitJob) -> None:
    """What the docker does with QProcess, done with the blocking client."""
    with client.WorkerProcess(sys.executable) as worker:
        job.handle(worker.hello)
        worker.send(job.request())
        while job.state in ("running", "cancelling"):
            job.handle(worker.next_event(120))


def test_a_run_applied_adds_one_group_in_one_undo_step(document):
    job = FitJob(document, document.target, "layers", document.sprites, "",
                 {"n": 30, "iters": 15, "size": 48, "preset": "fast", "color_mode": "tint"})
    before = document.composite().copy()
    run_job(job)
    assert job.state == "done", job.message
    assert "Done: 30 sprites" in job.message and "PSNR" in job.message
    assert np.array_equal(document.composite(), before)           # untouched until Apply
    composite = np.asarray(Image.open(Path(job.manifest["folder"]) / "composite.png").convert("RGB"), float)
    group = job.apply()
    assert document.undo_entries == 1 and document.topLevelNodes()[-1] is group
    assert group.name() == "SpriteFit (30 sprites)" and len(group.childNodes()) == 31
    assert [c.name().split(" #")[0] in ("red", "blue") for c in group.childNodes()[1:]] == [True] * 30
    document.target.pixels[..., 3] = 0
    for sprite in document.sprites:
        sprite.pixels[..., 3] = 0
    ours = document.composite()[..., [2, 1, 0]].astype(float)
    assert 10 * np.log10(255 ** 2 / max(np.mean((ours - composite) ** 2), 1e-9)) > 35
    assert job.state == "applied" and not os.path.exists(job.folder)


def test_layers_named_keep_out_and_mask_constrain_the_run(document):
    keep_out = document.add_layer("Keep-Out", blob(64, 48, (0, 0, 32, 48), (0, 0, 0, 255)))   # the left half
    document.add_layer("mask", blob(64, 48, (0, 0, 64, 24), (255, 255, 255, 255)))
    job = FitJob(document, document.target, "pack", [], "shapes", {"n": 20, "iters": 5, "size": 48})
    assert sorted(job.masks) == ["keep_out", "mask"] and "masks: keep-out, mask" in job.message
    assert job.options["keep_footprint"] is True
    run_job(job)
    assert job.state == "done", job.message
    assert all(layer["x"] >= 32 for layer in job.manifest["layers"])   # no sprite reaches into the left half
    keep_out.pixels[..., 3] = 0
    document.add_layer("keep-in", blob(64, 48, (0, 0, 1, 1), (0, 0, 0, 0)))
    with pytest.raises(doc_io.DocumentError, match="'keep-in' layer is empty"):
        FitJob(document, document.target, "pack", [], "shapes", {"n": 20})
    job.discard()


def test_refit_keeps_the_layers_the_user_moved_and_locked(document):
    with pytest.raises(doc_io.DocumentError, match="Run and Apply once first"):
        FitJob(document, document.target, "refit", [], "", {"n": 12})
    first = FitJob(document, document.target, "pack", [], "shapes", {"n": 12, "iters": 5, "size": 32})
    run_job(first)
    before = json.loads((Path(first.manifest["folder"]) / "scene.json").read_text())["instances"][3]
    group = first.apply()
    moved = next(node for node in group.childNodes() if node.name().endswith(" #3"))
    moved.move(4, 2)                                             # the user drags it and locks it
    moved.setLocked(True)
    job = FitJob(document, document.target, "refit", [], "", {"n": 12, "iters": 5, "size": 32})
    assert job.options["lock"] == "3" and job.sprites == {} and "init_scene" in job.inputs
    run_job(job)
    assert job.state == "done", job.message
    kept = [r for r in json.loads((Path(job.manifest["folder"]) / "scene.json").read_text())["instances"]
            if r["frozen"]]
    scale = 64 / 32
    assert len(kept) == 1
    assert (kept[0]["x"], kept[0]["y"]) == (float(np.float32(before["x"] + 4 / scale)),
                                            float(np.float32(before["y"] + 2 / scale)))
    job.discard()


def test_apply_refuses_a_document_that_changed_size(document):
    job = FitJob(document, None, "pack", [], "shapes", {"n": 10, "iters": 2, "size": 48})
    run_job(job)
    document._size = (80, 48)
    with pytest.raises(doc_io.DocumentError, match="made for 64x48 px"):
        job.apply()
    assert document.undo_entries == 0 and len(document.topLevelNodes()) == 3


def test_job_states_follow_the_worker_events(document, tmp_path):
    job = FitJob(document, None, "pack", [], "shapes", {"n": 10, "iters": 0})
    assert job.options["iters"] == 0                       # as the controls chose: placement only
    job.handle({"event": "hello", "protocol": 99})
    assert job.state == "failed" and "the worker speaks 99" in job.message
    job = FitJob(document, None, "pack", [], "shapes", {"n": 10})
    job.handle({"event": "progress", "job": job.id, "iteration": 3, "total": 9, "loss": 0.5, "psnr": 20.0})
    assert job.progress == (3, 9) and "Iteration 3/9" in job.message
    job.handle({"event": "progress", "job": "someone-else", "iteration": 7, "total": 9, "loss": 0.5})
    assert job.progress == (3, 9)
    job.cancel_requested()
    assert job.state == "cancelling"
    job.worker_stopped(" (exit code 9)")
    assert job.state == "failed" and "stopped unexpectedly (exit code 9)" in job.message
    assert not os.path.exists(job.folder)


def test_folder_source_needs_a_folder_and_carries_the_alpha_mode(document, tmp_path):
    with pytest.raises(doc_io.DocumentError, match="Choose the folder"):
        FitJob(document, None, "folder", [], "", {"n": 10})
    job = FitJob(document, None, "folder", [], str(tmp_path), {"n": 10}, sprite_alpha="luminance")
    assert job.sprites == {"folder": str(tmp_path), "alpha": "luminance"}
    job.discard()


class FakeKritaSettings:
    def __init__(self):
        self.values = {}

    def readSetting(self, group, name, default):
        return self.values.get((group, name), default)

    def writeSetting(self, group, name, value):
        self.values[(group, name)] = value


def test_live_follows_strokes_debounced_and_apply_adds_one_undo_step(document):
    """Live in the docker's terms: poll() notices a stroke on the target layer, waits for it to
    settle, sends one update; the frame comes back; Apply adds the scene in one undo step."""
    from spritefit_krita.live import LiveJob
    from spritefit_live import DEBOUNCE_S
    live = LiveJob(document, document.target, "pack", [], "shapes", lambda: {"n": 20, "iters": 10, "size": 48})
    with client.WorkerProcess(sys.executable) as worker:
        worker.send(live.start)
        while live.state == "starting":
            live.handle(worker.next_event(120))
        assert live.state == "live" and os.path.exists(live.preview) and live.poll(0.0) is None   # unchanged
        document.target.pixels[10:20, 5:40] = (40, 200, 20, 255)      # a stroke on the target layer
        assert live.poll(100.0) is None                               # noticed, not sent: debouncing
        assert live.poll(100.0 + DEBOUNCE_S / 2) is None
        update = live.poll(100.0 + DEBOUNCE_S + 0.01)
        assert update is not None and json.loads(update)["op"] == "live_update"
        document.target.pixels[30:34, 5:20] = (10, 10, 200, 255)      # painted while the engine works
        assert live.poll(200.0) is None and live.poll(201.0) is None  # one in flight: nothing queues
        assert live.behind(202.0)
        worker.send(update)
        frame = next(e for e in iter(lambda: worker.next_event(120), None) if e["event"] == "live_frame")
        live.handle(frame, now=205.0)
        assert live.state == "live" and frame["id"] == 1 and frame["frozen"] > 0 and "frame 1" in live.message
        assert live.poll(206.0) is not None                           # the second stroke goes next
        assert document.undo_entries == 0                             # live frames never touch the document
        worker.send(live.apply_request())
        result = next(e for e in iter(lambda: worker.next_event(120), None) if e["event"] == "result")
        live.handle(result)
        assert document.undo_entries == 1 and live.applied is document.topLevelNodes()[-1]
        assert live.applied.name().startswith("SpriteFit (") and len(live.applied.childNodes()) > 10
        worker.send(live.stop_request())
        stopped = next(e for e in iter(lambda: worker.next_event(120), None) if e["event"] == "live_stopped")
        live.handle(stopped)
    assert live.state == "stopped" and not os.path.exists(live.folder)


def test_settings_persist_and_survive_bad_values(monkeypatch):
    monkeypatch.setattr("spritefit_krita.settings.bundled_python", lambda: "/opt/sf/bin/python")
    settings = Settings(FakeKritaSettings())
    assert settings.worker_python() == "/opt/sf/bin/python"
    settings.set_worker_python("/custom/python")
    assert settings.worker_python() == "/custom/python"
    settings.set_options({"n": 1200, "preset": "quality", "junk": 1})
    assert settings.options()["n"] == 1200 and settings.options()["preset"] == "quality"
    settings.krita.writeSetting("spritefit", "options", '{"n": "many"')
    assert settings.options()["n"] == 500
    settings.krita.writeSetting("spritefit", "options", '{"n": 900, "iters": 0, "preset": "best"}')   # before v2
    assert (settings.options()["n"], settings.options()["iters"], settings.options()["preset"]) == (900, -1, "balanced")
    settings.set_options({"iters": 0, "lr_color": 0.3})
    assert (settings.options()["iters"], settings.options()["lr_color"]) == (0, 0.3)


def test_plugin_type_checks_against_the_krita_stubs():
    krita = ROOT / "plugins" / "krita"
    done = subprocess.run([sys.executable, "-m", "mypy", "--check-untyped-defs", "--python-version", "3.10",
                           "spritefit_krita"], cwd=krita, capture_output=True, text=True,
                          env=dict(os.environ, MYPYPATH=f"{krita / 'stubs'}:{ROOT / 'plugins' / 'client'}"))
    assert done.returncode == 0, done.stdout + done.stderr
