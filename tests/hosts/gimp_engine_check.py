# Fed to `gimp-console-3.0 -i --batch-interpreter=python-fu-eval -b - --quit` from a clean
# profile with no worker Python set: Fit says the engine is missing, "Set up engine" installs it
# (with $CHECK_ENGINE_PYTHON as the chosen interpreter), then Fit runs on it. With
# CHECK_MODE=failures, "Set up engine" instead fails twice (a missing interpreter; pip, under the
# pip settings GIMP was started with) and Fit is tried before and after. Writes $CHECK_OUT.
# gimp_pdb.py is put in front of it.
import json
import os
import time
import traceback

from gi.repository import Gegl, Gimp

out = os.environ["CHECK_OUT"]
report = {}


run = run_pdb  # noqa: F821  (from gimp_pdb.py, put in front of this script)


def failures(fit):
    report["no_python"] = run("python-fu-spritefit-engine", action="install", python="/nonexistent/python3")
    report["pip_fails"] = run("python-fu-spritefit-engine", action="install",
                              python=os.environ["CHECK_ENGINE_PYTHON"], torch="cpu")
    report["fit_after"] = run("python-fu-spritefit", **fit)


def install_then_fit(fit, image):
    report["status_before"] = run("python-fu-spritefit-engine", action="status")
    start = time.monotonic()
    report["install"] = run("python-fu-spritefit-engine", action="install", python=os.environ["CHECK_ENGINE_PYTHON"],
                            torch="cpu")
    report["install_seconds"] = time.monotonic() - start
    report["names_before"] = [l.get_name() for l in image.get_layers()]
    report["fit_after"] = run("python-fu-spritefit", **fit)
    report["names_after"] = [l.get_name() for l in image.get_layers()]
    report["children"] = len(image.get_layers()[0].get_children())
    report["bad_action"] = run("python-fu-spritefit-engine", action="reinstall")


try:
    image = Gimp.Image.new(64, 48, Gimp.ImageBaseType.RGB)
    layer = Gimp.Layer.new(image, "target", 64, 48, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, None, 0)
    buffer = layer.get_buffer()
    buffer.set(Gegl.Rectangle.new(0, 0, 64, 48), "R'G'B'A u8",
               bytes(v for y in range(48) for x in range(64) for v in (x * 4, y * 5, 128, 255)))
    buffer.flush()
    fit = dict(image=image, drawables=[layer], target=layer, sprites="pack:shapes", n=30, iters=10,
               preset="fast", size=64)
    report["fit_before"] = run("python-fu-spritefit", **fit)
    if os.environ.get("CHECK_MODE") == "failures":
        failures(fit)
    else:
        install_then_fit(fit, image)
except Exception:
    report["exception"] = traceback.format_exc()
with open(out, "w") as f:
    json.dump(report, f)
