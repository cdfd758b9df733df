"""The optimisation loop: Adam over every instance's parameters through the renderer."""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from ..errors import SpriteFitError
from ..render import BACKENDS, render
from ..render.common import COLOR_MODES
from ..scene import Scene
from ..sprites import Atlas, Sprite
from .init import INIT_STRATEGIES, initial_placement
from .losses import image_loss, psnr
from .respawn import respawn_invisible

MIN_SIZE_PX = 0.5   # smallest half-size an instance may shrink to


@dataclass
class FitConfig:
    n: int = 500
    iters: int = 300
    color_mode: str = "tint"
    init: str = "structure"
    seed: int = 0
    device: str = "cpu"
    backend: str = "auto"              # renderer: "auto"/"native" tile renderer or "reference"
    atlas_resolution: int = 128
    background: tuple[float, float, float] | None = (1.0, 1.0, 1.0)   # final render; None: transparent
    noisy_canvas: bool = True          # fresh uniform noise behind the sprites every iteration...
    noise_until: float = 0.25          # ...until this fraction of the run, then the final background
    blur_start: float = 2.0            # soft-rasterisation sigma at iteration 0 (texels of the mip level)
    blur_end_fraction: float = 0.6     # sigma reaches 0 at this fraction of the run
    ssim_weight: float = 0.2
    lr_position: float = 0.004         # times the canvas' longer side, per iteration
    lr_log_size: float = 0.02
    lr_angle: float = 0.03
    lr_color: float = 0.05
    lr_opacity: float = 0.05
    lr_final_fraction: float = 0.1     # learning rates decay (cosine) to this fraction
    respawn_every: int = 20            # iterations between respawns of invisible instances (0: never)
    respawn_until: float = 0.75        # fraction of the run after which nothing is respawned

    def validate(self) -> None:
        if self.n <= 0:
            raise SpriteFitError(f"the number of sprites must be positive, not {self.n}")
        if self.iters < 0:
            raise SpriteFitError(f"the number of iterations cannot be negative ({self.iters})")
        if self.color_mode not in COLOR_MODES:
            raise SpriteFitError(f"unknown colour mode {self.color_mode!r} (choose {', '.join(COLOR_MODES)})")
        if self.backend not in BACKENDS:
            raise SpriteFitError(f"unknown backend {self.backend!r} (choose {', '.join(BACKENDS)})")
        if self.init not in INIT_STRATEGIES:
            raise SpriteFitError(f"unknown init {self.init!r} (choose {', '.join(INIT_STRATEGIES)})")

    def sigma_at(self, iteration: int) -> float:
        end = max(1.0, self.blur_end_fraction * self.iters)
        return self.blur_start * max(0.0, 1.0 - iteration / end)

    def respawn_due(self, iteration: int) -> bool:
        return (self.respawn_every > 0 and (iteration + 1) % self.respawn_every == 0
                and iteration < self.respawn_until * self.iters)

    def lr_scale_at(self, iteration: int) -> float:
        progress = iteration / max(1, self.iters)
        return self.lr_final_fraction + (1 - self.lr_final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class FitProgress:
    iteration: int        # iterations done
    total: int
    loss: float
    psnr: float           # of the training render (noisy canvas) against the target
    sigma: float
    elapsed: float


class _Parameters(torch.nn.Module):
    """Unconstrained optimisation variables; colours and opacities through a sigmoid."""

    def __init__(self, placement, opacity: float = 0.9, mix: float = 0.5):
        super().__init__()
        n = placement.xy.shape[0]
        device = placement.xy.device
        self.xy = torch.nn.Parameter(placement.xy.clone())
        self.log_size = torch.nn.Parameter(torch.log(placement.size))
        self.theta = torch.nn.Parameter(placement.theta.clone())
        self.color_logit = torch.nn.Parameter(torch.logit(placement.color.clamp(0.02, 0.98)))
        self.opacity_logit = torch.nn.Parameter(torch.full((n,), math.log(opacity / (1 - opacity)), device=device))
        self.mix_logit = torch.nn.Parameter(torch.full((n,), math.log(mix / (1 - mix)), device=device))
        self.register_buffer("sprite", placement.sprite.clone())

    def render_args(self) -> dict:
        return {"xy": self.xy, "log_size": self.log_size, "theta": self.theta,
                "color": torch.sigmoid(self.color_logit), "opacity": torch.sigmoid(self.opacity_logit),
                "mix": torch.sigmoid(self.mix_logit), "sprite": self.sprite}

    def snapshot(self) -> dict:
        return {k: v.detach().clone() for k, v in self.render_args().items()}

    def clamp_(self, width: int, height: int) -> None:
        with torch.no_grad():
            self.log_size.clamp_(math.log(MIN_SIZE_PX), math.log(max(width, height)))
            self.xy[:, 0].clamp_(0, width)
            self.xy[:, 1].clamp_(0, height)


def _optimizer(params: _Parameters, config: FitConfig, width: int, height: int) -> torch.optim.Adam:
    groups = [
        (params.xy, config.lr_position * max(width, height)),
        (params.log_size, config.lr_log_size),
        (params.theta, config.lr_angle),
        (params.color_logit, config.lr_color),
        (params.opacity_logit, config.lr_opacity),
        (params.mix_logit, config.lr_color),
    ]
    return torch.optim.Adam([{"params": [p], "lr": lr, "base_lr": lr} for p, lr in groups])


def _is_cancelled(cancel) -> bool:
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())


def _to_scene(state: dict, width: int, height: int, sprites: list[Sprite], config: FitConfig) -> Scene:
    as_np = lambda t: t.detach().cpu().numpy()
    return Scene(width, height, sprites, xy=as_np(state["xy"]), size=np.exp(as_np(state["log_size"])),
                 theta=as_np(state["theta"]), color=as_np(state["color"]), opacity=as_np(state["opacity"]),
                 sprite=as_np(state["sprite"]), mix=as_np(state["mix"]), color_mode=config.color_mode,
                 background=config.background)


def optimise(target: torch.Tensor, sprites: list[Sprite], config: FitConfig,
             progress: Callable[[FitProgress], None] | None = None, cancel=None) -> Scene:
    """Fit `config.n` instances of `sprites` to `target` (3, H, W) and return the scene.

    `cancel` (a threading.Event or a callable) stops the run early; the best parameters seen so
    far are returned."""
    config.validate()
    device = target.device
    _, height, width = target.shape
    generator = torch.Generator(device=device).manual_seed(config.seed)
    atlas = Atlas(sprites, config.atlas_resolution, device=device)
    uses_sprite_colors = config.color_mode != "tint"
    placement = initial_placement(config.init, target, atlas, config.n, generator, uses_sprite_colors)
    params = _Parameters(placement).to(device)
    optimizer = _optimizer(params, config, width, height)
    best_state, best_loss = params.snapshot(), math.inf
    start = time.perf_counter()
    for iteration in range(config.iters):
        if _is_cancelled(cancel):
            break
        sigma = config.sigma_at(iteration)
        if config.noisy_canvas and (iteration < config.noise_until * config.iters or config.background is None):
            background = torch.rand(3, height, width, generator=generator, device=device)
        else:
            background = torch.tensor(config.background or (0.0, 0.0, 0.0), device=device)
        rendered = render(atlas, **params.render_args(), width=width, height=height,
                          color_mode=config.color_mode, background=background, sigma=sigma,
                          backend=config.backend)
        image = rendered.image
        loss = image_loss(image, target, config.ssim_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        scale = config.lr_scale_at(iteration)
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * scale
        # Keep the state this loss belongs to: the "best so far" once blur no longer biases the loss.
        if sigma == 0.0 and loss.item() < best_loss:
            best_state, best_loss = params.snapshot(), loss.item()
        optimizer.step()
        params.clamp_(width, height)
        if config.respawn_due(iteration):
            respawn_invisible(params, optimizer, rendered.visibility, image, target, atlas, generator,
                              uses_sprite_colors)
        if progress is not None:
            progress(FitProgress(iteration + 1, config.iters, loss.item(), psnr(image, target), sigma,
                                 time.perf_counter() - start))
    final_state = params.snapshot() if best_loss == math.inf else best_state
    return _to_scene(final_state, width, height, sprites, config)
