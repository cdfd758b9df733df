"""The fitting loop: recovery of a known scene, determinism, progress and cancel."""
import math
import threading

import numpy as np
import pytest
import torch

from spritefit import evaluate, fit
from spritefit.render import render
from spritefit.sprites import Atlas, load_sprites


def random_circle_scene(n=20, size=64, seed=1):
    sprites = [s for s in load_sprites("shapes") if s.name == "circle"]
    g = torch.Generator().manual_seed(seed)
    args = dict(xy=torch.rand(n, 2, generator=g) * size, log_size=torch.log(5 + torch.rand(n, generator=g) * 8),
                theta=torch.rand(n, generator=g) * 6, color=torch.rand(n, 3, generator=g),
                opacity=torch.ones(n), sprite=torch.zeros(n, dtype=torch.long))
    image = render(Atlas(sprites, 64), **args, width=size, height=size, background=torch.ones(3)).image
    return sprites, image.permute(1, 2, 0).numpy()


def test_recovers_a_random_scene_of_20_sprites():
    sprites, target = random_circle_scene()
    scene = fit(target, sprites, n=60, iters=800, atlas_resolution=64)
    assert evaluate(scene, target)["psnr"] > 30.0


def test_same_seed_same_result_and_progress_reported():
    sprites, target = random_circle_scene(n=6, size=32)
    seen = []
    a = fit(target, sprites, n=10, iters=12, seed=5, progress=seen.append)
    b = fit(target, sprites, n=10, iters=12, seed=5)
    c = fit(target, sprites, n=10, iters=12, seed=6)
    assert np.array_equal(a.xy, b.xy) and np.array_equal(a.color, b.color)
    assert not np.array_equal(a.xy, c.xy)
    assert [p.iteration for p in seen] == list(range(1, 13))
    assert all(math.isfinite(p.loss) and p.psnr > 0 for p in seen)


def test_fit_improves_on_its_initialisation():
    sprites, target = random_circle_scene(n=10, size=48)
    start = evaluate(fit(target, sprites, n=30, iters=0), target)["psnr"]
    end = evaluate(fit(target, sprites, n=30, iters=150), target)["psnr"]
    assert end > start + 3


def test_cancel_returns_a_scene_early():
    sprites, target = random_circle_scene(n=6, size=32)
    stop = threading.Event()
    seen = []

    def progress(p):
        seen.append(p.iteration)
        if p.iteration == 5:
            stop.set()

    scene = fit(target, sprites, n=10, iters=1000, progress=progress, cancel=stop)
    assert seen[-1] == 5 and len(scene) == 10
    assert np.isfinite(scene.xy).all()


@pytest.mark.parametrize("mode", ["original", "mix", "multiply"])
def test_colour_modes_fit(mode):
    sprites = load_sprites("shapes")
    _, target = random_circle_scene(n=8, size=32)
    start = fit(target, sprites, n=20, iters=0, color_mode=mode)
    scene = fit(target, sprites, n=20, iters=40, color_mode=mode)
    assert scene.color_mode == mode
    assert evaluate(scene, target)["psnr"] > evaluate(start, target)["psnr"] + 1
