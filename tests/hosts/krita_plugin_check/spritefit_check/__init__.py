"""Runs inside a real Krita (GUI under Xvfb) beside the installed SpriteFit plugin, drives the
docker as a user would, and writes what happened to $SPRITEFIT_CHECK_OUT (JSON), then quits.

Steps (each waits for the worker without blocking Krita's event loop):
  1. the menu action shows the docker; the stubs' names exist in this Krita
  2. a run with two sprite layers; Apply adds one group (one undo entry); one Undo removes it
  3. a run cancelled after its first progress event: a result, and the document untouched
  4. bad input: a CMYK document, a group as sprite, a transparent target, a worker killed mid-run
  5. a refit around a sprite layer the user moved and locked
  6. live: the docker's Live toggle on the target layer; strokes painted onto that layer through
     Krita's API each bring a new frame into the preview; Apply adds one undo step; Live off stops

With SPRITEFIT_CHECK_MODE=engine (a clean profile, no worker Python set) it instead presses the
docker's Install twice with a failure each time (no Python; pip under $SPRITEFIT_CHECK_FAILING_PIP),
once cancelled while pip installs PyTorch, then for real, waits for the engine, runs, applies and undoes a fit, and finally makes the engine
another version's (`engine_steps`). With SPRITEFIT_CHECK_MODE=live it runs step 6 alone, in a
smaller window (scripts/make_live_gif.py grabs it for the README).
"""
import ast
import base64
import json
import os
import subprocess
import time
import traceback

from krita import Extension, Krita
from PyQt5.QtCore import QTimer
from PyQt5.QtGui import QImage
from PyQt5.QtWidgets import QAbstractItemView, QApplication

OUT = os.environ.get("SPRITEFIT_CHECK_OUT", "/tmp/spritefit-check.json")
STUBS = os.environ.get("SPRITEFIT_KRITA_STUBS", "")
TARGET = os.environ.get("SPRITEFIT_CHECK_TARGET", "")
SCREENSHOT = os.environ.get("SPRITEFIT_CHECK_SCREENSHOT", "")
LIVE_FRAMES = os.environ.get("SPRITEFIT_CHECK_LIVE_FRAMES", "")   # a folder: the window after each live frame
STROKES = int(os.environ.get("SPRITEFIT_CHECK_STROKES", 2))
MODE = os.environ.get("SPRITEFIT_CHECK_MODE", "plugin")
FAILING_PIP = json.loads(os.environ.get("SPRITEFIT_CHECK_FAILING_PIP", "{}"))   # variables; null removes one
STARTED = time.monotonic()
# The tests use the defaults; the knobs time bigger runs (the README's figures).
WIDTH = int(os.environ.get("SPRITEFIT_CHECK_WIDTH", 96))
HEIGHT = int(os.environ.get("SPRITEFIT_CHECK_HEIGHT", 64))
COUNT = int(os.environ.get("SPRITEFIT_CHECK_N", 40))
report = {}


def log(message):
    """Progress notes beside the report, for when Krita never gets to write it."""
    with open(OUT + ".log", "a") as f:
        print(time.strftime("%H:%M:%S"), message, file=f)


def undo_rows():
    window = Krita.instance().activeWindow().qwindow()
    for view in window.findChildren(QAbstractItemView):
        if view.metaObject().className() == "KisUndoView":
            return view.model().rowCount()
    return None


def top_names(document):
    return [n.name() for n in document.topLevelNodes() if n.type() != ""]


def missing_stub_names():
    """Every class and method of krita.pyi that this Krita lacks."""
    import krita
    missing = []
    for cls in ast.parse(open(STUBS).read()).body:
        if isinstance(cls, ast.ClassDef):
            real = getattr(krita, cls.name, None)
            if real is None:
                missing.append(cls.name)
                continue
            for item in cls.body:
                name = getattr(item, "name", None) or getattr(getattr(item, "target", None), "id", None)
                if name and name != "__init__" and not hasattr(real, name):
                    missing.append(f"{cls.name}.{name}")
    return missing


def bgra_layer(document, name, pixels):
    node = document.createNode(name, "paintlayer")
    node.setPixelData(pixels, 0, 0, WIDTH, HEIGHT)
    document.rootNode().addChildNode(node, None)
    return node


def target_pixels():
    image = QImage(TARGET).scaled(WIDTH, HEIGHT).convertToFormat(QImage.Format_ARGB32)
    return bytes(image.constBits().asarray(WIDTH * HEIGHT * 4))   # little-endian ARGB32 = BGRA


def shape_pixels(kind):
    out = bytearray(WIDTH * HEIGHT * 4)
    for y in range(4, 16):
        for x in range(4, 16):
            if kind == "square" or (x - 9.5) ** 2 + (y - 9.5) ** 2 < 30:
                i = 4 * (y * WIDTH + x)
                out[i:i + 4] = bytes((0, 0, 255, 255)) if kind == "disc" else bytes((255, 0, 0, 255))
    return bytes(out)


def wait_until(condition, timeout=240.0):
    """For the step generator: yield this to resume once condition() is true (or on timeout)."""
    deadline = time.monotonic() + timeout
    return lambda: condition() or time.monotonic() > deadline


def steps():
    from spritefit_krita import docker as docker_module

    krita = Krita.instance()
    window = krita.activeWindow()
    report["stubs_missing"] = missing_stub_names() if STUBS else ["no stubs given"]
    action = krita.action("spritefit_open")
    report["action_found"] = action is not None
    if action is not None:
        action.trigger()
    QApplication.processEvents()
    docker = docker_module.INSTANCES[-1]
    report["docker_visible"] = docker.isVisible()

    document = krita.createDocument(WIDTH, HEIGHT, "check", "RGBA", "U8", "", 72.0)
    window.addView(document)
    QApplication.processEvents()
    target = bgra_layer(document, "target", target_pixels())
    disc, square = bgra_layer(document, "disc", shape_pixels("disc")), bgra_layer(document, "square", shape_pixels("square"))
    document.waitForDone()
    options = {"n": COUNT, "iters": 20, "size": max(WIDTH, HEIGHT), "preset": "fast", "color_mode": "tint"}
    if MODE == "live":                 # live mode only, in a smaller window (scripts/make_live_gif.py)
        for name, value in options.items():
            docker.set_option(name, value)
        window.qwindow().resize(1280, 720)
        for other in krita.dockers():          # room for the docker's preview
            if other is not docker and other.windowTitle() != "Layers":
                other.hide()
        yield wait_until(lambda: False, 1.0)      # the window laid out again
        zoom = krita.action("zoom_to_fit")
        if zoom is not None:
            zoom.trigger()
        yield from live_steps(docker, document, target)
        return

    # 2. run, apply, undo (the widgets show the run's settings, for the screenshot)
    for name, value in options.items():          # the docker's controls, built from the option schema
        docker.set_option(name, value)
    report["controls"] = sorted(docker.fit_options.widgets)
    report["options_set"], report["options_sent"] = options, docker.options()
    before_names, before_rows = top_names(document), undo_rows()
    report["started"] = docker.start_run(document, target, "layers", [disc, square], "", options)
    yield wait_until(lambda: docker.job.state not in ("running", "cancelling"))
    report["run_state"], report["run_message"] = docker.job.state, docker.job.message
    if docker.job.state != "done":
        return
    manifest = docker.job.manifest
    report["layers_in_result"] = len(manifest["layers"])
    with open(os.path.join(manifest["folder"], manifest["composite"]), "rb") as f:
        report["composite_png"] = base64.b64encode(f.read()).decode()
    report["names_before_apply"] = top_names(document)
    if SCREENSHOT:
        docker.resize(360, 640)
        QApplication.processEvents()
        docker.grab().save(SCREENSHOT)
    start = time.monotonic()
    docker.apply()
    report["apply_seconds"] = time.monotonic() - start
    QApplication.processEvents()
    group = document.topLevelNodes()[-1]
    report["group_name"], report["group_type"] = group.name(), group.type()
    children = group.childNodes()
    report["group_children"] = len(children)
    report["child_names"] = [c.name() for c in children[:3]]
    report["child_opacities"] = [c.opacity() for c in children[1:4]]
    report["group_pixels"] = base64.b64encode(bytes(group.projectionPixelData(0, 0, WIDTH, HEIGHT))).decode()
    report["undo_entries_added"] = undo_rows() - before_rows
    krita.action("edit_undo").trigger()
    QApplication.processEvents()
    document.waitForDone()
    report["names_after_undo"], report["names_before"] = top_names(document), before_names

    # 3. cancel keeps a result and leaves the document alone
    names = top_names(document)
    docker.start_run(document, None, "pack", [], "shapes", dict(options, iters=100000))
    yield wait_until(lambda: docker.job.progress[0] > 0 or docker.job.state != "running")
    docker.cancel()
    yield wait_until(lambda: docker.job.state not in ("running", "cancelling"))
    report["cancel_state"] = docker.job.state
    report["cancel_result"] = bool(docker.job.manifest and docker.job.manifest["cancelled"])
    report["cancel_message"] = docker.job.message
    report["cancel_document_unchanged"] = top_names(document) == names
    docker.discard()

    # 4. bad input: each refused with a message, nothing added
    cmyk = krita.createDocument(32, 32, "cmyk", "CMYKA", "U8", "", 72.0)
    report["cmyk_started"] = docker.start_run(cmyk, None, "pack", [], "shapes", options)
    report["cmyk_message"] = docker.status.text()
    group_layer = document.createGroupLayer("a group")
    document.rootNode().addChildNode(group_layer, None)
    report["group_sprite_started"] = docker.start_run(document, target, "layers", [group_layer], "", options)
    report["group_sprite_message"] = docker.status.text()
    empty = bgra_layer(document, "empty", bytes(WIDTH * HEIGHT * 4))
    report["empty_target_started"] = docker.start_run(document, empty, "pack", [], "shapes", options)
    report["empty_target_message"] = docker.status.text()

    # 5. refit around a sprite layer the user moved and locked
    small = dict(options, n=12)
    docker.start_run(document, target, "pack", [], "shapes", small)
    yield wait_until(lambda: docker.job.state not in ("running", "cancelling"))
    with open(os.path.join(docker.job.manifest["folder"], "scene.json")) as f:
        first_scene = json.load(f)
    docker.apply()
    QApplication.processEvents()
    moved = next(c for c in document.topLevelNodes()[-1].childNodes() if c.name().endswith(" #3"))
    start = moved.position()
    moved.move(start.x() + 4, start.y() + 2)
    moved.setLocked(True)
    document.waitForDone()
    report["refit_started"] = docker.start_run(document, target, "refit", [], "", small)
    yield wait_until(lambda: docker.job.state not in ("running", "cancelling"))
    report["refit_state"], report["refit_message"] = docker.job.state, docker.job.message
    report["refit_first"], report["refit_scale"] = first_scene["instances"][3], WIDTH / first_scene["canvas"]["width"]
    if docker.job.state == "done":
        with open(os.path.join(docker.job.manifest["folder"], "scene.json")) as f:
            report["refit_scene"] = json.load(f)

    yield from live_steps(docker, document, target)

    names = top_names(document)
    docker.start_run(document, target, "pack", [], "shapes", dict(options, iters=100000))
    yield wait_until(lambda: docker.job.progress[0] > 0 or docker.job.state != "running")
    docker.worker.kill()
    yield wait_until(lambda: docker.job.state != "running", 30)
    report["killed_state"], report["killed_message"] = docker.job.state, docker.job.message
    report["killed_document_unchanged"] = top_names(document) == names
    docker.worker.shutdown()


def stroke(number):
    """(x, y, w, h, BGRA) of the number-th brush stroke: a bright band across the target."""
    w, h = WIDTH // 3, max(HEIGHT // 8, 4)
    x, y = (number * WIDTH // 5) % (WIDTH - w), (HEIGHT // 5 + number * HEIGHT // 4) % (HEIGHT - h)
    colour = [(30, 220, 250, 255), (240, 40, 200, 255), (40, 240, 40, 255)][number % 3]
    return x, y, w, h, colour


def band_error(png, box, colour):
    """Mean absolute difference (0..255) between a preview PNG and a flat colour inside box."""
    image = QImage(png).scaled(WIDTH, HEIGHT)
    x0, y0, w, h = box
    total = 0
    for y in range(y0, y0 + h):
        for x in range(x0, x0 + w):
            pixel = image.pixel(x, y)
            total += abs(((pixel >> 16) & 255) - colour[2]) + abs(((pixel >> 8) & 255) - colour[1]) \
                + abs((pixel & 255) - colour[0])
    return total / (3 * w * h)


def save_window(number):
    if LIVE_FRAMES:
        os.makedirs(LIVE_FRAMES, exist_ok=True)
        Krita.instance().activeWindow().qwindow().grab().save(os.path.join(LIVE_FRAMES, f"frame-{number:03d}.png"))


def live_steps(docker, document, target):
    """6. The Live toggle as a user turns it on: the target layer and the shapes pack chosen in the
    docker; each stroke must come back as a new frame with the stroke's colour in the preview."""
    docker._refresh_targets()
    docker.target.setCurrentIndex(docker.target.findText("Layer: target"))
    docker.sprite_source.setCurrentIndex(1)       # the built-in shapes pack
    names, rows = top_names(document), undo_rows()
    docker.live_toggle.setChecked(True)
    live = docker.live
    report["live_started"] = live is not None and docker.live_toggle.isChecked()
    if live is None:
        report["live_message"] = docker.status.text()
        return
    yield wait_until(lambda: live.state != "starting", 180)
    report["live_first_state"] = live.state
    save_window(0)
    report["live_strokes"] = []
    for number in range(STROKES):
        x, y, w, h, colour = stroke(number)
        before = band_error(live.preview, (x, y, w, h), colour)
        scene_id = live.last_frame["scene_id"] if live.last_frame else -1
        target.setPixelData(bytes(colour) * (w * h), x, y, w, h)      # the stroke, through Krita's API
        document.refreshProjection()
        yield wait_until(lambda: live.last_frame is not None and live.last_frame["scene_id"] > scene_id
                         or live.state != "live", 120)
        frame = live.last_frame or {}
        report["live_strokes"].append({
            "scene_id": frame.get("scene_id"), "frozen": frame.get("frozen"), "seconds": frame.get("seconds"),
            "error_before": before, "error_after": band_error(live.preview, (x, y, w, h), colour),
            "status": docker.status.text(), "state": live.state})
        save_window(number + 1)
    report["live_names_before_apply"] = top_names(document)
    report["live_undo_before_apply"] = undo_rows() - rows
    docker.apply()
    yield wait_until(lambda: live.applied is not None or live.state != "live", 120)
    report["live_applied"] = live.applied is not None
    QApplication.processEvents()
    report["live_undo_entries_added"] = undo_rows() - rows
    report["live_group_name"] = document.topLevelNodes()[-1].name()
    Krita.instance().action("edit_undo").trigger()
    QApplication.processEvents()
    document.waitForDone()
    report["live_names_after_undo"], report["live_names_before"] = top_names(document), names
    folder = live.folder
    docker.live_toggle.setChecked(False)
    yield wait_until(lambda: live.state != "live", 60)
    report["live_stopped_state"], report["live_folder_left"] = live.state, os.path.exists(folder)


def set_variables(variables):
    for key, value in variables.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def engine_box(docker) -> dict:
    """What the docker's Engine box and Run button say, and what is in the engines folder."""
    engines = docker.engine.engines
    return {"state": docker.engine.status().state, "text": docker.engine_state.text(),
            "button": docker.engine_button.text(), "run_enabled": docker.run_button.isEnabled(),
            "left": sorted(os.listdir(engines)) if os.path.isdir(engines) else []}


def pip_working_on_torch(log) -> bool:
    """Whether pip, installing PyTorch, has said something: the install is halfway."""
    commands = [i for i, line in enumerate(log) if line.startswith("$ ")]
    return bool(commands) and "torch" in log[commands[-1]] and commands[-1] < len(log) - 1


def engine_steps():
    """From a clean profile: the engine's state, Install from the docker, then a first fit."""
    from spritefit_krita import docker as docker_module

    krita = Krita.instance()
    krita.action("spritefit_open").trigger()
    QApplication.processEvents()
    docker = docker_module.INSTANCES[-1]
    docker._update()
    report["before_state"] = docker.engine.status().state
    report["before_text"] = docker.engine_state.text()
    report["before_button"] = docker.engine_button.text()
    report["before_run_enabled"] = docker.run_button.isEnabled()
    report["before_run_reason"] = docker.run_button.toolTip()
    report["window_seconds"] = time.monotonic() - STARTED

    # Installs that fail: each must say why and leave no engine and nothing in the engine's home.
    for name, python, variables in (("no_python", "/nonexistent/python3", {}), ("pip_fails", "", FAILING_PIP)):
        saved = dict(os.environ)
        set_variables(variables)
        docker.engine_python.setText(python)
        docker.engine_button.click()
        yield wait_until(lambda: docker.install is None, 600)
        os.environ.clear()
        os.environ.update(saved)
        report[name] = engine_box(docker)
    docker.engine_python.setText("")
    docker.engine_button.click()
    yield wait_until(lambda: docker.install is None or pip_working_on_torch(docker.install.log), 600)
    report["cancelled_halfway"] = docker.install is not None
    docker.engine_cancel.click()
    yield wait_until(lambda: docker.install is None, 120)
    report["cancelled"] = dict(engine_box(docker), processes_left=subprocess.run(
        ["pgrep", "-f", str(docker.engine.engines)], capture_output=True, text=True).stdout)

    start = time.monotonic()
    docker.engine_button.click()
    report["cancel_visible"] = docker.engine_cancel.isVisibleTo(docker)
    yield wait_until(lambda: docker.engine.status().state != "not installed", 30)
    report["installing_state"] = docker.engine.status().state
    yield wait_until(lambda: docker.install is None, 900)
    report["install_seconds"] = time.monotonic() - start
    report["after_state"] = docker.engine.status().state
    report["after_text"] = docker.engine_state.text()
    report["after_button"] = docker.engine_button.text()
    report["log_lines"] = docker.engine_log.blockCount()
    report["log_tail"] = docker.engine_log.toPlainText().splitlines()[-5:]
    report["after_run_enabled"] = docker.run_button.isEnabled()
    if report["after_state"] != "ready":
        return

    window = krita.activeWindow()
    document = krita.createDocument(WIDTH, HEIGHT, "check", "RGBA", "U8", "", 72.0)
    window.addView(document)
    QApplication.processEvents()
    target = bgra_layer(document, "target", target_pixels())
    document.waitForDone()
    before_names, before_rows = top_names(document), undo_rows()
    options = {"n": COUNT, "iters": 20, "size": max(WIDTH, HEIGHT), "preset": "fast", "color_mode": "tint"}
    for name, value in options.items():          # the docker's controls, built from the option schema
        docker.set_option(name, value)
    docker.sprite_source.setCurrentIndex(1)   # the built-in shapes pack
    report["run_started"] = docker.start_run(document, target, "pack", [], "shapes", options)
    yield wait_until(lambda: docker.job.state not in ("running", "cancelling"))
    report["run_state"], report["run_message"] = docker.job.state, docker.job.message
    report["first_result_seconds"] = time.monotonic() - STARTED
    if docker.job.state != "done":
        return
    if SCREENSHOT:
        docker.resize(380, 760)
        QApplication.processEvents()
        docker.grab().save(SCREENSHOT)
    docker.apply()
    QApplication.processEvents()
    report["group_name"] = document.topLevelNodes()[-1].name()
    report["undo_entries_added"] = undo_rows() - before_rows
    krita.action("edit_undo").trigger()
    QApplication.processEvents()
    document.waitForDone()
    report["names_after_undo"], report["names_before"] = top_names(document), before_names
    docker.worker.shutdown()

    # The plugin upgraded, the engine not: the docker offers Upgrade and Run waits for it.
    description = os.path.join(docker.engine.current(), "engine.json")
    with open(description) as f:
        engine = json.load(f)
    with open(description, "w") as f:
        json.dump(dict(engine, version="0.0.9"), f)
    docker._update()
    report["outdated"] = {"state": docker.engine.status().state, "text": docker.engine_state.text(),
                          "button": docker.engine_button.text(), "run_enabled": docker.run_button.isEnabled(),
                          "reason": docker.run_button.toolTip()}


def drive(generator):
    """Run the step generator on Krita's event loop, polling each wait condition every 50 ms."""
    def finish():
        with open(OUT, "w") as f:
            json.dump(report, f)
        QTimer.singleShot(200, lambda: os._exit(0))

    def tick(condition=None):
        try:
            if condition is None or condition():
                condition = next(generator)
            QTimer.singleShot(50, lambda: tick(condition))
        except StopIteration:
            finish()
        except Exception:
            report["exception"] = traceback.format_exc()
            finish()
    tick()


class SpriteFitCheck(Extension):
    def setup(self):
        log("setup")
        notifier = Krita.instance().notifier()
        notifier.setActive(True)
        notifier.windowCreated.connect(self.window_created)

    def window_created(self):
        log("window created")
        QTimer.singleShot(1000, lambda: drive(engine_steps() if MODE == "engine" else steps()))

    def createActions(self, window):
        pass


Krita.instance().addExtension(SpriteFitCheck(Krita.instance()))
