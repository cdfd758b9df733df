"""Spatial constraints: loss masks, keep-in / keep-out regions, region sprites, locked instances."""
import json
import warnings

import numpy as np
import pytest
from PIL import Image

from spritefit import fit
from spritefit.cli import main
from spritefit.errors import SpriteFitError
from spritefit.fitting import Region
from spritefit.fitting.constraints import MaskWarning
from spritefit.render import render_scene_array
from spritefit.scene import Scene
from spritefit.sprites import load_sprites

H, W = 48, 72


def photo(seed=0) -> np.ndarray:
    """A smooth random picture with some structure, (H, W, 3)."""
    rng = np.random.default_rng(seed)
    small = rng.random((6, 9, 3)).astype(np.float32)
    return np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize((W, H), Image.BICUBIC), np.float32) / 255


def disc(cx=36, cy=24, r=14) -> np.ndarray:
    y, x = np.mgrid[:H, :W]
    return (((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2) < r * r).astype(np.float32)


def centre_pixels(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    px = np.clip(np.floor(scene.xy[:, 0]).astype(int), 0, W - 1)
    py = np.clip(np.floor(scene.xy[:, 1]).astype(int), 0, H - 1)
    return py, px


def coverage(scene: Scene) -> np.ndarray:
    """(H, W) alpha of the scene's sprites alone (transparent canvas)."""
    scene.background = None
    return render_scene_array(scene)[..., 3]


FIT = dict(n=80, iters=40, seed=3)


def test_keep_out_centres_stay_outside():
    keep_out = disc()
    scene = fit(photo(), "shapes", keep_out=keep_out, **FIT)
    assert keep_out[centre_pixels(scene)].max() == 0


def test_keep_in_centres_stay_inside():
    keep_in = disc()
    scene = fit(photo(), "shapes", keep_in=keep_in, **FIT)
    assert keep_in[centre_pixels(scene)].min() == 1


def test_keep_out_footprints_leave_the_region_bare():
    keep_out = disc(r=12)
    scene = fit(photo(), "shapes", keep_out=keep_out, keep_footprint=True, **FIT)
    assert coverage(scene)[keep_out > 0].max() < 1e-6
    assert coverage(scene)[keep_out == 0].mean() > 0.5       # the rest is still filled


def test_keep_in_footprints_stay_inside():
    keep_in = disc(r=18)
    scene = fit(photo(), "shapes", keep_in=keep_in, keep_footprint=True, **FIT)
    assert coverage(scene)[keep_in == 0].max() < 1e-6
    assert coverage(scene)[keep_in > 0].mean() > 0.5


def test_masked_loss_ignores_pixels_outside_the_mask():
    mask = disc()
    first, second = photo(0), photo(0)
    second[mask == 0] = photo(7)[mask == 0]                    # other pixels outside the mask only
    a = fit(first, "shapes", mask=mask, **FIT)
    b = fit(second, "shapes", mask=mask, **FIT)
    assert np.array_equal(a.xy, b.xy) and np.array_equal(a.color, b.color) and np.array_equal(a.size, b.size)
    c = fit(second, "shapes", **FIT)                             # without the mask they matter
    assert not np.array_equal(a.xy, c.xy)


def test_masked_loss_fits_inside_better_than_outside():
    mask = disc()
    target = photo()
    scene = fit(target, "shapes", mask=mask, **FIT)
    error = ((render_scene_array(scene) - target) ** 2).mean(2)
    assert error[mask > 0].mean() < 0.5 * error[mask == 0].mean()


def test_region_sprites_fill_their_region():
    region = disc()
    shapes, leaves = load_sprites("shapes"), load_sprites("leaves")
    scene = fit(photo(), shapes, regions=(Region(region, leaves, "leaf disc"),), color_mode="original", **FIT)
    assert len(scene.sprites) == len(shapes) + len(leaves)
    in_region = region[centre_pixels(scene)] > 0
    uses_leaf = scene.sprite >= len(shapes)
    assert np.array_equal(in_region, uses_leaf)                # leaves inside, shapes outside, nothing else
    assert 10 < uses_leaf.sum() < len(scene) - 10              # shared in proportion to the areas


def test_locked_instances_are_bit_identical_after_refitting(tmp_path):
    first = fit(photo(), "shapes", **FIT)
    first.save(tmp_path / "scene.json")
    edited = json.loads((tmp_path / "scene.json").read_text())
    for i in (5, 17):                                          # someone moves two instances by hand
        edited["instances"][i]["x"] += 6.5
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    start = Scene.load(tmp_path / "edited.json")
    assert np.flatnonzero(start.edited).tolist() == [5, 17]
    start.lock("all-edited")
    start.lock("30-32")
    refit = fit(photo(1), start.sprites, init="scene", init_scene=start, **FIT)
    locked = [5, 17, 30, 31, 32]
    # Respawned instances go on top, so indices may shift; the locked ones keep their order.
    assert refit.frozen.sum() == len(locked)
    for name in ("xy", "size", "theta", "color", "opacity", "mix", "sprite"):
        assert np.array_equal(getattr(refit, name)[refit.frozen], getattr(start, name)[locked]), name
    assert not np.array_equal(refit.xy[~refit.frozen], np.delete(start.xy, locked, axis=0))


def test_lock_selection_is_checked():
    scene = fit(photo(), "shapes", n=10, iters=2)
    assert scene.selection("0,2-3").nonzero()[0].tolist() == [0, 2, 3]
    assert scene.selection("all").all() and not scene.selection("none").any()
    for bad in ("3-1", "12", "x", "1-b"):
        with pytest.raises(SpriteFitError, match="instances"):
            scene.selection(bad)


def test_mask_of_another_size_is_scaled_with_a_warning_or_refused(tmp_path):
    left = np.zeros((H, W), np.float32)
    left[:, : W // 2] = 1
    Image.fromarray((left[::2, ::2] * 255).astype(np.uint8)).save(tmp_path / "half.png")   # half the size
    with pytest.warns(MaskWarning, match="scaled"):
        scene = fit(photo(), "shapes", keep_in=tmp_path / "half.png", n=20, iters=2)
    assert left[centre_pixels(scene)].min() == 1
    Image.fromarray(np.zeros((H, H), np.uint8)).save(tmp_path / "square.png")
    with pytest.raises(SpriteFitError, match="must have the target's shape"):
        fit(photo(), "shapes", mask=tmp_path / "square.png", n=20, iters=2)


@pytest.mark.parametrize("options, message", [
    ({"keep_in": np.zeros((H, W))}, "keep-in mask is empty"),
    ({"keep_in": disc(), "keep_out": disc(r=20)}, "leave no pixel"),
    ({"mask": np.zeros((H, W))}, "loss mask is empty"),
    ({"keep_out": np.zeros((H, W, 3))}, "2-D array"),
    ({"keep_out": np.full((H, W), np.nan)}, "NaN"),
    ({"keep_in": disc(r=2), "keep_footprint": True}, "too narrow"),
    ({"regions": (Region(np.zeros((H, W)), "leaves", "empty"),)}, "region empty has no pixel"),
])
def test_bad_constraints_are_named(options, message):
    with pytest.raises(SpriteFitError, match=message):
        fit(photo(), "shapes", n=20, iters=2, **options)


def test_command_line_constraints_regions_and_lock(tmp_path, capsys):
    Image.fromarray((photo() * 255).astype(np.uint8)).save(tmp_path / "target.png")
    Image.fromarray((disc() * 255).astype(np.uint8)).save(tmp_path / "disc.png")
    fit_command = ["fit", str(tmp_path / "target.png"), "--sprites", "shapes", "-n", "40", "--iters", "10",
                   "--formats", "json"]
    assert main([*fit_command, "--keep-out", str(tmp_path / "disc.png"), "--mask", str(tmp_path / "disc.png"),
                 "--out", str(tmp_path / "keep-out")]) == 0
    scene = Scene.load(tmp_path / "keep-out" / "scene.json")
    assert disc()[centre_pixels(scene)].max() == 0
    assert main([*fit_command, "--region", f"{tmp_path / 'disc.png'}=leaves", "--out", str(tmp_path / "region")]) == 0
    scene = Scene.load(tmp_path / "region" / "scene.json")
    shapes = len(load_sprites("shapes"))
    assert np.array_equal(disc()[centre_pixels(scene)] > 0, scene.sprite >= shapes)
    assert main([*fit_command, "--init-scene", str(tmp_path / "region" / "scene.json"), "--lock", "0-9",
                 "--out", str(tmp_path / "locked")]) == 0
    assert "10 of 40 instances locked" in capsys.readouterr().out
    locked = Scene.load(tmp_path / "locked" / "scene.json")
    assert np.array_equal(locked.xy[:10], scene.xy[:10]) and np.array_equal(locked.size[:10], scene.size[:10])
    assert main([*fit_command, "--region", "disc.png", "--out", str(tmp_path / "bad")]) == 2
    assert "MASK=SPRITES" in capsys.readouterr().err


@pytest.mark.parametrize("arguments, message", [
    (["--lock", "all"], "--lock needs --init-scene"),
    (["--canvas", "40x40"], "--canvas is for a prompt without a target image"),
    (["--clip-weights", "x.pt"], "--clip-weights needs --prompt"),
])
def test_command_line_refuses_options_out_of_place(tmp_path, capsys, arguments, message):
    Image.fromarray((photo() * 255).astype(np.uint8)).save(tmp_path / "target.png")
    assert main(["fit", str(tmp_path / "target.png"), "--sprites", "shapes", *arguments,
                 "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err


def test_command_line_needs_a_target_or_a_prompt(tmp_path, capsys):
    assert main(["fit", "--sprites", "shapes", "--out", str(tmp_path / "out")]) == 2
    assert "give a target image, a --prompt, or both" in capsys.readouterr().err
