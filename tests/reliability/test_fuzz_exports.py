"""Exports of degenerate scenes (no instance, everything off the canvas, sprites of 1/1000 px or
far larger than the canvas, zero opacity, a 1-pixel canvas): each format is written whole and
reopens, or the export is refused with a clear error, and nothing half-written is left."""
from __future__ import annotations

import os

import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from psd_tools import PSDImage

from spritefit.errors import SpriteFitError
from spritefit.export import DEFAULT_NAMES, export_scene
from spritefit.scene import Scene
from spritefit.sprites import load_sprites

SPRITES = load_sprites("shapes")[:3]
finite = lambda low, high: st.floats(low, high, allow_nan=False, allow_infinity=False)


@st.composite
def degenerate_scenes(draw):
    n = draw(st.integers(0, 6))
    width, height = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    column = lambda low, high: np.asarray(draw(st.lists(finite(low, high), min_size=n, max_size=n)), np.float32)
    xy = np.stack([column(-500, 500), column(-500, 500)], axis=1) if n else np.zeros((0, 2))
    color = np.asarray(draw(st.lists(st.tuples(finite(0, 1), finite(0, 1), finite(0, 1)), min_size=n, max_size=n)))
    return Scene(width, height, SPRITES, xy=xy, size=column(1e-3, 1e4), theta=column(-1e3, 1e3),
                 color=color.reshape(n, 3), opacity=column(0, 1), sprite=np.asarray(draw(st.lists(
                     st.integers(0, 2), min_size=n, max_size=n)), np.int64), mix=column(0, 1),
                 color_mode=draw(st.sampled_from(["tint", "original", "mix", "multiply"])),
                 background=draw(st.sampled_from([(1.0, 1.0, 1.0), None])))


@settings(max_examples=int(os.environ.get("SPRITEFIT_FUZZ_CASES", 150)), deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scene=degenerate_scenes())
def test_degenerate_scenes_export_whole_or_not_at_all(count_case, tmp_path_factory, scene):
    count_case("PSD/SVG/PNG/JSON exports")
    folder = tmp_path_factory.mktemp("export")
    outputs = {fmt: folder / name for fmt, name in DEFAULT_NAMES.items()}
    try:
        export_scene(scene, outputs)
    except SpriteFitError:
        assert not any(p.exists() for p in outputs.values())
        return
    assert sorted(p.name for p in folder.iterdir()) == sorted(DEFAULT_NAMES.values())   # no temporary files left
    assert Image.open(outputs["png"]).size == (scene.width, scene.height)
    assert PSDImage.open(outputs["psd"]).size == (scene.width, scene.height)
    assert b"<svg" in outputs["svg"].read_bytes()[:400]
    assert len(Scene.from_dict(json.loads(outputs["json"].read_text()))) == len(scene)
