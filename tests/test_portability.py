"""The package's import graph has no cycles, and every module imports where the POSIX-only
modules are missing and the platform says Windows (the wheels are built for Windows too)."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

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
