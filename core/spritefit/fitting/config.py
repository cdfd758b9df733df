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
from ..options import (GROUP_OF, OPTIONS, PRESETS, Constraints, Heuristics, LearningRates,
                       LossWeights, RunOptions, Schedule, Temporal)

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
    """The settings of one fit, in the option groups of spritefit.options (which says what each
    one means); make_config builds it from flat options and a preset."""
    run: RunOptions = field(default_factory=RunOptions)
    schedule: Schedule = field(default_factory=Schedule)
    rates: LearningRates = field(default_factory=LearningRates)
    heuristics: Heuristics = field(default_factory=Heuristics)
    constraints: Constraints = field(default_factory=Constraints)
    temporal: Temporal = field(default_factory=Temporal)
    losses: LossWeights = field(default_factory=LossWeights)
    given: frozenset = frozenset()     # the options the user set (make_config): automatic overrides keep them

    def option(self, name: str):
        """An option's value by its flat name."""
        return getattr(getattr(self, GROUP_OF[name]), name)

    def with_options(self, **values) -> "FitConfig":
        """A copy with these options (flat names) changed; `given` is kept."""
        groups = {}
        for name, value in values.items():
            group = GROUP_OF.get(name)
            if group is None:
                raise SpriteFitError(f"unknown fit option {name!r}")
            groups.setdefault(group, {})[name] = value
        return replace(self, **{group: replace(getattr(self, group), **changes) for group, changes in groups.items()})

    def validate(self) -> None:
        for name, option in OPTIONS.items():
            option.check(self.option(name), f"fit option {name!r}")
        if self.run.init == "scene" and self.run.init_scene is None:
            raise SpriteFitError("init 'scene' needs a scene to start from")
        check_backend(self.run.backend)

    def sprite_coverage(self) -> float:
        if self.heuristics.coverage is not None:
            return self.heuristics.coverage
        return ORIGINAL_COVERAGE if self.run.color_mode == "original" else COVERAGE

    def starting_opacity(self) -> float:
        if self.heuristics.start_opacity is not None:
            return self.heuristics.start_opacity
        return ORIGINAL_START_OPACITY if self.run.color_mode == "original" else START_OPACITY

    def sigma_at(self, iteration: int) -> float:
        s = self.schedule
        if s.blur_schedule == "none":
            return 0.0
        t = min(1.0, iteration / max(1.0, s.blur_end_fraction * s.iters))
        if s.blur_schedule == "linear":        # DiffBMP's schedule
            return s.blur_start * (1 - t)
        if s.blur_schedule == "cosine":        # stays soft longer, then sharpens
            return s.blur_start * 0.5 * (1 + math.cos(math.pi * t))
        # exponential: halves every 15% of the blur phase, reaching 0 exactly at its end
        return s.blur_start * (2 ** (-t / 0.15) - 2 ** (-1 / 0.15)) / (1 - 2 ** (-1 / 0.15))

    def noise_at(self, iteration: int) -> bool:
        s = self.schedule
        return s.noisy_canvas and (self.run.background is None or iteration < s.noise_until * s.iters)

    def respawn_due(self, iteration: int) -> bool:
        h = self.heuristics
        return (h.respawn_every > 0 and (iteration + 1) % h.respawn_every == 0
                and iteration < h.respawn_until * self.schedule.iters)

    def sprite_choice_due(self, iteration: int) -> bool:
        h = self.heuristics
        return (h.sprite_choice_every > 0 and self.run.color_mode == "original"
                and (iteration + 1) % h.sprite_choice_every == 0 and iteration < h.respawn_until * self.schedule.iters)

    def lr_scale_at(self, iteration: int) -> float:
        progress = iteration / max(1, self.schedule.iters)
        final = self.rates.lr_final_fraction
        return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))


class FitOverride(UserWarning):
    """An automatic setting replaced some defaults of this fit (never an option the user set)."""


def overridden(config: FitConfig, why: str, **changes) -> FitConfig:
    """`config` with `changes` applied to the options the user did not set, and a FitOverride
    warning naming the ones that changed (the CLI prints it as a note, the worker sends it as a
    `warning` event)."""
    applied = {name: value for name, value in changes.items()
               if name not in config.given and config.option(name) != value}
    if applied:
        listed = ", ".join(f"{name}={_shown(value)}" for name, value in applied.items())
        kept = sorted(set(changes) & config.given)
        warnings.warn(FitOverride(f"{why}: {listed}" + (f" (kept as you set: {', '.join(kept)})" if kept else "")),
                      stacklevel=3)
    return config.with_options(**applied)


def _shown(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


LEARNING_RATES = tuple(f.name for f in fields(LearningRates) if f.name != "lr_final_fraction")


def scaled_learning_rates(config: FitConfig, factor: float) -> dict:
    """The config's learning rates times `factor`, as fit options: fits that start near their
    answer (after a search, a video's later frames) take smaller steps."""
    return {name: factor * config.option(name) for name in LEARNING_RATES}


def make_config(preset: str = "balanced", **options) -> FitConfig:
    """FitConfig for a preset, with any option (flat names: spritefit.options) set by `options`.
    None means unset (the preset's or the default value), except for options where None is a
    value of its own (background: transparent). A background may be given by name or #rrggbb."""
    OPTIONS["preset"].check(preset, "fit option 'preset'")
    unknown = sorted(set(options) - set(OPTIONS) - {"preset"})
    if unknown:
        raise SpriteFitError(f"unknown fit option {unknown[0]!r}")
    options = {name: value for name, value in options.items() if value is not None or OPTIONS[name].nullable}
    options = {name: OPTIONS[name].check(value, f"fit option {name!r}") for name, value in options.items()}
    options["preset"] = preset
    config = FitConfig(given=frozenset(options) - {"preset"}).with_options(**{**PRESETS[preset], **options})
    config.validate()
    return config
