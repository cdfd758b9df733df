"""The managed engine (plugins/client/spritefit_engine.py): a real install from the release wheel
and the local PyTorch, and every failure path leaving the engine in use as it was.

The full installs need dist/ (python build.py dist); `.ci/run` builds it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import threading
import time
import venv
from pathlib import Path

import pytest

import spritefit_client as client
import spritefit_engine as engine_module
from spritefit_engine import (BROKEN, INSTALLING, NOT_INSTALLED, OUTDATED, READY, Engine, EngineCancelled,
                              EngineError, InstallOptions, Installer)
from hosts import ENGINE_FROM_LOCAL_PACKAGES, FAILING_PIP
from test_dist import DIST, release_wheel

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def local_packages(monkeypatch):
    """Engines take PyTorch from the CPU wheel pip finds through this machine's settings."""
    for name, value in ENGINE_FROM_LOCAL_PACKAGES.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SPRITEFIT_PYTHON", raising=False)
    monkeypatch.delenv(engine_module.WHEEL_VARIABLE, raising=False)


def base_python() -> str:
    """The interpreter this test's environment was made from (engines are made from it)."""
    return getattr(sys, "_base_executable", sys.executable)


def make_working_engine(engine: Engine, version: str = client.VERSION) -> Path:
    """A small engine that works: a venv whose site-packages loads this checkout's environment
    (stands for an engine installed earlier, for the failure paths)."""
    folder = engine.engines / "earlier"
    venv.EnvBuilder(with_pip=False).create(folder / "venv")
    site = next((folder / "venv" / "lib").glob("python3.*/site-packages"))
    (site / "checkout.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    (folder / "engine.json").write_text(json.dumps({"version": version, "torch": "cpu", "torch_version": "2.13.0"}))
    (engine.home / "current.json").write_text(json.dumps({"engine": "earlier"}))
    return folder


def assert_unchanged(engine: Engine, earlier: Path) -> None:
    """The earlier engine is still the one in use and works; nothing else is left in the home."""
    status = engine.status()
    assert status.state == READY and engine.current() == earlier, status
    assert sorted(p.name for p in engine.engines.iterdir()) == ["earlier"]
    assert not engine.lock.exists()
    engine_module.verify_worker(status.python, client.VERSION, timeout=120)


# --- the real install -----------------------------------------------------------------------------

def test_install_from_bundled_wheel_then_outdated_and_uninstall(tmp_path, local_packages):
    release_wheel()
    engine = Engine(tmp_path / "home")
    assert engine.status().state == NOT_INSTALLED and engine.status().action == "Install"
    progress, log = [], []
    states_seen = []
    options = InstallOptions(python=base_python(), torch="cpu", wheel_folders=[str(DIST)])

    def on_progress(fraction, message):
        progress.append(fraction)
        states_seen.append(engine.status().state)

    status = Installer(engine, options, on_progress, log.append).run()
    assert status.state == READY, status
    assert progress == sorted(progress) and progress[-1] == 1.0 and INSTALLING in states_seen
    assert any(line.startswith("Successfully installed") and "torch" in line for line in log), log[-20:]
    assert any("spritefit-" in line and ".whl" in line for line in log)
    manifest = json.loads((engine.current() / "engine.json").read_text())
    assert manifest["version"] == client.VERSION and manifest["torch"] == "cpu"
    assert manifest["torch_version"].startswith("2.13.0") and manifest["wheel"].endswith(".whl")
    assert engine.check().state == READY   # the worker starts and answers
    assert engine_module.engine_python(engine=engine) == status.python

    newer_plugin = Engine(engine.home, plugin_version="9.9.9").status()
    assert newer_plugin.state == OUTDATED and newer_plugin.action == "Upgrade" and "9.9.9" in newer_plugin.detail
    with pytest.raises(client.WorkerError, match="Upgrade"):
        engine_module.engine_python(engine=Engine(engine.home, plugin_version="9.9.9"))

    engine.uninstall()
    assert engine.status().state == NOT_INSTALLED and not engine.engines.exists()


def test_cancel_halfway_keeps_the_earlier_engine(tmp_path, local_packages):
    release_wheel()
    engine = Engine(tmp_path / "home")
    earlier = make_working_engine(engine)
    started_torch, commands = threading.Event(), []

    def on_log(line):   # cancel once pip, installing PyTorch, has said something
        if line.startswith("$ "):
            commands.append(line)
        elif commands and "torch" in commands[-1]:
            started_torch.set()

    installer = Installer(engine, InstallOptions(python=base_python(), wheel_folders=[str(DIST)]), on_log=on_log)
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("error", _run(installer)))
    thread.start()
    assert started_torch.wait(300), "pip never started on PyTorch"
    assert engine.status().state == INSTALLING and len(list(engine.engines.iterdir())) == 2
    installer.cancel()
    thread.join(120)
    pip_left = subprocess.run(["pgrep", "-f", str(engine.engines)], capture_output=True, text=True).stdout
    assert not pip_left, f"processes of the cancelled install are still running: {pip_left}"
    assert isinstance(outcome["error"], EngineCancelled), outcome
    assert "unchanged" in str(outcome["error"])
    assert_unchanged(engine, earlier)


def _run(installer):
    try:
        installer.run()
    except EngineError as exc:
        return exc
    return None


# --- failure paths --------------------------------------------------------------------------------

def test_no_suitable_python(tmp_path, local_packages):
    engine = Engine(tmp_path / "home")
    earlier = make_working_engine(engine)
    old = tmp_path / "python3.8"
    old.write_text("#!/bin/sh\necho 3 8 cpython\n")
    old.chmod(0o755)
    for chosen, why in ((str(tmp_path / "missing" / "python3"), "does not run"), (str(old), "older than 3.10")):
        with pytest.raises(EngineError) as failure:
            Installer(engine, InstallOptions(python=chosen)).run()
        message = str(failure.value)
        assert message.startswith("No Python 3.10 or newer") and why in message and "python.org" in message
        assert_unchanged(engine, earlier)


def test_pip_failing_on_an_unreachable_index(tmp_path, local_packages, monkeypatch):
    engine = Engine(tmp_path / "home")
    earlier = make_working_engine(engine)
    for name, value in FAILING_PIP.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    log = []
    with pytest.raises(EngineError) as failure:
        Installer(engine, InstallOptions(python=base_python()), on_log=log.append).run()
    message = str(failure.value)
    assert message.startswith("pip could not install the engine's packages") and "torch" in message, message
    assert "press Install again" in message and "unchanged" in message
    assert any("127.0.0.1:9" in line for line in log)
    assert_unchanged(engine, earlier)


DISK_FULL_SCRIPT = """
import json, sys
sys.path[:0] = [{client!r}, {tests!r}]
import spritefit_engine as e
from test_engine import make_working_engine
engine = e.Engine(sys.argv[1])
make_working_engine(engine)
try:
    e.Installer(engine, e.InstallOptions(python=sys.argv[2])).run()
    print(json.dumps({{"error": None}}))
except e.EngineError as exc:
    print(json.dumps({{"error": str(exc), "state": engine.status().state, "engines": sorted(
        p.name for p in engine.engines.iterdir()), "lock": engine.lock.exists()}}))
"""


@pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0, reason="mounts a small tmpfs (root, Linux)")
def test_disk_filling_up_during_install(tmp_path, local_packages):
    home = tmp_path / "home"
    home.mkdir()
    script = tmp_path / "install.py"
    script.write_text(DISK_FULL_SCRIPT.format(client=str(ROOT / "plugins" / "client"), tests=str(ROOT / "tests")))
    # 40 MB: room for the earlier engine and the new venv with pip, not for PyTorch.
    command = (f"mount -t tmpfs -o size=40m tmpfs {home} && "
               f"{sys.executable} {script} {home} {base_python()}")
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", command],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["error"] and result["error"].startswith("The disk is full"), result
    assert "free some space" in result["error"] and "unchanged" in result["error"]
    assert result["state"] == READY and result["engines"] == ["earlier"] and not result["lock"]


def test_engine_of_another_version_is_outdated_and_a_broken_one_is_reported(tmp_path):
    engine = Engine(tmp_path / "home")
    folder = make_working_engine(engine, version="0.0.9")
    status = engine.status()
    assert status.state == OUTDATED and status.action == "Upgrade" and "0.0.9" in status.detail
    (folder / "engine.json").write_text(json.dumps({"version": client.VERSION}))
    (folder / "venv" / "lib").rename(folder / "venv" / "lib-moved")   # its SpriteFit no longer imports
    checked = engine.check(timeout=60)
    assert checked.state == BROKEN and checked.action == "Repair" and "Repair" in checked.detail
    (folder / "venv" / "bin" / "python").unlink()
    assert engine.status().state == BROKEN and "Python is missing" in engine.status().detail


def test_an_install_killed_outright_leaves_nothing_behind(tmp_path):
    engine = Engine(tmp_path / "home")
    earlier = make_working_engine(engine)
    (engine.engines / "20260101-000000-abcdef" / "venv").mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    engine.lock.write_text(str(dead.pid))
    assert engine.status().state == READY
    assert sorted(p.name for p in engine.engines.iterdir()) == ["earlier"] and not engine.lock.exists()
    assert engine.current() == earlier


def test_a_second_install_at_the_same_time_is_refused(tmp_path):
    engine = Engine(tmp_path / "home")
    engine.home.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        engine.lock.write_text(str(sleeper.pid))
        assert engine.status().state == INSTALLING
        with pytest.raises(EngineError, match="Another install is running"):
            Installer(engine).run()
        with pytest.raises(EngineError, match="cancel it first"):
            engine.uninstall()
    finally:
        sleeper.kill()
        sleeper.wait()


# --- choices --------------------------------------------------------------------------------------

def test_worker_python_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("SPRITEFIT_PYTHON", raising=False)
    engine = Engine(tmp_path / "home")
    with pytest.raises(client.WorkerError, match="not installed: press Install"):
        engine_module.engine_python(engine=engine)
    make_working_engine(engine)
    managed = engine_module.engine_python(engine=engine)
    assert managed == str(engine.engines / "earlier" / "venv" / "bin" / "python")
    assert engine_module.engine_python(sys.executable, engine=engine) == sys.executable   # the advanced setting
    monkeypatch.setenv("SPRITEFIT_PYTHON", sys.executable)
    assert engine_module.engine_python(None, engine=engine) == sys.executable


def test_wheel_and_torch_choices(monkeypatch):
    fits = engine_module.wheel_fits
    monkeypatch.setattr(engine_module.platform, "machine", lambda: "x86_64")
    assert fits("spritefit-0.1.0-cp311-cp311-manylinux_2_34_x86_64.whl", "0.1.0", (3, 11)) == (sys.platform == "linux")
    assert not fits("spritefit-0.1.0-cp312-cp312-manylinux_2_34_x86_64.whl", "0.1.0", (3, 11))
    assert not fits("spritefit-0.0.9-cp311-cp311-manylinux_2_34_x86_64.whl", "0.1.0", (3, 11))
    assert not fits("spritefit-0.1.0-cp311-cp311-manylinux_2_34_aarch64.whl", "0.1.0", (3, 11))
    monkeypatch.delenv(engine_module.TORCH_VARIABLE, raising=False)
    monkeypatch.delenv(engine_module.TORCH_INDEX_VARIABLE, raising=False)
    monkeypatch.setattr(engine_module.sys, "platform", "linux")
    assert engine_module.torch_pip_arguments("cpu") == ["torch>=2.1", "--index-url", "https://download.pytorch.org/whl/cpu"]
    assert engine_module.torch_pip_arguments("cuda") == ["torch>=2.1"]   # PyPI's Linux torch is the CUDA build
    monkeypatch.setattr(engine_module.sys, "platform", "win32")
    assert engine_module.torch_pip_arguments("cuda")[-1].endswith("/cu128")
    monkeypatch.setattr(engine_module.sys, "platform", "darwin")
    assert engine_module.torch_pip_arguments("cpu") == ["torch>=2.1"]
    monkeypatch.setattr(engine_module, "nvidia_driver_present", lambda: True)
    assert engine_module.torch_build("auto") == "cuda" and engine_module.torch_build("cpu") == "cpu"
    with pytest.raises(EngineError, match="auto, cpu or cuda"):
        engine_module.torch_build("rocm")


def test_plugin_version_matches_the_package():
    import spritefit
    assert client.VERSION == spritefit.__version__
