"""Scene JSON: exact round trip and clear errors for bad files."""
import json

import numpy as np
import pytest

from conftest import random_sprite
from spritefit.errors import SceneFormatError
from spritefit.scene import Scene
from spritefit.sprites import load_sprites


def sample_scene(n=7, seed=0) -> Scene:
    rng = np.random.default_rng(seed)
    sprites = load_sprites("leaves")[:2] + [random_sprite(4, name="mine")]
    return Scene(40, 30, sprites, xy=rng.random((n, 2)) * 40, size=rng.random(n) * 9 + 0.5,
                 theta=rng.normal(size=n), color=rng.random((n, 3)), opacity=rng.random(n),
                 sprite=rng.integers(0, 3, n), mix=rng.random(n), frozen=rng.random(n) > 0.5,
                 color_mode="mix", background=(0.25, 0.5, 1.0))


def test_round_trip_is_exact(tmp_path):
    scene = sample_scene()
    scene.save(tmp_path / "scene.json")
    again = Scene.load(tmp_path / "scene.json")
    for name in ("xy", "size", "theta", "color", "opacity", "sprite", "mix", "frozen"):
        assert np.array_equal(getattr(scene, name), getattr(again, name)), name
    assert (again.width, again.height, again.color_mode, again.background) == (40, 30, "mix", (0.25, 0.5, 1.0))
    assert [s.sha256 for s in again.sprites] == [s.sha256 for s in scene.sprites]
    assert np.array_equal(again.sprites[2].rgba, scene.sprites[2].rgba)
    again.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_text() == (tmp_path / "scene.json").read_text()


def test_format_records_builtin_and_embedded_sprites():
    data = sample_scene().to_dict()
    assert data["format"] == "spritefit-scene" and data["version"] == 1
    assert data["sprites"][0]["builtin"].startswith("leaves/") and "data" in data["sprites"][2]
    assert set(data["instances"][0]) >= {"sprite", "x", "y", "size", "angle", "color", "opacity"}


def test_file_is_the_dict_with_a_line_per_sprite_and_instance(tmp_path):
    for n in (7, 0):
        scene = sample_scene(n=n)
        text = scene.to_json()
        assert json.loads(text) == json.loads(json.dumps(scene.to_dict()))
        lines = text.splitlines()
        assert sum(line.startswith('  {"sprite": ') for line in lines) == n
        assert sum(line.startswith('  {"name": ') for line in lines) == len(scene.sprites)


def test_instances_edited_after_saving_are_told_by_their_digest(tmp_path):
    sample_scene().save(tmp_path / "scene.json")
    data = json.loads((tmp_path / "scene.json").read_text())
    data["instances"][3]["x"] += 1.0
    data["instances"][5]["sprite"] = (data["instances"][5]["sprite"] + 1) % 3
    (tmp_path / "edited.json").write_text(json.dumps(data))
    assert np.flatnonzero(Scene.load(tmp_path / "edited.json").edited).tolist() == [3, 5]
    assert not Scene.load(tmp_path / "scene.json").edited.any()


def mutated(tmp_path, change):
    data = sample_scene().to_dict()
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(version=2), "version 2 is not supported"),
    (lambda d: d.update(format="other"), "not a SpriteFit scene"),
    (lambda d: d["instances"][0].pop("x"), "missing field 'x' in instance 0"),
    (lambda d: d["instances"][1].update(sprite=9), "instance 1: sprite index 9"),
    (lambda d: d["instances"][0].update(size=-1), "size must be positive"),
    (lambda d: d["canvas"].update(width=0), "canvas width"),
    (lambda d: d["sprites"][2].update(data="!!"), "not valid base64"),
    (lambda d: d["sprites"][2].update(sha256="0" * 64), "does not match its sha256"),
    (lambda d: d["sprites"].__setitem__(2, {"name": "x", "path": "../../etc/passwd"}), "outside the scene's folder"),
    (lambda d: d["sprites"].__setitem__(2, {"name": "x", "path": "missing.png"}), "file not found"),
    (lambda d: d["sprites"].__setitem__(0, {"name": "x", "builtin": None}), r"sprite 0 \(x\): unknown built-in sprite 'None'"),
    (lambda d: d["sprites"][2].update(data="aGVsbG8="), r"sprite 2 \(mine\): sprite 'mine' is not an image"),
])
def test_bad_scene_files_give_clear_errors(tmp_path, change, message):
    with pytest.raises(SceneFormatError, match=message):
        Scene.load(mutated(tmp_path, change))


def test_non_finite_numbers_and_broken_json(tmp_path):
    path = tmp_path / "nan.json"
    path.write_text(json.dumps(sample_scene().to_dict()).replace('"x": ', '"x": NaN, "ignored": ', 1))
    with pytest.raises(SceneFormatError, match="non-finite"):
        Scene.load(path)
    path.write_text("{not json")
    with pytest.raises(SceneFormatError, match="not a JSON scene"):
        Scene.load(path)


def test_linked_sprites_outside_the_scene_folder_need_allow_outside(tmp_path):
    from spritefit.sprites import PACKS_DIR
    scene = Scene(8, 8, load_sprites("shapes")[:1], xy=[[4, 4]], size=[3], theta=[0], color=[[1, 0, 0]],
                  opacity=[1], sprite=[0])
    data = scene.to_dict()
    data["sprites"][0] = {"name": "circle", "path": str(PACKS_DIR / "shapes" / "circle.png")}
    (tmp_path / "scene.json").write_text(json.dumps(data))
    with pytest.raises(SceneFormatError, match="outside the scene's folder"):
        Scene.load(tmp_path / "scene.json")
    assert len(Scene.load(tmp_path / "scene.json", allow_outside=True)) == 1
