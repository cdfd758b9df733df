"""What the plugin reads from and writes to a Krita document (libkis calls only, no widgets).

Nothing here changes the document except `apply_result`, which adds the whole result in one
undoable step: the layers are filled while detached, gathered in a detached group with
`setChildNodes` (not undoable, and nothing to undo: the group is not in the image yet), and the
group is attached with one `addChildNode` (one "Add Layer" entry in the history).
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING

from .spritefit_client import LayerError, has_pixels, instance_index, mask_layers

if TYPE_CHECKING:   # the plugin runs inside Krita; outside it (tests) a fake krita module is used
    from krita import GroupLayer

PIXEL_FORMAT = "BGRA8"          # Krita's byte order for 8-bit RGBA documents
SCENE_ANNOTATION = "spritefit-scene"   # the last applied result's scene.json, kept in the document
RESULT_GROUP_PREFIX = "SpriteFit ("
SPRITE_LAYER_TYPES = ("paintlayer",)


class DocumentError(Exception):
    """The document or the chosen layers cannot be used; the message says why and what to do."""


def check_document(document) -> None:
    if document is None:
        raise DocumentError("Open an image first.")
    model, depth = document.colorModel(), document.colorDepth()
    if (model, depth) != ("RGBA", "U8"):
        raise DocumentError(f"SpriteFit works on 8-bit RGB images; this one is {model} {depth}. "
                            "Convert it with Image > Convert Image Color Space (RGB/Alpha, 8-bit integer).")


def read_target(document, node=None) -> tuple[bytes, int, int]:
    """The target at the canvas size: the whole image, or one layer as it looks (its projection)."""
    check_document(document)
    width, height = document.width(), document.height()
    if node is None:
        data = bytes(document.pixelData(0, 0, width, height))
        label = "The image"
    else:
        data = bytes(node.projectionPixelData(0, 0, width, height))
        label = f"The target layer '{node.name()}'"
    if not has_pixels(data):
        raise DocumentError(f"{label} is fully transparent: there is nothing to reproduce.")
    return data, width, height


SIGNATURE_SIDE = 128   # the target is compared at this thumbnail size to notice strokes


def target_signature(document, node=None) -> bytes:
    """A digest of a small thumbnail of the target (the image, or one layer): cheap enough to
    compute on Krita's GUI thread ten times a second, and changed by any stroke."""
    image = (node or document).thumbnail(SIGNATURE_SIDE, SIGNATURE_SIDE)
    return hashlib.sha1(image.constBits().asstring(image.byteCount())).digest()


def real_nodes(nodes) -> list:
    """Layers the user can see in the Layers docker (Krita adds nameless helper nodes)."""
    return [node for node in nodes if node.type() != ""]


def read_sprite_layers(nodes) -> list[tuple[str, bytes, int, int]]:
    """(name, BGRA pixels, width, height) of each sprite layer, cropped to its painted bounds."""
    nodes = real_nodes(nodes)
    if not nodes:
        raise DocumentError("No sprite layers are selected: select the layers to use as sprites in the "
                            "Layers docker (Ctrl+click for several), or choose a built-in pack.")
    sprites = []
    for node in nodes:
        if node.type() not in SPRITE_LAYER_TYPES:
            kind = node.type().replace("layer", " layer")
            raise DocumentError(f"'{node.name()}' is a {kind}; sprites must be paint layers "
                                "(convert it, or select the paint layers inside the group).")
        bounds = node.bounds()
        width, height = bounds.width(), bounds.height()
        data = bytes(node.pixelData(bounds.x(), bounds.y(), width, height)) if width > 0 and height > 0 else b""
        if not has_pixels(data):
            raise DocumentError(f"The sprite layer '{node.name()}' is empty: paint something on it first.")
        sprites.append((node.name(), data, width, height))
    return sprites


def paint_layers(document) -> list:
    """Every paint layer of the document, top of the stack first (for the target picker)."""
    found = []

    def walk(node):
        for child in reversed(real_nodes(node.childNodes())):
            if child.type() == "paintlayer":
                found.append(child)
            walk(child)
    walk(document.rootNode())
    return found


def read_mask_layers(document) -> dict[str, tuple[bytes, int, int]]:
    """{"mask" | "keep_in" | "keep_out": (BGRA pixels at the canvas size, width, height)} of the
    paint layers named mask, keep-in or keep-out (hidden or not; hide them so they stay out of
    the target). Painted pixels are inside the mask."""
    width, height = document.width(), document.height()
    layers = [(node.name(), lambda node=node: bytes(node.projectionPixelData(0, 0, width, height)))
              for node in paint_layers(document)]
    try:
        return {key: (data, width, height) for key, data in mask_layers(layers).items()}
    except LayerError as exc:
        raise DocumentError(str(exc)) from None


def read_refit(document) -> tuple[dict, list]:
    """The last applied result's scene and, for each of its sprite layers in the top-most result
    group, (instance, dx, dy, locked): how far the user moved it and whether they locked it."""
    scene = bytes(document.annotation(SCENE_ANNOTATION))
    groups = [node for node in reversed(real_nodes(document.topLevelNodes()))
              if node.type() == "grouplayer" and node.name().startswith(RESULT_GROUP_PREFIX)]
    if not scene or not groups:
        raise DocumentError("Refit needs a SpriteFit result applied in this image: Run and Apply once first.")
    moves = []
    for node in real_nodes(groups[0].childNodes()):
        offset = node.position()    # the layers were written at their place with the layer at (0, 0)
        moves.append((instance_index(node.name()), offset.x(), offset.y(), node.locked()))
    return json.loads(scene), moves


def _solid(color, width: int, height: int) -> bytes:
    r, g, b = (max(0, min(255, round(c * 255))) for c in color)
    return bytes((b, g, r, 255)) * (width * height)


def apply_result(document, manifest: dict, patches) -> "GroupLayer":
    """Add the result as one group of paint layers (bottom first, as in the manifest) on top of
    the layer stack, in one undo step. `patches` yields (layer record, BGRA bytes)."""
    check_document(document)
    if (document.width(), document.height()) != (manifest["width"], manifest["height"]):
        raise DocumentError(f"The image is now {document.width()}x{document.height()} px, but the result was "
                            f"made for {manifest['width']}x{manifest['height']} px: run SpriteFit again.")
    layers = []
    if manifest.get("background") is not None:
        background = document.createNode("background", "paintlayer")
        background.setPixelData(_solid(manifest["background"], manifest["width"], manifest["height"]),
                                0, 0, manifest["width"], manifest["height"])
        layers.append(background)
    for record, data in patches:
        node = document.createNode(record["name"], "paintlayer")
        node.setPixelData(data, record["x"], record["y"], record["width"], record["height"])
        node.setOpacity(max(0, min(255, round(record["opacity"] * 255))))
        layers.append(node)
    group = document.createGroupLayer(f"{RESULT_GROUP_PREFIX}{len(manifest['layers'])} sprites)")
    group.setChildNodes(layers)
    document.rootNode().addChildNode(group, None)
    with open(os.path.join(manifest["folder"], manifest["scene"]), "rb") as f:
        document.setAnnotation(SCENE_ANNOTATION, "SpriteFit: the scene of the last result", f.read())
    document.waitForDone()
    document.refreshProjection()
    return group
