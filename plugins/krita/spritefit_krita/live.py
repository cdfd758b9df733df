"""Live mode in the docker: spritefit_live's session on a Krita document and target layer.

The docker polls it ten times a second on Krita's GUI thread; the change test is a digest of a
small thumbnail of the target (document.target_signature), cheap enough never to block a stroke.
Apply adds the current scene as layers in one undo step, as after a run.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from . import document as doc_io
from .job import sprite_spec
from .spritefit_client import iter_patches, write_pixels
from .spritefit_live import LiveClient

if TYPE_CHECKING:
    from krita import GroupLayer


class LiveJob(LiveClient):
    def __init__(self, document, target_node, sprite_source: str, sprite_layers, pack_or_folder: str,
                 options: Callable[[], dict], sprite_alpha: str = "auto"):
        self.document, self.target_node = document, target_node
        self.applied: GroupLayer | None = None    # the group the last Apply added
        super().__init__(
            "krita", signature=lambda: doc_io.target_signature(document, target_node),
            write_target=self._write_target,
            sprites=lambda folder: sprite_spec(folder, sprite_source, sprite_layers, pack_or_folder, sprite_alpha),
            options=options, apply=self._add_layers, pixel_format=doc_io.PIXEL_FORMAT,
            not_ready=(doc_io.DocumentError,))

    def _write_target(self, folder: str) -> dict:
        data, width, height = doc_io.read_target(self.document, self.target_node)
        return write_pixels(folder, "live-target.raw", data, width, height, doc_io.PIXEL_FORMAT)

    def _add_layers(self, manifest: dict) -> str:
        group = self.applied = doc_io.apply_result(self.document, manifest, iter_patches(manifest))
        return f"Added '{group.name()}' (one Undo removes it);"
