"""Live sessions in the worker protocol (spritefit.live does the fitting).

`live_start` carries what a `run` does (job, dir, target, sprites, options, output); the worker
fits it and sends a `live_frame`, then waits. `live_update` (a new `target`, changed `options`
(null: back to the default), new `sprites`, or any of them) replaces any update still waiting:
updates never queue, the next frame is always for the latest. `live_apply` writes the current scene as a run's result files and
answers `result`, as a run does (the host adds its layers). `live_stop` ends the session
(`live_stopped`). A bad update gets an `error` event (kind `input`) and the session goes on with
what it had.

live_frame: {job, id (the `id` field of the request it answers, when it had one), scene_id (0 for the first fit, then one more per update that did work),
preview (a PNG in the job folder), scene (its scene.json), psnr, seconds (the update's fit),
frozen (instances that stayed exactly where they were), restarted}.
"""
from __future__ import annotations

import threading
from typing import Callable

from ..errors import SpriteFitError

WAIT_S = 0.05     # how often the session looks for an update or a stop


class LiveInbox:
    """What the reader thread hands a live session: the latest update, apply, stop."""

    def __init__(self):
        self.lock, self.wake = threading.Lock(), threading.Event()
        self.pending: dict | None = None
        self.apply = self.stopped = False
        self.dropped = 0        # updates replaced by a later one before they were taken

    def start(self) -> None:
        """A new session: a stop or Apply meant for the last one no longer counts (an update that
        arrived first stays: it may be this session's, which serve_live checks)."""
        self.stopped = self.apply = False
        self.dropped = 0

    def offer(self, update: dict) -> None:
        with self.lock:
            self.dropped += self.pending is not None
            self.pending = update
        self.wake.set()

    def ask_apply(self) -> None:
        self.apply = True
        self.wake.set()

    def stop(self) -> None:
        self.stopped = True
        self.wake.set()

    def take(self) -> tuple[dict | None, bool]:
        """(the latest update or None, whether Apply was asked), waiting at most WAIT_S."""
        self.wake.wait(WAIT_S)
        with self.lock:
            self.wake.clear()
            update, self.pending = self.pending, None
            apply, self.apply = self.apply, False
        return update, apply


def serve_live(request: dict, emit: Callable[[dict], None], inbox: LiveInbox, stopping: threading.Event) -> None:
    """Run one live session until live_stop, a shutdown, or stdin closing."""
    from ..fitting import fit
    from ..live import LiveSession
    from .job import parse_run
    run = parse_run(request)
    job = run.job
    stopped = lambda: inbox.stopped or stopping.is_set()
    options = _live_options(run)
    session = LiveSession(run.target, run.sprites, options,
                          fit_frame=lambda target, sprites, **options: fit(target, sprites, cancel=stopped, **options))
    _send_frame(run, session, emit, request.get("id"))
    while not stopped():
        update, apply = inbox.take()
        if apply:
            _apply(run, session, emit)
        if update is None or stopped() or update.get("job", job) != job:
            continue
        try:
            merged = dict(request, job=job, options=_merged_options(request.get("options", {}), update.get("options", {})))
            merged.update({key: update[key] for key in ("target", "sprites") if key in update})
            new_run = parse_run(merged, sprites=None if "sprites" in update else run.sprites)
            new_options = _live_options(new_run)
        except SpriteFitError as exc:
            emit({"event": "error", "job": job, "kind": "input", "message": f"live update: {exc}"})
            continue
        unset = {name: None for name in options if name not in new_options}    # back to their defaults
        request, run, options = merged, new_run, new_options
        session.update(run.target, dict(unset, **options), sprites=run.sprites if "sprites" in update else None)
        _send_frame(run, session, emit, update.get("id"))
    emit({"event": "live_stopped", "job": job, "updates": session.update_count, "dropped": inbox.dropped})


def _merged_options(session: dict, changed: dict) -> dict:
    """The session's options with an update's: a null value puts the option back to its default
    (hosts send only the options their controls set, so an option set back is sent as null)."""
    if not isinstance(changed, dict):
        raise SpriteFitError("the update's 'options' must be an object")
    merged = dict(session, **changed)
    return {name: value for name, value in merged.items() if value is not None}


def _live_options(run) -> dict:
    from .job import fit_options
    if run.options.get("cluster"):
        raise SpriteFitError("live mode fits on this machine: leave the option 'cluster' empty")
    return fit_options(run)


def _send_frame(run, session, emit, request_id) -> None:
    from ..fitting import evaluate
    from ..images import save_png
    from ..render import render_scene_array
    frame = session.frame
    preview, scene_file = run.folder / "live-preview.png", run.folder / "live-scene.json"
    save_png(preview, render_scene_array(frame.scene))
    frame.scene.save(scene_file)
    metrics = evaluate(frame.scene, session.target) if frame.scene.background is not None else {}
    emit({"event": "live_frame", "job": run.job, "id": request_id, "scene_id": frame.update, "preview": str(preview),
          "scene": str(scene_file), "psnr": round(metrics["psnr"], 3) if metrics else None,
          "seconds": round(frame.seconds, 3), "frozen": frame.frozen, "restarted": frame.restarted})


def _apply(run, session, emit) -> None:
    from .job import write_result
    manifest = write_result(run, session.scene, cancelled=False)
    emit({"event": "result", "job": run.job, "manifest": str(run.folder / "manifest.json"),
          "layers": len(manifest["layers"]), "psnr": manifest.get("psnr")})
