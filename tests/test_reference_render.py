"""The reference renderer against hand-computed pixels and finite differences."""
import math

import numpy as np
import pytest
import torch

from conftest import instances, make_sprite, random_sprite, solid_sprite
from spritefit.render import COLOR_MODES, render
from spritefit.sprites import Atlas

WHITE = torch.ones(3)


def test_single_sprite_known_pixels():
    atlas = Atlas([solid_sprite()], resolution=8)
    # Size 4 -> an 8x8 px square from 4 to 12; half opaque red over white.
    args = instances(1, xy=[8.0, 8.0], log_size=[math.log(4.0)], color=[1.0, 0.0, 0.0], opacity=[0.5])
    out = render(atlas, **args, width=16, height=16, background=WHITE)
    inside = torch.tensor([1.0, 0.5, 0.5])
    assert torch.allclose(out.image[:, 4:12, 4:12], inside.view(3, 1, 1).expand(3, 8, 8), atol=1e-6)
    outside = out.image.clone()
    outside[:, 4:12, 4:12] = 1.0
    assert torch.allclose(outside, torch.ones_like(outside))
    assert torch.allclose(out.alpha[4:12, 4:12], torch.full((8, 8), 0.5))
    assert out.alpha[:4].abs().max() == 0


def test_rotation_by_90_degrees_rotates_the_bitmap():
    atlas = Atlas([random_sprite(3)], resolution=8)
    base = dict(xy=[8.0, 8.0], log_size=[math.log(4.0)])
    upright = render(atlas, **instances(1, **base), width=16, height=16, color_mode="original").image
    turned = render(atlas, **instances(1, **base, theta=[math.pi / 2]), width=16, height=16,
                    color_mode="original").image
    # Counter-clockwise on screen, as np.rot90 turns an array displayed with row 0 at the top.
    expected = torch.from_numpy(np.rot90(upright.numpy(), 1, axes=(1, 2)).copy())
    assert torch.allclose(turned, expected, atol=1e-4)
    assert not torch.allclose(turned, upright, atol=1e-2)


def test_painters_order_last_row_on_top():
    atlas = Atlas([solid_sprite()], resolution=8)
    args = instances(2, xy=[[6.0, 8.0], [10.0, 8.0]], log_size=[math.log(4.0)] * 2,
                     color=[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    image = render(atlas, **args, width=16, height=16, background=WHITE).image
    red, blue, a = torch.tensor([1.0, 0, 0]), torch.tensor([0, 0, 1.0]), 0.99   # alpha is clamped to 0.99
    red_over_white = a * red + (1 - a) * WHITE
    assert torch.allclose(image[:, 8, 8], a * blue + (1 - a) * red_over_white, atol=1e-6)
    assert torch.allclose(image[:, 8, 3], red_over_white, atol=1e-6)


@pytest.mark.parametrize("mode", COLOR_MODES)
def test_colour_modes(mode):
    own, tint, mix = np.array([0.2, 0.4, 0.6]), np.array([1.0, 0.5, 0.0]), 0.25
    atlas = Atlas([solid_sprite(own)], resolution=8)
    args = instances(1, xy=[8.0, 8.0], log_size=[math.log(4.0)], color=tint, mix=[mix], opacity=[0.5])
    pixel = render(atlas, **args, width=16, height=16, color_mode=mode, background=None).image[:, 8, 8]
    expected = {"original": own, "tint": tint, "multiply": own * tint, "mix": mix * own + (1 - mix) * tint}[mode]
    assert np.allclose(pixel.numpy(), 0.5 * expected, atol=1e-6)


def test_blur_softens_edges_and_keeps_mass():
    atlas = Atlas([solid_sprite()], resolution=16)
    args = instances(1, xy=[16.0, 16.0], log_size=[math.log(8.0)])   # 16 px square, 1 texel per pixel
    sharp = render(atlas, **args, width=32, height=32).alpha
    soft = render(atlas, **args, width=32, height=32, sigma=2.0).alpha
    assert sharp[16, 6] == 0 and soft[16, 6] > 0.01          # alpha reaches 2 px outside the edge
    assert 0.3 < soft[16, 8] < 0.7                           # the edge pixel is half covered
    assert abs(float(sharp.sum() - soft.sum())) < 0.02 * float(sharp.sum())


def test_mip_level_prefilters_small_sprites():
    checker = np.zeros((64, 64, 4), np.float32)
    checker[..., 3] = 1.0
    checker[::2, ::2, :3] = 1.0
    checker[1::2, 1::2, :3] = 1.0
    atlas = Atlas([make_sprite(checker)], resolution=64)
    args = instances(1, xy=[8.0, 8.0], log_size=[math.log(2.0)])   # 64 texels drawn over 4 px
    image = render(atlas, **args, width=16, height=16, color_mode="original").image
    assert torch.allclose(image[:, 7:9, 7:9], torch.full((3, 2, 2), 0.5), atol=0.02)


def test_transparent_background_gives_premultiplied_colour_and_coverage():
    atlas = Atlas([solid_sprite()], resolution=8)
    args = instances(1, xy=[8.0, 8.0], log_size=[math.log(4.0)], color=[0.0, 1.0, 0.0], opacity=[0.6])
    out = render(atlas, **args, width=16, height=16, background=None)
    assert torch.allclose(out.image[:, 8, 8], torch.tensor([0.0, 0.6, 0.0]))
    assert float(out.alpha[8, 8]) == pytest.approx(0.6)
    assert float(out.image[:, 0, 0].abs().max()) == 0.0


def test_early_termination_stops_below_threshold():
    atlas = Atlas([solid_sprite()], resolution=8)
    n = 4   # three opaque layers leave T = 1e-6 < 1e-4, so the bottom one is not reached
    args = instances(n, xy=[[8.0, 8.0]] * n, log_size=[math.log(4.0)] * n,
                     color=[[1.0, 0, 0]] + [[0, 1.0, 0]] * 3)
    image = render(atlas, **args, width=16, height=16, background=torch.zeros(3)).image
    assert float(image[0, 8, 8]) == 0.0


@pytest.mark.parametrize("mode", COLOR_MODES)
def test_gradients_match_finite_differences(mode):
    torch.manual_seed(0)
    atlas = Atlas([random_sprite(1, 8), random_sprite(2, 8)], resolution=8)
    n = 3
    params = {
        "xy": (torch.rand(n, 2, dtype=torch.float64) * 8 + 4),
        "log_size": torch.log(torch.rand(n, dtype=torch.float64) * 3 + 2.2),
        "theta": torch.rand(n, dtype=torch.float64) * 3,
        "color": torch.rand(n, 3, dtype=torch.float64),
        "opacity": torch.rand(n, dtype=torch.float64) * 0.5 + 0.3,
        "mix": torch.rand(n, dtype=torch.float64),
    }
    names = list(params)
    sprite = torch.tensor([0, 1, 0])
    weights = torch.rand(3, 16, 16, dtype=torch.float64)
    background = torch.rand(3, 16, 16, dtype=torch.float64)

    def loss(*values):
        out = render(atlas, **dict(zip(names, values)), sprite=sprite, width=16, height=16,
                     color_mode=mode, background=background, sigma=1.0)
        return (out.image * weights).sum() + out.alpha.sum()

    inputs = tuple(p.clone().requires_grad_(True) for p in params.values())
    assert torch.autograd.gradcheck(loss, inputs, eps=1e-6, atol=1e-5, rtol=1e-3)
