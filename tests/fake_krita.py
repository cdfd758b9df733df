"""A small stand-in for Krita's document API (libkis) with the behaviour the plugin relies on:
BGRA pixel devices, detached nodes, and an undo history where only `addChildNode` on an
attached node makes an entry (as measured on Krita 5.1.5, shared/hosts/HOSTS.md A.4)."""
from __future__ import annotations

import numpy as np


class Rect:
    def __init__(self, x=0, y=0, w=0, h=0):
        self._x, self._y, self._w, self._h = x, y, w, h

    def x(self): return self._x
    def y(self): return self._y
    def width(self): return self._w
    def height(self): return self._h


class Point:
    def __init__(self, x, y): self._x, self._y = x, y
    def x(self): return self._x
    def y(self): return self._y


class Image:
    """The part of QImage that the plugin reads from thumbnails."""

    def __init__(self, pixels: np.ndarray, w: int, h: int):
        rows = np.linspace(0, pixels.shape[0] - 1, min(h, pixels.shape[0])).astype(int)
        cols = np.linspace(0, pixels.shape[1] - 1, min(w, pixels.shape[1])).astype(int)
        self.data = np.ascontiguousarray(pixels[rows][:, cols]).tobytes()

    def byteCount(self): return len(self.data)
    def constBits(self): return self

    def asstring(self, size): return self.data[:size]


class Node:
    def __init__(self, document, name, node_type):
        self.document, self._name, self._type = document, name, node_type
        self.pixels = np.zeros((document.height(), document.width(), 4), np.uint8)   # BGRA
        self.children: list[Node] = []
        self.parent: Node | None = None
        self._opacity = 255
        self._position, self._locked = (0, 0), False

    def name(self): return self._name
    def type(self): return self._type
    def opacity(self): return self._opacity
    def setOpacity(self, value): self._opacity = value
    def childNodes(self): return list(self.children)
    def position(self): return Point(*self._position)
    def move(self, x, y): self._position = (x, y)
    def locked(self): return self._locked
    def setLocked(self, value): self._locked = value

    def bounds(self):
        rows, cols = np.nonzero(self.pixels[..., 3].any(1))[0], np.nonzero(self.pixels[..., 3].any(0))[0]
        if rows.size == 0:
            return Rect()
        return Rect(int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))

    def pixelData(self, x, y, w, h):
        return self.pixels[y:y + h, x:x + w].tobytes()

    def projectionPixelData(self, x, y, w, h):
        return self.pixelData(x, y, w, h)

    def thumbnail(self, w, h):
        return Image(self.pixels, w, h)

    def setPixelData(self, data, x, y, w, h):
        self.pixels[y:y + h, x:x + w] = np.frombuffer(bytes(data), np.uint8).reshape(h, w, 4)

    def setChildNodes(self, nodes):
        self.children = list(nodes)
        for node in nodes:
            node.parent = self

    def addChildNode(self, child, above):
        self.children.append(child)
        child.parent = self
        if self.attached():
            self.document.undo_entries += 1
        return True

    def attached(self):
        node = self
        while node.parent is not None:
            node = node.parent
        return node is self.document.root


class Document:
    def __init__(self, width=32, height=24, model="RGBA", depth="U8"):
        self._size, self._model, self._depth = (width, height), model, depth
        self.root = Node(self, "root", "grouplayer")
        self.undo_entries = 0
        self.active = None
        self.annotations: dict[str, bytes] = {}

    def width(self): return self._size[0]
    def height(self): return self._size[1]
    def colorModel(self): return self._model
    def colorDepth(self): return self._depth
    def rootNode(self): return self.root
    def topLevelNodes(self): return self.root.childNodes()
    def annotation(self, kind): return self.annotations.get(kind, b"")
    def setAnnotation(self, kind, _description, data): self.annotations[kind] = bytes(data)
    def activeNode(self): return self.active
    def createNode(self, name, node_type): return Node(self, name, node_type)
    def createGroupLayer(self, name): return Node(self, name, "grouplayer")
    def waitForDone(self): pass
    def refreshProjection(self): pass

    def thumbnail(self, w, h):
        return Image(self.composite(), w, h)

    def pixelData(self, x, y, w, h):
        """The projection: every visible paint layer composited, normal blending."""
        return self.composite()[y:y + h, x:x + w].tobytes()

    def composite(self) -> np.ndarray:
        out = np.zeros((self.height(), self.width(), 4))

        def paint(node, opacity):
            for child in node.children:
                if child.type() == "grouplayer":
                    paint(child, opacity * child.opacity() / 255)
                    continue
                alpha = child.pixels[..., 3:] / 255 * opacity * child.opacity() / 255
                out[..., :3] = child.pixels[..., :3] * alpha + out[..., :3] * (1 - alpha)
                out[..., 3:] = 255 * alpha + out[..., 3:] * (1 - alpha)
        paint(self.root, 1.0)
        return np.round(out).astype(np.uint8)

    def add_layer(self, name, bgra: np.ndarray, node_type="paintlayer"):
        node = self.createNode(name, node_type)
        node.pixels[:] = bgra
        self.root.children.append(node)
        node.parent = self.root
        return node
