"""`spritefit bench few`: a target made of k copies of one sprite (scaled, turned, tinted, apart
from each other on a plain grey background), fitted with N = 2k sprites of that set. The
obvious answer is the k copies; a fit started from the target's structure spreads large faint
sprites instead. SpriteFit's default (init auto: placement by search for few sprites) against the
structure-aware start, on the tuning pack (shapes) and the held-out brush tips.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass

import numpy as np

from .versus import DATA

SETS = {"tuning": "shapes", "held-out": str(DATA / "heldout" / "sprites" / "krita-tips")}
GREY = (0.8, 0.8, 0.8)
INITS = ("auto", "structure")


@dataclass
class FewSettings:
    k: int = 3
    cases: int = 4        # targets per set, each of a sprite drawn at random (seeds 0, 1, ...)
    size: int = 256
    iters: int = 100
    spacing: float = 0.8  # centres at least this times the sum of half-sizes apart (copies_target)


def copies_target(sprites: list, k: int, seed: int, size: int = 256, spacing: float = 0.8) -> tuple[np.ndarray, object]:
    """(size, size, 3) image of k copies of one of `sprites` (half-sizes 25..55 px at 256 px, any
    angle, dark tints) on GREY, and that sprite. Their centres are at least `spacing` times the
    sum of their half-sizes apart (0.8: their boxes do not overlap much; 0.3: they overlap)."""
    import torch

    from ..render import render
    from ..sprites import Atlas
    generator = torch.Generator().manual_seed(seed)
    sprite = sprites[int(torch.randint(len(sprites), (1,), generator=generator))]
    unit = size / 256
    half = (torch.rand(k, generator=generator) * 30 + 25) * unit
    while True:
        xy = (torch.rand(k, 2, generator=generator) * 160 + 48) * unit
        apart = torch.cdist(xy, xy) - spacing * (half[:, None] + half[None, :]) + torch.eye(k) * 1e3
        if apart.min() > 0:
            break
    theta = torch.rand(k, generator=generator) * 2 * math.pi
    color = torch.rand(k, 3, generator=generator) * 0.6
    image = render(Atlas([sprite], 256), xy, half.log(), theta, color, torch.full((k,), 0.99),
                   torch.zeros(k, dtype=torch.int64), width=size, height=size, background=torch.tensor(GREY)).image
    return image.permute(1, 2, 0).numpy(), sprite


def bench_few(settings: FewSettings, as_json: bool = False) -> list[dict]:
    from ..fitting import evaluate, fit
    from ..sprites import load_sprites
    rows = []
    for set_name, pack in SETS.items():
        sprites = load_sprites(pack)
        for seed in range(settings.cases):
            target, sprite = copies_target(sprites, settings.k, seed, settings.size, settings.spacing)
            for init in INITS:
                start = time.perf_counter()
                scene = fit(target, [sprite], n=2 * settings.k, iters=settings.iters, color_mode="tint", seed=0,
                            background=GREY, init=init)
                metrics = evaluate(scene, target)
                row = {"kind": "few", "set": set_name, "sprite": sprite.name, "k": settings.k, "init": init,
                       "psnr": round(metrics["psnr"], 2), "ssim": round(metrics["ssim"], 4),
                       "seconds": round(time.perf_counter() - start, 1)}
                rows.append(row)
                print(json.dumps(row) if as_json else
                      f"{set_name:8s} {sprite.name:18s} init {init:9s} PSNR {row['psnr']:6.2f} dB  "
                      f"SSIM {row['ssim']:.4f}  {row['seconds']:5.1f} s", flush=True)
    for set_name in SETS:
        for init in INITS:
            values = [r["psnr"] for r in rows if r["set"] == set_name and r["init"] == init]
            summary = {"kind": "few-summary", "set": set_name, "init": init, "mean_psnr": round(float(np.mean(values)), 2),
                       "min_psnr": round(float(np.min(values)), 2)}
            rows.append(summary)
            print(json.dumps(summary) if as_json else f"{set_name:8s} init {init:9s} mean PSNR "
                  f"{summary['mean_psnr']:6.2f} dB, worst {summary['min_psnr']:6.2f} dB", flush=True)
    return rows
