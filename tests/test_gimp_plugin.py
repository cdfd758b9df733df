"""The GIMP 3 plug-in in a real GIMP (gimp-console-3.0 in a Debian 13 root, batch mode), run as a
script would run it: the layer group, its layers' offsets and the composite against our render,
and bad input refused with the image unchanged."""
from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bundle
from hosts import HERE, gimp_root, run_in_gimp_root
from spritefit.render import render_scene_array, scene_atlas
from spritefit.render.layers import instance_layers
from spritefit.scene import Scene

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "core" / "spritefit" / "data" / "targets" / "chelsea.png"
WIDTH, HEIGHT = 96, 64


def gimp_script(name: str) -> str:
    """A check script with the PDB helper it uses in front of it."""
    return (HERE / "gimp_pdb.py").read_text() + "\n\n" + (HERE / name).read_text()


def run_gimp_check(count: int, width: int = WIDTH, height: int = HEIGHT) -> dict:
    root = gimp_root()
    plugin = bundle.install_gimp(root / "tmp" / "gimp-home" / ".config" / "GIMP" / "3.0" / "plug-ins", sys.executable)
    work = Path(tempfile.mkdtemp(prefix="spritefit-check-", dir=root / "tmp"))
    rgba = np.asarray(Image.open(TARGET).convert("RGBA").resize((width, height)))
    (work / "target.rgba").write_bytes(rgba.tobytes())
    inside = "/" + str(work.relative_to(root))
    env = {"CHECK_OUT": f"{inside}/report.json", "CHECK_TARGET": f"{inside}/target.rgba", "CHECK_N": str(count),
           "CHECK_WIDTH": str(width), "CHECK_HEIGHT": str(height),
           "CHECK_PLUGIN_DIR": "/" + str(plugin.relative_to(root))}
    shared = [ROOT, Path(sys.base_prefix), Path(sys.prefix)]
    start = time.monotonic()
    done = run_in_gimp_root(root, gimp_script("gimp_check.py"), env, shared)
    report_file = work / "report.json"
    assert report_file.exists(), f"GIMP wrote no report:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    report = json.loads(report_file.read_text())
    assert "exception" not in report, report["exception"] + done.stderr[-3000:]
    report["seconds"] = time.monotonic() - start
    report["log"] = [line for line in done.stderr.splitlines() if line.startswith("SpriteFit:")]
    return report


@pytest.fixture(scope="module")
def report():
    return run_gimp_check(40)


def test_procedure_adds_one_group_with_a_layer_per_sprite(report):
    assert report["procedure_found"]
    assert report["ok"], report["message"]
    assert report["names_after"][1:] == report["names_before"]      # only the group was added, on top
    assert report["is_group"] and report["group_name"].startswith("SpriteFit (")
    children = report["children"]
    assert children[0]["name"] == "background" and len(children) > 1
    assert all(c["name"].split(" #")[0] in ("disc", "square") for c in children[1:])
    assert report["log"] and report["log"][0].startswith(f"SpriteFit: added {len(children) - 1} sprite layers in")


def test_the_procedures_option_arguments_are_built_from_the_option_schema(report):
    from spritefit.options import ADVANCED, BASIC, host_options
    shown = [name.replace("_", "-") for show in (BASIC, ADVANCED) for name, o in host_options().items()
             if o.show == show]
    assert [a for a in report["arguments"] if a in shown] == shown     # every one, basic first, in schema order


def test_layer_offsets_and_sizes_are_the_scene_s(report):
    scene = Scene.from_dict(json.loads(report["scene"]))
    scale = WIDTH / scene.width
    expected = [(layer.left, layer.top, layer.rgba.shape[1], layer.rgba.shape[0], layer.name)
                for layer in instance_layers(scene, scene_atlas(scene, scale), scale)]
    found = [(c["offsets"][0], c["offsets"][1], c["width"], c["height"], c["name"]) for c in report["children"][1:]]
    assert found == expected


def test_group_composite_matches_our_render(report):
    scene = Scene.from_dict(json.loads(report["scene"]))
    ours = render_scene_array(scene, scale=WIDTH / scene.width)[..., :3]
    gimp = np.frombuffer(base64.b64decode(report["composite"]), np.uint8).reshape(HEIGHT, WIDTH, 4)
    error = np.mean((gimp[..., :3] / 255.0 - ours) ** 2)
    assert 10 * np.log10(1 / max(error, 1e-12)) > 35


def test_bad_input_is_refused_and_the_image_left_alone(report):
    ok, message = report["gray"]
    assert not ok and "RGB images" in message
    ok, message = report["no_sprites"]
    assert not ok and "Select the layers to use as sprites" in message
    ok, message = report["group_sprite"]
    assert not ok and "'a group' is a layer group" in message
    ok, message = report["empty_target"]
    assert not ok and "'empty' is fully transparent" in message
    ok, message = report["dead_worker"]
    assert not ok and "stopped unexpectedly (exit status 3)" in message and "worker crashed" in message
    assert report["names_after_bad_input"] == report["names_expected_after_bad_input"]


def test_refit_keeps_a_moved_and_locked_layer_where_the_user_put_it(report):
    ok, message = report["refit"]
    assert ok, message
    first = Scene.from_dict(json.loads(report["scene"]))
    refit = Scene.from_dict(json.loads(report["refit_scene"]))
    kept = np.flatnonzero(refit.frozen)
    moved = int(report["moved"]["name"].rsplit(" #", 1)[1])
    scale = WIDTH / first.width
    assert len(kept) == 1
    assert np.allclose(refit.xy[kept[0]], first.xy[moved] + np.array([3, 2]) / scale, atol=1e-4)
    assert refit.size[kept[0]] == first.size[moved] and refit.theta[kept[0]] == first.theta[moved]
    # The kept instance's layer is where the refit scene puts it: inside the box of the layer the
    # user moved (a layer is cropped to what shows, and the refit's sprites may cover more of it).
    # GIMP renumbers the names a second result repeats, so the layer is found by its place.
    layer = next(l for l in instance_layers(refit, scene_atlas(refit, scale), scale) if l.index == kept[0])
    sprite = report["moved"]["name"].split(" #")[0]
    assert [sprite, [layer.left, layer.top]] in [[n.split(" #")[0], o] for n, o in report["refit_children"]]
    user = next(c for c in report["children"] if c["name"] == report["moved"]["name"])
    (x, y), (height, width) = report["moved"]["offsets"], layer.rgba.shape[:2]
    assert x <= layer.left and layer.left + width <= x + user["width"]
    assert y <= layer.top and layer.top + height <= y + user["height"]


# --- the managed engine, set up from GIMP's menu -------------------------------------------------------

@pytest.fixture(scope="module")
def engine_report():
    """A clean profile: the release bundle's files unpacked into GIMP's plug-ins folder, no worker
    Python; the check runs Fit (refused), Set up engine, then Fit again."""
    from hosts import ENGINE_FROM_LOCAL_PACKAGES
    started = time.monotonic()
    report = run_engine_check(dict(ENGINE_FROM_LOCAL_PACKAGES, PIP_FIND_LINKS="/opt/wheels"))
    report["import_to_result_seconds"] = time.monotonic() - started
    print(f"\nGIMP: engine installed in {report['install_seconds']:.0f} s; zip to first result "
          f"{report['import_to_result_seconds']:.0f} s")
    return report


@pytest.fixture(scope="module")
def failures_report():
    """A profile with an engine of another version, and pip settings under which an install
    fails: Fit is refused, Set up engine fails twice (no Python; pip), the engine stays as it was."""
    from hosts import FAILING_PIP
    from test_engine import make_working_engine
    from spritefit_engine import Engine
    return run_engine_check({k: v for k, v in FAILING_PIP.items() if v is not None}, mode="failures",
                            before=lambda home: make_working_engine(Engine(home / ".local" / "share" / "spritefit"),
                                                                    version="0.0.9"))


def run_engine_check(variables: dict, mode: str = "install", before=None) -> dict:
    """gimp_engine_check.py in a clean profile holding the release bundle; `before(home)` may
    prepare the profile first."""
    from test_dist import DIST, release_wheel
    release_wheel()
    root = gimp_root()
    work = Path(tempfile.mkdtemp(prefix="spritefit-engine-", dir=root / "tmp"))
    home = work / "home"
    plug_ins = home / ".config" / "GIMP" / "3.0" / "plug-ins"
    zipped = bundle.write_gimp_zip(work / "spritefit-gimp.zip", wheels=sorted(DIST.glob("spritefit-*.whl")))
    with zipfile.ZipFile(zipped) as archive:
        archive.extractall(plug_ins)
    (plug_ins / "spritefit_gimp" / "spritefit_gimp.py").chmod(0o755)
    if before is not None:
        before(home)
    inside = "/" + str(work.relative_to(root))
    pip_cache = Path.home() / ".cache" / "pip"     # the packages pip has fetched on this machine
    pip_cache.mkdir(parents=True, exist_ok=True)
    env = {"CHECK_OUT": f"{inside}/report.json", "CHECK_MODE": mode, "HOME": f"{inside}/home",
           "CHECK_ENGINE_PYTHON": sys._base_executable, "PIP_CACHE_DIR": str(pip_cache), **variables,
           # the root has its own certificates; this machine's package index may need the host's
           **{k: v for k, v in os.environ.items() if k == "PIP_CERT"}}
    shared = [Path(sys.base_prefix), Path("/opt/wheels"), pip_cache, Path("/etc/ssl/certs")]
    done = run_in_gimp_root(root, gimp_script("gimp_engine_check.py"), env, shared, timeout=1200)
    report_file = work / "report.json"
    assert report_file.exists(), f"GIMP wrote no report:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    report = json.loads(report_file.read_text())
    assert "exception" not in report, report["exception"] + done.stderr[-3000:]
    engines = home / ".local" / "share" / "spritefit" / "engines"
    report["engines"] = sorted(engines.iterdir()) if engines.exists() else []
    report["log"] = [line for line in done.stderr.splitlines() if line.startswith("SpriteFit engine:")]
    return report


def test_fit_says_the_engine_is_missing_until_it_is_set_up(engine_report):
    ok, message = engine_report["fit_before"]
    assert not ok and "not installed" in message and "Set up engine" in message, message
    assert engine_report["status_before"][0]


def test_set_up_engine_installs_it_and_fit_runs_on_it(engine_report):
    ok, message = engine_report["install"]
    assert ok, message + "\n" + "\n".join(engine_report["log"][-15:])
    assert any("Successfully installed" in line for line in engine_report["log"])
    assert len(engine_report["engines"]) == 1 and (engine_report["engines"][0] / "engine.json").exists()
    ok, message = engine_report["fit_after"]
    assert ok, message
    assert engine_report["names_after"][1:] == engine_report["names_before"]
    assert engine_report["names_after"][0].startswith("SpriteFit (") and engine_report["children"] > 1
    assert not engine_report["bad_action"][0] and "install, uninstall, status" in engine_report["bad_action"][1]


def test_failed_set_ups_say_why_and_keep_the_engine_in_use(failures_report):
    ok, message = failures_report["fit_before"]
    assert not ok and "0.0.9" in message and "Set up engine" in message, message
    ok, message = failures_report["no_python"]
    assert not ok and message.startswith("No Python 3.10 or newer") and "/nonexistent/python3" in message, message
    ok, message = failures_report["pip_fails"]
    assert not ok and message.startswith("pip could not install the engine's packages") and "unchanged" in message, \
        message
    assert [p.name for p in failures_report["engines"]] == ["earlier"]
    ok, message = failures_report["fit_after"]
    assert not ok and "0.0.9" in message, message
