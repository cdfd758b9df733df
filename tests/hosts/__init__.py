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


def krita_open_psd(psd: Path, workdir: Path) -> dict:
    """What Krita sees in a PSD file, by the script krita_open_psd.py run in `kritarunner`."""
    kritarunner = require("kritarunner")
    out = workdir / "krita-report.json"
    env = dict(os.environ, PSD=str(psd), OUT=str(out), PYTHONPATH=str(HERE), QT_QPA_PLATFORM="offscreen")
    env.pop("PYTHONHOME", None)
    done = subprocess.run([kritarunner, "-s", "krita_open_psd", "-f", "main"], env=env, cwd=workdir,
                          capture_output=True, text=True, timeout=300)
    assert out.exists(), f"kritarunner wrote no report:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return json.loads(out.read_text())
