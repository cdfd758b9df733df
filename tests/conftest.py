"""Shared helpers: tiny sprites and scenes built in memory."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from spritefit.images import encode_png
from spritefit.sprites import Atlas, Sprite, sprite_from_bytes


def make_sprite(rgba: np.ndarray, name: str = "sprite") -> Sprite:
    """A sprite from an (h, w, 4) float array (values should be multiples of 1/255)."""
    sprite = sprite_from_bytes(name, encode_png(rgba), {"path": f"{name}.png"})
    assert sprite is not None
    return sprite


def solid_sprite(color=(1.0, 1.0, 1.0), size: int = 8, name: str = "solid") -> Sprite:
    rgba = np.ones((size, size, 4), np.float32)
    rgba[..., :3] = color
    return make_sprite(rgba, name)


def random_sprite(seed: int, size: int = 8, name: str = "random") -> Sprite:
    rng = np.random.default_rng(seed)
    rgba = rng.integers(0, 256, (size, size, 4)).astype(np.float32) / 255
    rgba[..., 3] = 1.0
    return make_sprite(rgba, name)


def instances(n: int, **overrides) -> dict:
    """Renderer arguments for n instances, defaults overridable per name (lists or tensors)."""
    args = {"xy": torch.zeros(n, 2), "log_size": torch.zeros(n), "theta": torch.zeros(n),
            "color": torch.ones(n, 3), "opacity": torch.ones(n), "sprite": torch.zeros(n, dtype=torch.long),
            "mix": torch.full((n,), 0.5)}
    for key, value in overrides.items():
        args[key] = torch.as_tensor(value, dtype=args[key].dtype).reshape(args[key].shape)
    return args


@pytest.fixture
def shapes_atlas():
    from spritefit.sprites import load_sprites
    return Atlas(load_sprites("shapes"), resolution=32)


# --- fuzz case counts (tests/reliability) -------------------------------------------------------

FUZZ_CASES: Counter = Counter()


@pytest.fixture
def count_case():
    """Call with the fuzz target's name once per case it tries; the counts close the run."""
    return lambda target: FUZZ_CASES.update([target])


def pytest_terminal_summary(terminalreporter):
    if FUZZ_CASES:
        terminalreporter.write_sep("-", "fuzz cases run")
        for target, count in sorted(FUZZ_CASES.items()):
            terminalreporter.write_line(f"{target:28s} {count:6d}")
