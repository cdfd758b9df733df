"""Scene: the sprites and every placed instance, in canvas units; versioned JSON.

The JSON format ("spritefit-scene", version 1) stores parameters as they are meant (pixels,
radians, colours in [0, 1]) so other programs can read it, and float32 values written with
Python's shortest repr so that save -> load is exact.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import SceneFormatError, SpriteFitError
from .files import write_bytes_atomic
from .render.common import COLOR_MODES
from .sprites import Sprite, load_builtin_sprite, sprite_from_bytes

FORMAT = "spritefit-scene"
VERSION = 1
MAX_INSTANCES = 1_000_000
MAX_SPRITES = 100_000
MAX_CANVAS = 65_536


@dataclass
class Scene:
    width: int
    height: int
    sprites: list[Sprite]
    xy: np.ndarray                      # (N, 2) centre, canvas pixels, y down
    size: np.ndarray                    # (N,) half the sprite's longer side, canvas pixels
    theta: np.ndarray                   # (N,) radians, counter-clockwise
    color: np.ndarray                   # (N, 3) tint in [0, 1]
    opacity: np.ndarray                 # (N,) in [0, 1]
    sprite: np.ndarray                  # (N,) index into `sprites`
    mix: np.ndarray | None = None       # (N,) weight of the sprite's own colour ("mix" mode)
    frozen: np.ndarray | None = None    # (N,) bool, kept as is when fitting
    edited: np.ndarray | None = None    # (N,) bool, changed since SpriteFit wrote the file (not saved)
    color_mode: str = "tint"
    background: tuple[float, float, float] | None = (1.0, 1.0, 1.0)   # None: transparent

    def __post_init__(self):
        n = len(self.xy)
        self.xy = np.asarray(self.xy, np.float32).reshape(n, 2)
        for name in ("size", "theta", "opacity"):
            setattr(self, name, np.asarray(getattr(self, name), np.float32).reshape(n))
        self.color = np.asarray(self.color, np.float32).reshape(n, 3)
        self.sprite = np.asarray(self.sprite, np.int64).reshape(n)
        self.mix = np.full(n, 0.5, np.float32) if self.mix is None else np.asarray(self.mix, np.float32).reshape(n)
        self.frozen = np.zeros(n, bool) if self.frozen is None else np.asarray(self.frozen, bool).reshape(n)
        self.edited = np.zeros(n, bool) if self.edited is None else np.asarray(self.edited, bool).reshape(n)
        if self.background is not None:
            self.background = tuple(float(c) for c in self.background)

    def __len__(self) -> int:
        return len(self.xy)

    # -- JSON -----------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        columns = zip(self.sprite.tolist(), self.xy.tolist(), self.size.tolist(), self.theta.tolist(),
                      self.color.tolist(), self.mix.tolist(), self.opacity.tolist(), self.frozen.tolist(),
                      self.instance_digests())
        return {
            "format": FORMAT,
            "version": VERSION,
            "canvas": {"width": self.width, "height": self.height,
                       "background": None if self.background is None else list(self.background)},
            "color_mode": self.color_mode,
            "sprites": [_sprite_record(s) for s in self.sprites],
            "instances": [{"sprite": sprite, "x": x, "y": y, "size": size, "angle": angle, "color": color, "mix": mix,
                           "opacity": opacity, "frozen": frozen, "fitted": fitted}
                          for sprite, (x, y), size, angle, color, mix, opacity, frozen, fitted in columns],
        }

    def lock(self, which: str) -> int:
        """Freeze instances so that a fit starting from this scene keeps them exactly: "all",
        "all-edited" (those changed since SpriteFit wrote the file), "none", or ids and ranges
        such as "0,4,10-19". Returns how many are frozen now."""
        self.frozen = self.frozen | self.selection(which)
        return int(self.frozen.sum())

    def selection(self, which: str) -> np.ndarray:
        n, text = len(self), which.strip()
        if text in ("all", "none", "all-edited"):
            return {"all": np.ones(n, bool), "none": np.zeros(n, bool), "all-edited": self.edited.copy()}[text]
        chosen = np.zeros(n, bool)
        for part in filter(None, (p.strip() for p in text.split(","))):
            try:
                first, _, last = part.partition("-")
                first, last = int(first), int(last or first)
            except ValueError:
                raise SpriteFitError(f"cannot read {part!r} in the instances to lock: use all, all-edited, none, "
                                     f"or ids and ranges such as 0,4,10-19") from None
            if not 0 <= first <= last < n:
                raise SpriteFitError(f"instances {part} do not exist: the scene has instances 0..{n - 1}")
            chosen[first:last + 1] = True
        return chosen

    def instance_digests(self) -> list[str]:
        """A short hash of each instance's parameters. Saved as "fitted" with each instance, it
        tells which instances someone changed after SpriteFit wrote the file (`--lock
        all-edited`): the SHA-1 of the instance's sprite (int64), x, y, size, angle, colour, mix
        and opacity (float32), in that order."""
        n = len(self)
        columns = [(self.sprite, np.int64), (self.xy, np.float32), (self.size, np.float32), (self.theta, np.float32),
                   (self.color, np.float32), (self.mix, np.float32), (self.opacity, np.float32)]
        as_bytes = lambda values, dtype: np.ascontiguousarray(values, dtype).reshape(n, math.prod(values.shape[1:]))
        rows = np.concatenate([as_bytes(values, dtype).view(np.uint8) for values, dtype in columns], axis=1)
        return [hashlib.sha1(row).hexdigest()[:12] for row in rows]

    def save(self, path: str | os.PathLike) -> None:
        write_bytes_atomic(path, self.to_json().encode("utf-8"))

    def to_json(self) -> str:
        """The scene file's text: indented, with one line per sprite and per instance. Those
        lines go through json's C encoder, which an indented dump never uses (the Python one
        takes seconds for 50,000 instances)."""
        data = self.to_dict()
        lists = {key: data.pop(key) for key in ("sprites", "instances")}
        head = json.dumps(data, indent=1, allow_nan=False)
        parts = [head[:-2]]   # without the closing "\n}"
        for key, items in lists.items():
            parts.append(f',\n "{key}": [\n  {_one_per_line(key, items)}\n ]' if items else f',\n "{key}": []')
        return "".join(parts) + "\n}"

    @classmethod
    def load(cls, path: str | os.PathLike, allow_outside: bool = False) -> "Scene":
        """Read and check a scene file. Sprite files it links must lie in its folder (or below)
        unless allow_outside: a scene from elsewhere cannot make SpriteFit read any file."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise SceneFormatError(f"scene file not found: {path}") from None
        # Every instance is a JSON object: counting braces refuses a giant file before parsing
        # it would take gigabytes of memory.
        if raw.count(b"{") > MAX_INSTANCES + MAX_SPRITES + 16:
            raise SceneFormatError(f"{path}: more than {MAX_INSTANCES:,} instances (the limit)")
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SceneFormatError(f"{path} is not a JSON scene file: {exc}") from None
        return cls.from_dict(data, base_dir=path.parent, label=str(path), allow_outside=allow_outside)

    @classmethod
    def from_dict(cls, data, base_dir: Path = Path("."), label: str = "scene", allow_outside: bool = False) -> "Scene":
        reader = _SceneReader(label, base_dir, allow_outside)
        return reader.scene(data)


def _one_per_line(key: str, items: list[dict]) -> str:
    """The JSON of each item, joined by ",\n  ". Instances hold only numbers, booleans and hex
    digests, so one call of the encoder for them all (per-call set-up was a fifth of the time)
    can be split where one ends and the next begins; sprites, with their names, one call each."""
    if key == "instances":
        return json.dumps(items, allow_nan=False)[1:-1].replace("}, {", "},\n  {")
    return ",\n  ".join(json.dumps(item, allow_nan=False) for item in items)


def _sprite_record(sprite: Sprite) -> dict:
    record = {"name": sprite.name, "sha256": sprite.sha256}
    if "builtin" in sprite.source:
        record["builtin"] = sprite.source["builtin"]
    else:
        record["data"] = base64.b64encode(sprite.data).decode("ascii")
    if sprite.alpha != "keep":      # how its transparency was made from the file (sprite_alpha)
        record["alpha"] = sprite.alpha
    return record


def _reject_constant(name: str):
    raise SceneFormatError(f"non-finite number {name} in scene file")


class _SceneReader:
    """Validates a scene dictionary field by field, naming the first problem found."""

    def __init__(self, label: str, base_dir: Path, allow_outside: bool = False):
        self.label, self.allow_outside = label, allow_outside
        self.base_dir = Path(base_dir).resolve()

    def fail(self, message: str):
        raise SceneFormatError(f"{self.label}: {message}")

    def field(self, record: dict, key: str, where: str):
        if not isinstance(record, dict) or key not in record:
            self.fail(f"missing field {key!r} in {where}")
        return record[key]

    def number(self, value, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(f"{where} must be a number, not {type(value).__name__}")
        if not math.isfinite(value):
            self.fail(f"{where} is not a finite number")
        return float(value)

    def scene(self, data) -> Scene:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            self.fail(f"not a SpriteFit scene (expected \"format\": \"{FORMAT}\")")
        version = data.get("version")
        if version != VERSION:
            self.fail(f"scene format version {version!r} is not supported (this SpriteFit reads version {VERSION})")
        canvas = self.field(data, "canvas", "the scene")
        width, height = (self.field(canvas, k, "canvas") for k in ("width", "height"))
        for name, value in (("width", width), ("height", height)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CANVAS:
                self.fail(f"canvas {name} must be an integer from 1 to {MAX_CANVAS}, not {value!r}")
        background = canvas.get("background")
        if background is not None:
            background = self.color(background, "canvas background")
        mode = data.get("color_mode", "tint")
        if mode not in COLOR_MODES:
            self.fail(f"unknown color_mode {mode!r}")
        sprite_records = self.field(data, "sprites", "the scene")
        instances = self.field(data, "instances", "the scene")
        if not isinstance(sprite_records, list) or not sprite_records:
            self.fail("the sprite table must be a non-empty list")
        if len(sprite_records) > MAX_SPRITES:
            self.fail(f"{len(sprite_records):,} sprites is more than the limit of {MAX_SPRITES:,}")
        if not isinstance(instances, list):
            self.fail("instances must be a list")
        if len(instances) > MAX_INSTANCES:
            self.fail(f"{len(instances):,} instances: more than {MAX_INSTANCES:,} instances (the limit)")
        sprites = [self.sprite(r, i) for i, r in enumerate(sprite_records)]
        columns = self.instances(instances, len(sprites))
        fitted, marked = columns.pop("fitted"), columns.pop("marked_edited")
        scene = Scene(width, height, sprites, color_mode=mode, background=background, **columns)
        changed = [f is not None and f != digest for f, digest in zip(fitted, scene.instance_digests())]
        scene.edited = marked | np.array(changed, bool).reshape(len(scene))
        return scene

    def color(self, value, where: str) -> tuple[float, float, float]:
        if not isinstance(value, list) or len(value) != 3:
            self.fail(f"{where} must be a list of 3 numbers")
        return tuple(self.number(c, where) for c in value)

    def sprite(self, record, index: int) -> Sprite:
        where = f"sprite {index}"
        name = str(self.field(record, "name", where))
        try:
            return self._sprite(record, where, name)
        except SceneFormatError:
            raise
        except SpriteFitError as exc:   # a bad built-in name, a damaged or oversized image
            self.fail(f"{where} ({name}): {exc}")

    def _sprite(self, record, where: str, name: str) -> Sprite:
        if "builtin" in record:
            sprite = load_builtin_sprite(str(record["builtin"]))
        elif "data" in record:
            try:
                raw = base64.b64decode(record["data"], validate=True)
            except (binascii.Error, TypeError, ValueError):
                self.fail(f"{where} ({name}): embedded data is not valid base64")
            sprite = self.decoded(name, raw, {"path": name}, self.alpha(record, where))
        elif "path" in record:
            sprite = self.decoded(name, self.linked_file(record["path"], where), {"path": record["path"]},
                                  self.alpha(record, where))
        else:
            self.fail(f"{where} ({name}) has no 'builtin', 'data' or 'path'")
        expected = record.get("sha256")
        if expected is not None and expected != hashlib.sha256(sprite.data).hexdigest():
            self.fail(f"{where} ({name}) does not match its sha256: the sprite file has changed")
        sprite.name = name
        return sprite

    def alpha(self, record: dict, where: str) -> str:
        mode = record.get("alpha", "keep")
        if mode not in ("keep", "key", "luminance"):
            self.fail(f"{where} alpha must be keep, key or luminance, not {mode!r}")
        return mode

    def decoded(self, name: str, raw: bytes, source: dict, alpha: str = "keep") -> Sprite:
        sprite = sprite_from_bytes(name, raw, source, alpha)
        if sprite is None:
            self.fail(f"sprite {name!r} has no visible pixel")
        return sprite

    def linked_file(self, relative, where: str) -> bytes:
        path = (self.base_dir / str(relative)).resolve()
        if self.base_dir not in path.parents and not self.allow_outside:
            self.fail(f"{where} path {relative!r} points outside the scene's folder (--allow-outside to permit)")
        if not path.is_file():
            self.fail(f"{where} file not found: {path}")
        return path.read_bytes()

    def instances(self, records: list, num_sprites: int) -> dict:
        n = len(records)
        cols = {"xy": np.zeros((n, 2)), "size": np.zeros(n), "theta": np.zeros(n), "color": np.zeros((n, 3)),
                "mix": np.zeros(n), "opacity": np.zeros(n), "sprite": np.zeros(n, np.int64),
                "frozen": np.zeros(n, bool), "fitted": [None] * n, "marked_edited": np.zeros(n, bool)}
        for i, rec in enumerate(records):
            where = f"instance {i}"
            sprite = self.field(rec, "sprite", where)
            if isinstance(sprite, bool) or not isinstance(sprite, int) or not 0 <= sprite < num_sprites:
                self.fail(f"{where}: sprite index {sprite!r} is not in the sprite table (0..{num_sprites - 1})")
            cols["sprite"][i] = sprite
            cols["xy"][i] = [self.number(self.field(rec, k, where), f"{where} {k}") for k in ("x", "y")]
            size = self.number(self.field(rec, "size", where), f"{where} size")
            if size <= 0:
                self.fail(f"{where}: size must be positive, not {size}")
            cols["size"][i] = size
            cols["theta"][i] = self.number(rec.get("angle", 0.0), f"{where} angle")
            cols["color"][i] = self.color(rec.get("color", [1.0, 1.0, 1.0]), f"{where} color")
            cols["mix"][i] = self.number(rec.get("mix", 0.5), f"{where} mix")
            cols["opacity"][i] = self.number(rec.get("opacity", 1.0), f"{where} opacity")
            cols["frozen"][i] = bool(rec.get("frozen", False))
            # "edited": true marks an instance as changed; a "fitted" hash that no longer matches does too
            cols["marked_edited"][i] = bool(rec.get("edited", False))
            fitted = rec.get("fitted")
            cols["fitted"][i] = fitted if isinstance(fitted, str) else None
        return cols
