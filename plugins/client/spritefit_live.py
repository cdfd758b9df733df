"""Live mode as a host plugin sees it, without widgets or processes: the arrangement follows the
target (and the chosen options) while the artist paints. Vendored into every plugin beside
spritefit_client.

The host calls poll() ten times a second on its GUI thread. poll() compares a cheap digest of the
target (the host's `signature`, for example a hash of a thumbnail) and the chosen options; once
they have changed and then stayed the same for DEBOUNCE_S, and no update is in flight, it reads
the target and returns the `live_update` request to send. The worker keeps only the latest update,
so nothing ever queues. Apply asks the worker for the current scene's result files; the host adds
them as layers (one undo step), as after a run.

States: "starting" (the first fit) -> "live" -> "stopped" | "failed" (a message).
"""
from __future__ import annotations

import itertools
import time
from typing import Callable

try:
    from . import spritefit_client as client   # vendored into a plugin's package (Krita, Blender)
except ImportError:
    import spritefit_client as client  # type: ignore[no-redef]  # beside it on sys.path (GIMP, tests)

DEBOUNCE_S = 0.25      # the target must stay unchanged this long before an update is sent
BEHIND_S = 1.5         # a change waiting longer than this for the engine: the status line says so
_numbers = itertools.count(1)


class LiveClient:
    """One live session. The host gives it:
    signature(): bytes that change when the target's pixels change (cheap: called ten times a second);
    write_target(folder): the target's pixels written into the folder, as a pixels descriptor
        (raising one of `not_ready` during a session means: wait for more paint, e.g. a target
        painted fully transparent);
    sprites(folder): the sprites of the run request (spritefit_client.file_sprites, or layers written there);
    options(): the options the host's controls choose now (spritefit_client.chosen_options; a
        `cluster` among them is left out: live mode always fits on this machine);
    apply(manifest): adds a result to the document and returns what the status line says."""

    def __init__(self, host: str, signature: Callable[[], bytes], write_target: Callable[[str], dict],
                 sprites: Callable[[str], dict], options: Callable[[], dict], apply: Callable[[dict], str],
                 pixel_format: str, inputs: dict | None = None, not_ready: tuple = ()):
        self._signature, self._write_target, self._host_options, self._apply = signature, write_target, options, apply
        self._not_ready = not_ready
        self.id = f"{host}-live-{next(_numbers)}"
        self.folder = client.new_job_folder(f"{host}-live-")
        try:
            self.seen = self._inputs_now()
            self.sent_options = self.seen[1]
            self.start = client.run_request(self.id, self.folder, write_target(self.folder), sprites(self.folder),
                                     self.sent_options, pixel_format, inputs=inputs, op="live_start")
        except BaseException:
            client.remove_job_folder(self.folder)
            raise
        self.state, self.message = "starting", "Live: fitting the first frame…"
        self.preview: str | None = None
        self.last_frame: dict | None = None       # the latest live_frame event
        self.changed_at: float | None = None      # when the inputs last changed, not yet sent
        self.sent_at: float | None = time.monotonic()   # the request in flight (the start, first)
        self.updates_sent = 0
        self.frame_seconds: list[float] = []      # change to frame, for the status line
        self.target_changed = False               # the pending change includes the target's pixels

    def _options(self) -> dict:
        options = dict(self._host_options())
        options.pop("cluster", None)
        return options

    def _inputs_now(self) -> tuple[bytes, dict]:
        return self._signature(), self._options()

    # --- what the host sends ---------------------------------------------------------------------
    def poll(self, now: float | None = None) -> bytes | None:
        """The update to send now, or None (nothing changed, still debouncing, or one in flight)."""
        now = time.monotonic() if now is None else now
        if self.state not in ("starting", "live"):
            return None
        seen = self._inputs_now()
        if seen != self.seen:
            self.target_changed |= seen[0] != self.seen[0]
            self.seen, self.changed_at = seen, now
            return None
        if self.changed_at is None or now - self.changed_at < DEBOUNCE_S or self.sent_at is not None:
            return None
        fields = {}
        if self.target_changed:
            try:
                fields["target"] = self._write_target(self.folder)
            except self._not_ready as exc:
                self.message, self.changed_at = str(exc), None
                return None
        options = seen[1]                          # settled: what the controls chose DEBOUNCE_S ago and since
        if options != self.sent_options:
            # The worker merges an update's options into the session's: an option no longer chosen
            # is sent as null, which puts it back to its default (or automatic) value.
            fields["options"] = dict({name: None for name in self.sent_options if name not in options}, **options)
            self.sent_options = options
        self.changed_at, self.sent_at, self.target_changed = None, now, False
        if not fields:
            return None
        self.updates_sent += 1
        return client.encode_request("live_update", job=self.id, id=self.updates_sent, **fields)

    def behind(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return self.changed_at is not None and self.sent_at is not None and now - self.sent_at > BEHIND_S

    def apply_request(self) -> bytes:
        return client.encode_request("live_apply", job=self.id)

    def stop_request(self) -> bytes:
        return client.encode_request("live_stop", job=self.id)

    # --- what the worker says --------------------------------------------------------------------
    def handle_waiting(self, worker) -> bool:
        """Handle every event the worker (spritefit_client.WorkerProcess) has sent so far, without
        waiting; True when a new frame came. The worker's output ending stops the session."""
        shown = self.last_frame
        while not worker.events.empty():
            event = worker.events.get_nowait()
            if event is None:                      # the worker's output ended
                worker.events.put(None)
                self.worker_stopped(f" (exit status {worker.process.poll()})")
                break
            self.handle(event)
        return self.last_frame is not shown

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
            self.message = self._apply(client.read_manifest(event["manifest"])) + " Live goes on."
        elif kind == "error":
            if self.state == "starting":
                self._close("failed")
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
        client.remove_job_folder(self.folder)
