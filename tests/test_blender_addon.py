"""The Blender add-on in a real Blender (`blender -b`), installed from its zip: the operator adds
a collection with one textured quad per placed sprite, placed as in the scene, a camera that
frames them and the composite image; bad input is reported and adds nothing."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import bundle
from hosts import HERE, host_environment, require
from spritefit.render import render_scene_array
from spritefit.scene import Scene

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "core" / "spritefit" / "data" / "targets" / "chelsea.png"
PIXEL = 0.01


def run_blender_check(home: Path, count: int = 40) -> dict:
    blender = require("blender")
    addon = bundle.write_blender_zip(home / "spritefit-blender.zip")
    out = home / "report.json"
    env = dict(host_environment(), HOME=str(home), SPRITEFIT_PYTHON=sys.executable)
    done = subprocess.run([blender, "-b", "--factory-startup", "--python-exit-code", "1",
                           "-P", str(HERE / "blender_check.py"), "--", str(addon), str(TARGET), str(out), str(count)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert out.exists(), f"Blender wrote no report:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    report = json.loads(out.read_text())
    assert "exception" not in report, report["exception"] + done.stdout[-2000:]
    return report


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return run_blender_check(tmp_path_factory.mktemp("blender-home"))


def test_operator_adds_a_collection_with_one_quad_per_sprite(report):
    assert report["operator_found"] and report["result"] == ["FINISHED"]
    scene = Scene.from_dict(json.loads(report["scene"]))
    assert report["collection"] == f"SpriteFit ({len(report['quads'])} sprites)"
    assert 0 < len(report["quads"]) <= 40 and report["objects_added"] == len(report["quads"]) + 1
    assert {q["image"] for q in report["quads"]} <= {"SpriteFit sprite sprite disc", "SpriteFit sprite sprite square"}
    assert report["camera"]["type"] == "ORTHO"


def test_the_panels_options_are_built_from_the_option_schema(report):
    from spritefit.options import ADVANCED, BASIC, host_options
    shown = sorted(name for name, o in host_options().items() if o.show in (BASIC, ADVANCED))
    assert report["option_properties"] == shown
    assert report["options_sent"] == {"n": 40, "iters": 20, "size": 96, "preset": "fast"}   # the rest untouched


def test_quads_are_placed_as_the_scene_says(report):
    scene = Scene.from_dict(json.loads(report["scene"]))
    width, height = report["composite_size"]
    scale = width / scene.width
    shown = [q["name"] for q in report["quads"]]
    indices = [int(name.split("#")[1]) for name in shown]
    assert indices == sorted(indices)                                  # painter's order along z
    for quad, i in zip(report["quads"], indices):
        x, y = scene.xy[i] * scale
        assert quad["location"][:2] == pytest.approx([x * PIXEL, (height - y) * PIXEL], abs=1e-4)
        assert quad["angle"] == pytest.approx(float(scene.theta[i]), abs=1e-5)
        assert quad["scale"] == pytest.approx(float(scene.size[i]) * scale * PIXEL, rel=1e-5)
        assert quad["color"] == pytest.approx([*scene.color[i], scene.opacity[i]], abs=1e-5)


def test_composite_image_is_our_render(report):
    scene = Scene.from_dict(json.loads(report["scene"]))
    width, height = report["composite_size"]
    assert report["composite_packed"]
    blender = np.asarray(report["composite"], np.float64).reshape(height, width, 4)[::-1, :, :3]
    ours = render_scene_array(scene, scale=width / scene.width, canvas=(width, height))[..., :3]
    error = np.mean((blender - ours) ** 2)
    assert 10 * math.log10(1 / max(error, 1e-12)) > 35


def test_bad_input_is_reported_and_adds_nothing(report):
    assert "Choose the target image" in report["no_target"]
    assert "No images named 'nothing-named-so…'" in report["no_sprites"]
    assert "stopped unexpectedly (exit status 3)" in report["dead_worker"] and "worker crashed" in report["dead_worker"]
    assert report["objects_unchanged_after_bad_input"]


def test_refit_starts_moved_quads_where_the_user_put_them_and_keeps_locked_ones(report):
    assert "Refit needs an earlier SpriteFit result" in report["refit_without_result"]
    first = json.loads(report["scene"])["instances"]
    scale = report["composite_size"][0] / json.loads(report["scene"])["canvas"]["width"]
    kept, turned = report["refit_moved"]["kept"], report["refit_moved"]["turned"]
    start = report["refit_start"]["instances"]
    assert report["refit_lock"] == str(kept)
    assert start[kept]["x"] == pytest.approx(first[kept]["x"] + 4 / scale, abs=1e-4)
    assert start[kept]["y"] == pytest.approx(first[kept]["y"] + 2 / scale, abs=1e-4)
    assert start[turned]["x"] == pytest.approx(first[turned]["x"] - 3 / scale, abs=1e-4)
    assert start[turned]["angle"] == pytest.approx(first[turned]["angle"] + 0.3, abs=1e-5)
    assert start[turned]["size"] == pytest.approx(first[turned]["size"], rel=1e-6)

    assert report["refit_result"] == ["FINISHED"] and report["refit_collection"] != report["collection"]
    refit = json.loads(report["refit_scene"])["instances"]
    assert [i for i, r in enumerate(refit) if r["frozen"]] == [kept]
    for key in ("x", "y", "size", "angle"):
        assert refit[kept][key] == pytest.approx(start[kept][key], abs=1e-5)
    assert report["refitted_hidden"]


def test_keep_out_image_keeps_every_sprite_out_of_its_bright_half(report):
    assert report["keep_out_result"] == ["FINISHED"] and report["keep_out_quads"]
    width = report["composite_size"][0]
    assert all(q["location"][0] / PIXEL >= width / 2 for q in report["keep_out_quads"])
    assert "must have the target's shape" in report["keep_out_wrong_shape"]


def test_live_follows_pixels_painted_on_the_target_image_and_apply_adds_a_collection(report):
    live = report["live"]
    assert live["start"] == ["FINISHED"] and live["running"] and live["first_frame"] and live["state"] == "live"
    assert live["preview_size"] and max(live["preview_size"]) == 96            # the working size
    assert live["stroke_frame"], live
    assert live["frame"]["scene_id"] == 1 and live["frame"]["frozen"] > 0 and not live["frame"]["restarted"]
    print(f"\nBlender live: stroke to frame {live['stroke_to_frame_s']:.2f} s, {live['frame']['frozen']} kept, "
          f"band error {live['band_error_before']:.3f} -> {live['band_error_after']:.3f}")
    assert live["band_error_after"] < 0.7 * live["band_error_before"]      # the preview took the stroke's colour
    assert live["option_frame"] and live["option_instances"] == 36           # the panel's new count
    assert live["status_live"].startswith("Live: frame 2")
    assert live["apply"] == ["FINISHED"] and live["collections_added"] == 1
    assert live["applied"].startswith("SpriteFit (") and "one Undo removes it" in live["status_applied"]
    assert live["stopped"] and live["timer_ended"] and live["folder_removed"]


# --- the managed engine, installed from the add-on's preferences ----------------------------------------

@pytest.fixture(scope="module")
def engine_report(tmp_path_factory):
    """A clean profile: the release bundle (with its wheel), no worker Python anywhere."""
    from hosts import ENGINE_FROM_LOCAL_PACKAGES, FAILING_PIP
    from test_dist import DIST, release_wheel
    blender = require("blender")
    release_wheel()
    home = tmp_path_factory.mktemp("blender-engine-home")
    addon = bundle.write_blender_zip(home / "spritefit-blender.zip", wheels=sorted(DIST.glob("spritefit-*.whl")))
    out = home / "report.json"
    env = dict(host_environment(), HOME=str(home), SPRITEFIT_CHECK_FAILING_PIP=json.dumps(FAILING_PIP),
               **ENGINE_FROM_LOCAL_PACKAGES)
    started = time.monotonic()
    done = subprocess.run([blender, "-b", "--factory-startup", "--python-exit-code", "1",
                           "-P", str(HERE / "blender_engine_check.py"), "--", str(addon), str(TARGET), str(out)],
                          env=env, capture_output=True, text=True, timeout=1200)
    assert out.exists(), f"Blender wrote no report:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    report = json.loads(out.read_text())
    assert "exception" not in report, report["exception"] + done.stdout[-2000:]
    report["import_to_result_seconds"] = time.monotonic() - started
    report["engines"] = list((home / ".local" / "share" / "spritefit" / "engines").iterdir()) \
        if (home / ".local" / "share" / "spritefit" / "engines").exists() else []
    print(f"\nBlender: engine installed in {report['install_seconds']:.0f} s; zip to first result "
          f"{report['import_to_result_seconds']:.0f} s")
    return report


def test_panel_says_the_engine_is_missing_and_run_is_refused(engine_report):
    assert engine_report["state_before"] == "not installed"
    assert "Preferences > Add-ons > SpriteFit" in engine_report["blocked_before"]
    assert "Preferences > Add-ons > SpriteFit" in engine_report["run_before"]


def test_failed_installs_say_why_and_leave_nothing(engine_report):
    no_python, pip_fails = engine_report["no_python"], engine_report["pip_fails"]
    assert "No Python 3.10 or newer" in no_python["message"] and "/nonexistent/python3" in no_python["message"]
    assert "pip could not install the engine's packages" in pip_fails["message"], pip_fails["message"]
    cancelled = engine_report["cancelled"]
    assert cancelled["halfway"] and cancelled["error"].startswith("The install was cancelled") and not cancelled["running"]
    for failure in (no_python, pip_fails, cancelled):
        assert failure["state"] == "not installed" and failure["left"] == []


def test_an_engine_of_another_version_offers_upgrade(engine_report):
    outdated = engine_report["outdated"]
    assert outdated["state"] == "outdated" and outdated["action"] == "Upgrade"
    assert "0.0.9" in outdated["blocked"] and "Preferences > Add-ons > SpriteFit" in outdated["blocked"]


def test_install_from_preferences_then_fit(engine_report):
    assert engine_report["install"] == ["FINISHED"], engine_report["install_log"]
    assert engine_report["state_after"] == "ready" and engine_report["blocked_after"] is None
    assert len(engine_report["engines"]) == 1
    assert engine_report["run_after"] == ["FINISHED"] and engine_report["objects_added"] > 1
    assert any(name.startswith("SpriteFit (") for name in engine_report["collections"])
