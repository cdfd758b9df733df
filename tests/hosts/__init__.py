"""Running the real host applications from tests.

A host that is not installed skips its tests, unless SPRITEFIT_REQUIRE_HOSTS=1 (as in CI), where
a missing host is a failure."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def require(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        if os.environ.get("SPRITEFIT_REQUIRE_HOSTS") == "1":
            pytest.fail(f"{program} is not installed, and SPRITEFIT_REQUIRE_HOSTS=1")
        pytest.skip(f"{program} is not installed")
    return path


def host_environment() -> dict:
    """The environment a host application gets from the desktop: system PATH, no Python
    overrides. Krita's embedded Python finds its standard library through the `python3` on
    PATH, so a pyenv or virtualenv interpreter there hides the system's PyQt5 from it."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "PYENV", "VIRTUAL_ENV", "CONDA"))}
    env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return env


def krita_open_psd(psd: Path, workdir: Path) -> dict:
    """What Krita sees in a PSD file, by the script krita_open_psd.py run in `kritarunner`."""
    kritarunner = require("kritarunner")
    out = workdir / "krita-report.json"
    env = dict(host_environment(), PSD=str(psd), OUT=str(out), PYTHONPATH=str(HERE),
               QT_QPA_PLATFORM="offscreen")
    done = subprocess.run([kritarunner, "-s", "krita_open_psd", "-f", "main"], env=env, cwd=workdir,
                          capture_output=True, text=True, timeout=300)
    assert out.exists(), f"kritarunner wrote no report:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return json.loads(out.read_text())
