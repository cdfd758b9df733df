"""One SpriteFit run as the docker sees it, without widgets or processes: the job folder with the
document's pixels, the request, and what each worker event means for the user.

States: "running" -> ("cancelling" ->) "done" (a result to apply) | "failed" (a message).
"""
from __future__ import annotations

import itertools
import time

from . import document as doc_io
from .spritefit_client import (PROTOCOL_VERSION, file_sprites, iter_patches, masked_options, new_job_folder,
                               read_manifest, refit_inputs, remove_job_folder, run_request, write_pixels)

_job_numbers = itertools.count(1)


def sprite_spec(folder: str, source: str, layers, pack_or_folder: str, alpha: str = "auto") -> dict:
    """The run request's sprites: the selected layers (written into the job folder), a built-in
    pack, or a folder of images (whose opaque images become sprites by `alpha`)."""
    if source == "layers":
        specs = []
        for i, (name, data, width, height) in enumerate(doc_io.read_sprite_layers(layers)):
            specs.append(dict(write_pixels(folder, f"sprite-{i}.raw", data, width, height, doc_io.PIXEL_FORMAT),
                              name=name))
        return {"layers": specs}
    if source == "pack":
        return file_sprites("pack", pack_or_folder, alpha)
    if source == "refit":
        return {}                        # the last result's scene brings its sprites
    if not pack_or_folder:
        raise doc_io.DocumentError("Choose the folder of sprite images first.")
    return file_sprites("folder", pack_or_folder, alpha)


class FitJob:
    def __init__(self, document, target_node, sprite_source: str, sprite_layers, pack_or_folder: str,
                 options: dict, sprite_alpha: str = "auto"):
        """Read everything from the document now: the run never looks at it again, so the user
        may keep painting while it runs."""
        self.document = document
        self.id = f"krita-{next(_job_numbers)}"
        self.folder = new_job_folder("krita-")
        try:
            data, width, height = doc_io.read_target(document, target_node)
            self.target = write_pixels(self.folder, "target.raw", data, width, height, doc_io.PIXEL_FORMAT)
            self.sprites = sprite_spec(self.folder, sprite_source, sprite_layers, pack_or_folder, sprite_alpha)
            self.masks = {key: write_pixels(self.folder, f"{key}.raw", data, width, height, doc_io.PIXEL_FORMAT)
                          for key, (data, width, height) in doc_io.read_mask_layers(document).items()}
        except BaseException:
            remove_job_folder(self.folder)
            raise
        self.options = masked_options(options, self.masks)   # options: what the controls set (chosen_options)
        self.inputs = dict(self.masks)
        if sprite_source == "refit":
            try:
                scene, moves = doc_io.read_refit(document)
                self.inputs.update(refit_inputs(self.folder, scene, moves, document.width(), self.options))
            except BaseException:
                remove_job_folder(self.folder)
                raise
        self.state, self.message = "running", "Starting the SpriteFit worker…"
        if self.masks:
            self.message += " (masks: " + ", ".join(k.replace("_", "-") for k in sorted(self.masks)) + ")"
        self.manifest: dict | None = None
        self.progress = (0, 0)
        self.preview: str | None = None
        self.started = time.monotonic()

    def request(self) -> bytes:
        return run_request(self.id, self.folder, self.target, self.sprites, self.options, doc_io.PIXEL_FORMAT,
                           self.inputs)

    def handle(self, event: dict) -> None:
        """Update the state from one worker event."""
        kind = event.get("event")
        if kind == "hello":
            if event.get("protocol") != PROTOCOL_VERSION:
                self._fail(f"This plugin speaks protocol {PROTOCOL_VERSION}, the worker speaks "
                           f"{event.get('protocol')}: update the plugin or SpriteFit.")
            else:
                self.message = f"Worker ready on {event.get('device', 'cpu')}: fitting…"
            return
        if event.get("job") not in (None, self.id) or self.state not in ("running", "cancelling"):
            return
        if kind == "progress":
            self.progress = (event["iteration"], event["total"])
            self.preview = event.get("preview", self.preview)
            psnr = event.get("psnr")
            self.message = (f"Iteration {event['iteration']}/{event['total']}, loss {event['loss']:.4f}"
                            + (f", PSNR {psnr:.2f} dB" if psnr is not None else ""))
        elif kind == "warning":
            self.message = event.get("message", "")
        elif kind in ("result", "cancelled"):
            self.manifest = manifest = read_manifest(event["manifest"])
            self.state = "done"
            seconds = time.monotonic() - self.started
            what = "Cancelled; kept the best result so far" if kind == "cancelled" else "Done"
            psnr = manifest.get("psnr")
            self.message = (f"{what}: {len(manifest['layers'])} sprites in {seconds:.0f} s"
                            + (f", PSNR {psnr:.2f} dB" if psnr is not None else "") + ". Apply adds them as layers.")
        elif kind == "error" and event.get("job") == self.id:
            self._fail(event.get("message", "The worker reported an error."))

    def worker_stopped(self, detail: str) -> None:
        if self.state in ("running", "cancelling"):
            self._fail(f"The SpriteFit worker stopped unexpectedly{detail}. The image was not changed.")

    def cancel_requested(self) -> None:
        if self.state == "running":
            self.state, self.message = "cancelling", "Cancelling: keeping the best result so far…"

    def _fail(self, message: str) -> None:
        self.state, self.message = "failed", message
        remove_job_folder(self.folder)

    def apply(self):
        """Add the result to the document it was made from (one undo step); returns the group."""
        if self.state != "done" or self.manifest is None:
            raise doc_io.DocumentError("There is no result to apply yet.")
        start = time.monotonic()
        group = doc_io.apply_result(self.document, self.manifest, iter_patches(self.manifest))
        self.message = (f"Added '{group.name()}' with {len(self.manifest['layers'])} layers "
                        f"in {time.monotonic() - start:.1f} s (one Undo removes it).")
        self._close("applied")
        return group

    def discard(self) -> None:
        self._close("discarded")

    def _close(self, state: str) -> None:
        self.state, self.manifest = state, None
        remove_job_folder(self.folder)
