"""Fit settings: presets, and hyper-parameters derived from the canvas, N and the sprite set, so
that a user chooses only N and a preset.

Lengths are in units of the *typical sprite size* (`base_size`: the half-size at which N sprites
cover the canvas COVERAGE times), so the same preset behaves alike at 200 or 5000 sprites, on a
256 px or a 2048 px canvas.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, fields, replace

from ..errors import SpriteFitError
from ..native_module import check_backend
from ..render import BACKENDS
from ..render.common import COLOR_MODES
from .losses import LossWeights

INIT_STRATEGIES = ("auto", "structure", "search", "random", "grid", "scene")   # auto: search for few sprites
BLUR_SCHEDULES = ("linear", "cosine", "exponential", "none")
# Sum of the instances' box areas relative to the canvas: > 1 so sprites overlap and no gap is
# left once their transparent corners are counted.
COVERAGE = 2.5
START_OPACITY = 0.9   # where new instances' opacity starts
# In original colours an instance's colour is its sprite's own: colours between the sprites' come
# only from translucent sprites overlapping, so more of them overlap at every pixel, and they start
# half transparent (both chosen on the tuning set: docs/versus.md).
ORIGINAL_COVERAGE = 6.0
ORIGINAL_START_OPACITY = 0.5
TYPICAL_FILL = 0.75   # fraction of its square box a typical sprite covers (a disc: 0.79)


def base_size(width: int, height: int, n: int, fill: float = TYPICAL_FILL, coverage: float = COVERAGE) -> float:
    """Half-size that lets n sprites cover the canvas `coverage` times. Sparse sprites (rings,
    dabs: low `fill`) are drawn larger, dense ones (squares) smaller, within a factor of 1.5."""
    density = math.sqrt(TYPICAL_FILL / min(max(fill, 1e-3), 1.0))
    return 0.5 * math.sqrt(coverage * width * height / n) * min(max(density, 1 / 1.5), 1.5)


@dataclass
class FitConfig:
    n: int = 500
    iters: int = 300
    preset: str = "balanced"
    color_mode: str = "tint"
    init: str = "auto"
    init_scene: object = None          # a Scene to start from, for init="scene"
    seed: int = 0
    device: str = "cpu"
    backend: str = "auto"              # renderer: "auto"/"native" tile renderer or "reference"
    atlas_resolution: int = 0          # 0: from the largest drawn size
    background: tuple[float, float, float] | None = (1.0, 1.0, 1.0)   # final render; None: transparent
    noisy_canvas: bool = True          # fresh uniform noise behind the sprites every iteration...
    noise_until: float = 0.25          # ...until this fraction of the run, then the final background
    blur_schedule: str = "linear"      # how the soft-rasterisation sigma goes from blur_start to 0
    blur_start: float = 2.0            # sigma at iteration 0 (texels of each instance's mip level)
    blur_end_fraction: float = 0.6     # sigma reaches 0 at this fraction of the run (DiffBMP: 1.0); the
                                       # sharp tail gains 0.6 dB at the quality preset (docs/quality.md)
    losses: LossWeights = field(default_factory=LossWeights)
    size_range_weight: float = 0.0     # soft penalty on sizes outside [size_min, size_max]
    overlap_weight: float = 0.0        # repulsion between nearby instances' centres
    coverage: float | None = None      # sum of the sprites' box areas over the canvas's (sets their typical
                                       # size); None: COVERAGE, ORIGINAL_COVERAGE in original colours
    start_opacity: float | None = None   # new instances' opacity; None: START_OPACITY, ORIGINAL_START_OPACITY
    lr_position: float = 0.15          # times the typical sprite size, per iteration
    lr_log_size: float = 0.08          # chosen on the tuning set at 100, 300 and 800 iterations
    lr_angle: float = 0.15             # (docs/versus.md); 0.02 / 0.03 / 0.05 / 0.05 / 0.1 before
    lr_color: float = 0.1
    lr_opacity: float = 0.15
    lr_final_fraction: float = 0.3     # learning rates decay (cosine) to this fraction
    size_min: float = 1 / 12           # sizes kept within [size_min, size_max] x the typical size
    size_max: float = 6.0
    respawn_every: int = 20            # iterations between respawns of invisible instances (0: never)
    respawn_until: float = 0.75        # fraction of the run after which nothing is respawned
    respawn_on_top: bool = True        # respawned instances go to the top (False: keep their slot,
                                       # so instance i stays instance i from frame to frame)
    sprite_choice_every: int = 10      # original colours: each instance's sprite chosen again by colour every
                                       # this many iterations, while respawns run (0: never; fitting/sprite_choice.py)
    color_refit_every: int = 0         # tint/multiply: least-squares colours every this many iterations
                                       # once the noisy canvas is over (0: never; fitting/color_solve.py)
    checkpoints: int = 10              # clean evaluations (no noise, no blur) kept as "best so far"
    image_weight: float = 1.0          # of the image loss; 0 when a prompt alone guides the fit
    mask: object = None                # loss weights: an image (path) or (h, w) array in [0, 1]
    keep_in: object = None             # sprite centres stay inside this mask...
    keep_out: object = None            # ...and outside this one
    keep_footprint: bool = False       # keep-in, keep-out and regions hold for whole sprites
    regions: tuple = ()                # fitting.constraints.Region: parts of the canvas with sprites of their own
    temporal_weight: float = 0.0       # video: pull instances towards where the previous frame had them
    temporal_render_weight: float = 0.0   # video: keep the render where the target stood still
    leave_canvas: bool = False         # video: instances may move off the canvas by their size (with the
                                       # picture, in a pan) instead of piling up on its border
    given: frozenset = frozenset()     # the options the user set (make_config): automatic overrides keep them

    def validate(self) -> None:
        if self.n <= 0:
            raise SpriteFitError(f"the number of sprites must be positive, not {self.n}")
        if self.coverage is not None and not self.coverage > 0:
            raise SpriteFitError(f"the sprites' coverage must be positive, not {self.coverage}")
        if self.start_opacity is not None and not 0 < self.start_opacity <= 1:
            raise SpriteFitError(f"the starting opacity must be in (0, 1], not {self.start_opacity}")
        if self.iters < 0:
            raise SpriteFitError(f"the number of iterations cannot be negative ({self.iters})")
        for name, value, allowed in (("colour mode", self.color_mode, COLOR_MODES),
                                     ("backend", self.backend, BACKENDS), ("init", self.init, INIT_STRATEGIES),
                                     ("blur schedule", self.blur_schedule, BLUR_SCHEDULES),
                                     ("preset", self.preset, tuple(PRESETS))):
            if value not in allowed:
                raise SpriteFitError(f"unknown {name} {value!r} (choose {', '.join(allowed)})")
        if self.init == "scene" and self.init_scene is None:
            raise SpriteFitError("init 'scene' needs a scene to start from")
        check_backend(self.backend)

    def sprite_coverage(self) -> float:
        if self.coverage is not None:
            return self.coverage
        return ORIGINAL_COVERAGE if self.color_mode == "original" else COVERAGE

    def starting_opacity(self) -> float:
        if self.start_opacity is not None:
            return self.start_opacity
        return ORIGINAL_START_OPACITY if self.color_mode == "original" else START_OPACITY

    def sigma_at(self, iteration: int) -> float:
        if self.blur_schedule == "none":
            return 0.0
        t = min(1.0, iteration / max(1.0, self.blur_end_fraction * self.iters))
        if self.blur_schedule == "linear":        # DiffBMP's schedule
            return self.blur_start * (1 - t)
        if self.blur_schedule == "cosine":        # stays soft longer, then sharpens
            return self.blur_start * 0.5 * (1 + math.cos(math.pi * t))
        # exponential: halves every 15% of the blur phase, reaching 0 exactly at its end
        return self.blur_start * (2 ** (-t / 0.15) - 2 ** (-1 / 0.15)) / (1 - 2 ** (-1 / 0.15))

    def noise_at(self, iteration: int) -> bool:
        return self.noisy_canvas and (self.background is None or iteration < self.noise_until * self.iters)

    def respawn_due(self, iteration: int) -> bool:
        return (self.respawn_every > 0 and (iteration + 1) % self.respawn_every == 0
                and iteration < self.respawn_until * self.iters)

    def sprite_choice_due(self, iteration: int) -> bool:
        return (self.sprite_choice_every > 0 and self.color_mode == "original"
                and (iteration + 1) % self.sprite_choice_every == 0 and iteration < self.respawn_until * self.iters)

    def lr_scale_at(self, iteration: int) -> float:
        progress = iteration / max(1, self.iters)
        return self.lr_final_fraction + (1 - self.lr_final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))


class FitOverride(UserWarning):
    """An automatic setting replaced some defaults of this fit (never an option the user set)."""


def overridden(config: FitConfig, why: str, **changes) -> FitConfig:
    """`config` with `changes` applied to the fields the user did not set, and a FitOverride
    warning naming the ones that changed (the CLI prints it as a note, the worker sends it as a
    `warning` event)."""
    applied = {name: value for name, value in changes.items()
               if name not in config.given and getattr(config, name) != value}
    if applied:
        listed = ", ".join(f"{name}={_shown(value)}" for name, value in applied.items())
        kept = sorted(set(changes) & config.given)
        warnings.warn(FitOverride(f"{why}: {listed}" + (f" (kept as you set: {', '.join(kept)})" if kept else "")),
                      stacklevel=3)
    return replace(config, **applied)


def _shown(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


LEARNING_RATES = ("lr_position", "lr_log_size", "lr_angle", "lr_color", "lr_opacity")


def scaled_learning_rates(config: FitConfig, factor: float) -> dict:
    """The config's learning rates times `factor`, as fit options: fits that start near their
    answer (after a search, a video's later frames) take smaller steps."""
    return {name: factor * getattr(config, name) for name in LEARNING_RATES}


# What each preset changes from FitConfig's defaults (the balanced preset).
PRESETS: dict[str, dict] = {
    "fast": {"iters": 100, "respawn_every": 10},
    "balanced": {},
    "quality": {"iters": 800, "respawn_every": 25},
}


def make_config(preset: str = "balanced", **options) -> FitConfig:
    """FitConfig for a preset, with any field overridden by `options`. None for a field the
    presets set (iters, ...) or a loss weight means: the preset's value."""
    if preset not in PRESETS:
        raise SpriteFitError(f"unknown preset {preset!r} (choose {', '.join(PRESETS)})")
    known = {f.name for f in fields(FitConfig)} - {"given"}
    unknown = sorted(set(options) - known - set(vars(LossWeights())))
    if unknown:
        raise SpriteFitError(f"unknown fit option {unknown[0]!r}")
    preset_fields = {name for values in PRESETS.values() for name in values}
    options = {k: v for k, v in options.items() if v is not None or k not in preset_fields | set(vars(LossWeights()))}
    config = FitConfig(preset=preset, **PRESETS[preset],
                       given=frozenset(name for name, value in options.items() if value is not None))
    losses = {k: options.pop(k) for k in list(options) if k in vars(LossWeights())}
    config = replace(config, **options)
    if losses:
        config.losses = replace(config.losses, **losses)
    config.validate()
    return config
