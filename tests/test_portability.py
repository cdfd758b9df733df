"""The package's import graph has no cycles, and every module imports where the POSIX-only
modules are missing and the platform says Windows (the wheels are built for Windows too)."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "core" / "spritefit"
POSIX_ONLY = ("resource", "fcntl", "termios", "pwd", "grp")


def module_names() -> dict[str, Path]:
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `name` imports anywhere in its code (in functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            submodules = {f"{target}.{alias.name}" for alias in node.names} & known
            found |= submodules if len(submodules) == len(node.names) else submodules | {target}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return (found & known) - {name}


def test_the_import_graph_has_no_cycles():
    modules = module_names()
    known = set(modules) | {"spritefit._native"}            # the compiled renderer
    graph = {name: imported_modules(name, path, known) for name, path in modules.items()}
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for other in sorted(graph.get(name, ())):
            assert state.get(other) != "open", " -> ".join(trail[trail.index(other):] + [other]) \
                if other in trail else other
            if other not in state:
                visit(other, trail + [other])
        state[name] = "done"
    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_every_module_imports_without_posix_only_modules_on_windows():
    script = f"""
import importlib, json, os, pkgutil, sys
import numpy, torch, PIL.Image, scipy.ndimage, tqdm, psd_tools, imageio_ffmpeg, cv2   # as they load on Windows
for name in {POSIX_ONLY!r}:
    sys.modules[name] = None                       # import raises ImportError
sys.platform = "win32"      # (os.name stays: pathlib would build WindowsPath from it, which Linux refuses)
import spritefit
failed = []
for info in pkgutil.walk_packages(spritefit.__path__, "spritefit."):
    if info.name.endswith("__main__"):
        continue
    try:
        importlib.import_module(info.name)
    except Exception as exc:
        failed.append(f"{{info.name}}: {{type(exc).__name__}}: {{exc}}")
sys.path.insert(0, {str(ROOT / "plugins" / "client")!r})
try:
    import spritefit_engine
except Exception as exc:
    failed.append(f"spritefit_engine: {{type(exc).__name__}}: {{exc}}")
print(json.dumps(failed))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_memory_check_works_without_resource(monkeypatch):
    import spritefit.limits as limits
    monkeypatch.setitem(sys.modules, "resource", None)
    available = limits.available_memory()
    assert available is None or available > 0


# --- the plugins' client on Windows and macOS: where engines live and which Python makes them ------

def _engine_module():
    sys.path.insert(0, str(ROOT / "plugins" / "client"))
    import spritefit_engine
    return spritefit_engine


def test_engine_home_and_venv_python_on_each_platform(monkeypatch, tmp_path):
    engine = _engine_module()
    monkeypatch.delenv(engine.HOME_VARIABLE, raising=False)
    monkeypatch.setattr(engine.Path, "home", classmethod(lambda cls: tmp_path / "home"))
    monkeypatch.setattr(engine.sys, "platform", "win32")
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "Local"))
    assert engine.engine_home() == tmp_path / "Local" / "SpriteFit"
    monkeypatch.delenv("LOCALAPPDATA")
    assert engine.engine_home() == tmp_path / "home" / "AppData" / "Local" / "SpriteFit"
    assert engine.venv_python(tmp_path / "env") == tmp_path / "env" / "Scripts" / "python.exe"
    monkeypatch.setattr(engine.sys, "platform", "darwin")
    assert engine.engine_home() == tmp_path / "home" / "Library" / "Application Support" / "SpriteFit"
    assert engine.venv_python(tmp_path / "env") == tmp_path / "env" / "bin" / "python"
    monkeypatch.setenv(engine.HOME_VARIABLE, str(tmp_path / "chosen"))   # the user's choice wins everywhere
    assert engine.engine_home() == tmp_path / "chosen"


def test_python_candidates_on_windows_ask_the_launcher_first(monkeypatch):
    engine = _engine_module()
    monkeypatch.setattr(engine.sys, "platform", "win32")
    monkeypatch.setattr(engine.sys, "executable", r"C:\Program Files\Krita (x64)\bin\krita.exe")  # not a Python
    where = {"py": r"C:\Windows\py.exe", "python": r"C:\Python312\python.exe", "python3": None}
    monkeypatch.setattr(engine.shutil, "which", lambda name: where.get(name))
    asked = []

    def launcher(command, **_):
        asked.append(command)
        return subprocess.CompletedProcess(command, 0, stdout="C:\\Python313\\python.exe\n", stderr="")
    monkeypatch.setattr(engine.subprocess, "run", launcher)
    assert engine.python_candidates() == [r"C:\Python313\python.exe", r"C:\Python312\python.exe"]
    assert asked == [[r"C:\Windows\py.exe", "-3", "-c", "import sys; print(sys.executable)"]]
    assert engine.python_candidates(r"D:\my\python.exe") == [r"D:\my\python.exe"]   # the user's choice alone


def test_python_candidates_on_macos_and_the_choice_among_them(monkeypatch):
    engine = _engine_module()
    monkeypatch.setattr(engine.sys, "platform", "darwin")
    monkeypatch.setattr(engine.sys, "executable", "/Applications/Blender.app/Contents/Resources/4.2/python/bin/python3.11")
    framework = "/Library/Frameworks/Python.framework/Versions/3.12/bin/python3"
    monkeypatch.setattr(engine.shutil, "which", lambda name: {"python3": framework, "python3.12": framework}.get(name))
    monkeypatch.setattr(engine.os.path, "exists", lambda path: path == "/usr/bin/python3")
    candidates = engine.python_candidates()
    assert candidates == [engine.sys.executable, "/usr/bin/python3", framework]   # Blender's own Python first
    # Apple's /usr/bin/python3 stub is 3.9; the first that is new enough and can make environments wins
    answers = {engine.sys.executable: "does not run (no venv)", "/usr/bin/python3": "is Python 3.9, older than 3.10",
               framework: (3, 12)}
    monkeypatch.setattr(engine, "probe_python", lambda path: answers[path])
    assert engine.find_base_python() == (framework, (3, 12))
    answers[framework] = "cannot create virtual environments"
    with pytest.raises(engine.EngineError, match="older than 3.10.*Install Python from python.org"):
        engine.find_base_python()


def test_the_wheels_run_the_portable_tests_that_exist():
    """cibuildwheel's test command (Windows and macOS wheels) names test files that are here."""
    import tomllib
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["cibuildwheel"]
    pytest_command = next(c for c in config["test-command"] if c.startswith("pytest"))
    files = [word.replace("{project}/", "") for word in pytest_command.split() if word.startswith("{project}/")]
    assert "tests/test_portability.py" in files and len(files) >= 5
    assert all((ROOT / name).is_file() for name in files), files
    assert config["test-extras"] == ["test"]
