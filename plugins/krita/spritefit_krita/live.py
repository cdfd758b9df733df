"""Live mode as the docker sees it, without widgets or processes: the arrangement follows the
target while the artist paints.

The docker calls poll() ten times a second on Krita's GUI thread. It compares a thumbnail digest
of the target (cheap, never blocks a stroke); once the target has changed and then stayed the
same for DEBOUNCE_S, and no update is in flight, it reads the target and returns the update to
send. The worker keeps only the latest update, so nothing ever queues. Apply asks the worker for
the current scene's layers and adds them in one undo step, as after a run.

States: "starting" (the first fit) -> "live" -> "stopped" | "failed" (a message).
"""
from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING

from . import document as doc_io
from .job import sprite_spec
from .spritefit_client import encode_request, iter_patches, new_job_folder, read_manifest, remove_job_folder, \
    run_request, write_pixels

if TYPE_CHECKING:
    from krita import GroupLayer

DEBOUNCE_S = 0.25      # the target must stay unchanged this long before an update is sent
BEHIND_S = 1.5         # a change waiting longer than this for the engine: the status line says so
_numbers = itertools.count(1)


class LiveJob:
    def __init__(self, document, target_node, sprite_source: str, sprite_layers, pack_or_folder: str,
                 options: dict, sprite_alpha: str = "auto"):
        self.document, self.target_node = document, target_node
        self.id = f"krita-live-{next(_numbers)}"
        self.folder = new_job_folder("krita-live-")
        try:
            self.signature = doc_io.target_signature(document, target_node)
            target = self._write_target()
            sprites = sprite_spec(self.folder, sprite_source, sprite_layers, pack_or_folder, sprite_alpha)
        except BaseException:
            remove_job_folder(self.folder)
            raise
        self.start = run_request(self.id, self.folder, target, sprites, options, doc_io.PIXEL_FORMAT,
                                 op="live_start")
        self.state, self.message = "starting", "Live: fitting the first frame…"
        self.preview: str | None = None
        self.last_frame: dict | None = None       # the latest live_frame event
        self.changed_at: float | None = None      # when the target last changed, not yet sent
        self.sent_at: float | None = time.monotonic()   # the request in flight (the start, first)
        self.updates_sent = 0
        self.frame_seconds: list[float] = []      # stroke to frame, for the status line
        self.applied: GroupLayer | None = None    # the group the last Apply added

    def _write_target(self) -> dict:
        data, width, height = doc_io.read_target(self.document, self.target_node)
        return write_pixels(self.folder, "live-target.raw", data, width, height, doc_io.PIXEL_FORMAT)

    # --- what the docker sends -------------------------------------------------------------------
    def poll(self, now: float | None = None) -> bytes | None:
        """The update to send now, or None (nothing changed, still debouncing, or one in flight)."""
        now = time.monotonic() if now is None else now
        if self.state not in ("starting", "live"):
            return None
        signature = doc_io.target_signature(self.document, self.target_node)
        if signature != self.signature:
            self.signature, self.changed_at = signature, now
            return None
        if self.changed_at is None or now - self.changed_at < DEBOUNCE_S or self.sent_at is not None:
            return None
        try:
            target = self._write_target()
        except doc_io.DocumentError as exc:      # painted fully transparent: wait for more paint
            self.message = str(exc)
            self.changed_at = None
            return None
        self.changed_at, self.sent_at = None, now
        self.updates_sent += 1
        return encode_request("live_update", job=self.id, id=self.updates_sent, target=target)

    def behind(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return self.changed_at is not None and self.sent_at is not None and now - self.sent_at > BEHIND_S

    def apply_request(self) -> bytes:
        return encode_request("live_apply", job=self.id)

    def stop_request(self) -> bytes:
        return encode_request("live_stop", job=self.id)

    # --- what the worker says --------------------------------------------------------------------
    def handle(self, event: dict, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if event.get("job") != self.id:
            return
        kind = event.get("event")
        if kind == "live_frame":
            self.state, self.preview, self.last_frame = "live", event.get("preview"), event
            if self.sent_at is not None and event.get("id") is not None:
                self.frame_seconds = (self.frame_seconds + [now - self.sent_at])[-10:]
            self.sent_at = None
            self.message = self._status(event)
        elif kind == "result":
            manifest = read_manifest(event["manifest"])
            group = self.applied = doc_io.apply_result(self.document, manifest, iter_patches(manifest))
            self.message = f"Added '{group.name()}' (one Undo removes it); Live goes on."
        elif kind == "error":
            if self.state == "starting":
                self.state = "failed"
                remove_job_folder(self.folder)
            self.sent_at = None
            self.message = event.get("message", "The worker reported an error.")
        elif kind == "live_stopped":
            self._close("stopped")

    def _status(self, event: dict) -> str:
        psnr = event.get("psnr")
        rate = ""
        if self.frame_seconds:
            mean = sum(self.frame_seconds) / len(self.frame_seconds)
            rate = f", {mean:.1f} s a frame"
        return (f"Live: frame {event.get('scene_id', 0)}{rate}, {event.get('frozen', 0)} sprites kept"
                + (f", PSNR {psnr:.1f} dB" if psnr is not None else "") + ". Apply adds it as layers.")

    def status_line(self, now: float | None = None) -> str:
        if self.behind(now):
            return self.message + " The engine is behind your strokes."
        return self.message

    def worker_stopped(self, detail: str) -> None:
        if self.state in ("starting", "live"):
            self.message = f"The SpriteFit worker stopped unexpectedly{detail}. The image was not changed."
            self._close("failed")

    def _close(self, state: str) -> None:
        self.state = state
        remove_job_folder(self.folder)
