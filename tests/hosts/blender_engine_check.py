"""Run by `blender -b --factory-startup -P blender_engine_check.py -- ZIP TARGET OUT` from a clean
profile with no worker Python set: installs the add-on from its zip, reads the engine state the
panel shows, installs the engine with the Preferences operator, then fits. Writes OUT (JSON)."""
import json
import sys
import time
import traceback

import bpy

zip_path, target_path, out = sys.argv[sys.argv.index("--") + 1:][:3]
report = {}

try:
    started = time.monotonic()
    bpy.ops.preferences.addon_install(filepath=zip_path)
    bpy.ops.preferences.addon_enable(module="spritefit_blender")
    addon = sys.modules["spritefit_blender"]
    settings = bpy.context.scene.spritefit
    settings.target = bpy.data.images.load(target_path)
    settings.sprite_source, settings.pack = "PACK", "shapes"
    settings.count, settings.iterations, settings.working_size, settings.preset = 30, 10, 64, "fast"
    report["state_before"] = addon.engine_setup.Engine().status().state
    report["blocked_before"] = addon.engine_blocked_reason(settings)
    try:
        bpy.ops.spritefit.run()
        report["run_before"] = "accepted"
    except RuntimeError as exc:
        report["run_before"] = str(exc)
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
except Exception:
    report["exception"] = traceback.format_exc()
with open(out, "w") as f:
    json.dump(report, f)
