"""Fuzzed loaders and parsers: every input ends in a correct result or a clear, typed error
(never another exception, a crash or a hang)."""
from __future__ import annotations

import os

import io
import json
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from spritefit.errors import InputImageError, SceneFormatError, SpriteFitError
from spritefit.images import load_rgba
from spritefit.scene import Scene
from spritefit.sprites import load_sprites
from spritefit.worker import Channel, Worker
from spritefit.worker.job import parse_run

# Derandomized: CI tries the same cases every run, so a red run is reproducible, not luck.
FUZZ = settings(max_examples=int(os.environ.get("SPRITEFIT_FUZZ_CASES", 300)), deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "F"]
FORMATS = ["PNG", "GIF", "WEBP", "JPEG", "BMP", "TIFF"]


def encoded(mode: str, fmt: str, width: int, height: int, seed: int, frames: int) -> bytes:
    rng = np.random.default_rng(seed)
    base = Image.fromarray(rng.integers(0, 256, (height, width, 4), dtype=np.uint8), "RGBA")
    picture = base.convert(mode) if mode not in ("I;16", "I", "F") else base.convert("L").convert(mode)
    buffer = io.BytesIO()
    try:
        extra = {"save_all": True, "append_images": [picture] * (frames - 1)} if frames > 1 and fmt in ("GIF", "PNG", "WEBP") else {}
        picture.save(buffer, format=fmt, **extra)
    except (OSError, ValueError, KeyError):
        picture.convert("RGB").save(buffer, format="PNG")   # a mode this format cannot hold
    return buffer.getvalue()


def check_image(data: bytes) -> None:
    try:
        rgba = load_rgba(data)
    except InputImageError:
        return
    assert rgba.dtype == np.float32 and rgba.ndim == 3 and rgba.shape[2] == 4
    assert rgba.shape[0] > 0 and rgba.shape[1] > 0 and np.isfinite(rgba).all()
    assert rgba.min() >= 0 and rgba.max() <= 1


@FUZZ
@given(mode=st.sampled_from(MODES), fmt=st.sampled_from(FORMATS), width=st.integers(1, 40), height=st.integers(1, 40),
       seed=st.integers(0, 2**16), frames=st.integers(1, 3), cut=st.floats(0, 1), flips=st.lists(st.integers(0, 10**6), max_size=4))
def test_images_in_every_mode_whole_truncated_or_damaged(count_case, mode, fmt, width, height, seed, frames, cut, flips):
    count_case("image files")
    data = bytearray(encoded(mode, fmt, width, height, seed, frames))
    check_image(bytes(data))
    for position in flips:
        data[position % len(data)] ^= 0x5A
    check_image(bytes(data[:max(0, int(len(data) * cut))]))


@FUZZ
@given(data=st.binary(max_size=2000))
def test_random_bytes_as_an_image(count_case, data):
    count_case("random bytes as image")
    check_image(data)


def png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)) + chunk(b"IEND", b"")


def test_decompression_bombs_are_refused_before_decoding():
    with pytest.raises(InputImageError, match="too large"):
        load_rgba(png_header_only(60_000, 60_000))
    with pytest.raises(InputImageError):
        load_rgba(png_header_only(0, 10))


def test_a_file_with_the_wrong_extension_loads_by_its_content(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(encoded("RGBA", "PNG", 5, 4, 1, 1))
    assert load_rgba(path).shape == (4, 5, 4)


@pytest.fixture(scope="module")
def valid_scene_dict():
    rng = np.random.default_rng(0)
    sprites = load_sprites("shapes")[:3]
    n = 4
    scene = Scene(32, 24, sprites, xy=rng.uniform(0, 30, (n, 2)), size=rng.uniform(1, 9, n), theta=rng.uniform(-3, 3, n),
                  color=rng.random((n, 3)), opacity=rng.random(n), sprite=rng.integers(0, 3, n))
    return scene.to_dict()


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
                           | st.text(max_size=30), lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)


def mutate(data, path: list, value):
    """Replace (or delete, when value is ...) the item at a path of keys/indices chosen by the fuzzer."""
    node = data
    for step in path[:-1]:
        if isinstance(node, dict) and node:
            node = node[sorted(node)[step % len(node)]]
        elif isinstance(node, list) and node:
            node = node[step % len(node)]
    if isinstance(node, dict) and node:
        key = sorted(node)[path[-1] % len(node)]
        if value is ...:
            del node[key]
        else:
            node[key] = value
    elif isinstance(node, list) and node:
        node[path[-1] % len(node)] = None if value is ... else value


@FUZZ
@given(mutations=st.lists(st.tuples(st.lists(st.integers(0, 50), min_size=1, max_size=4),
                                    st.one_of(st.just(...), JSON_VALUES)), min_size=1, max_size=4))
def test_mutated_scene_files(count_case, valid_scene_dict, mutations):
    count_case("scene JSON mutations")
    data = json.loads(json.dumps(valid_scene_dict))
    for path, value in mutations:
        mutate(data, path, value)
    try:
        scene = Scene.from_dict(data)
    except SceneFormatError:
        return
    assert scene.width > 0 and scene.height > 0 and len(scene.sprites) > 0
    assert np.isfinite(scene.xy).all() and np.isfinite(scene.size).all()


@FUZZ
@given(data=st.binary(max_size=400))
def test_scene_files_of_random_bytes(count_case, tmp_path_factory, data):
    count_case("scene files of random bytes")
    path = tmp_path_factory.mktemp("scene") / "scene.json"
    path.write_bytes(data)
    with pytest.raises(SceneFormatError):
        Scene.load(path)


class Collect:
    def __init__(self):
        self.events = []

    def write(self, line):
        self.events.append(json.loads(line))

    def flush(self):
        pass


@FUZZ
@given(request=st.one_of(JSON_VALUES, st.dictionaries(st.sampled_from(["op", "job", "dir", "target", "sprites",
                                                                       "options", "output"]), JSON_VALUES)),
       op=st.sampled_from(["run", "cancel", "ping", "shutdown", "fly", None]))
def test_worker_requests(count_case, tmp_path_factory, request, op):
    """Random requests through the worker's parser and the run request's validation."""
    count_case("worker requests")
    if isinstance(request, dict) and op is not None:
        request["op"] = op
    worker = Worker(Channel(Collect()))
    parsed = worker._parse(json.dumps(request) + "\n")
    if parsed is None:
        assert worker.channel.stream.events[-1]["kind"] == "protocol"
        return
    if parsed["op"] == "run":
        parsed["dir"] = str(tmp_path_factory.mktemp("job")) if not isinstance(parsed.get("dir"), str) else parsed["dir"]
        try:
            parse_run(parsed)
        except SpriteFitError:
            pass


@FUZZ
@given(line=st.text(max_size=300))
def test_worker_request_lines_of_random_text(count_case, line):
    count_case("worker request lines")
    worker = Worker(Channel(Collect()))
    parsed = worker._parse(line.replace("\n", " ") + "\n")
    assert parsed is not None or worker.channel.stream.events[-1]["event"] == "error"
