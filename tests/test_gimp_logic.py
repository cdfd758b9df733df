"""The GIMP plug-in's logic without GIMP (fake_gimp.py): reading the target and sprite layers,
refusing bad input by name, and writing a result as one balanced undo group."""
from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import fake_gimp

PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "gimp" / "spritefit_gimp" / "spritefit_gimp.py"


@pytest.fixture(scope="module")
def plugin():
    saved = {name: sys.modules.get(name) for name in ("gi", "gi.repository")}
    fake_gimp.install()
    spec = importlib.util.spec_from_file_location("spritefit_gimp_under_test", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    for name, value in saved.items():
        if value is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = value


def painted(image, name, width, height, x=0, y=0, rgba=(255, 0, 0, 255)):
    layer = fake_gimp.Layer(image, name, width, height)
    layer.pixels[:] = rgba
    layer.set_offsets(x, y)
    image.insert_layer(layer, None, 0)
    return layer


def test_target_is_read_at_the_canvas_with_the_layer_offset(plugin, tmp_path):
    image = fake_gimp.Image(8, 6)
    layer = painted(image, "photo", 3, 2, x=4, y=1)
    descriptor = plugin.read_target(image, layer, str(tmp_path))
    data = np.frombuffer((tmp_path / descriptor["file"]).read_bytes(), np.uint8).reshape(6, 8, 4)
    assert data[1:3, 4:7, 3].min() == 255 and data[..., 3].sum() == 255 * 6    # only where the layer is
    with pytest.raises(plugin.PluginError, match="Choose the target layer"):
        plugin.read_target(image, None, str(tmp_path))
    empty = fake_gimp.Layer(image, "blank", 8, 6)
    with pytest.raises(plugin.PluginError, match="'blank' is fully transparent"):
        plugin.read_target(image, empty, str(tmp_path))


def test_sprite_sources_and_refusals(plugin, tmp_path):
    image = fake_gimp.Image(8, 6)
    target, leaf = painted(image, "photo", 8, 6), painted(image, "leaf", 2, 3)
    assert plugin.read_sprites([leaf], target, "pack:leaves", str(tmp_path)) == {"pack": "leaves", "alpha": "auto"}
    assert plugin.read_sprites([leaf], target, "folder:/art/dabs", str(tmp_path), "luminance") == {
        "folder": "/art/dabs", "alpha": "luminance"}
    with pytest.raises(plugin.PluginError, match="sprite alpha must be one of auto, keep, key, luminance"):
        plugin.read_sprites([leaf], target, "folder:/art/dabs", str(tmp_path), "magic")
    spec = plugin.read_sprites([target, leaf], target, "layers", str(tmp_path))     # the target is left out
    assert [(s["name"], s["width"], s["height"], s["format"]) for s in spec["layers"]] == [("leaf", 2, 3, "RGBA8")]
    with pytest.raises(plugin.PluginError, match="Select the layers to use as sprites"):
        plugin.read_sprites([target], target, "layers", str(tmp_path))
    group = fake_gimp.GroupLayer.new(image, "twigs")
    with pytest.raises(plugin.PluginError, match="'twigs' is a layer group"):
        plugin.read_sprites([group], target, "layers", str(tmp_path))
    mask = fake_gimp.LayerMask(image, "mask", 2, 2)
    with pytest.raises(plugin.PluginError, match="'mask' is not a layer"):
        plugin.read_sprites([mask], target, "layers", str(tmp_path))
    with pytest.raises(plugin.PluginError, match="'hollow' is empty"):
        plugin.read_sprites([fake_gimp.Layer(image, "hollow", 2, 2)], target, "layers", str(tmp_path))
    with pytest.raises(plugin.PluginError, match="RGB images"):
        plugin.check_image(fake_gimp.Image(8, 6, fake_gimp.ImageBaseType.GRAY))


def manifest_with(tmp_path, layers, width=8, height=6, background=(1.0, 1.0, 1.0)):
    blob, records = b"", []
    for name, x, y, w, h, opacity in layers:
        data = bytes((10, 20, 30, 255)) * (w * h)
        records.append({"name": name, "x": x, "y": y, "width": w, "height": h, "opacity": opacity,
                        "offset": len(blob), "size": len(data)})
        blob += data
    (tmp_path / "patches.bin").write_bytes(blob)
    (tmp_path / "scene.json").write_text(json.dumps({"format": "spritefit-scene"}))
    return {"width": width, "height": height, "background": background, "patches": "patches.bin",
            "scene": "scene.json", "layers": records, "folder": str(tmp_path)}


def test_result_is_one_group_in_one_undo_step(plugin, tmp_path):
    image = fake_gimp.Image(8, 6)
    painted(image, "photo", 8, 6)
    manifest = manifest_with(tmp_path, [("circle #0", 1, 2, 3, 2, 0.5), ("star #1", 0, 0, 2, 2, 1.0)])
    group = plugin.apply_result(image, manifest)
    assert image.get_layers()[0] is group and group.get_name() == "SpriteFit (2 sprites)"
    assert [c.get_name() for c in group.children] == ["star #1", "circle #0", "background"]   # top first
    circle = group.children[1]
    assert circle.get_offsets() == (True, 1, 2) and circle.opacity == 50.0
    assert circle.pixels[0, 0].tolist() == [10, 20, 30, 255]
    assert group.children[2].pixels[0, 0].tolist() == [255, 255, 255, 255]
    assert image.undo_groups == 1 and image.undo_depth == 0 and image.frozen == 0
    assert "spritefit-scene" in image.parasites


def test_a_failed_write_still_closes_the_undo_group(plugin, tmp_path):
    image = fake_gimp.Image(8, 6)
    manifest = manifest_with(tmp_path, [("circle #0", 1, 2, 3, 2, 0.5)])
    (tmp_path / "patches.bin").write_bytes(b"short")
    with pytest.raises(Exception, match="shorter than its manifest"):
        plugin.apply_result(image, manifest)
    assert image.undo_depth == 0 and image.frozen == 0
    with pytest.raises(plugin.PluginError, match="changed size"):
        plugin.apply_result(fake_gimp.Image(9, 6), manifest)


def test_layers_named_as_masks_are_sent_at_the_canvas(plugin, tmp_path):
    image = fake_gimp.Image(40, 30)
    painted(image, "photo", 40, 30)
    painted(image, "Keep-Out", 10, 30, x=30)                  # the right quarter, as a layer with an offset
    painted(image, "mask", 40, 30, rgba=(255, 255, 255, 255))
    masks = plugin.read_masks(image, str(tmp_path))
    assert sorted(masks) == ["keep_out", "mask"]
    keep_out = np.fromfile(tmp_path / masks["keep_out"]["file"], np.uint8).reshape(30, 40, 4)
    assert (keep_out[:, 30:, 3] == 255).all() and (keep_out[:, :30, 3] == 0).all()
    assert plugin.client.masked_options({"n": 5}, masks) == {"n": 5, "keep_footprint": True}
    blank = painted(image, "keep-in", 4, 4, rgba=(0, 0, 0, 0))
    with pytest.raises(plugin.PluginError, match="'keep-in' layer is empty"):
        plugin.read_masks(image, str(tmp_path))
    image.layers.remove(blank)
    painted(image, "MASK", 4, 4)
    with pytest.raises(plugin.PluginError, match="Two layers are named"):
        plugin.read_masks(image, str(tmp_path))


def test_refit_keeps_the_layers_the_user_moved_and_locked(plugin, tmp_path):
    """A first result applied, one sprite layer moved and locked, then a refit through the worker."""
    import spritefit_client as client
    rng = np.random.default_rng(0)
    image = fake_gimp.Image(48, 32)
    photo = painted(image, "photo", 48, 32)
    photo.pixels[..., :3] = np.repeat(np.repeat(rng.integers(0, 255, (4, 6, 3)), 8, 0), 8, 1)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    with client.WorkerProcess(sys.executable) as worker:
        manifest = worker.run("1", str(first), plugin.read_target(image, photo, str(first)), {"pack": "shapes"},
                              {"n": 12, "iters": 5, "size": 24}, "RGBA8")
        group = plugin.apply_result(image, manifest)
        moved = next(layer for layer in group.get_children() if layer.get_name().endswith(" #3"))
        _, x, y = moved.get_offsets()
        moved.set_offsets(x + 4, y + 2)
        moved.lock_position = True
        options = {"n": 12, "iters": 5}
        inputs = plugin.refit_inputs(image, str(second), options)
        assert options["lock"] == "3" and options["size"] == 24
        start = json.loads((second / "start.json").read_text())["instances"][3]
        before = json.loads(bytes(image.get_parasite("spritefit-scene").get_data()))["instances"][3]
        assert (start["x"] - before["x"], start["y"] - before["y"]) == (2.0, 1.0)   # 4, 2 px at scale 2
        result = worker.run("2", str(second), plugin.read_target(image, photo, str(second)), {}, options, "RGBA8",
                            inputs=inputs)
    refit = json.loads((second / result["scene"]).read_text())["instances"]
    kept = [r for r in refit if r["frozen"]]
    assert len(kept) == 1    # where the user put it (scenes hold float32)
    assert (kept[0]["x"], kept[0]["y"]) == (float(np.float32(start["x"])), float(np.float32(start["y"])))


def test_refit_without_an_earlier_result_is_explained(plugin, tmp_path):
    image = fake_gimp.Image(8, 6)
    painted(image, "photo", 8, 6)
    with pytest.raises(plugin.PluginError, match="run SpriteFit once first"):
        plugin.refit_inputs(image, str(tmp_path), {})


class RecordedProcedure:
    """What add_option_argument declares, and the argument specs GIMP would list."""

    def __init__(self):
        self.arguments = []

    def __getattr__(self, method):
        if not method.startswith("add_") or not method.endswith("_argument"):
            raise AttributeError(method)
        return lambda name, label, help, *rest: self.arguments.append((method, name, rest[:-1]))

    def get_arguments(self):
        return [type("Spec", (), {"get_name": lambda self, n=name: n})() for _, name, _ in self.arguments]


class RecordedDialog:
    calls: list = []

    def __init__(self, procedure, config):
        RecordedDialog.calls = []

    def __getattr__(self, method):
        return lambda *args: RecordedDialog.calls.append((method, *args)) or True


def test_the_fit_dialog_shows_the_basic_options_and_folds_the_advanced_ones(plugin, monkeypatch):
    import types
    from spritefit.options import ADVANCED, BASIC, host_options
    procedure = RecordedProcedure()
    for option in plugin.shown_options():
        plugin.add_option_argument(procedure, option, 3)
    declared = {name: (method, rest) for method, name, rest in procedure.arguments}
    assert declared["n"] == ("add_int_argument", (1, 100000, 500))
    assert declared["iters"] == ("add_int_argument", (-1, 100000, -1))           # -1: the preset's
    assert declared["lr-position"] == ("add_double_argument", (0.0, 100.0, 0.15))
    assert declared["keep-footprint"] == ("add_boolean_argument", (False,))
    assert declared["color-mode"] == ("add_string_argument", ("tint",))
    monkeypatch.setattr(sys.modules["gi.repository"], "GimpUi",
                        types.SimpleNamespace(init=lambda name: None, ProcedureDialog=RecordedDialog), raising=False)
    advanced = tuple(n.replace("_", "-") for n, o in host_options().items() if o.show == ADVANCED)
    assert plugin._dialog(procedure, None, "spritefit", "No engine yet", advanced)
    calls = {call[0]: call[1:] for call in RecordedDialog.calls}
    basic = [n.replace("_", "-") for n, o in host_options().items() if o.show == BASIC]
    assert calls["fill"] == (["spritefit-note", *basic, "spritefit-advanced-expander"],)
    assert calls["fill_box"] == ("spritefit-advanced", list(advanced))
    assert calls["fill_expander"] == ("spritefit-advanced-expander", "spritefit-advanced-title", False,
                                      "spritefit-advanced")


class DialogConfig:
    """The procedure's config as the dialog edits it: the schema's control defaults, then what is set."""

    def __init__(self, plugin, **values):
        import spritefit_client as client
        self.values = {plugin.argument_name(o): client.control_default(o) for o in plugin.shown_options()}
        self.values.update(values)

    def get_property(self, name):
        return self.values[name]


def test_the_dialogs_live_preview_follows_its_options_and_ends_with_the_dialog(plugin, monkeypatch, tmp_path):
    """Live preview on: a first frame at the preview's size; a new count in the dialog (once it
    settles) is a new frame with that many sprites; a value being typed that is not valid yet
    keeps the last valid options; closing the dialog ends the worker and its files."""
    import time
    from PIL import Image as PILImage
    from spritefit.scene import Scene
    from spritefit_live import DEBOUNCE_S
    monkeypatch.setattr(plugin, "worker_python", lambda: sys.executable)
    image = fake_gimp.Image(96, 64)
    target = painted(image, "photo", 96, 64, rgba=(200, 120, 40, 255))
    target.pixels[20:40, 10:50] = (30, 60, 200, 255)
    config = DialogConfig(plugin, target=target, sprites="pack:shapes", n=24, iters=20)
    shown = []
    preview = plugin.DialogPreview(image, [target], config, show=lambda path, message: shown.append((path, message)))

    def tick_until(done, seconds=120):
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            assert preview.tick()
            time.sleep(0.02)
        return done()

    preview.start()
    assert preview.live is not None, shown
    assert tick_until(lambda: preview.live.state == "live")
    first = preview.live.last_frame
    assert [path for path, _ in shown if path] == [first["preview"]]
    assert PILImage.open(first["preview"]).size == (96, 64) and len(Scene.load(first["scene"])) == 24
    config.values["n"] = 31                                   # the count changed in the dialog
    config.values["color-mode"] = "no such mode"              # a value the dialog cannot send yet
    time.sleep(DEBOUNCE_S)
    assert tick_until(lambda: preview.live.last_frame is not first)
    frame = preview.live.last_frame
    assert frame["scene_id"] == 1 and not frame["restarted"] and len(Scene.load(frame["scene"])) == 31
    assert shown[-1][0] == frame["preview"] and shown[-1][1].startswith("Live: frame 1")
    assert image.undo_depth == 0 and len(image.get_layers()) == 1          # the image is left alone
    worker, folder = preview.worker, preview.live.folder
    preview.close()
    assert worker.process.poll() is not None and not os.path.exists(folder) and preview.tick() is False


def test_the_dialogs_live_preview_says_why_it_cannot_start(plugin, monkeypatch):
    def no_engine():
        raise plugin.PluginError("No engine: use Filters > Artistic > SpriteFit > Set up engine….")
    monkeypatch.setattr(plugin, "worker_python", no_engine)
    image = fake_gimp.Image(8, 6)
    shown = []
    preview = plugin.DialogPreview(image, [], DialogConfig(plugin, target=None, sprites="pack:shapes"),
                                   show=lambda path, message: shown.append((path, message)))
    preview.start()
    assert preview.live is None and shown == [(None, "No engine: use Filters > Artistic > SpriteFit > Set up engine….")]
    assert preview.tick() is True
    preview.close()
