"""The fitting loop: recovery of a known scene, determinism, progress and cancel."""
import math
import threading

import numpy as np
import pytest
import torch

from spritefit import evaluate, fit
from spritefit.errors import SpriteFitError
from spritefit.fitting import BLUR_SCHEDULES, FitConfig, make_config
from spritefit.fitting.config import base_size
from spritefit.fitting.init import _sobel
from spritefit.fitting.regularisers import overlap_penalty, size_range_penalty
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
    scene = fit(target, sprites, n=60, iters=1500, atlas_resolution=64)
    assert evaluate(scene, target)["psnr"] > 30.0


def test_same_seed_same_result_and_progress_reported():
    sprites, target = random_circle_scene(n=6, size=32)
    seen = []
    a = fit(target, sprites, n=20, iters=12, seed=5, progress=seen.append)
    b = fit(target, sprites, n=20, iters=12, seed=5)
    c = fit(target, sprites, n=20, iters=12, seed=6)
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


def test_presets_set_defaults_that_options_override():
    assert make_config("fast").schedule.iters == 100 and make_config("quality").schedule.iters == 800
    config = make_config("quality", iters=7, gradient=0.3, n=50)
    assert (config.schedule.iters, config.run.n, config.losses.gradient, config.run.preset) == (7, 50, 0.3, "quality")
    assert config.given == {"iters", "gradient", "n"}                 # the preset's own are not "given"
    assert make_config("balanced", iters=None).schedule.iters == FitConfig().schedule.iters
    assert make_config("fast", background=None).run.background is None   # transparent, not "unset"
    assert make_config(background="#ff0000").run.background == (1.0, 0.0, 0.0)
    with pytest.raises(SpriteFitError, match="'preset' must be one of fast, balanced, quality, not 'best'"):
        make_config("best")
    with pytest.raises(SpriteFitError, match="unknown fit option 'speed'"):
        make_config("fast", speed=3)


@pytest.mark.parametrize("schedule", BLUR_SCHEDULES)
def test_blur_schedules_start_at_blur_start_and_reach_zero(schedule):
    config = FitConfig().with_options(iters=100, blur_schedule=schedule, blur_start=2.0, blur_end_fraction=0.6)
    sigmas = [config.sigma_at(i) for i in range(100)]
    assert all(a >= b for a, b in zip(sigmas, sigmas[1:]))
    assert sigmas[60] == 0.0 and sigmas[-1] == 0.0
    assert sigmas[0] == (0.0 if schedule == "none" else 2.0)


def test_typical_size_follows_the_canvas_n_and_the_sprites_fill():
    assert base_size(512, 512, 1000) == pytest.approx(4 * base_size(128, 128, 1000))
    assert base_size(512, 512, 4000) == pytest.approx(base_size(512, 512, 1000) / 2)
    assert base_size(100, 100, 10, fill=0.3) > base_size(100, 100, 10, fill=0.9)
    assert base_size(100, 100, 10, coverage=10.0) == pytest.approx(2 * base_size(100, 100, 10, coverage=2.5))


def test_original_colours_blend_more_unless_told():
    """Where sprites keep their colours they start larger and half transparent; options override."""
    tint, original = make_config(color_mode="tint"), make_config(color_mode="original")
    assert (tint.sprite_coverage(), tint.starting_opacity()) == (2.5, 0.9)
    assert (original.sprite_coverage(), original.starting_opacity()) == (6.0, 0.5)
    told = make_config(color_mode="original", coverage=3.0, start_opacity=0.7)
    assert (told.sprite_coverage(), told.starting_opacity()) == (3.0, 0.7)
    scene = fit(np.full((32, 32, 3), 0.5, np.float32), "leaves", n=20, iters=0, color_mode="original",
                start_opacity=0.3)
    assert np.allclose(scene.opacity, 0.3)          # no iteration: the starting opacity as it is
    with pytest.raises(SpriteFitError, match=r"'coverage' must be a number in 0.01..100.0, not 0.0"):
        make_config(coverage=0.0)
    with pytest.raises(SpriteFitError, match=r"'start_opacity' must be a number in 0.01..1.0, not 1.5"):
        make_config(start_opacity=1.5)


def test_structure_init_edges_are_the_sobel_convolution():
    gray = torch.rand(37, 53, generator=torch.Generator().manual_seed(0))
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8
    padded = torch.nn.functional.pad(gray[None, None], (1, 1, 1, 1), mode="replicate")
    gx, gy = _sobel(gray)
    assert torch.allclose(gx, torch.nn.functional.conv2d(padded, kx[None, None])[0, 0], atol=1e-6)
    assert torch.allclose(gy, torch.nn.functional.conv2d(padded, kx.t()[None, None])[0, 0], atol=1e-6)


@pytest.mark.parametrize("init", ["random", "grid"])
def test_other_initialisers_fit(init):
    sprites, target = random_circle_scene(n=8, size=32)
    start = fit(target, sprites, n=20, iters=0, init=init)
    scene = fit(target, sprites, n=20, iters=40, init=init)
    assert evaluate(scene, target)["psnr"] > evaluate(start, target)["psnr"] + 1


def test_scene_init_continues_a_previous_fit():
    sprites, target = random_circle_scene(n=8, size=32)
    first = fit(target, sprites, n=20, iters=30)
    again = fit(target, sprites, n=20, iters=0, init="scene", init_scene=first)
    assert np.allclose(again.xy, first.xy) and np.allclose(again.opacity, first.opacity, atol=1e-5)
    more = fit(target, sprites, n=26, iters=30, init="scene", init_scene=first)
    assert len(more) == 26 and evaluate(more, target)["psnr"] >= evaluate(first, target)["psnr"] - 0.1
    with pytest.raises(SpriteFitError, match="needs a scene"):
        fit(target, sprites, n=20, iters=1, init="scene")


def test_a_fit_never_ends_worse_than_its_initialisation():
    sprites, target = random_circle_scene(n=8, size=32)
    start = evaluate(fit(target, sprites, n=20, iters=0), target)["psnr"]
    wild = fit(target, sprites, n=20, iters=30, lr_position=20.0, lr_color=5.0, lr_log_size=2.0)
    assert evaluate(wild, target)["psnr"] >= start - 1e-6


def test_checkpoints_in_the_clean_phase_take_the_next_step_s_loss_and_keep_the_same_best(monkeypatch):
    from spritefit.fitting import loop
    sprites, target = random_circle_scene(n=8, size=32)
    offered, clean_renders = [], []
    offer, clean_loss = loop._Checkpoints._offer, loop._Run.clean_loss
    monkeypatch.setattr(loop._Checkpoints, "_offer", lambda self, state, loss: (offered.append(loss),
                                                                                  offer(self, state, loss)))
    monkeypatch.setattr(loop._Run, "clean_loss", lambda self, params: (clean_renders.append(1),
                                                                       clean_loss(self, params))[1])

    def run():
        offered.clear(), clean_renders.clear()
        scene = fit(target, sprites, n=20, iters=40, checkpoints=8, seed=3)
        return scene, list(offered), len(clean_renders)

    reused, reused_losses, reused_renders = run()

    def every_checkpoint_rendered(self, params, next_iteration):
        self._offer(params.snapshot, self.run.clean_loss(params))
    monkeypatch.setattr(loop._Checkpoints, "due", every_checkpoint_rendered)
    rendered, rendered_losses, rendered_renders = run()
    assert reused_losses == rendered_losses and len(rendered_losses) == 8
    assert reused_renders == rendered_renders - 3     # checkpoints before iterations 25, 30, 35: past the blur (0.6)
    assert np.array_equal(reused.xy, rendered.xy) and np.array_equal(reused.color, rendered.color)


def test_regularisers():
    log_size = torch.log(torch.tensor([1.0, 4.0, 20.0]))
    assert float(size_range_penalty(log_size, math.log(0.5), math.log(30))) == 0
    assert float(size_range_penalty(log_size, math.log(2), math.log(10))) > 0
    sizes = torch.log(torch.full((3,), 2.0))
    crowded = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert float(overlap_penalty(crowded, sizes)) > float(overlap_penalty(crowded * 3, sizes)) > 0
    assert float(overlap_penalty(crowded * 10, sizes)) == 0
    sprites, target = random_circle_scene(n=8, size=32)
    scene = fit(target, sprites, n=20, iters=10, size_range_weight=1.0, overlap_weight=0.1)
    assert np.isfinite(scene.xy).all()


def test_the_fit_function_and_the_fitting_package_do_not_collide():
    import importlib

    import spritefit
    config = importlib.import_module("spritefit.fitting.config")
    assert callable(spritefit.fit) and spritefit.fit is spritefit.fitting.fit
    assert "balanced" in config.PRESETS


def test_closed_form_colours_reproduce_a_render_of_known_colours():
    """The render is linear in the tints: from wrong colours, CGLS finds the ones that made it."""
    from spritefit.fitting.color_solve import refit_colors
    from spritefit.render import render
    from spritefit.sprites import Atlas, load_sprites
    generator = torch.Generator().manual_seed(1)
    atlas = Atlas(load_sprites("shapes"), 32)
    n = 12
    geometry = {"xy": torch.rand(n, 2, generator=generator) * 40 + 4, "log_size": torch.full((n,), 2.2),
                "theta": torch.rand(n, generator=generator) * 6, "opacity": torch.full((n,), 0.8),
                "sprite": torch.arange(n) % len(atlas.sprites)}
    background = torch.ones(3)

    def render_with(colors, back):
        return render(atlas, **geometry, color=colors, width=48, height=48, background=back).image
    truth = 0.1 + 0.8 * torch.rand(n, 3, generator=generator)
    target = render_with(truth, background)
    start = torch.full((n, 3), 0.5)
    before = float(((render_with(start, background) - target) ** 2).mean())
    solved = refit_colors(render_with, target, start, background, steps=30)
    after = float(((render_with(solved, background) - target) ** 2).mean())
    assert after < before * 1e-3, (before, after)


def test_colour_refit_in_a_fit_runs_and_keeps_frozen_colours():
    scene = fit(np.full((24, 24, 3), 0.3, np.float32), "shapes", n=10, iters=12, color_refit_every=4,
                          noise_until=0.0)
    assert np.all(np.isfinite(scene.color)) and scene.color.min() >= 0.02 and scene.color.max() <= 0.98


def test_sprite_choice_gives_an_instance_the_sprite_of_the_target_s_colour():
    """Original colours: an instance showing a blue square where the target is red takes the red
    square; one already right, and a frozen one, keep theirs."""
    from types import SimpleNamespace

    from conftest import solid_sprite
    from spritefit.fitting.sprite_choice import rechoose_sprites
    atlas = Atlas([solid_sprite((1, 0, 0), name="red"), solid_sprite((0, 0, 1), name="blue")], 16)
    params = SimpleNamespace(xy=torch.tensor([[8.0, 8.0], [24.0, 8.0], [8.0, 24.0]]), log_size=torch.full((3,), math.log(6.0)),
                             sprite=torch.tensor([1, 0, 1]), zone=torch.zeros(3, dtype=torch.int64),
                             frozen=torch.tensor([False, False, True]))
    rendered = render(atlas, params.xy, params.log_size, torch.zeros(3), torch.ones(3, 3), torch.full((3,), 0.9),
                      params.sprite, width=32, height=32, color_mode="original", background=torch.ones(3))
    target = torch.tensor([1.0, 0.0, 0.0])[:, None, None].expand(3, 32, 32)        # red everywhere
    zones = [SimpleNamespace(sprites=torch.tensor([0, 1]))]
    changed = rechoose_sprites(params, rendered.visibility, rendered.image, target, atlas, zones)
    assert changed == 1 and params.sprite.tolist() == [0, 0, 1]


@pytest.mark.parametrize("mode", ["tint", "original"])
def test_search_gain_is_the_drop_in_squared_error_of_laying_the_stamp(mode):
    """The FFT correlations give, at every position, what compositing the stamp there (in its best
    tint, or its own colours) does to the squared error: checked against doing it."""
    from conftest import random_sprite
    from spritefit.fitting import search
    generator = torch.Generator().manual_seed(3)
    atlas = Atlas([random_sprite(4, size=12, name="noise")], 16)
    original = mode == "original"
    stamps = search._stamps(atlas, torch.tensor([0]), [5.0], 1.0, original, "cpu")
    canvas, wanted = torch.rand(3, 20, 24, generator=generator), torch.rand(3, 20, 24, generator=generator)
    allowed = torch.ones(20, 24, dtype=torch.bool)
    search._cache_spectra(stamps, (20, 24), original)
    spectra = stamps["spectra"][0]
    size = search._fft_size(stamps, (20, 24))
    gain, color = search._gain(search._correlations(spectra, canvas, canvas - wanted, size, original), original)
    before = float(((canvas - wanted) ** 2).sum())
    for s, (y, x) in [(0, (0, 0)), (3, (10, 12)), (7, (19, 2)), (5, (4, 23))]:
        laid = canvas.clone()
        search._lay(laid, stamps, s, (y, x), None if original else color[s, :, y, x])
        assert float(gain[s, y, x]) == pytest.approx(before - float(((laid - wanted) ** 2).sum()), abs=1e-3)
    index, position, _ = search._best_placement(canvas, wanted, allowed, stamps, original)
    assert float(gain[index, position[0], position[1]]) == pytest.approx(float(gain.max()), abs=1e-5)


@pytest.mark.parametrize("native_step", [True, False])
def test_adam_steps_as_torch_adam(native_step, monkeypatch):
    """The fit's own Adam (spritefit.fitting.adam), by the native module and by torch's
    multi-tensor operations, against torch.optim.Adam: same steps, with the learning rate changed
    between steps and a moment reset as respawns do."""
    from spritefit.fitting import adam
    from spritefit.fitting.adam import Adam
    calls = []
    if native_step:
        assert adam._native_step_applies([torch.zeros(2)], [torch.zeros(2)], [torch.zeros(2)])
        native_step_call = adam._native.adam_step_cpu

        def counted(*args):
            calls.append(1)
            return native_step_call(*args)
        monkeypatch.setattr(adam._native, "adam_step_cpu", counted)
    else:
        monkeypatch.setattr(adam, "_native_step_applies", lambda *a: False)
    g = torch.Generator().manual_seed(3)
    start = [torch.randn(50, 2, generator=g), torch.randn(50, generator=g)]
    ours_params = [p.clone().requires_grad_(True) for p in start]
    torch_params = [p.clone().requires_grad_(True) for p in start]
    ours = Adam([{"params": [p], "lr": lr} for p, lr in zip(ours_params, (0.1, 0.01))])
    theirs = torch.optim.Adam([{"params": [p], "lr": lr} for p, lr in zip(torch_params, (0.1, 0.01))])
    for step in range(30):
        weights = torch.randn(50, 3, generator=g)
        for params, optimizer in ((ours_params, ours), (torch_params, theirs)):
            optimizer.zero_grad(set_to_none=True)
            loss = ((params[0] ** 2 * weights[:, :2]).sum() + (params[1].sin() * weights[:, 2]).sum())
            loss.backward()
            for group in optimizer.param_groups:
                group["lr"] *= 0.97
            optimizer.step()
            if step == 10:
                optimizer.state[params[0]]["exp_avg"][:5] = 0.0
    for a, b in zip(ours_params, torch_params):
        assert torch.allclose(a, b, rtol=0, atol=1e-6)
    assert len(calls) == (30 if native_step else 0)


def test_noisy_canvas_is_uniform_and_follows_the_seed():
    """The fit's noisy background (natively filled on the CPU from a seed its generator draws):
    uniform in [0, 1), the same for the same seed whatever the threads, fresh at every draw."""
    from spritefit import _native
    from spritefit.fitting.config import FitConfig
    from spritefit.fitting.loop import _Run
    from conftest import random_sprite
    sprites = [random_sprite(1, size=12, name="dot")]
    assert hasattr(_native, "uniform_noise_cpu")

    def canvases(seed, threads, draws=2):
        before = _native.cpu_threads()
        try:
            _native.set_cpu_threads(threads)
            run = _Run(torch.rand(3, 199, 301), sprites, FitConfig().with_options(n=10, seed=seed))
            return [run.noisy_background() for _ in range(draws)]
        finally:
            _native.set_cpu_threads(before)

    first, second = canvases(seed=5, threads=2)
    assert first.shape == (3, 199, 301) and first.dtype == torch.float32   # an odd count of values
    assert all(torch.equal(a, b) for a, b in zip(canvases(seed=5, threads=1), (first, second)))
    assert not torch.equal(canvases(seed=6, threads=2)[0], first)
    values = torch.cat([first.flatten(), second.flatten()])   # 360,000 values: the mean's error 0.0005
    assert float(values.min()) >= 0.0 and float(values.max()) < 1.0
    assert abs(float(values.mean()) - 0.5) < 0.01 and abs(float(values.std()) - 12 ** -0.5) < 0.01
    assert abs(float(torch.corrcoef(torch.stack([first.flatten(), second.flatten()]))[0, 1])) < 0.02
    flat = first.flatten()
    assert abs(float(torch.corrcoef(torch.stack([flat[:-1], flat[1:]]))[0, 1])) < 0.02   # neighbours (8 standard errors)


def test_options_the_user_set_win_over_the_refinement_after_a_search():
    """A search places few sprites; the fit after it refines with its own settings, except those
    the user gave, and says which it changed."""
    from spritefit.fitting.config import FitOverride
    sprites, target = random_circle_scene(n=4, size=32)
    with pytest.warns(FitOverride) as automatic:
        fit(target, sprites, n=4, iters=2)
    message = str(automatic[0].message)
    assert "placed by search" in message and "respawn_every=0" in message and "lr_position=" in message
    with pytest.warns(FitOverride) as kept:
        fit(target, sprites, n=4, iters=2, respawn_every=5, lr_position=0.2)
    message = str(kept[0].message)
    assert "respawn_every=0" not in message and "lr_position=" not in message
    assert "kept as you set: lr_position, respawn_every" in message and "blur_schedule=none" in message
    from spritefit.fitting import make_config
    from spritefit.fitting.search import refining
    with pytest.warns(FitOverride):
        refined = refining(make_config(n=4, respawn_every=5, lr_position=0.2))
    assert (refined.heuristics.respawn_every, refined.rates.lr_position, refined.schedule.blur_schedule) == (
        5, 0.2, "none")
    assert refined.rates.lr_angle < make_config(n=4).rates.lr_angle
