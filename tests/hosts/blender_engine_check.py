"""Run by `blender -b --factory-startup -P blender_engine_check.py -- ZIP TARGET OUT` from a clean
profile with no worker Python set: installs the add-on from its zip, reads the engine state the
panel shows, runs the Preferences' Install twice with a failure each time (no Python; pip under
$SPRITEFIT_CHECK_FAILING_PIP), starts one from the panel's button and cancels it while pip installs
PyTorch, installs the engine for real, fits, and finally makes the engine
another version's. Writes OUT (JSON)."""
import json
import os
import sys
import time
import traceback

import bpy

zip_path, target_path, out = sys.argv[sys.argv.index("--") + 1:][:3]
report = {}
FAILING_PIP = json.loads(os.environ.get("SPRITEFIT_CHECK_FAILING_PIP", "{}"))   # variables; null removes one


def operator_message(operator) -> str:
    """What an operator reports when it fails ("finished" when it does not)."""
    try:
        operator()
        return "finished"
    except RuntimeError as exc:
        return str(exc)


def failed_install(addon, preferences, python: str, variables: dict) -> dict:
    saved = dict(os.environ)
    for key, value in variables.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    preferences.engine_python = python
    try:
        message = operator_message(bpy.ops.spritefit.engine_install)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        preferences.engine_python = ""
    return dict(engine_state(addon), message=message)


def engine_state(addon) -> dict:
    engine = addon.engine_setup.Engine()
    return {"state": engine.status().state,
            "left": sorted(os.listdir(engine.engines)) if os.path.isdir(engine.engines) else []}


def pip_working_on_torch(log) -> bool:
    """Whether pip, installing PyTorch, has said something: the install is halfway."""
    commands = [i for i, line in enumerate(log) if line.startswith("$ ")]
    return bool(commands) and "torch" in log[commands[-1]] and commands[-1] < len(log) - 1


def cancelled_install(addon) -> dict:
    """Install as the Preferences button starts it (on a thread: `-b` runs operators' execute,
    never their invoke), cancelled halfway with the Cancel operator."""
    addon.start_install(bpy.context)
    running = addon.INSTALL["running"]
    deadline = time.monotonic() + 600
    while not (pip_working_on_torch(running.log) or running.done.is_set()) and time.monotonic() < deadline:
        time.sleep(0.1)
    halfway = not running.done.is_set()
    bpy.ops.spritefit.engine_cancel()
    running.done.wait(120)
    addon._poll_install()               # what the add-on's timer does once the install has ended
    return dict(engine_state(addon), halfway=halfway, error=addon.INSTALL["error"],
                running=addon.INSTALL["running"] is not None)

try:
    started = time.monotonic()
    bpy.ops.preferences.addon_install(filepath=zip_path)
    bpy.ops.preferences.addon_enable(module="spritefit_blender")
    addon = sys.modules["spritefit_blender"]
    settings = bpy.context.scene.spritefit
    settings.target = bpy.data.images.load(target_path)
    settings.sprite_source, settings.pack = "PACK", "shapes"
    settings.n, settings.iters, settings.size, settings.preset = 30, 10, 64, "fast"
    report["state_before"] = addon.engine_setup.Engine().status().state
    report["blocked_before"] = addon.engine_blocked_reason(settings)
    try:
        bpy.ops.spritefit.run()
        report["run_before"] = "accepted"
    except RuntimeError as exc:
        report["run_before"] = str(exc)
    preferences = bpy.context.preferences.addons["spritefit_blender"].preferences
    report["no_python"] = failed_install(addon, preferences, "/nonexistent/python3", {})
    report["pip_fails"] = failed_install(addon, preferences, "", FAILING_PIP)
    report["cancelled"] = cancelled_install(addon)
    start = time.monotonic()
    report["install"] = sorted(bpy.ops.spritefit.engine_install())
    report["install_seconds"] = time.monotonic() - start
    report["install_log"] = addon.INSTALL["log"][-10:]
    report["state_after"] = addon.engine_setup.Engine().status().state
    report["blocked_after"] = addon.engine_blocked_reason(settings)
    objects_before = len(bpy.data.objects)
    report["run_after"] = sorted(bpy.ops.spritefit.run())
    report["first_result_seconds"] = time.monotonic() - started
    report["objects_added"] = len(bpy.data.objects) - objects_before
    report["collections"] = [c.name for c in bpy.data.collections]

    engine = addon.engine_setup.Engine()
    description = os.path.join(engine.current(), "engine.json")
    with open(description) as f:
        installed = json.load(f)
    with open(description, "w") as f:
        json.dump(dict(installed, version="0.0.9"), f)
    status = engine.status()
    report["outdated"] = {"state": status.state, "action": status.action,
                          "blocked": addon.engine_blocked_reason(settings)}
except Exception:
    report["exception"] = traceback.format_exc()
with open(out, "w") as f:
    json.dump(report, f)
