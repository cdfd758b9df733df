"""The optimisation loop: Adam over every instance's parameters through the renderer."""
from __future__ import annotations

import math
import threading
import time
from contextlib import nullcontext
from functools import cached_property
from typing import Callable

import numpy as np
import torch

from .. import timing
from ..limits import check_fit
from ..native_module import _native
from ..render import atlas_resolution_for, render
from ..scene import Scene
from ..sprites import Atlas, Sprite, sprite_coverage
from .adam import Adam
from .config import FitConfig, base_size
from .constraints import Constraints
from .init import chosen_strategy, initial_placement
from .placement import START_MIX
from .losses import image_loss, psnr
from .regularisers import overlap_penalty, size_range_penalty
from .respawn import respawn_invisible
from .search import refining
from .sprite_choice import rechoose_sprites
from .temporal import OptimizerMemory, PreviousFrame, render_change

MIN_SIZE_PX = 0.5   # smallest half-size an instance may shrink to


class FitProgress:
    """One iteration's report. `loss` and `psnr` are computed when first read: a consumer that
    reads them only now and then (the worker's throttled events) spares the fit a host sync per
    iteration, which on a GPU stalls the pipeline."""

    def __init__(self, iteration: int, total: int, loss: torch.Tensor, image: torch.Tensor, target: torch.Tensor,
                 sigma: float, elapsed: float, current_scene: Callable[[], Scene] = lambda: None):
        self.iteration, self.total = iteration, total          # iterations done, of total
        self.sigma, self.elapsed = sigma, elapsed
        # Builds the scene of the current parameters on demand (previews); not built unless called.
        self.current_scene = current_scene
        self._loss, self._image, self._target = loss.detach(), image.detach(), target

    @cached_property
    def loss(self) -> float:
        return float(self._loss)

    @cached_property
    def psnr(self) -> float:
        """Of the training render (noisy canvas) against the target."""
        return psnr(self._image, self._target)

    def __repr__(self) -> str:
        return f"FitProgress({self.iteration}/{self.total}, sigma={self.sigma:.2f}, elapsed={self.elapsed:.2f})"


KEPT_RANGE = (1e-4, 1 - 1e-4)   # colours, opacities and mix weights of a starting scene


class _Parameters(torch.nn.Module):
    """Unconstrained optimisation variables; colours and opacities through a sigmoid.

    Beside them it keeps, per instance, where the fit started (`anchor_*`: the temporal term of
    video pulls towards it, frozen instances are put back to it after every step), the values as
    given (frozen instances are returned exactly as given, not through log/logit round trips),
    whether it is frozen, and how strongly it is anchored (0 to 1: respawned and new instances 0,
    video instances on changed picture less)."""

    ANCHORED = ("xy", "log_size", "theta", "color_logit", "opacity_logit", "mix_logit")

    def __init__(self, placement, starting_opacity: float):
        super().__init__()
        n = placement.xy.shape[0]
        device = placement.xy.device
        opacity = placement.opacity if placement.opacity is not None else torch.full((n,), starting_opacity, device=device)
        mix = placement.mix if placement.mix is not None else torch.full((n,), START_MIX, device=device)
        frozen = placement.frozen if placement.frozen is not None else torch.zeros(n, dtype=torch.bool, device=device)
        zone = placement.zone if placement.zone is not None else torch.zeros(n, dtype=torch.int64, device=device)
        self.xy = torch.nn.Parameter(placement.xy.clone())
        self.log_size = torch.nn.Parameter(torch.log(placement.size))
        self.theta = torch.nn.Parameter(placement.theta.clone())
        # A scene's values are kept as they are (to float32's logit range): a refit must not move
        # the instances it leaves alone. New instances start inside 0.02..0.98 (init.FRESH_RANGE).
        self.color_logit = torch.nn.Parameter(torch.logit(placement.color.clamp(*KEPT_RANGE)))
        self.opacity_logit = torch.nn.Parameter(torch.logit(opacity.clamp(*KEPT_RANGE)))
        self.mix_logit = torch.nn.Parameter(torch.logit(mix.clamp(*KEPT_RANGE)))
        self.register_buffer("sprite", placement.sprite.clone())
        self.register_buffer("frozen", frozen.clone())
        # Which instances are frozen never changes during a fit (respawns skip them, reorders keep
        # their count): asked once here, not with a wait for the device at every step.
        self.any_frozen = bool(frozen.any())
        self.register_buffer("zone", zone.clone())
        self.register_buffer("anchored", torch.ones(n, device=device))
        for name in self.ANCHORED:
            self.register_buffer(f"anchor_{name}", getattr(self, name).detach().clone())
        given = {"xy": placement.xy, "log_size": torch.log(placement.size), "theta": placement.theta,
                 "color": placement.color, "opacity": opacity, "mix": mix, "size": placement.size}
        for name, value in given.items():
            self.register_buffer(f"given_{name}", value.detach().clone())

    def render_args(self) -> dict:
        return {"xy": self.xy, "log_size": self.log_size, "theta": self.theta,
                "color": torch.sigmoid(self.color_logit), "opacity": torch.sigmoid(self.opacity_logit),
                "mix": torch.sigmoid(self.mix_logit), "sprite": self.sprite}

    def snapshot(self) -> dict:
        state = {k: v.detach().clone() for k, v in self.render_args().items()}
        if self.any_frozen:
            for name in ("xy", "theta", "color", "opacity", "mix"):
                state[name][self.frozen] = getattr(self, f"given_{name}")[self.frozen]
        state["size"] = torch.exp(state["log_size"])
        state["size"][self.frozen] = self.given_size[self.frozen]
        state["frozen"] = self.frozen.clone()
        return state

    def clamp_(self, smallest: float, largest: float, width: int, height: int, leave_canvas: bool = False) -> None:
        with torch.no_grad():
            self.log_size.clamp_(math.log(smallest), math.log(largest))
            if leave_canvas:
                margin = torch.exp(self.log_size)
                self.xy[:, 0].clamp_(-margin, width + margin)
                self.xy[:, 1].clamp_(-margin, height + margin)
            else:   # two operations instead of six, every step
                self.xy[:, 0].clamp_(0, width)
                self.xy[:, 1].clamp_(0, height)
            if self.any_frozen:
                for name in self.ANCHORED:
                    getattr(self, name)[self.frozen] = getattr(self, f"anchor_{name}")[self.frozen]

    def temporal_penalty(self, typical_size: float) -> torch.Tensor:
        """Mean squared change from the starting values of anchored instances, lengths in typical
        sprite sizes, angles as chords, colours in [0, 1]."""
        weight = self.anchored[:, None]
        moved = ((self.xy - self.anchor_xy) / typical_size) ** 2
        resized = (self.log_size - self.anchor_log_size)[:, None] ** 2
        turned = (2 * torch.sin((self.theta - self.anchor_theta) / 2))[:, None] ** 2
        recoloured = (torch.sigmoid(self.color_logit) - torch.sigmoid(self.anchor_color_logit)) ** 2
        faded = (torch.sigmoid(self.opacity_logit) - torch.sigmoid(self.anchor_opacity_logit))[:, None] ** 2
        change = torch.cat([moved, resized, turned, recoloured, faded], dim=1)
        return (weight * change).sum() / weight.sum().clamp_min(1.0)


def _optimizer(params: _Parameters, config: FitConfig, typical_size: float) -> Adam:
    groups = [
        (params.xy, config.rates.lr_position * typical_size),
        (params.log_size, config.rates.lr_log_size),
        (params.theta, config.rates.lr_angle),
        (params.color_logit, config.rates.lr_color),
        (params.opacity_logit, config.rates.lr_opacity),
        (params.mix_logit, config.rates.lr_mix),
    ]
    return Adam([{"params": [p], "lr": lr, "base_lr": lr} for p, lr in groups])


def _is_cancelled(cancel) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def scene_from_state(state: dict, width: int, height: int, sprites: list[Sprite], config: FitConfig) -> Scene:
    """A Scene of parameter tensors (xy, size, theta, color, opacity, sprite, mix, frozen)."""
    as_np = lambda t: t.detach().cpu().numpy()
    return Scene(width, height, sprites, xy=as_np(state["xy"]), size=as_np(state["size"]),
                 theta=as_np(state["theta"]), color=as_np(state["color"]), opacity=as_np(state["opacity"]),
                 sprite=as_np(state["sprite"]), mix=as_np(state["mix"]), color_mode=config.run.color_mode,
                 background=config.run.background, frozen=as_np(state["frozen"]))


class _Run:
    """What one fit works with: the target, the atlas, the derived sizes, the constraints and the loss."""

    def __init__(self, target: torch.Tensor, sprites: list[Sprite], config: FitConfig, perceptual=None,
                 previous: PreviousFrame | None = None, constraints=None, guidance=None):
        self.config, self.perceptual, self.previous, self.guidance = config, perceptual, previous, guidance
        self.still = previous.still_mask(target) if previous is not None else None
        self.device = target.device
        _, self.height, self.width = target.shape
        self.generator = torch.Generator(device=self.device).manual_seed(config.run.seed)
        fill = float(sprite_coverage(sprites, 64, device=self.device).mean())
        self.typical_size = base_size(self.width, self.height, config.run.n, fill, config.sprite_coverage())
        self.smallest = max(MIN_SIZE_PX, config.heuristics.size_min * self.typical_size)
        self.largest = max(self.smallest * 2,
                           min(max(self.width, self.height), config.heuristics.size_max * self.typical_size))
        resolution = config.run.atlas_resolution or atlas_resolution_for(3 * self.typical_size, sprites, highest=256)
        self.atlas = Atlas.shared(sprites, resolution, device=self.device)
        self.final_background = torch.tensor(config.run.background or (0.0, 0.0, 0.0), device=self.device)
        # constraints: a function of the atlas and the smallest size, built here when given as one
        self.constraints = (constraints(self.height, self.width, self.atlas, self.smallest) if callable(constraints)
                            else constraints or Constraints.none(self.height, self.width, self.atlas))
        self.target = self.constraints.masked_target(target)

    def noisy_background(self) -> torch.Tensor:
        """Fresh uniform noise behind the sprites (DiffBMP's noisy canvas), from the run's generator.
        On the CPU the native module fills it from a seed the generator draws: torch.rand draws
        one value after another on one core, about 1.5 ms a canvas at 512 px, against 0.2 ms."""
        if self.device.type != "cpu" or not hasattr(_native, "uniform_noise_cpu"):
            return torch.rand(3, self.height, self.width, generator=self.generator, device=self.device)
        seed = int(torch.randint(0, 2 ** 63 - 1, (), generator=self.generator))
        canvas = torch.empty(3, self.height, self.width)
        _native.uniform_noise_cpu(canvas.data_ptr(), canvas.numel(), seed)
        return canvas

    def render(self, params: "_Parameters", background, sigma: float, **replaced):
        """The render of the parameters (`replaced`: render arguments to use instead of theirs)."""
        return render(self.atlas, **dict(params.render_args(), **replaced), width=self.width, height=self.height,
                      color_mode=self.config.run.color_mode, background=background, sigma=sigma,
                      backend=self.config.run.backend)

    def refit_colors(self, params: "_Parameters", optimizer, sigma: float) -> None:
        """Set the colours to their least-squares values for the current geometry."""
        from .color_solve import refit_colors
        fixed = {k: v.detach() for k, v in params.render_args().items()}    # the geometry stays

        def render_with(colors, background):
            return self.render(params, background, sigma, **dict(fixed, color=colors)).image
        colors = refit_colors(render_with, self.target, fixed["color"], self.final_background)
        with torch.no_grad():
            moved = ~params.frozen
            params.color_logit[moved] = torch.logit(colors[moved])
        state = optimizer.state.get(params.color_logit)
        if state and "exp_avg" in state:
            state["exp_avg"].zero_()       # old momentum would carry the colours away from the solution

    def color_refit_due(self, iteration: int) -> bool:
        from .color_solve import LINEAR_MODES
        c = self.config
        every = c.heuristics.color_refit_every
        return (every > 0 and c.run.color_mode in LINEAR_MODES and c.constraints.mask is None
                and self.guidance is None and not c.noise_at(iteration)
                and ((iteration + 1) % every == 0 or iteration + 1 == c.schedule.iters))

    def loss(self, rendered, params: "_Parameters", background) -> torch.Tensor:
        config = self.config
        loss = torch.zeros((), device=self.device)
        if config.losses.image_weight > 0:
            target = self.constraints.loss_target(rendered.image, self.target)
            loss = config.losses.image_weight * image_loss(rendered.image, target, config.losses, self.perceptual)
        if self.guidance is not None:
            loss = loss + self.guidance.weight * self.guidance(rendered.image)
        if config.temporal.temporal_weight > 0:
            loss = loss + config.temporal.temporal_weight * params.temporal_penalty(self.typical_size)
        if config.temporal.temporal_render_weight > 0 and self.previous is not None:
            loss = loss + config.temporal.temporal_render_weight * render_change(rendered, background, self.previous,
                                                                                 self.still)
        if config.heuristics.size_range_weight > 0:
            loss = loss + config.heuristics.size_range_weight * size_range_penalty(
                params.log_size, math.log(2 * self.smallest), math.log(self.largest / 2))
        if config.heuristics.overlap_weight > 0:
            loss = loss + config.heuristics.overlap_weight * overlap_penalty(params.xy, params.log_size)
        return loss

    def clean_loss(self, params: "_Parameters") -> float:
        """The loss of the render the user will get: no noise, no blur (and the same CLIP views
        every time, so that checkpoints compare)."""
        with torch.no_grad(), (self.guidance.fixed_views() if self.guidance is not None else nullcontext()):
            return self.loss(self.render(params, self.final_background, 0.0), params, self.final_background).item()


def _step(run: _Run, params: _Parameters, optimizer, iteration: int):
    """One gradient step: render, loss, backward, Adam, and the parameters put back in range."""
    config = run.config
    with timing.stage("schedules"):
        sigma = config.sigma_at(iteration)
        background = run.noisy_background() if config.noise_at(iteration) else run.final_background
        scale = config.lr_scale_at(iteration)
    with timing.stage("forward"):
        rendered = run.render(params, background, sigma)
    with timing.stage("loss"):
        loss = run.loss(rendered, params, background)
    with timing.stage("backward"):
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
    with timing.stage("optimiser"):
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * scale
        optimizer.step()
        params.clamp_(run.smallest, run.largest, run.width, run.height, config.temporal.leave_canvas)
    return rendered, loss, sigma


class _Checkpoints:
    """The best clean evaluation (no noise, no blur) of the parameters so far, and its state.

    Once the noise and the blur are over, a step's training render is the clean render of the
    parameters it starts from: a checkpoint due just before such a step takes that step's loss
    instead of a render of its own (CLIP guidance excepted: its checkpoints use fixed views)."""

    def __init__(self, run: _Run, params: _Parameters):
        self.run = run
        self.best_state, self.best_loss = params.snapshot(), run.clean_loss(params)
        self._pending: dict | None = None    # the state whose loss the next step computes

    def due(self, params: _Parameters, next_iteration: int) -> None:
        """A checkpoint of the current parameters, before step `next_iteration`."""
        config = self.run.config
        if (next_iteration < config.schedule.iters and self.run.guidance is None
                and not config.noise_at(next_iteration) and config.sigma_at(next_iteration) == 0.0):
            self._pending = params.snapshot()
        else:
            self._offer(params.snapshot, self.run.clean_loss(params))

    def stepped(self, training_loss: torch.Tensor) -> None:
        """The loss of the step just taken, of the parameters it started from."""
        if self._pending is not None:
            state, self._pending = self._pending, None
            self._offer(lambda: state, float(training_loss.detach()))

    def finish(self, params: _Parameters) -> dict:
        """The best state, once the loop has stopped (a pending checkpoint is evaluated here)."""
        if self._pending is not None:
            self._pending = None
            self._offer(params.snapshot, self.run.clean_loss(params))   # the parameters have not moved since
        return self.best_state

    def _offer(self, state: Callable[[], dict], loss: float) -> None:
        if loss < self.best_loss:
            self.best_state, self.best_loss = state(), loss


def _heuristics(run: _Run, params: _Parameters, optimizer, rendered, iteration: int, sigma: float, on_top: bool,
                uses_sprite_colors: bool) -> None:
    """Respawns, sprite choice, the constraints and the colour refit, where their schedules say so."""
    config = run.config
    if config.respawn_due(iteration):
        respawn_invisible(params, optimizer, rendered.visibility, rendered.image,
                          run.constraints.loss_target(rendered.image, run.target), run.atlas, run.generator,
                          uses_sprite_colors, on_top, run.constraints.zones)
    if config.sprite_choice_due(iteration):
        rechoose_sprites(params, rendered.visibility, rendered.image,
                         run.constraints.loss_target(rendered.image, run.target), run.atlas, run.constraints.zones)
    run.constraints.project_(params)
    if run.color_refit_due(iteration):
        run.refit_colors(params, optimizer, sigma)


def optimise(target: torch.Tensor, sprites: list[Sprite], config: FitConfig,
             progress: Callable[[FitProgress], None] | None = None, cancel=None, perceptual=None,
             previous: PreviousFrame | None = None, constraints=None, guidance=None,
             memory: OptimizerMemory | None = None) -> Scene:
    """Fit `config.run.n` instances of `sprites` to `target` (3, H, W) and return the scene.

    The result is the best of several clean checkpoints (the initial placement among them), so a
    fit never ends worse than it started. `cancel` (a threading.Event or a callable) stops the run
    early with the best parameters seen so far. `previous`: the previous video frame, for the
    rendered-change term of temporal coherence. `constraints`: a fitting.constraints.Constraints, or
    a function (height, width, atlas, smallest size) -> Constraints. `guidance`: a loss on the
    render added to the image loss (CLIP text guidance)."""
    config.validate()
    if chosen_strategy(config) == "search":
        config = refining(config)
    check_fit(target.shape[2], target.shape[1], config.run.n, target.device)
    run = _Run(target, sprites, config, perceptual, previous, constraints, guidance)
    uses_sprite_colors = config.run.color_mode != "tint"
    placement = initial_placement(config, run.target, run.atlas, run.typical_size, run.generator, uses_sprite_colors,
                                  run.constraints)
    params = _Parameters(placement, config.starting_opacity()).to(run.device)
    if previous is not None and previous.pull_weight is not None:
        params.anchored *= previous.pull_weight.to(run.device)
    run.constraints.project_(params)
    optimizer = _optimizer(params, config, run.typical_size)
    if memory is not None:
        memory.restore(optimizer, params)
    # A fit from a scene keeps every instance at its index (its id for "lock" and the hosts' layer
    # names): respawned ones stay in their slots instead of going to the top.
    on_top = config.heuristics.respawn_on_top and config.run.init != "scene"
    checkpoints = _Checkpoints(run, params)
    every = max(1, config.schedule.iters // max(1, config.schedule.checkpoints))
    start = time.perf_counter()
    for iteration in range(config.schedule.iters):
        if _is_cancelled(cancel):
            break
        timing.mark("first iteration")
        with timing.stage("iterations"):
            rendered, loss, sigma = _step(run, params, optimizer, iteration)
            with timing.stage("heuristics"):
                checkpoints.stepped(loss)
                _heuristics(run, params, optimizer, rendered, iteration, sigma, on_top, uses_sprite_colors)
                if (iteration + 1) % every == 0 or iteration + 1 == config.schedule.iters or _is_cancelled(cancel):
                    checkpoints.due(params, iteration + 1)
            if progress is not None:
                with timing.stage("progress"):
                    progress(FitProgress(iteration + 1, config.schedule.iters, loss, rendered.image, target, sigma,
                                         time.perf_counter() - start,
                                         lambda: scene_from_state(params.snapshot(), run.width, run.height, sprites,
                                                                  config)))
    best_state = checkpoints.finish(params)
    if memory is not None:
        memory.keep(optimizer, params)
    return scene_from_state(best_state, run.width, run.height, sprites, config)
