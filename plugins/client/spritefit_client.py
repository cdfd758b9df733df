"""Host-neutral client of the SpriteFit worker (standard library only).

Every host adapter vendors this file. It knows how to find the worker's Python, start it with a
clean environment (an editor's PYTHONPATH/PYTHONHOME would break the worker's own Python), speak
the JSON-lines protocol, lay out a job folder and read the result back. Hosts with their own
event loop (Krita's QProcess) use the pieces: `clean_environment`, `worker_command`,
`encode_request`, `LineDecoder`; the others use `WorkerProcess`, a blocking subprocess wrapper.
"""
from __future__ import annotations

import functools
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque

PROTOCOL_VERSION = 1
VERSION = "0.1.0"   # the plugins' version; a managed engine of another SpriteFit version is outdated
STDERR_LINES_KEPT = 40


class WorkerError(Exception):
    """The worker could not be started, stopped unexpectedly, or reported an error."""


# --- finding and starting the worker -----------------------------------------------------------

def find_python(configured: str | None = None) -> str:
    """The worker's Python: $SPRITEFIT_PYTHON, else the configured path. Raises WorkerError with
    what to do when neither names an executable file."""
    candidate = os.environ.get("SPRITEFIT_PYTHON") or configured
    if not candidate:
        raise WorkerError("The SpriteFit worker's Python is not set: choose the python of the environment "
                          "where SpriteFit is installed (for example <project>/.venv/bin/python), "
                          "or set SPRITEFIT_PYTHON.")
    if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
        raise WorkerError(f"The SpriteFit worker's Python was not found at {candidate}: "
                          "point the settings (or SPRITEFIT_PYTHON) at the python where SpriteFit is installed.")
    return candidate


def clean_environment(base: dict | None = None) -> dict:
    """The environment for the worker: the host's, minus what points Python at the host's own
    interpreter and libraries."""
    env = dict(os.environ if base is None else base)
    for key in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONEXECUTABLE", "PYTHONNOUSERSITE"):
        env.pop(key, None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def worker_command(python: str) -> list[str]:
    return [python, "-u", "-m", "spritefit.worker"]


# A Ray cluster to fit on instead of this computer (an advanced setting of every plugin).
RAY_ADDRESS_VARIABLE = "SPRITEFIT_RAY_ADDRESS"


def cluster_address(configured: str | None = None) -> str:
    """The Ray cluster jobs are fitted on: $SPRITEFIT_RAY_ADDRESS, else the configured address
    (HOST:PORT of the cluster's head node); "" means this computer."""
    return (os.environ.get(RAY_ADDRESS_VARIABLE) or configured or "").strip()


def with_cluster(options: dict, configured: str | None = None) -> dict:
    """Run options that send the fit to the cluster, when one is set."""
    address = cluster_address(configured)
    return dict(options, cluster=address) if address else dict(options)


# --- the options an editor shows ---------------------------------------------------------------
# The worker's option schema (its hello's "options"), copied beside this file because editors
# declare their controls before any worker runs (scripts/update_options.py writes it; a test
# checks it against the worker's). Each record: name, group, group_title, type (int, float, bool,
# str, color), default, show (basic, advanced, hidden), help, and choices, range or presets.
OPTIONS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spritefit_options.json")
BASIC, ADVANCED = "basic", "advanced"


@functools.lru_cache(maxsize=1)
def option_schema() -> list[dict]:
    """Read once: Blender asks for it every time it draws the panel."""
    with open(OPTIONS_FILE, encoding="utf-8") as f:
        return json.load(f)["options"]


def shown_options(show: str, schema: list[dict] | None = None) -> list[dict]:
    """The options an editor shows with the basic ones, or folded away with the advanced ones."""
    return [o for o in (option_schema() if schema is None else schema) if o["show"] == show]


def has_automatic(option: dict) -> bool:
    """Whether the option's control needs an "automatic" value (none set: the preset's, or the
    engine's choice), because its default is none or a preset changes it."""
    return option["default"] is None or "presets" in option


def automatic_value(option: dict):
    """What a numeric control shows for "automatic": one below its range."""
    return option["range"][0] - 1


def control_default(option: dict):
    """The value a control starts at."""
    if has_automatic(option) and option["type"] in ("int", "float"):
        return automatic_value(option)
    return option["default"]


def option_value(option: dict, value):
    """`value` as the option's control holds it: of its type, within its choices or range, or
    its control_default (a stored setting that was edited by hand, or an option's old name)."""
    kind = option["type"]
    try:
        if kind == "bool":
            return value if isinstance(value, bool) else control_default(option)
        if kind in ("int", "float"):
            number = int(value) if kind == "int" else float(value)
            low, high = option.get("range", (None, None))
            lowest = automatic_value(option) if has_automatic(option) else low
            return number if low is None or lowest <= number <= high else control_default(option)
        text = str(value)
        return text if not option.get("choices") or text in option["choices"] else control_default(option)
    except (TypeError, ValueError):
        return control_default(option)


def _same(value, default) -> bool:
    """Equal, or (numbers) equal to single precision: Blender keeps float properties in 32 bits."""
    if isinstance(value, float) and isinstance(default, (int, float)) and not isinstance(default, bool):
        return abs(value - default) <= 1e-6 * max(1.0, abs(default))
    return value == default


def option_problem(option: dict, value) -> str | None:
    """Why `value` is not one the option's control may hold (a host's argument typed by a
    script), or None."""
    if option_value(option, value) == value or value == control_default(option):
        return None
    label = option["name"].replace("_", " ")
    if option.get("choices"):
        return f"{label} must be one of {', '.join(option['choices'])}, not {value!r}"
    if "range" in option:
        low = automatic_value(option) if has_automatic(option) else option["range"][0]
        return f"{label} must be in {low}..{option['range'][1]}, not {value!r}"
    return f"{label} cannot be {value!r}"


def chosen_options(values: dict, schema: list[dict] | None = None) -> dict:
    """The options to send for the controls' values: those set to something other than their
    control's default and not "automatic", so that an untouched control leaves the option to the
    preset and to the engine's automatic settings (which never override an option that is sent)."""
    chosen = {}
    for option in (option_schema() if schema is None else schema):
        name = option["name"]
        if name not in values:
            continue
        value = option_value(option, values[name])
        if not _same(value, control_default(option)):      # an "automatic" number is its control's default
            chosen[name] = value
    return chosen


# --- the protocol ------------------------------------------------------------------------------

def encode_request(op: str, **fields) -> bytes:
    return (json.dumps({"op": op, **fields}) + "\n").encode("utf-8")


class LineDecoder:
    """Bytes from the worker's stdout, in any chunks -> events (dicts), one per complete line."""

    def __init__(self):
        self.pending = b""

    def feed(self, data: bytes) -> list[dict]:
        self.pending += data
        *lines, self.pending = self.pending.split(b"\n")
        events = []
        for line in lines:
            if not line.strip():
                continue
            try:
                event = json.loads(line.decode("utf-8", errors="replace"))
            except json.JSONDecodeError:
                event = None
            if not isinstance(event, dict) or "event" not in event:
                event = {"event": "error", "kind": "protocol",
                         "message": f"the worker wrote something that is not an event: {line[:200]!r}"}
            events.append(event)
        return events


# How images without transparency in a pack or folder become sprites (spritefit.sprite_alpha).
def file_sprites(kind: str, value: str, alpha: str = "auto") -> dict:
    """The run request's sprites for a built-in pack (kind "pack") or a folder of images ("folder"),
    with the alpha mode of its opaque images (the option sprite_alpha's choices)."""
    problem = option_problem(next(o for o in option_schema() if o["name"] == "sprite_alpha"), alpha)
    if problem:
        raise ValueError(problem)
    return {kind: value, "alpha": alpha}


# Layers with these names (any case) are sent as masks, under the run request's field names.
MASK_LAYER_NAMES = {"mask": "mask", "keep-in": "keep_in", "keep-out": "keep_out"}


def mask_field(layer_name: str) -> str | None:
    """The run request's mask field a layer of this name fills, or None."""
    return MASK_LAYER_NAMES.get(layer_name.strip().lower())


class LayerError(ValueError):
    """A host's layers cannot be used as they are; the message says why (hosts show it as theirs)."""


def has_pixels(pixels: bytes) -> bool:
    """Whether 8-bit RGBA or BGRA pixels (alpha fourth in both) have any alpha at all."""
    return bool(bytes(pixels)[3::4].strip(b"\x00"))


def mask_layers(layers) -> dict:
    """{"mask" | "keep_in" | "keep_out": pixels} of the mask layers among `layers`: pairs of a
    layer name and a function giving its 8-bit pixels at the canvas size (read only for masks)."""
    masks = {}
    for name, read in layers:
        field = mask_field(name)
        if field is None:
            continue
        if field in masks:
            raise LayerError(f"Two layers are named '{name}': rename one, SpriteFit reads one of each mask.")
        data = read()
        if field == "keep_in" and not has_pixels(data):
            raise LayerError(f"The '{name}' layer is empty: paint where sprites may go.")
        masks[field] = data
    return masks


def masked_options(options: dict, masks: dict) -> dict:
    """Options for a run with these masks: in editors whole sprites stay in or out of keep masks."""
    return dict(options, keep_footprint=True) if {"keep_in", "keep_out"} & set(masks) else dict(options)


def refit_inputs(folder: str, scene: dict, moves, image_width: int, options: dict) -> dict:
    """Run request fields that refit the last result as the user left it. `scene` is that
    result's scene (a dict); `moves` yields (instance, dx, dy, locked) for its sprite layers: how
    far each was moved in image pixels and whether the user locked it. Moved instances start where
    their layers are now; locked ones stay exactly so (option "lock"). Sets `options`."""
    scale = image_width / scene["canvas"]["width"]
    locked = []
    for index, dx, dy, is_locked in moves:
        if index is None or not 0 <= index < len(scene["instances"]):
            continue
        record = scene["instances"][index]
        record["x"] += dx / scale
        record["y"] += dy / scale
        if is_locked:
            locked.append(index)
    with open(os.path.join(folder, "start.json"), "w") as f:
        json.dump(scene, f)
    options.update(lock=",".join(map(str, sorted(locked))) or "none",
                   size=max(scene["canvas"]["width"], scene["canvas"]["height"]))
    return {"init_scene": {"file": "start.json"}}


def instance_index(layer_name: str) -> int | None:
    """The instance a result layer shows: the worker names it '<sprite> #<instance>'."""
    _, mark, number = layer_name.rpartition(" #")
    return int(number) if mark and number.isdigit() else None


def run_request(job: str, folder: str, target: dict, sprites: dict, options: dict, pixel_format: str,
                inputs: dict | None = None, op: str = "run") -> bytes:
    """inputs: more request fields: "mask", "keep_in", "keep_out" (pixels descriptors of images
    the target's size) and "init_scene" ({"file": a scene.json in the job folder} to refit, with
    option "lock" naming the instances that stay as they are, e.g. "all-edited"; the scene
    brings its own sprites). op "live_start" starts a live session with the same fields."""
    return encode_request(op, job=job, dir=folder, target=target, sprites=sprites, options=options,
                          output={"format": pixel_format}, **(inputs or {}))


# --- job folders --------------------------------------------------------------------------------

JOBS_FOLDER = "spritefit-jobs"


def jobs_root() -> str:
    return os.path.join(tempfile.gettempdir(), JOBS_FOLDER)


def new_job_folder(prefix: str = "job-") -> str:
    """A fresh folder for one job's files, named after this process; folders left by processes
    that died (a crashed editor, a killed plug-in) are removed first."""
    root = jobs_root()
    os.makedirs(root, exist_ok=True)
    remove_stale_job_folders(root)
    return tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=root)


def remove_stale_job_folders(root: str | None = None) -> int:
    """Remove job folders whose process is gone; returns how many."""
    root = root or jobs_root()
    removed = 0
    for name in os.listdir(root) if os.path.isdir(root) else []:
        pid = _owner(name)
        if pid is not None and pid != os.getpid() and not process_alive(pid):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            removed += 1
    return removed


def _owner(name: str) -> int | None:
    parts = name.rsplit("-", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def process_alive(pid: int) -> bool:
    """Whether process `pid` still runs (True when there is no way to tell): job folders and the
    engine's install lock of a process that is gone are removed."""
    if os.name == "nt":   # os.kill(pid, 0) would not just probe there: ask tasklist
        out = subprocess.run(["tasklist", "/FI", f"PID eq {pid}", "/NH"], capture_output=True, text=True)
        return out.returncode != 0 or str(pid) in out.stdout
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True     # someone else's process, or no way to tell
    return True


def remove_job_folder(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def write_pixels(folder: str, name: str, data: bytes, width: int, height: int, pixel_format: str) -> dict:
    """Raw pixels into the job folder; returns their descriptor for a run request."""
    with open(os.path.join(folder, name), "wb") as f:
        f.write(bytes(data))
    return {"file": name, "width": width, "height": height, "format": pixel_format}


def read_manifest(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError) as exc:
        raise WorkerError(f"cannot read the result {path}: {exc}") from None
    if manifest.get("format") != "spritefit-layers" or manifest.get("version") != 1:
        raise WorkerError(f"{path} is not a SpriteFit result this plugin can read")
    manifest["folder"] = os.path.dirname(path)
    return manifest


def iter_patches(manifest: dict):
    """(layer record, pixel bytes) for every layer of a result, bottom first."""
    with open(os.path.join(manifest["folder"], manifest["patches"]), "rb") as blob:
        for layer in manifest["layers"]:
            blob.seek(layer["offset"])
            data = blob.read(layer["size"])
            if len(data) != layer["size"]:
                raise WorkerError("the result's pixel file is shorter than its manifest says")
            yield layer, data


# --- a blocking worker process (GIMP, Blender, scripts, tests) ---------------------------------

class WorkerProcess:
    """The worker as a subprocess, its events read by a thread into a queue."""

    def __init__(self, python: str, start_timeout: float = 120.0):
        self.events: queue.Queue = queue.Queue()
        self.stderr_tail: deque = deque(maxlen=STDERR_LINES_KEPT)
        try:
            self.process = subprocess.Popen(worker_command(python), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, env=clean_environment())
        except OSError as exc:
            raise WorkerError(f"cannot start the SpriteFit worker with {python}: {exc}") from None
        stdin, stdout, stderr = self.process.stdin, self.process.stdout, self.process.stderr
        assert stdin is not None and stdout is not None and stderr is not None   # all three are pipes
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        threading.Thread(target=self._read_events, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self.hello = self.next_event(start_timeout)
        if self.hello.get("event") != "hello":
            raise WorkerError(f"the SpriteFit worker did not start: {self.hello.get('message', self.hello)}")

    def _read_events(self) -> None:
        decoder = LineDecoder()
        for chunk in iter(self.stdout.readline, b""):
            for event in decoder.feed(chunk):
                self.events.put(event)
        self.events.put(None)   # end of stream

    def _read_stderr(self) -> None:
        for line in iter(self.stderr.readline, b""):
            self.stderr_tail.append(line.decode("utf-8", errors="replace").rstrip())

    def send(self, data: bytes) -> None:
        try:
            self.stdin.write(data)
            self.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise self._died() from None

    def next_event(self, timeout: float | None = None) -> dict:
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            raise WorkerError(f"the SpriteFit worker sent nothing for {timeout:.0f} s") from None
        if event is None:
            self.events.put(None)
            raise self._died()
        return event

    def _died(self) -> WorkerError:
        try:
            status = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            status = None
        time.sleep(0.05)   # let the stderr reader catch the last lines
        detail = "\n".join(list(self.stderr_tail)[-8:])
        return WorkerError(f"the SpriteFit worker stopped unexpectedly (exit status {status})"
                           + (f":\n{detail}" if detail else ""))

    def run(self, job: str, folder: str, target: dict, sprites: dict, options: dict,
            pixel_format: str, on_progress=None, cancel=None, timeout: float = 3600.0, inputs=None,
            on_warning=None) -> dict:
        """Run one job to its end and return the result manifest (best-so-far when cancelled).
        on_progress(event) sees every progress event, on_warning(event) every warning (sprites
        skipped, settings the fit chose); cancel() returning True asks to stop."""
        self.send(run_request(job, folder, target, sprites, options, pixel_format, inputs))
        deadline, cancel_sent = time.monotonic() + timeout, False
        while True:
            if cancel is not None and not cancel_sent and cancel():
                self.send(encode_request("cancel", job=job))
                cancel_sent = True
            if time.monotonic() > deadline:
                raise WorkerError(f"the SpriteFit job took longer than {timeout:.0f} s")
            try:
                event = self.next_event(0.2)
            except WorkerError:
                if self.process.poll() is None and self.events.empty():
                    continue   # just quiet for a moment
                raise
            if event.get("job") not in (None, job):
                continue
            kind = event.get("event")
            if kind == "progress" and on_progress is not None:
                on_progress(event)
            elif kind == "warning" and on_warning is not None:
                on_warning(event)
            elif kind in ("result", "cancelled"):
                return read_manifest(event["manifest"])
            elif kind == "error":
                raise WorkerError(event.get("message", "the SpriteFit worker reported an error"))

    def close(self, timeout: float = 5.0) -> None:
        """Ask the worker to leave; kill it when it does not."""
        if self.process.poll() is None:
            try:
                self.send(encode_request("shutdown"))
                self.stdin.close()
            except (WorkerError, OSError):
                pass
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


if __name__ == "__main__":   # a smoke test: python spritefit_client.py /path/to/python
    with WorkerProcess(find_python(sys.argv[1] if len(sys.argv) > 1 else None)) as worker:
        print(worker.hello)
