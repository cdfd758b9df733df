"""The managed SpriteFit engine: a private Python environment that each editor plugin installs,
checks and repairs by itself (standard library only; every plugin vendors this file).

An engine lives in the per-user data folder (`engine_home()`):

    engines/<id>/venv/      a virtual environment with SpriteFit and PyTorch
    engines/<id>/engine.json  what was installed: SpriteFit's version, the torch build, the base Python
    current.json            which engine is in use; replaced in one step (os.replace)
    install.lock            the process id of an install in progress

An install builds a new engines/<id> beside the one in use, verifies it (the worker answers a
ping and runs a one-iteration fit), and only then points current.json at it and removes the old
one. A failed or cancelled install removes its own folder and leaves the engine in use as it was;
folders left by an install that was killed outright are removed by the next `status()`.

States (`EngineStatus.state`): not installed, installing, ready, outdated (the engine's SpriteFit
is not the plugin's version), broken (its Python or its SpriteFit no longer loads).
"""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

try:
    from . import spritefit_client as client   # vendored into a plugin's package (Krita, Blender)
except ImportError:
    import spritefit_client as client  # type: ignore[no-redef]  # beside it on sys.path (GIMP, tests)

NOT_INSTALLED, INSTALLING, READY, OUTDATED, BROKEN = "not installed", "installing", "ready", "outdated", "broken"
STATES = (NOT_INSTALLED, INSTALLING, READY, OUTDATED, BROKEN)
MIN_PYTHON = (3, 10)

# Advanced overrides, also for offline machines and package mirrors.
HOME_VARIABLE = "SPRITEFIT_ENGINE_HOME"          # where engines live (default: the user data folder)
TORCH_VARIABLE = "SPRITEFIT_ENGINE_TORCH"        # the torch requirement, e.g. "torch==2.13.0"
TORCH_INDEX_VARIABLE = "SPRITEFIT_ENGINE_TORCH_INDEX"   # torch's index URL; "pip" = pip's own settings
WHEEL_VARIABLE = "SPRITEFIT_ENGINE_WHEEL"        # a SpriteFit wheel to install instead of the bundled one
PYTORCH_INDEX = "https://download.pytorch.org/whl"
CUDA_INDEX_TAG = "cu128"                         # the CUDA build pip gets on Windows

# Progress fractions at which each install step starts.
STEP_START = {"python": 0.0, "venv": 0.03, "torch": 0.08, "spritefit": 0.65, "verify": 0.85, "switch": 0.98}


class EngineError(Exception):
    """An install, repair or uninstall could not be done; the message says why and what to do.
    The engine that was in use before is unchanged."""


class EngineCancelled(EngineError):
    pass


def engine_home() -> Path:
    """The per-user data folder of SpriteFit's engines on this platform."""
    if os.environ.get(HOME_VARIABLE):
        return Path(os.environ[HOME_VARIABLE])
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "SpriteFit"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "SpriteFit"
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "spritefit"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


# --- state ----------------------------------------------------------------------------------------

@dataclass
class EngineStatus:
    state: str
    reason: str                 # what the state means, without the call to action
    python: str | None = None   # the engine's interpreter, when there is one
    version: str | None = None  # its SpriteFit version
    torch: str | None = None    # "cpu" or "cuda"

    @property
    def action(self) -> str | None:
        """The button a host offers: Install, Upgrade, Repair, or none while installing."""
        return {NOT_INSTALLED: "Install", OUTDATED: "Upgrade", BROKEN: "Repair", READY: "Repair"}.get(self.state)

    @property
    def detail(self) -> str:
        """One line for a host with the buttons: the reason, and which one to press."""
        if self.state in (READY, INSTALLING) or not self.action:
            return self.reason
        return self.then(f"press {self.action}.")

    def then(self, what_to_do: str) -> str:
        """The reason followed by what to do, in a host's own words."""
        return f"{self.reason.rstrip('.')}: {what_to_do}"


class Engine:
    """The engines in one home folder, for a plugin of version `plugin_version`."""

    def __init__(self, home: Path | str | None = None, plugin_version: str = client.VERSION):
        self.home = Path(home) if home else engine_home()
        self.plugin_version = plugin_version
        self.engines = self.home / "engines"
        self.pointer = self.home / "current.json"
        self.lock = self.home / "install.lock"

    def current(self) -> Path | None:
        """The folder of the engine in use, or None."""
        try:
            name = json.loads(self.pointer.read_text(encoding="utf-8"))["engine"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return self.engines / Path(str(name)).name

    def status(self) -> EngineStatus:
        """The state, from the files alone (quick: starts no process)."""
        if self._install_owner() is not None:
            return EngineStatus(INSTALLING, "An engine is being installed.")
        self.remove_leftovers()
        folder = self.current()
        if folder is None:
            return EngineStatus(NOT_INSTALLED, "SpriteFit's engine is not installed.")
        try:
            manifest = json.loads((folder / "engine.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return EngineStatus(BROKEN, f"The engine in {folder} is incomplete.")
        python = venv_python(folder / "venv")
        found = dict(python=str(python), version=manifest.get("version"), torch=manifest.get("torch"))
        if not python.exists():
            return EngineStatus(BROKEN, f"The engine's Python is missing ({python}).", **found)
        if manifest.get("version") != self.plugin_version:
            return EngineStatus(OUTDATED, f"The engine has SpriteFit {manifest.get('version')}, this plugin is "
                                          f"{self.plugin_version}.", **found)
        return EngineStatus(READY, f"Ready: SpriteFit {manifest['version']}, PyTorch "
                                   f"{manifest.get('torch_version', '?')} ({manifest.get('torch', '?')}).", **found)

    def check(self, timeout: float = 300.0) -> EngineStatus:
        """status(), and for a ready engine also whether its worker starts (it is broken if not)."""
        status = self.status()
        if status.state == READY and status.python:
            try:
                verify_worker(status.python, self.plugin_version, timeout=timeout)
            except EngineError as exc:
                return EngineStatus(BROKEN, str(exc), status.python, status.version, status.torch)
        return status

    def ready_python(self) -> str | None:
        status = self.status()
        return status.python if status.state == READY else None

    def _install_owner(self) -> int | None:
        """The process id of a live install, or None (a stale lock is removed)."""
        try:
            pid = int(self.lock.read_text().strip())
        except (OSError, ValueError):
            return None
        if pid == os.getpid() or client.process_alive(pid):
            return pid
        _remove(self.lock)
        return None

    def remove_leftovers(self) -> None:
        """Engine folders that are not in use and not being installed (an install that was killed)."""
        if self._install_owner() is not None or not self.engines.is_dir():
            return
        keep = self.current()
        for folder in self.engines.iterdir():
            if folder != keep:
                _remove(folder)

    def uninstall(self) -> None:
        if self._install_owner() is not None:
            raise EngineError("An install is in progress: cancel it first.")
        _remove(self.pointer)
        _remove(self.engines)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


# --- choosing a Python, a torch build and a wheel -------------------------------------------------

def python_candidates(chosen: str | None = None) -> list[str]:
    """Interpreters to try, best first: the user's choice alone when there is one; else this
    process's own Python when it is a real interpreter (Blender's), then the platform's usual ones."""
    if chosen:
        return [chosen]
    found = []
    if Path(sys.executable).name.lower().startswith("python"):
        found.append(sys.executable)
    if sys.platform == "win32":
        launcher = shutil.which("py")
        if launcher:
            out = subprocess.run([launcher, "-3", "-c", "import sys; print(sys.executable)"],
                                 capture_output=True, text=True)
            found += out.stdout.split()[:1] if out.returncode == 0 else []
        names = ["python", "python3"]
    else:
        names = ["python3", *(f"python3.{minor}" for minor in range(14, MIN_PYTHON[1] - 1, -1)), "python"]
        found += [p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.path.exists(p)]
    found += [p for p in (shutil.which(n) for n in names) if p]
    unique = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


PROBE = ("import sys, venv, ensurepip; "
         "print(sys.version_info[0], sys.version_info[1], sys.implementation.name)")


def probe_python(path: str) -> tuple[int, int] | str:
    """(major, minor) when `path` is a CPython that can make virtual environments, else why not."""
    try:
        out = subprocess.run([path, "-I", "-c", PROBE], capture_output=True, text=True, timeout=60,
                             env=client.clean_environment())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"does not run ({exc})"
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        if "ensurepip" in last or "venv" in last:
            return "cannot create virtual environments (on Debian and Ubuntu: install python3-venv)"
        return f"does not run ({last})"
    major, minor, name = out.stdout.split()
    if name != "cpython":
        return f"is {name}, not CPython"
    if (int(major), int(minor)) < MIN_PYTHON:
        return f"is Python {major}.{minor}, older than {MIN_PYTHON[0]}.{MIN_PYTHON[1]}"
    return int(major), int(minor)


def find_base_python(chosen: str | None = None) -> tuple[str, tuple[int, int]]:
    """The interpreter the engine's environment is made from; EngineError listing what was tried."""
    tried = []
    for path in python_candidates(chosen):
        result = probe_python(path)
        if isinstance(result, tuple):
            return path, result
        tried.append(f"{path} {result}")
    where = "; ".join(tried) if tried else "none on PATH"
    raise EngineError(f"No Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer that can create virtual environments "
                      f"was found ({where}). Install Python from python.org (or your package manager), "
                      "or choose an interpreter in the engine settings, then press Install again.")


def nvidia_driver_present() -> bool:
    if sys.platform == "darwin":
        return False
    return os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None


TORCH_BUILDS = ("auto", "cpu", "cuda")   # what a user may choose; auto picks cuda or cpu


def torch_build(choice: str = "auto") -> str:
    """"cuda" or "cpu": the CUDA build when an NVIDIA driver is present, unless chosen otherwise."""
    if choice not in TORCH_BUILDS:
        raise EngineError(f"The PyTorch build must be auto, cpu or cuda, not {choice!r}.")
    if choice != "auto":
        return choice
    return "cuda" if nvidia_driver_present() else "cpu"


def torch_pip_arguments(build: str) -> list[str]:
    """pip arguments that install PyTorch's `build`: PyPI's Linux wheels are CUDA builds and its
    Windows and macOS wheels CPU builds; PyTorch's own index has the others."""
    requirement = os.environ.get(TORCH_VARIABLE) or "torch>=2.1"
    index = os.environ.get(TORCH_INDEX_VARIABLE)
    if index is None:
        needs_own_index = (build == "cpu" and sys.platform != "darwin") or (build == "cuda" and sys.platform == "win32")
        index = f"{PYTORCH_INDEX}/{'cpu' if build == 'cpu' else CUDA_INDEX_TAG}" if needs_own_index else "pip"
    return [requirement] + ([] if index == "pip" else ["--index-url", index])


WHEEL_NAME = re.compile(r"^spritefit-(?P<version>[^-]+)-(?P<python>[^-]+)-(?P<abi>[^-]+)-(?P<platform>.+)\.whl$")


def wheel_fits(name: str, version: str, python: tuple[int, int]) -> bool:
    """Whether a SpriteFit wheel file of this name installs on `python` on this machine."""
    match = WHEEL_NAME.match(name)
    if not match or match["version"] != version:
        return False
    tag = f"cp{python[0]}{python[1]}"
    if tag not in match["python"].split(".") and match["python"] != "py3":
        return False
    machine = platform.machine().lower().replace("amd64", "x86_64").replace("arm64", "aarch64")
    plat = match["platform"].lower()
    if sys.platform == "win32":
        return plat == ("win_amd64" if machine == "x86_64" else "win_arm64")
    if sys.platform == "darwin":
        return plat.startswith("macosx") and (("universal2" in plat) or machine.replace("aarch64", "arm64") in plat)
    return "linux" in plat and machine in plat


def find_wheel(folders, version: str, python: tuple[int, int]) -> str | None:
    """$SPRITEFIT_ENGINE_WHEEL, else a fitting wheel in `folders` (the plugin's engine/ folder and
    the folder beside the plugin); None means: from the package index."""
    if os.environ.get(WHEEL_VARIABLE):
        return os.environ[WHEEL_VARIABLE]
    for folder in folders:
        for path in sorted(Path(folder).glob("spritefit-*.whl")) if Path(folder).is_dir() else []:
            if wheel_fits(path.name, version, python):
                return str(path)
    return None


# --- verifying an engine --------------------------------------------------------------------------

def verify_worker(python: str, version: str, timeout: float = 300.0) -> None:
    """The engine's worker starts, is `version` with its native renderer, answers a ping and runs a
    one-iteration fit. Raises EngineError saying what failed."""
    folder = client.new_job_folder("verify-")
    try:
        with client.WorkerProcess(python, start_timeout=timeout) as worker:
            hello = worker.hello
            if hello.get("version") != version:
                raise EngineError(f"The engine runs SpriteFit {hello.get('version')}, not {version}.")
            if hello.get("native"):
                raise EngineError(f"The engine cannot use its fast renderer: {hello['native']}")
            worker.send(client.encode_request("ping"))
            if worker.next_event(timeout).get("event") != "pong":
                raise EngineError("The engine's worker did not answer a ping.")
            side, pixels = 16, bytes([200, 120, 40, 255] * 256)
            target = client.write_pixels(folder, "target.rgba", pixels, side, side, "RGBA8")
            worker.run("verify", folder, target, client.file_sprites("pack", "shapes"),
                       {"n": 4, "iters": 1, "size": side}, "RGBA8", timeout=timeout)
    except client.WorkerError as exc:
        raise EngineError(f"The engine does not work: {exc}") from None
    finally:
        client.remove_job_folder(folder)


# --- installing -----------------------------------------------------------------------------------

@dataclass
class InstallOptions:
    python: str | None = None        # the base interpreter; None = find one
    torch: str = "auto"              # "auto", "cpu" or "cuda"
    wheel_folders: list = field(default_factory=list)   # where bundled wheels may lie


class Installer:
    """One install (Install, Upgrade and Repair are all this) of a new engine beside the one in use.

    `on_progress(fraction, message)` and `on_log(line)` are called from the thread that runs
    `run()`; `cancel()` may be called from any thread, at any moment.
    """

    def __init__(self, engine: Engine, options: InstallOptions | None = None,
                 on_progress=None, on_log=None):
        self.engine = engine
        self.options = options or InstallOptions()
        self.on_progress = on_progress or (lambda fraction, message: None)
        self.on_log = on_log or (lambda line: None)
        self.cancelled = threading.Event()
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def cancel(self) -> None:
        self.cancelled.set()
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                _kill_tree(self._process)

    def run(self) -> EngineStatus:
        """Install and switch to the new engine; returns its status. Raises EngineCancelled or
        EngineError, with the engine in use unchanged and the new folder removed."""
        engine = self.engine
        engine.home.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        folder = engine.engines / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        try:
            self._build(folder)
            self._step("switch", "Switching to the new engine")
            previous = engine.current()
            _write_atomically(engine.pointer, json.dumps({"engine": folder.name}))
            if previous is not None and previous != folder:
                _remove(previous)
        except BaseException as exc:
            _remove(folder)
            raise self._explain(exc) from None
        finally:
            _remove(engine.lock)
        self.on_progress(1.0, "Engine ready")
        return engine.status()

    def _take_lock(self) -> None:
        owner = self.engine._install_owner()
        if owner is not None and owner != os.getpid():
            raise EngineError(f"Another install is running (process {owner}): wait for it or cancel it there.")
        _write_atomically(self.engine.lock, str(os.getpid()))

    def _build(self, folder: Path) -> None:
        self._step("python", "Looking for Python")
        base, version = find_base_python(self.options.python)
        self.on_log(f"Python {version[0]}.{version[1]}: {base}")
        folder.mkdir(parents=True)
        venv = folder / "venv"
        self._step("venv", "Creating the engine's environment")
        self._call([base, "-I", "-m", "venv", str(venv)])
        python = str(venv_python(venv))
        pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
        build = torch_build(self.options.torch)
        self._step("torch", f"Installing PyTorch ({build} build)")
        self._call(pip + torch_pip_arguments(build), until="spritefit")
        wheel = find_wheel(self.options.wheel_folders, self.engine.plugin_version, version)
        self._step("spritefit", f"Installing SpriteFit {self.engine.plugin_version}")
        self.on_log(f"SpriteFit from {wheel or 'the package index'}")
        self._call(pip + [wheel or f"spritefit=={self.engine.plugin_version}"], until="verify")
        self._step("verify", "Checking the engine (a one-iteration fit)")
        self._check_cancel()
        verify_worker(python, self.engine.plugin_version)
        self._check_cancel()
        torch_version = subprocess.run([python, "-I", "-c", "import torch; print(torch.__version__)"],
                                       capture_output=True, text=True, env=client.clean_environment()).stdout.strip()
        manifest = {"version": self.engine.plugin_version, "torch": build, "torch_version": torch_version,
                    "base_python": base, "installed": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "wheel": Path(wheel).name if wheel else "package index"}
        _write_atomically(folder / "engine.json", json.dumps(manifest, indent=2))

    def _step(self, name: str, message: str) -> None:
        self._check_cancel()
        self._fraction = STEP_START[name]
        self.on_progress(self._fraction, message)
        self.on_log(f"== {message}")

    def _check_cancel(self) -> None:
        if self.cancelled.is_set():
            raise EngineCancelled("The install was cancelled; the engine in use is unchanged.")

    def _call(self, command: list[str], until: str | None = None) -> None:
        """Run a step's command, streaming its output to the log and nudging the progress towards
        the next step's start with every package pip collects."""
        self._check_cancel()
        self.on_log("$ " + " ".join(command))
        with self._lock:
            self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                             env=client.clean_environment(), **_new_process_group())
        tail: list[str] = []
        end = STEP_START[until] if until else self._fraction
        assert self._process.stdout is not None
        for raw in iter(self._process.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip()
            self.on_log(line)
            tail = (tail + [line])[-30:]
            if line.startswith(("Collecting", "Installing collected", "Successfully")):
                self._fraction += (end - self._fraction) * 0.25
                self.on_progress(self._fraction, line[:120])
        status = self._process.wait()
        self._check_cancel()
        if status != 0:
            raise StepFailed(command, status, tail)

    def _explain(self, exc: BaseException) -> EngineError:
        """The one message the host shows for a failed install."""
        if isinstance(exc, EngineError):
            return exc
        if isinstance(exc, KeyboardInterrupt):
            return EngineCancelled("The install was cancelled; the engine in use is unchanged.")
        text = "\n".join(exc.tail) if isinstance(exc, StepFailed) else str(exc)
        if _disk_full(exc, text):
            free = shutil.disk_usage(self.engine.home).free / 1e6 if self.engine.home.exists() else 0
            return EngineError(f"The disk is full ({free:.0f} MB free in {self.engine.home}): free some space "
                               "(the CPU engine needs about 1.5 GB) and press Install again. "
                               "The engine in use is unchanged.")
        if isinstance(exc, StepFailed):
            errors = [line for line in exc.tail if line.startswith("ERROR")] or exc.tail[-3:]
            what = "pip could not install the engine's packages" if "pip" in exc.command else "A step of the install failed"
            return EngineError(f"{what}: {' '.join(errors)[:400]} Check the network connection or the package "
                               f"index (${TORCH_INDEX_VARIABLE}), then press Install again. The engine in use is unchanged.")
        if isinstance(exc, OSError):
            return EngineError(f"The install could not write its files: {exc}. The engine in use is unchanged.")
        return EngineError(f"The install failed: {type(exc).__name__}: {exc}. The engine in use is unchanged.")


class StepFailed(Exception):
    def __init__(self, command, status, tail):
        super().__init__(f"{command[0]} exited with status {status}")
        self.command, self.status, self.tail = command, status, tail


def _disk_full(exc: BaseException, text: str) -> bool:
    return getattr(exc, "errno", None) == 28 or "No space left on device" in text or "[Errno 28]" in text


def _new_process_group() -> dict:
    """Popen arguments that let cancel stop a step with everything it started. On Linux the step
    also dies with the process that started it (GIMP cancels a plug-in by killing it); the folder it
    leaves is removed by the next status()."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    if sys.platform.startswith("linux"):
        return {"start_new_session": True, "preexec_fn": _die_with_parent}
    return {"start_new_session": True}


def _die_with_parent() -> None:
    import ctypes
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _kill_tree(process: subprocess.Popen) -> None:
    if sys.platform == "win32":
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(process.pid)], capture_output=True)
    else:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _write_atomically(path: Path, text: str) -> None:
    """Write a small file so that readers see the old or the new contents, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        _remove(Path(temporary))
        raise


class BackgroundInstall:
    """An Installer on a thread of its own, for hosts that poll (GIMP, Blender, Krita's timer):
    `fraction`, `message`, the log lines so far, and `error` / `status` when it has ended."""

    def __init__(self, engine: Engine, options: InstallOptions | None = None):
        self.fraction, self.message = 0.0, "Starting"
        self.log: list[str] = []
        self.error: str | None = None
        self.status: EngineStatus | None = None
        self.done = threading.Event()
        self.installer = Installer(engine, options, self._progress, self.log.append)
        threading.Thread(target=self._run, daemon=True, name="spritefit-engine-install").start()

    def _progress(self, fraction: float, message: str) -> None:
        self.fraction, self.message = fraction, message

    def _run(self) -> None:
        try:
            self.status = self.installer.run()
        except EngineError as exc:
            self.error = str(exc)
        finally:
            self.done.set()

    def cancel(self) -> None:
        self.installer.cancel()


def plugin_wheel_folders(plugin_folder: str) -> list[str]:
    """Where a plugin looks for SpriteFit wheels: its own engine/ folder, then the folder it is in."""
    return [os.path.join(plugin_folder, "engine"), os.path.dirname(os.path.abspath(plugin_folder))]


def engine_python(configured: str | None = None, engine: Engine | None = None) -> str:
    """The worker's Python: $SPRITEFIT_PYTHON, else the advanced setting `configured`, else the
    managed engine when ready. Raises client.WorkerError saying what to do otherwise."""
    if os.environ.get("SPRITEFIT_PYTHON") or configured:
        return client.find_python(configured)
    status = (engine or Engine()).status()
    if status.state == READY and status.python:
        return status.python
    raise EngineNotReady(status)


class EngineNotReady(client.WorkerError):
    """No worker Python is set and the managed engine is not ready; `status` says why."""

    def __init__(self, status: EngineStatus):
        super().__init__(status.detail)
        self.status = status
