"""Running the real host applications from tests.

A host that is not installed skips its tests, unless SPRITEFIT_REQUIRE_HOSTS=1 (as in CI), where
a missing host is a failure."""
from __future__ import annotations

import contextlib
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


# A managed engine installed in a test takes PyTorch's CPU build from the wheel that pip's
# settings on this machine find, instead of PyTorch's own index (not reachable here).
LOCAL_TORCH = "torch==2.13.0"   # the CPU build on this machine's disk (build.py's TORCH_PIN)
ENGINE_FROM_LOCAL_PACKAGES = {"SPRITEFIT_ENGINE_TORCH": LOCAL_TORCH, "SPRITEFIT_ENGINE_TORCH_INDEX": "pip"}
# pip settings under which an engine install fails at once: no configuration files or local wheel
# folders, and PyTorch from an index nothing listens on (None: the variable is removed).
FAILING_PIP = {"PIP_CONFIG_FILE": os.devnull, "PIP_FIND_LINKS": None, "PIP_RETRIES": "0",
               "SPRITEFIT_ENGINE_TORCH_INDEX": "http://127.0.0.1:9/simple"}


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


@contextlib.contextmanager
def virtual_display():
    """An Xvfb server for GUI hosts; yields its DISPLAY value."""
    xvfb = require("Xvfb")
    read_end, write_end = os.pipe()
    server = subprocess.Popen([xvfb, "-displayfd", str(write_end), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                              pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        with os.fdopen(read_end) as pipe:
            number = pipe.readline().strip()
        assert number, "Xvfb did not start"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


# Krita's own "Import Python Plugin from File…" logic, runnable on its own.
KRITA_IMPORTER = Path("/usr/share/krita/pykrita/plugin_importer/plugin_importer.py")


def install_krita_plugin(home: Path, wheels=()) -> Path:
    """The plugin zip (with `wheels` in it, for a release bundle) imported into Krita's resources
    in `home` as a user would, enabled, with the check plugin beside it; returns the resources."""
    import bundle
    resources = home / ".local" / "share" / "krita"
    resources.mkdir(parents=True)
    zipped = bundle.write_krita_zip(home / "spritefit-krita.zip", wheels=list(wheels))
    imported = subprocess.run(["/usr/bin/python3", str(KRITA_IMPORTER), str(zipped), str(resources)],
                              capture_output=True, text=True)
    assert "Imported plugin: SpriteFit" in imported.stdout, imported.stdout + imported.stderr
    kritarc = home / ".config" / "kritarc"
    bundle.enable_in_kritarc(kritarc, "spritefit_krita")
    shutil.copytree(HERE / "krita_plugin_check" / "spritefit_check", resources / "pykrita" / "spritefit_check")
    shutil.copy(HERE / "krita_plugin_check" / "spritefit_check.desktop", resources / "pykrita")
    bundle.enable_in_kritarc(kritarc, "spritefit_check")
    return resources


def run_krita_gui(home: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    """Start Krita with its user folders in `home` on a virtual display; a plugin installed
    there drives it and quits it."""
    krita = require("krita")
    with virtual_display() as display:
        (home / "tmp").mkdir(exist_ok=True)   # Krita's swap files and frame caches, gone with the home
        env = dict(host_environment(), HOME=str(home), XDG_DATA_HOME=str(home / ".local" / "share"),
                   XDG_CONFIG_HOME=str(home / ".config"), TMPDIR=str(home / "tmp"), DISPLAY=display, **env)
        try:
            return subprocess.run([krita, "--nosplash"], env=env, cwd=home, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as exc:   # report what Krita said instead of the timeout
            return subprocess.CompletedProcess(exc.cmd, -9, _text(exc.stdout), _text(exc.stderr))


def _text(output) -> str:
    return output.decode("utf-8", "replace") if isinstance(output, bytes) else (output or "")


GIMP_ROOT = Path(os.environ.get("SPRITEFIT_GIMP_ROOT", "/var/cache/spritefit/gimp3-trixie"))


def gimp_root() -> Path:
    """The Debian 13 root with GIMP 3 (made by make_gimp3_root.sh; CI makes it when missing)."""
    if not (GIMP_ROOT / "usr" / "bin" / "gimp-console-3.0").exists() or os.geteuid() != 0:
        why = f"no GIMP 3 root at {GIMP_ROOT} (run tests/hosts/make_gimp3_root.sh as root)"
        if os.environ.get("SPRITEFIT_REQUIRE_HOSTS") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return GIMP_ROOT


def run_in_gimp_root(root: Path, script: str, env: dict, shared: list[Path], timeout: float = 600):
    """Run GIMP 3's console in batch mode inside `root` on the Python code `script`.

    /proc, /sys, /dev and the `shared` host folders (the project, the worker's Python) are
    bind-mounted at their own paths, in a private mount namespace so they vanish with it."""
    mounts = ["/proc", "/sys", "/dev", *map(str, shared)]
    commands = []
    for path in mounts:
        (root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
        commands.append(f"mount --rbind {path} {root}{path}")
    inner = "gimp-console-3.0 -i --batch-interpreter=python-fu-eval -b - --quit"
    commands.append(f"exec chroot {root} env -i PATH=/usr/bin:/bin HOME=/tmp/gimp-home "
                    + " ".join(f"{k}={v}" for k, v in env.items()) + f" {inner}")
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", " && ".join(commands)],
                          input=script, capture_output=True, text=True, timeout=timeout)
