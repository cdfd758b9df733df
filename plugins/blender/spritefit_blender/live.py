"""Live mode in the Image Editor panel: the arrangement follows the target image while you paint
on it (or change the panel's options).

Live on starts a worker and a live session (spritefit_live.LiveClient) on the target image; a
timer (`tick`, ten times a second on Blender's main thread) compares a digest of the image's
pixels, sends an update once a change has settled, and shows each frame in the image "SpriteFit
Live" (open it in any Image Editor). Apply is an operator, so that the collection it adds is one
undo step. Live off, another target, opening a file or the worker stopping ends the session.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from typing import Callable

import bpy

from . import build
from . import options_ui
from . import spritefit_client as client
from .spritefit_live import LiveClient

TICK_S = 0.1                       # as krita-ai-diffusion's live mode: look ten times a second
PREVIEW_IMAGE = "SpriteFit Live"   # the image each frame is shown in
APPLY_TIMEOUT_S = 60.0

STATE: dict = {"session": None, "worker": None, "target": None}   # the live session (one per Blender)


def session() -> LiveClient | None:
    return STATE["session"]


def running() -> bool:
    live = session()
    return live is not None and live.state in ("starting", "live")


@dataclass(frozen=True)
class Host:
    """What live mode uses of the add-on, as after a run."""
    write_image: Callable        # (folder, name, image) -> a pixels descriptor
    sprites: Callable            # (settings, folder) -> the run request's sprites
    add_result: Callable         # (manifest) -> the collection it added
    pixel_format: str


def start(settings, python: str, host: Host) -> None:
    """Start following the target (raises client.WorkerError or the add-on's SpriteFitError)."""
    target = settings.target
    end_now()                        # a session still closing: its worker goes now
    worker = client.WorkerProcess(python)
    try:
        live = LiveClient("blender", signature=lambda: pixel_digest(target),
                          write_target=lambda folder: host.write_image(folder, "live-target", target),
                          sprites=lambda folder: host.sprites(settings, folder),
                          options=lambda: options_ui.chosen(settings),
                          apply=lambda manifest: _added(host.add_result(manifest)), pixel_format=host.pixel_format)
        worker.send(live.start)
    except BaseException:
        worker.kill()
        raise
    STATE.update(session=live, worker=worker, target=target)
    settings.status = live.message
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=TICK_S)


def pixel_digest(image) -> bytes:
    """A digest of the image's pixels: any stroke changes it."""
    data, _, _ = build.image_rgba_bytes(image)
    return hashlib.blake2b(data, digest_size=16).digest()


def tick() -> float | None:
    """The timer: stop when the target went away, send the settled change, handle the worker's
    events. Returns the next interval, or None once the session has ended (the timer stops)."""
    live = session()
    if live is None or STATE["worker"] is None:       # never started, or ended
        return None
    settings = bpy.context.scene.spritefit
    if running() and settings.target != STATE["target"]:
        stop()
    if running():
        update = live.poll()
        if update is not None:
            _send(update)
    _drain()
    if live.state not in ("starting", "live"):
        _close_worker()
        return None
    settings.status = live.status_line()
    _redraw()
    return TICK_S


def _send(request: bytes) -> None:
    try:
        STATE["worker"].send(request)
    except client.WorkerError as exc:
        session().worker_stopped(f": {exc}")


def _drain() -> None:
    """Hand every event that arrived to the session; show a new frame."""
    live = session()
    if live.handle_waiting(STATE["worker"]) and live.preview:
        show_preview(live.preview)


def show_preview(path: str):
    """The frame's PNG into the image PREVIEW_IMAGE (created once, then reloaded)."""
    image = bpy.data.images.get(PREVIEW_IMAGE)
    if image is None:
        image = bpy.data.images.load(path)
        image.name = PREVIEW_IMAGE
    else:
        image.filepath = path
        image.reload()
    return image


def apply() -> str:
    """Ask for the current scene's result and add it (from the Apply operator: one undo step)."""
    live, worker = session(), STATE["worker"]
    if live is None or live.state != "live":
        raise client.WorkerError("Live has no frame to apply yet")
    worker.send(live.apply_request())
    deadline = time.monotonic() + APPLY_TIMEOUT_S
    while True:
        event = worker.next_event(max(0.1, deadline - time.monotonic()))
        live.handle(event)           # a result: _added builds the collection
        if event.get("job") != live.id:
            continue
        if event.get("event") == "result":
            return live.message
        if event.get("event") == "error":
            raise client.WorkerError(live.message)


def _added(collection) -> str:
    return f"Added '{collection.name}' (one Undo removes it);"


def stop() -> None:
    """Ask the session to end; tick() sees live_stopped and closes the worker."""
    live = session()
    if live is not None and live.state in ("starting", "live"):
        _send(live.stop_request())


def _close_worker() -> None:
    worker = STATE["worker"]
    if worker is not None:
        worker.close()
    STATE["worker"] = None


def end_now() -> None:
    """Without waiting (a file is opened, the add-on is disabled): kill the worker, drop the session."""
    live, worker = session(), STATE["worker"]
    if worker is not None:
        worker.kill()
    if live is not None and live.state in ("starting", "live"):
        live.worker_stopped(": Live was ended")
    if live is not None and os.path.isdir(live.folder):
        client.remove_job_folder(live.folder)
    STATE.update(session=None, worker=None, target=None)


def _redraw() -> None:
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                area.tag_redraw()
