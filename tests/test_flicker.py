"""The flicker measures and the motion they rest on: a known change gives the expected flicker and
E_warp, a pure sub-pixel translation gives about 0, the optical flow finds a known shift, and a
zoom-and-turn of the picture is read back as one at each point."""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from spritefit.fitting import fit
from spritefit.fitting.flow import local_motion, optical_flow
from spritefit.flicker import frame_change, tensor
from spritefit.render import as_array, render_scene
from spritefit.sprites import load_sprites

PHOTO = Path(__file__).resolve().parents[1] / "core" / "spritefit" / "data" / "targets" / "bench" / "coffee.jpg"
W, H = 128, 96


def photo_crop(dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    """A 128x96 view of the coffee photograph, its content moved by (dx, dy) px (resampled from
    the full-size photograph, as a camera would see it)."""
    photo = Image.open(PHOTO).convert("RGB")
    left, top, scale = 100 - dx * 2, 80 - dy * 2, 2
    view = photo.resize((W, H), Image.LANCZOS, box=(left, top, left + W * scale, top + H * scale))
    return np.asarray(view, np.float32) / 255


def flows(before: np.ndarray, after: np.ndarray):
    return optical_flow(tensor(before), tensor(after)), optical_flow(tensor(after), tensor(before))


@pytest.fixture(scope="module")
def scene():
    return fit(photo_crop(), load_sprites("shapes"), n=150, iters=60, preset="fast")


def render(scene) -> np.ndarray:
    return as_array(scene, render_scene(scene))[..., :3]


def test_a_known_change_on_a_still_picture_gives_the_expected_flicker_and_e_warp():
    still = photo_crop()
    forward, backward = flows(still, still)
    assert float(forward.abs().max()) < 0.05           # a still picture: no motion found
    change, area = 0.2, 20 * 16
    changed = still.copy()
    changed[40:56, 50:70] = np.clip(changed[40:56, 50:70] + change, 0, None)
    assert (changed[40:56, 50:70] - still[40:56, 50:70]).min() == pytest.approx(change, abs=1e-6)
    measured = frame_change(changed, still, still, still, forward, backward)
    # The blur spreads the change but keeps its sum: its mean over the canvas is change * area / canvas.
    assert measured.flicker == pytest.approx(change * area / (W * H), rel=0.03)
    assert measured.e_warp == pytest.approx(3 * change ** 2 * area / (W * H), rel=0.03)
    assert measured.render_change == pytest.approx(change * area / (W * H), rel=0.01)
    assert measured.target_change == 0.0


def test_a_pure_sub_pixel_translation_measures_about_nothing(scene):
    before, after = photo_crop(), photo_crop(1.3, -0.6)
    forward, backward = flows(before, after)
    moved = replace(scene, xy=(scene.xy + np.float32([1.3, -0.6])).astype(np.float32))
    rng = np.random.default_rng(1)
    jittered = replace(moved, xy=(moved.xy + rng.normal(0, 0.5, moved.xy.shape)).astype(np.float32))
    translation = frame_change(render(moved), render(scene), after, before, forward, backward)
    jitter = frame_change(render(jittered), render(scene), after, before, forward, backward)
    assert translation.render_change > 0.02                     # the render did change a lot...
    assert translation.flicker < 0.25 * jitter.flicker          # ...but only by the motion (0.16 measured)
    assert jitter.flicker > 0.005
    itself = frame_change(after, before, after, before, forward, backward)
    assert itself.flicker < 0.25 * jitter.flicker               # the picture's own motion is no flicker (0.17)


def test_the_flow_finds_a_known_sub_pixel_shift():
    before, after = photo_crop(), photo_crop(1.3, -0.6)
    forward = optical_flow(tensor(before), tensor(after))[:, 8:-8, 8:-8]
    error = torch.sqrt((forward[0] - 1.3) ** 2 + (forward[1] + 0.6) ** 2)
    assert float(error.mean()) < 0.15 and float(error.median()) < 0.1


def test_local_motion_reads_a_zoom_and_turn_back_at_every_point():
    zoom, turn = 1.05, math.radians(4)
    centre = torch.tensor([W / 2, H / 2])
    ys, xs = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    offset = torch.stack([xs - centre[0], ys - centre[1]])
    c, s = math.cos(turn), math.sin(turn)
    moved = zoom * torch.stack([c * offset[0] - s * offset[1], s * offset[0] + c * offset[1]])
    flow = moved - offset
    points = torch.tensor([[40.0, 30.0], [90.0, 60.0], [64.0, 48.0]])
    shift, scale, angle = local_motion(flow, points, torch.full((3,), 4.0))
    expected = zoom * torch.stack([c * (points[:, 0] - centre[0]) - s * (points[:, 1] - centre[1]),
                                   s * (points[:, 0] - centre[0]) + c * (points[:, 1] - centre[1])], 1)
    assert torch.allclose(shift, expected - (points - centre), atol=0.02)
    assert torch.allclose(scale, torch.full((3,), zoom), atol=1e-3)
    assert torch.allclose(angle, torch.full((3,), turn), atol=1e-3)


def rotation_flow(zoom: float, turn: float) -> torch.Tensor:
    """(2, H, W): where each pixel's content goes when the picture turns and zooms about its centre."""
    ys, xs = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    offset = torch.stack([xs - W / 2, ys - H / 2])
    c, s = math.cos(turn), math.sin(turn)
    return zoom * torch.stack([c * offset[0] - s * offset[1], s * offset[0] + c * offset[1]]) - offset


def test_sprites_carried_along_a_zoom_and_turn_render_the_turned_picture(scene, tmp_path):
    from spritefit.fitting.flow import warp
    from spritefit.video import ShotFit, VideoSettings
    zoom, turn = 1.06, math.radians(5)
    forward = rotation_flow(zoom, turn)
    backward = rotation_flow(1 / zoom, -turn)
    shot = ShotFit([photo_crop(), photo_crop()], scene.sprites, VideoSettings(options=dict(n=len(scene))), tmp_path)
    shot.flows[1] = (forward, backward)
    carried = shot._carried(1, scene)
    expected = warp(tensor(render(scene)), backward).permute(1, 2, 0).numpy()[10:-10, 10:-10]
    only_moved = replace(carried, size=scene.size, theta=scene.theta)
    error = lambda s: float(((render(s)[10:-10, 10:-10] - expected) ** 2).mean())
    assert error(carried) < 0.5 * error(only_moved)          # sizes and angles follow the picture
    assert -10 * math.log10(error(carried)) > 27
