"""The Krita plugin in a real Krita (GUI on a virtual display), driven by the check plugin in
tests/hosts/krita_plugin_check: action, docker, run, Apply as one undo step, Cancel, bad input."""
from __future__ import annotations

import base64
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hosts import ENGINE_FROM_LOCAL_PACKAGES, FAILING_PIP, install_krita_plugin, require, run_krita_gui

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "core" / "spritefit" / "data" / "targets" / "chelsea.png"
STUBS = ROOT / "plugins" / "krita" / "stubs" / "krita.pyi"
WIDTH, HEIGHT = 96, 64


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    require("krita")
    home = tmp_path_factory.mktemp("krita-home")
    # Installed as a user would: the dist zip through Krita's importer, the worker's Python set.
    resources = install_krita_plugin(home)
    assert (resources / "actions" / "spritefit_krita.action").exists()
    out = home / "report.json"
    done = run_krita_gui(home, {"SPRITEFIT_CHECK_OUT": str(out), "SPRITEFIT_KRITA_STUBS": str(STUBS),
                                "SPRITEFIT_CHECK_TARGET": str(TARGET), "SPRITEFIT_PYTHON": sys.executable})
    assert out.exists(), f"Krita wrote no report:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    data = json.loads(out.read_text())
    assert "exception" not in data, data["exception"]
    return data


def test_menu_action_shows_the_docker_and_the_stubs_match_krita(report):
    assert report["action_found"] and report["docker_visible"]
    assert report["stubs_missing"] == []


def test_the_dockers_controls_are_built_from_the_option_schema(report):
    from spritefit.options import ADVANCED, BASIC, host_options
    assert report["controls"] == sorted(name for name, o in host_options().items() if o.show in (BASIC, ADVANCED))
    # Set controls are sent; one left at its default (colour: tint) is left to the engine.
    assert report["options_sent"] == {k: v for k, v in report["options_set"].items() if k != "color_mode"}


def test_apply_adds_one_group_of_sprite_layers_that_composite_to_the_render(report):
    assert report["run_state"] == "done", report["run_message"]
    assert report["names_before_apply"] == report["names_before"]          # untouched until Apply
    assert report["group_type"] == "grouplayer" and report["group_name"].startswith("SpriteFit (")
    assert report["group_children"] == report["layers_in_result"] + 1       # + the background layer
    assert report["child_names"][0] == "background"
    assert all(name.split(" #")[0] in ("disc", "square") for name in report["child_names"][1:])
    assert all(0 < opacity <= 255 for opacity in report["child_opacities"])
    krita = np.frombuffer(base64.b64decode(report["group_pixels"]), np.uint8).reshape(HEIGHT, WIDTH, 4)
    ours = np.asarray(Image.open(io.BytesIO(base64.b64decode(report["composite_png"]))).convert("RGB"))
    error = np.mean((krita[..., [2, 1, 0]].astype(float) - ours) ** 2) / 255 ** 2
    assert 10 * np.log10(1 / max(error, 1e-12)) > 35


def test_one_undo_removes_the_whole_result(report):
    assert report["undo_entries_added"] == 1
    assert report["names_after_undo"] == report["names_before"]


def test_cancel_keeps_a_result_and_leaves_the_document_alone(report):
    assert report["cancel_state"] == "done" and report["cancel_result"], report["cancel_message"]
    assert "Cancelled" in report["cancel_message"]
    assert report["cancel_document_unchanged"]


def test_bad_input_is_explained_in_the_docker(report):
    assert not report["cmyk_started"] and "8-bit RGB" in report["cmyk_message"] and "CMYKA" in report["cmyk_message"]
    assert not report["group_sprite_started"] and "sprites must be paint layers" in report["group_sprite_message"]
    assert not report["empty_target_started"] and "fully transparent" in report["empty_target_message"]
    assert report["killed_state"] == "failed" and "stopped unexpectedly" in report["killed_message"]
    assert report["killed_document_unchanged"]


def test_refit_keeps_a_moved_and_locked_layer_where_the_user_put_it(report):
    assert report["refit_started"] and report["refit_state"] == "done", report["refit_message"]
    kept = [r for r in report["refit_scene"]["instances"] if r["frozen"]]
    first, scale = report["refit_first"], report["refit_scale"]
    assert len(kept) == 1
    assert kept[0]["x"] == pytest.approx(first["x"] + 4 / scale, abs=1e-4)
    assert kept[0]["y"] == pytest.approx(first["y"] + 2 / scale, abs=1e-4)


def test_live_follows_strokes_painted_on_the_target_and_apply_is_one_undo(report):
    assert report["live_started"] and report["live_first_state"] == "live", report.get("live_message")
    strokes = report["live_strokes"]
    print("\nKrita live:", "; ".join(f"frame {s['scene_id']}: {s['seconds']} s, {s['frozen']} kept, "
                                     f"stroke error {s['error_before']:.0f} -> {s['error_after']:.0f}" for s in strokes))
    assert [s["scene_id"] for s in strokes] == list(range(1, len(strokes) + 1)), strokes
    for s in strokes:
        assert s["state"] == "live" and s["frozen"] > 0, s           # sprites away from the stroke stayed
        assert s["status"].startswith(f"Live: frame {s['scene_id']}"), s["status"]
        assert s["error_after"] < 0.7 * s["error_before"], s         # the preview took the stroke's colour
    assert report["live_undo_before_apply"] == 0 and report["live_names_before_apply"] == report["live_names_before"]
    assert report["live_applied"] and report["live_group_name"].startswith("SpriteFit (")
    assert report["live_undo_entries_added"] == 1
    assert report["live_names_after_undo"] == report["live_names_before"]
    assert report["live_stopped_state"] == "stopped" and not report["live_folder_left"]


# --- the managed engine, installed from the docker ---------------------------------------------------

@pytest.fixture(scope="module")
def engine_report(tmp_path_factory):
    """A clean profile: the release bundle (with its wheel) imported as a user would, no worker
    Python anywhere; the check presses Install and waits for the engine."""
    require("krita")
    from test_dist import DIST, release_wheel
    release_wheel()
    home = tmp_path_factory.mktemp("krita-engine-home")
    started = time.monotonic()
    resources = install_krita_plugin(home, wheels=sorted(DIST.glob("spritefit-*.whl")))
    assert list((resources / "pykrita" / "spritefit_krita" / "engine").glob("spritefit-*.whl"))
    out = home / "report.json"
    env = {"SPRITEFIT_CHECK_OUT": str(out), "SPRITEFIT_CHECK_MODE": "engine", "SPRITEFIT_CHECK_TARGET": str(TARGET),
           "SPRITEFIT_CHECK_FAILING_PIP": json.dumps(FAILING_PIP), **ENGINE_FROM_LOCAL_PACKAGES}
    if os.environ.get("SPRITEFIT_DOCKER_SCREENSHOT"):
        env["SPRITEFIT_CHECK_SCREENSHOT"] = os.environ["SPRITEFIT_DOCKER_SCREENSHOT"]
    done = run_krita_gui(home, env, timeout=1200)
    assert out.exists(), f"Krita wrote no report:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    data = json.loads(out.read_text())
    assert "exception" not in data, data["exception"]
    data["import_to_result_seconds"] = time.monotonic() - started
    data["engine_home"] = home / ".local" / "share" / "spritefit"
    print(f"\nKrita: engine installed in {data.get('install_seconds', 0):.0f} s; zip import to first result "
          f"{data['import_to_result_seconds']:.0f} s")
    return data


def test_docker_says_the_engine_is_missing_and_run_waits_for_it(engine_report):
    assert engine_report["before_state"] == "not installed" and engine_report["before_button"] == "Install"
    assert "not installed" in engine_report["before_text"]
    assert not engine_report["before_run_enabled"] and "press Install" in engine_report["before_run_reason"]
    assert engine_report["installing_state"] == "installing" and engine_report["cancel_visible"]


def test_failed_installs_say_why_and_leave_nothing(engine_report):
    no_python, pip_fails = engine_report["no_python"], engine_report["pip_fails"]
    assert no_python["text"].startswith("No Python 3.10 or newer") and "/nonexistent/python3" in no_python["text"]
    assert pip_fails["text"].startswith("pip could not install the engine's packages"), pip_fails["text"]
    assert "press Install again" in pip_fails["text"]
    cancelled = engine_report["cancelled"]
    assert engine_report["cancelled_halfway"] and cancelled["text"].startswith("The install was cancelled")
    assert not cancelled["processes_left"], cancelled["processes_left"]
    for failure in (no_python, pip_fails, cancelled):
        assert failure["state"] == "not installed" and failure["button"] == "Install" and not failure["run_enabled"]
        assert failure["left"] == []


def test_an_engine_of_another_version_offers_upgrade(engine_report):
    outdated = engine_report["outdated"]
    assert outdated["state"] == "outdated" and outdated["button"] == "Upgrade" and "0.0.9" in outdated["text"]
    assert not outdated["run_enabled"] and "Upgrade" in outdated["reason"]


def test_install_from_the_docker_makes_a_ready_engine(engine_report):
    assert engine_report["after_state"] == "ready", engine_report["after_text"] + "\n" + "\n".join(engine_report["log_tail"])
    assert engine_report["after_text"].startswith("Ready: SpriteFit") and engine_report["after_button"] == "Repair"
    assert engine_report["log_lines"] > 10 and engine_report["after_run_enabled"]
    engines = list((engine_report["engine_home"] / "engines").iterdir())
    assert len(engines) == 1 and (engines[0] / "engine.json").exists()


def test_first_fit_with_the_installed_engine_applies_and_undoes(engine_report):
    assert engine_report["run_started"] and engine_report["run_state"] == "done", engine_report["run_message"]
    assert engine_report["group_name"].startswith("SpriteFit (")
    assert engine_report["undo_entries_added"] == 1
    assert engine_report["names_after_undo"] == engine_report["names_before"]
