"""Sprite loading and the atlas' mip pyramid."""
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spritefit import _native
from spritefit.errors import SpriteError
from spritefit.sprites import Atlas, SpriteWarning, bleed_colors, builtin_packs, load_sprites, sprite_coverage


def test_builtin_packs_are_large_enough():
    packs = builtin_packs()
    assert len(packs) >= 2 and sum(len(files) for files in packs.values()) >= 16
    for name in packs:
        assert all(s.rgba.shape[2] == 4 for s in load_sprites(name))


def test_folder_keeps_alpha_uses_opaque_without_it_and_skips_empty(tmp_path):
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[2:8, 5:15] = (255, 0, 0, 128)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    Image.new("RGB", (6, 4), (0, 0, 255)).save(tmp_path / "b.jpg")
    Image.new("RGBA", (6, 6), (0, 255, 0, 255)).save(tmp_path / "c.webp")
    Image.new("RGBA", (5, 5), (0, 0, 0, 0)).save(tmp_path / "empty.png")
    (tmp_path / "notes.txt").write_text("not a sprite")
    with pytest.warns(SpriteWarning, match="'empty' has no opaque pixel"):
        sprites = load_sprites(tmp_path)
    assert [s.name for s in sprites] == ["a", "b", "c"]
    assert sprites[0].rgba.shape == (6, 10, 4)                 # trimmed to its visible pixels
    assert np.allclose(sprites[0].rgba[..., 3], 128 / 255)
    assert np.all(sprites[1].rgba[..., 3] == 1.0)


def test_bad_sprite_sets(tmp_path):
    with pytest.raises(SpriteError, match="no PNG, WebP or JPEG"):
        load_sprites(tmp_path)
    Image.new("RGBA", (5, 5), (0, 0, 0, 0)).save(tmp_path / "empty.png")
    with pytest.warns(SpriteWarning), pytest.raises(SpriteError, match="fully transparent"):
        load_sprites(tmp_path)
    with pytest.raises(SpriteError, match="built-in packs: "):
        load_sprites("no-such-pack")


def test_native_downsample_is_a_premultiplied_box_filter():
    rng = np.random.default_rng(0)
    image = rng.random((5, 7, 4)).astype(np.float32)
    out = _native.downsample_rgba(image)
    padded = np.zeros((6, 8, 4), np.float32)
    padded[:5, :7] = image
    premul = np.concatenate([padded[..., :3] * padded[..., 3:], padded[..., 3:]], -1)
    box = premul.reshape(3, 2, 4, 2, 4).mean((1, 3))
    expected = np.concatenate([box[..., :3] / box[..., 3:], box[..., 3:]], -1)
    assert out.shape == (3, 4, 4) and np.allclose(out, expected, atol=1e-6)
    with pytest.raises(ValueError, match="RGBA"):
        _native.downsample_rgba(np.zeros((4, 4, 3), np.float32))


def test_atlas_pyramid_sizes_and_energy():
    atlas = Atlas(load_sprites("shapes"), resolution=32)
    assert atlas.level_sizes() == [32, 16, 8, 4, 2, 1]
    textures = atlas.textures(0.0)
    for level, size in zip(textures, atlas.level_sizes()):
        assert level.shape == (12, size + 2 * atlas.pad, size + 2 * atlas.pad, 4)
    # Box filtering keeps the mean alpha of every sprite from level to level.
    means = [t[..., 3].sum((1, 2)) / s ** 2 for t, s in zip(textures, atlas.level_sizes())]
    assert torch.allclose(means[0], means[3], atol=1e-5)
    assert atlas.extents.shape == (12, 2) and float(atlas.extents.max()) == 1.0


@pytest.mark.parametrize("sigma", [0.0, 0.55, 2.0, 4.0])
def test_native_atlas_blur_matches_the_torch_formula(sigma, monkeypatch):
    """The native module blurs the atlas for soft rasterisation; without it torch does the same."""
    import spritefit.sprites as sprites_module
    atlas = Atlas(load_sprites("leaves") + load_sprites("shapes")[:3], resolution=64)
    native = atlas.flat_textures(sigma)
    monkeypatch.setattr(sprites_module, "_native", None)
    atlas._blurred_cache.clear()
    formula = atlas.flat_textures(sigma)
    assert native.data.shape == formula.data.shape
    assert float((native.data - formula.data).abs().max()) < 2e-6
    assert torch.equal(native.support, formula.support)
    level0 = native.support[0]   # every sprite has a box, at most the blur's radius beyond [-1, 1]
    assert bool((level0[:, 0] < level0[:, 1]).all()) and bool((level0.abs() <= 1 + 14 / 32).all())


@pytest.mark.parametrize("sigma", [0.0, 0.55, 2.0, 4.0])
def test_alpha_only_atlas_blur_gives_the_whole_blurs_alpha_and_support(sigma):
    """Tint on the CPU asks for the alpha plane alone (a quarter of the blur, no colour bleed);
    it must be the whole blur's alpha plane, support boxes and level offsets, and a whole one in
    the cache is used instead of blurring again."""
    sprites = load_sprites("leaves") + load_sprites("shapes")[:3]
    alpha_atlas = Atlas(sprites, resolution=64)
    alpha_only = alpha_atlas.flat_textures(sigma, alpha_only=True)
    assert alpha_atlas._bleed is None            # never made for the alpha plane alone
    whole_atlas = Atlas(sprites, resolution=64)
    whole = whole_atlas.flat_textures(sigma)
    assert alpha_only.data.numel() == 0 and whole.data.numel() == 4 * whole.alpha.numel()
    assert torch.equal(alpha_only.alpha, whole.alpha)
    assert torch.equal(alpha_only.support, whole.support) and torch.equal(alpha_only.offsets, whole.offsets)
    assert whole_atlas.flat_textures(sigma, alpha_only=True) is whole
    # the colour bleed made on first use is the one made up front before
    assert all(torch.equal(made, bleed_colors(p[:, :3], p[:, 3:]))
               for made, p in zip(alpha_atlas._bleed_levels, alpha_atlas._premul_levels))


def test_sprite_coverage_without_an_atlas_is_the_atlas_coverage():
    sprites = load_sprites("leaves") + load_sprites("shapes")[:3]
    built = Atlas(sprites, resolution=64).coverage
    assert torch.equal(sprite_coverage(sprites, 64), built)
    shared = Atlas.shared(sprites, 64)
    assert sprite_coverage(sprites, 64) is shared.coverage


# --- opaque images as sprites (--sprite-alpha) ----------------------------------------------------

def opaque_sprite_folder(folder):
    """An opaque JPEG sticker on white, a grey tip on white, the same tip on black, a photograph."""
    from PIL import Image, ImageDraw
    folder.mkdir()
    sticker = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(sticker).ellipse((8, 8, 56, 56), fill=(200, 30, 40))
    sticker.save(folder / "sticker.jpg", quality=90)
    yy, xx = np.mgrid[:64, :64]
    tip = (255 * (0.2 + 0.8 * np.clip(np.hypot(xx - 32, yy - 32) / 28, 0, 1) ** 2)).astype(np.uint8)
    Image.fromarray(tip).convert("RGB").save(folder / "tip-on-white.png")
    Image.fromarray(255 - tip).convert("RGB").save(folder / "tip-on-black.png")
    photo = sorted((Path(__file__).resolve().parents[1] / "core/spritefit/data/targets/bench").glob("*.jpg"))[0]
    Image.open(photo).convert("RGB").resize((64, 48)).save(folder / "photo.jpg")
    return folder


def test_auto_keys_uniform_backgrounds_reads_grey_tips_as_masks_and_keeps_photos(tmp_path):
    sprites = {s.name: s for s in load_sprites(opaque_sprite_folder(tmp_path / "sprites"))}
    assert {name: s.alpha for name, s in sprites.items()} == {
        "sticker": "key", "tip-on-white": "luminance", "tip-on-black": "key", "photo": "keep"}
    sticker = sprites["sticker"].rgba
    assert sticker.shape[:2] == (50, 50) or abs(sticker.shape[0] - 49) <= 2      # trimmed to the disc
    centre, corner = sticker[25, 25], sticker[0, 0]
    assert centre[3] == 1.0 and np.allclose(centre[:3], [200 / 255, 30 / 255, 40 / 255], atol=0.05)
    assert corner[3] == 0.0
    edge = (sticker[..., 3] > 0.05) & (sticker[..., 3] < 0.95)
    assert edge.sum() > 10                                    # a soft edge...
    assert sticker[edge][:, 1].mean() < 0.35                   # ...un-mixed from the white: no light fringe
    tip = sprites["tip-on-white"].rgba
    assert np.all(tip[..., :3] == 0) and tip[..., 3].max() == pytest.approx(0.8, abs=0.01)   # dark is paint
    assert sprites["tip-on-black"].rgba[..., 3].max() == 1.0
    assert sprites["photo"].rgba[..., 3].min() == 1.0 and sprites["photo"].rgba.shape[:2] == (48, 64)
    assert "not one colour" in sprites["photo"].note and "#ffffff" in sprites["sticker"].note


def test_alpha_modes_by_name_and_true_alpha_kept(tmp_path):
    folder = opaque_sprite_folder(tmp_path / "sprites")
    kept = {s.name: s for s in load_sprites(folder, "keep")}
    assert all(s.rgba[..., 3].min() == 1.0 for s in kept.values())
    keyed = {s.name: s for s in load_sprites(folder, "key")}
    assert keyed["tip-on-white"].alpha == "key" and keyed["tip-on-white"].rgba[..., 3].min() == 0.0
    masks = {s.name: s for s in load_sprites(folder, "luminance")}
    assert masks["tip-on-black"].rgba[..., 3].max() == pytest.approx(1.0, abs=0.01)   # black = paint
    shapes = load_sprites("shapes")                                 # PNGs with alpha: unchanged by auto
    assert all(s.alpha == "keep" and s.note.startswith("has transparency") for s in shapes)
    with pytest.raises(SpriteError, match="unknown sprite alpha mode 'magic'"):
        load_sprites(folder, "magic")


def test_keyed_sprites_survive_a_scene_file(tmp_path):
    from spritefit.scene import Scene
    sprites = load_sprites(opaque_sprite_folder(tmp_path / "sprites"))
    scene = Scene(32, 32, sprites, xy=np.full((4, 2), 16, np.float32), size=np.full(4, 8, np.float32),
                  theta=np.zeros(4, np.float32), color=np.ones((4, 3), np.float32), opacity=np.ones(4, np.float32),
                  sprite=np.arange(4), mix=np.ones(4, np.float32), color_mode="original", background=(1, 1, 1))
    scene.save(tmp_path / "scene.json")
    again = Scene.load(tmp_path / "scene.json")
    for before, after in zip(sprites, again.sprites):
        assert after.alpha == before.alpha and np.array_equal(after.rgba, before.rgba), before.name


def test_the_cli_notes_what_auto_chose(tmp_path):
    import subprocess
    import sys
    folder = opaque_sprite_folder(tmp_path / "sprites")
    target = tmp_path / "target.png"
    Image.new("RGB", (32, 32), (90, 160, 200)).save(target)
    run = subprocess.run([sys.executable, "-m", "spritefit.cli", "fit", target, "--sprites", folder, "-n", "8",
                          "--iters", "3", "--out", tmp_path / "out", "--formats", "json"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "note: sprite 'sticker': background #ffffff (its border) keyed out" in run.stderr
    assert "note: sprite 'tip-on-white': grey on a light background: read as a mask, dark is paint" in run.stderr
    assert "note: sprite 'photo': opaque and its border is not one colour" in run.stderr


def test_native_gaussian_blur_matches_the_convolution(monkeypatch):
    import spritefit.sprites as sprites_module
    planes = torch.rand(2, 3, 37, 53, generator=torch.Generator().manual_seed(1))
    for sigma in (0.7, 3.0, 9.0):     # 9: a window wider than the plane
        native = sprites_module.gaussian_blur(planes, sigma)
        monkeypatch.setattr(sprites_module, "_native", None)
        convolved = sprites_module.gaussian_blur(planes, sigma)
        monkeypatch.undo()
        assert native.shape == planes.shape and float((native - convolved).abs().max()) < 1e-5
