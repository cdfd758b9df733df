"""The baselines SpriteFit's quality is measured against, run in the same process:

    naive    the fit anyone would write by hand: the dense pure-torch renderer, random placement,
             Adam on every parameter, mean squared error, the final background behind the sprites
    diffbmp  DiffBMP's published default recipe on our renderer: structure-aware init, radii kept
             in 2..50 px, alpha at most 0.5 (starting at 0.5 sigmoid(-2)), linear blur 2 -> 0 over the
             whole run, Adam at 0.1 with DiffBMP's per-parameter gains (x, y, radius 10, visibility
             1.5 x 1000/N, angle 1, colour 1) and exponential decay 0.99 a step, MSE (plus 0.2 VGG-16
             perceptual when $SPRITEFIT_VGG_WEIGHTS names the weights)

Both return a Scene, evaluated like SpriteFit's own result.
"""
from __future__ import annotations

import math
import os

import torch

from ..render import atlas_resolution_for, render
from ..scene import Scene
from ..sprites import Atlas
from ..fitting.config import base_size, make_config
from ..fitting.loop import scene_from_state

DIFFBMP_LR = 0.1
DIFFBMP_GAINS = {"xy": 10.0, "radius": 10.0, "visibility": 1.5, "theta": 1.0, "color": 1.0}
DIFFBMP_DECAY = 0.99
DIFFBMP_RADII = (2.0, 50.0)
DIFFBMP_ALPHA_MAX = 0.5
DIFFBMP_VISIBILITY_START = -2.0


def _atlas(sprites, width: int, height: int, n: int) -> Atlas:
    typical = base_size(width, height, n)
    return Atlas(sprites, atlas_resolution_for(3 * typical, sprites, highest=256))


def _scene(width, height, sprites, color_mode, **state) -> Scene:
    n = state["xy"].shape[0]
    state.update(mix=torch.ones(n), frozen=torch.zeros(n, dtype=torch.bool))
    config = make_config(color_mode=color_mode, background=(1.0, 1.0, 1.0))
    return scene_from_state(state, width, height, sprites, config)


def naive_fit(target: torch.Tensor, sprites, n: int, iters: int, color_mode: str = "tint", seed: int = 0,
              backend: str = "reference") -> Scene:
    """target: (3, H, W) in [0, 1]. backend: the dense renderer the recipe names ("reference"), or
    the native one, which computes the same images and gradients far faster (bench versus uses it
    for the naive fit's quality, and times the dense renderer for its wall time)."""
    _, height, width = target.shape
    generator = torch.Generator().manual_seed(seed)
    uniform = lambda *shape: torch.rand(*shape, generator=generator)
    atlas = _atlas(sprites, width, height, n)
    scale = float(max(width, height))
    typical = base_size(width, height, n)
    position = (uniform(n, 2) * torch.tensor([width, height]) / scale).requires_grad_()
    log_size = torch.log(typical * (0.5 + uniform(n))).requires_grad_()
    theta = ((uniform(n) * 2 - 1) * math.pi).requires_grad_()
    color_logit = torch.logit(uniform(n, 3).clamp(0.02, 0.98)).requires_grad_()
    opacity_logit = torch.zeros(n).requires_grad_()
    sprite = torch.randint(len(sprites), (n,), generator=generator)
    optimizer = torch.optim.Adam([{"params": [position], "lr": 0.01},
                                  {"params": [log_size, theta, color_logit, opacity_logit], "lr": 0.05}])
    white = torch.ones(3)
    for _ in range(iters):
        image = render(atlas, position * scale, log_size, theta, torch.sigmoid(color_logit),
                       torch.sigmoid(opacity_logit), sprite, width=width, height=height, color_mode=color_mode,
                       background=white, backend=backend).image
        loss = torch.mean((image - target) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return _scene(width, height, sprites, color_mode, xy=position * scale, size=torch.exp(log_size), theta=theta,
                  color=torch.sigmoid(color_logit), opacity=torch.sigmoid(opacity_logit), sprite=sprite)


def diffbmp_fit(target: torch.Tensor, sprites, n: int, iters: int, color_mode: str = "tint", seed: int = 0) -> Scene:
    """target: (3, H, W) in [0, 1]."""
    from ..fitting.constraints import Constraints
    from ..fitting.init import initial_placement
    _, height, width = target.shape
    config = make_config("balanced", n=n, iters=iters, color_mode=color_mode, seed=seed, init="structure")
    atlas = _atlas(sprites, width, height, n)
    generator = torch.Generator().manual_seed(seed)
    placement = initial_placement(config, target, atlas, base_size(width, height, n), generator,
                                  color_mode != "tint", Constraints.none(height, width, atlas))
    xy = placement.xy.clone().requires_grad_()
    radius = placement.size.clamp(*DIFFBMP_RADII).clone().requires_grad_()
    theta = placement.theta.clone().requires_grad_()
    color_logit = torch.logit(placement.color.clamp(0.02, 0.98)).requires_grad_()
    visibility = torch.full((n,), DIFFBMP_VISIBILITY_START).requires_grad_()
    gains = DIFFBMP_GAINS
    optimizer = torch.optim.Adam([
        {"params": [xy], "lr": DIFFBMP_LR * gains["xy"]},
        {"params": [radius], "lr": DIFFBMP_LR * gains["radius"]},
        {"params": [visibility], "lr": DIFFBMP_LR * gains["visibility"] * 1000.0 / n},
        {"params": [theta], "lr": DIFFBMP_LR * gains["theta"]},
        {"params": [color_logit], "lr": DIFFBMP_LR * gains["color"]}])
    decay = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=DIFFBMP_DECAY)
    perceptual = _vgg()
    white = torch.ones(3)
    for iteration in range(iters):
        sigma = 2.0 * (1 - iteration / max(1, iters))
        image = render(atlas, xy, torch.log(radius), theta, torch.sigmoid(color_logit),
                       DIFFBMP_ALPHA_MAX * torch.sigmoid(visibility), placement.sprite, width=width, height=height,
                       color_mode=color_mode, background=white, sigma=sigma).image
        loss = torch.mean((image - target) ** 2)
        if perceptual is not None:
            loss = loss + 0.2 * perceptual(image, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        decay.step()
        with torch.no_grad():
            radius.clamp_(*DIFFBMP_RADII)
            xy[:, 0].clamp_(0, width)
            xy[:, 1].clamp_(0, height)
    return _scene(width, height, sprites, color_mode, xy=xy, size=radius, theta=theta, color=torch.sigmoid(color_logit),
                  opacity=DIFFBMP_ALPHA_MAX * torch.sigmoid(visibility), sprite=placement.sprite)


def _vgg():
    """DiffBMP adds 0.2 VGG-16 perceptual loss; only where the weights are on this machine."""
    if not os.environ.get("SPRITEFIT_VGG_WEIGHTS"):
        return None
    from ..fitting.perceptual import PerceptualLoss
    return PerceptualLoss.from_file()
