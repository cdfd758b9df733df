"""Sprite loading and the atlas' mip pyramid."""
import numpy as np
import pytest
import torch
from PIL import Image

from spritefit import _native
from spritefit.errors import SpriteError
from spritefit.sprites import Atlas, SpriteWarning, builtin_packs, load_sprites


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
