"""Stand-ins for the parts of GIMP 3's GObject API (`gi.repository.Gimp`, `Gegl`) that the
plug-in uses, so its logic runs without GIMP: images with layers and offsets, Gegl buffers of
R'G'B'A u8 bytes, undo groups and frozen layer updates that must be balanced."""
from __future__ import annotations

import sys
import types
from enum import Enum

import numpy as np


class ImageBaseType(Enum):
    RGB = 0
    GRAY = 1
    INDEXED = 2


class Rectangle:
    def __init__(self, x, y, w, h):
        self.x, self.y, self.w, self.h = x, y, w, h

    @classmethod
    def new(cls, x, y, w, h):
        return cls(x, y, w, h)


class Buffer:
    def __init__(self, layer):
        self.layer = layer

    def get(self, rect, _scale, babl_format, _abyss):
        assert babl_format == "R'G'B'A u8"
        out = np.zeros((rect.h, rect.w, 4), np.uint8)
        pixels = self.layer.pixels
        for y in range(rect.h):
            for x in range(rect.w):
                sx, sy = rect.x + x, rect.y + y
                if 0 <= sx < pixels.shape[1] and 0 <= sy < pixels.shape[0]:
                    out[y, x] = pixels[sy, sx]
        return out.tobytes()

    def set(self, rect, babl_format, data):
        assert babl_format == "R'G'B'A u8"
        self.layer.pixels[rect.y:rect.y + rect.h, rect.x:rect.x + rect.w] = \
            np.frombuffer(bytes(data), np.uint8).reshape(rect.h, rect.w, 4)

    def flush(self):
        pass


class Layer:
    _ids = iter(range(1, 1_000_000))

    def __init__(self, image, name, width, height, opacity=100.0, group=False):
        self.image, self.name, self.opacity, self.group = image, name, opacity, group
        self.pixels = np.zeros((height, width, 4), np.uint8)
        self.offsets, self.children, self.id = (0, 0), [], next(Layer._ids)
        self.lock_position = self.lock_content = False

    @classmethod
    def new(cls, image, name, width, height, _type, opacity, _mode):
        return cls(image, name, width, height, opacity)

    def get_id(self): return self.id
    def get_tattoo(self): return self.id
    def get_name(self): return self.name
    def get_width(self): return self.pixels.shape[1]
    def get_height(self): return self.pixels.shape[0]
    def get_offsets(self): return True, *self.offsets
    def set_offsets(self, x, y): self.offsets = (x, y)
    def get_buffer(self): return Buffer(self)
    def is_group(self): return self.group
    def get_children(self): return list(self.children)
    def get_lock_position(self): return self.lock_position
    def get_lock_content(self): return self.lock_content
    def update(self, *_args): pass


class GroupLayer(Layer):
    @classmethod
    def new(cls, image, name):
        return cls(image, name, 0, 0, group=True)


class LayerMask(Layer):
    pass


class Image:
    def __init__(self, width, height, base_type=ImageBaseType.RGB):
        self.width, self.height, self.base_type = width, height, base_type
        self.layers: list[Layer] = []
        self.undo_depth = self.frozen = 0
        self.undo_groups = 0
        self.parasites = {}

    def get_width(self): return self.width
    def get_height(self): return self.height
    def get_base_type(self): return self.base_type
    def get_layers(self): return list(self.layers)

    def insert_layer(self, layer, parent, position):
        (parent.children if parent is not None else self.layers).insert(position, layer)

    def undo_group_start(self):
        self.undo_depth += 1
        self.undo_groups += 1

    def undo_group_end(self): self.undo_depth -= 1
    def freeze_layers(self): self.frozen += 1
    def thaw_layers(self): self.frozen -= 1
    def attach_parasite(self, parasite): self.parasites[parasite.name] = parasite.data

    def get_parasite(self, name):
        return Parasite(name, 0, self.parasites[name]) if name in self.parasites else None


class Parasite:
    def __init__(self, name, _flags, data):
        self.name, self.data = name, data

    def get_data(self): return self.data

    @classmethod
    def new(cls, name, flags, data):
        return cls(name, flags, data)


def install() -> types.ModuleType:
    """Put fake `gi` and `gi.repository` modules in sys.modules; returns the fake Gimp module."""
    gimp = types.ModuleType("Gimp")
    for item in (ImageBaseType, Layer, GroupLayer, LayerMask, Image, Parasite):
        setattr(gimp, item.__name__, item)
    gimp.ImageType = types.SimpleNamespace(RGBA_IMAGE=0)
    gimp.LayerMode = types.SimpleNamespace(NORMAL=0, NORMAL_LEGACY=1)
    gimp.PARASITE_PERSISTENT = 1
    gimp.PlugIn = type("PlugIn", (), {})
    gimp.progress_updates = []
    gimp.progress_update = gimp.progress_updates.append
    gimp.progress_init = gimp.progress_set_text = gimp.progress_end = lambda *a: None
    gegl = types.ModuleType("Gegl")
    gegl.Rectangle = Rectangle
    gegl.AbyssPolicy = types.SimpleNamespace(NONE=0, CLAMP=1)
    repository = types.ModuleType("gi.repository")
    repository.Gimp, repository.Gegl = gimp, gegl
    repository.GLib = types.SimpleNamespace(Error=Exception)
    repository.GObject = types.SimpleNamespace(ParamFlags=types.SimpleNamespace(READWRITE=3))
    gi = types.ModuleType("gi")
    gi.require_version = lambda *_: None
    gi.repository = repository
    sys.modules.update({"gi": gi, "gi.repository": repository})
    return gimp
