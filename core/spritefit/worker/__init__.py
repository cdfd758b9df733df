"""The worker the host plugins talk to: `python -m spritefit.worker` (or `spritefit worker`).

One JSON object per line on stdin (requests) and on stdout (events); bulk pixels travel as files
in a per-job folder (see job.py). Requests: `run`, `cancel`, `ping`, `shutdown`, and the live
session's `live_start`, `live_update`, `live_apply`, `live_stop` (see live.py). Events: `hello`
(first, once; its `native` is null, or why the fast renderer is missing; its `options` lists
every option a host may set, with name, group, type, default, choices or range, help and `show`:
basic, advanced or hidden in the editors), `progress`, `warning`,
`result`, `cancelled` (with the best result so far), `live_frame`, `live_stopped`, `error` (kind
`input`, `cluster`, `memory`, `io`, `internal` or `protocol`), `pong`. Logs go to stderr, never
to stdout.

With the option `cluster` (or $SPRITEFIT_RAY_ADDRESS) a job's fit runs on that Ray cluster
(spritefit.cluster.remote_job); requests, events and result files stay the same.

The worker exits when stdin closes, on `shutdown`, and when its parent process dies, so a
crashed or killed editor never leaves it behind.
"""
from __future__ import annotations

import json
import math
import os
import queue
import sys
import threading
import time
import traceback

from ..cluster.connect import ClusterError
from ..errors import SpriteFitError
from ..native_module import native_problem
from ..options import described
from ..startup import freeze_imported_objects, imports_without_collection
from .live import LiveInbox

PROTOCOL_VERSION = 1
OPS = ("run", "cancel", "ping", "shutdown", "live_start", "live_update", "live_apply", "live_stop")
MAX_LINE = 1 << 20       # a request line longer than this is refused, not parsed


class Channel:
    """The protocol's stdout: one JSON object per line, written by any thread."""

    def __init__(self, stream):
        self.stream, self.lock = stream, threading.Lock()

    def emit(self, event: dict) -> None:
        line = json.dumps(_finite(event), allow_nan=False) + "\n"
        with self.lock:
            try:
                self.stream.write(line)
                self.stream.flush()
            except (BrokenPipeError, ValueError, OSError):
                os._exit(0)   # nobody is listening any more


def _finite(value):
    """JSON has no inf or NaN (a perfect fit has an infinite PSNR): they travel as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class Worker:
    def __init__(self, channel: Channel):
        self.channel = channel
        self.requests: queue.Queue = queue.Queue()
        self.active_job: str | None = None
        self.cancel = threading.Event()        # the active job's
        self.cancelled_jobs: set = set()       # cancels that arrived before their job started
        self.stopping = threading.Event()      # stdin closed or shutdown: stop whatever runs
        self.live = LiveInbox()                # the live session's updates, Apply and stop

    # --- reading (a thread of its own, so cancel and ping are answered during a run) ----------
    def read(self, stdin) -> None:
        for line in stdin:
            if not line.strip():
                continue
            request = self._parse(line)
            if request is None:
                continue
            op = request["op"]
            if op == "ping":
                self.channel.emit({"event": "pong", "job": self.active_job})
            elif op == "cancel":
                self._cancel(request.get("job"))
            elif op == "live_update":
                self.live.offer(request)
            elif op == "live_apply":
                self.live.ask_apply()
            elif op == "live_stop":
                self.live.stop()
            else:
                self.requests.put(request)
                if op == "shutdown":
                    self.stopping.set()
                    return
        self.stopping.set()          # stdin closed: stop the run and leave
        self.requests.put({"op": "shutdown"})

    def _cancel(self, job) -> None:
        if job is None or job == self.active_job:
            self.cancel.set()
        elif isinstance(job, str):
            self.cancelled_jobs.add(job)

    def _parse(self, line: str) -> dict | None:
        error = None
        if len(line) > MAX_LINE:
            error = f"request line too long ({len(line):,} characters, at most {MAX_LINE:,})"
        else:
            try:
                request = json.loads(line)
            except json.JSONDecodeError as exc:
                error = f"request is not valid JSON: {exc}"
            else:
                if not isinstance(request, dict):
                    error = "request must be a JSON object"
                elif request.get("op") not in OPS:
                    error = f"unknown op {request.get('op')!r} (use {', '.join(OPS)})"
        if error is None:
            return request
        job = request.get("job") if error.startswith("unknown op") else None
        self.channel.emit({"event": "error", "job": job, "kind": "protocol", "message": error})
        return None

    # --- running (the main thread) --------------------------------------------------------------
    def serve(self) -> None:
        while True:
            request = self.requests.get()
            if request["op"] == "shutdown" or self.stopping.is_set():
                return
            self.run(request)

    def run(self, request: dict) -> None:
        from .job import execute, parse_run
        job = request.get("job") if isinstance(request.get("job"), str) else None
        self.cancel.clear()
        if job in self.cancelled_jobs:
            self.cancel.set()
        self.active_job = job
        if request["op"] == "live_start":
            self.live.start()
            self._guarded(job, lambda: self._live(request))
        else:
            self._guarded(job, lambda: self._run(request, execute, parse_run))
        self.active_job = None

    def _run(self, request: dict, execute, parse_run) -> None:
        run = parse_run(request)
        for message in run.warnings:
            self.channel.emit({"event": "warning", "job": run.job, "message": message})
        manifest = execute(run, self.channel.emit, lambda: self.cancel.is_set() or self.stopping.is_set())
        event = "cancelled" if manifest["cancelled"] else "result"
        self.channel.emit({"event": event, "job": run.job, "manifest": str(run.folder / "manifest.json"),
                           "layers": len(manifest["layers"]), "psnr": manifest.get("psnr")})

    def _live(self, request: dict) -> None:
        from .live import serve_live
        serve_live(request, self.channel.emit, self.live, self.stopping)

    def _guarded(self, job, work) -> None:
        """Run a job, turning every failure into an `error` event: the worker itself goes on."""
        try:
            work()
        except SpriteFitError as exc:   # the input, or the cluster the job was sent to (ClusterError)
            kind = "cluster" if isinstance(exc, ClusterError) else "input"
            self.channel.emit({"event": "error", "job": job, "kind": kind, "message": str(exc)})
        except MemoryError:
            self.channel.emit({"event": "error", "job": job, "kind": "memory",
                               "message": "out of memory: use fewer sprites or a smaller working size"})
        except OSError as exc:   # a full disk, a job folder removed under us
            self.channel.emit({"event": "error", "job": job, "kind": "io",
                               "message": f"cannot read or write the job's files: {exc.strerror or exc}"
                                          + (f" ({exc.filename})" if exc.filename else "")})
        except Exception as exc:   # a bug: report it instead of dying silently
            traceback.print_exc(file=sys.stderr)
            self.channel.emit({"event": "error", "job": job, "kind": "internal",
                               "message": f"{type(exc).__name__}: {exc}"})


def _die_with_parent() -> None:
    """Exit when the process that started us goes away (Linux: at once; elsewhere: within 1 s)."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(3)
    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _protocol_stdout():
    """A private copy of stdout for the protocol; fd 1 then points at stderr, so a stray print
    (ours or a library's, from Python or C) can never corrupt the event stream."""
    stream = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", newline="\n")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    return stream


def device_name() -> str:
    import torch
    return f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"


@imports_without_collection
def main() -> int:
    from .. import __version__
    channel = Channel(_protocol_stdout())
    _die_with_parent()
    worker = Worker(channel)
    channel.emit({"event": "hello", "version": __version__, "protocol": PROTOCOL_VERSION,
                  "device": device_name(), "pid": os.getpid(), "native": native_problem(),
                  "options": described()})
    freeze_imported_objects()
    threading.Thread(target=worker.read, args=(sys.stdin,), daemon=True, name="requests").start()
    worker.serve()
    return 0
