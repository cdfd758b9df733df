#!/usr/bin/env python3
"""Draw SpriteFit's built-in sprite packs into core/spritefit/data/sprites/.

Every sprite is drawn here with Pillow (4x supersampled, then Lanczos-reduced for smooth edges)
from a fixed seed, so the packs are the project's own work and can be regenerated exactly:

    .venv/bin/python scripts/make_sprite_packs.py
"""
from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

OUT = Path(__file__).resolve().parents[1] / "core" / "spritefit" / "data" / "sprites"
SIZE = 128          # longer side of the saved sprites
SS = 4              # supersampling factor
CANVAS = SIZE * SS


def new_layer():
    return Image.new("RGBA", (CANVAS, CANVAS), (0, 0, 0, 0))


def finish(image: Image.Image) -> Image.Image:
    return image.resize((SIZE, SIZE), Image.LANCZOS)


def polygon(points, fill):
    image = new_layer()
    ImageDraw.Draw(image).polygon([(x * CANVAS, y * CANVAS) for x, y in points], fill=fill)
    return image


def regular(n, radius=0.46, rotation=-math.pi / 2, inner=None):
    pts = []
    steps = n * 2 if inner else n
    for i in range(steps):
        r = (inner if inner and i % 2 else radius)
        a = rotation + 2 * math.pi * i / steps
        pts.append((0.5 + r * math.cos(a), 0.5 + r * math.sin(a)))
    return pts


def ellipse(box, fill, width=0):
    image = new_layer()
    ImageDraw.Draw(image).ellipse([c * CANVAS for c in box], fill=fill if not width else None,
                                  outline=fill if width else None, width=int(width * CANVAS))
    return image


def heart(fill):
    pts = []
    for i in range(200):
        t = 2 * math.pi * i / 200
        x = 16 * math.sin(t) ** 3
        y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        pts.append((0.5 + x / 36, 0.47 - y / 36))
    return polygon(pts, fill)


def crescent(fill):
    image = ellipse((0.05, 0.05, 0.95, 0.95), fill)
    cut = ellipse((0.3, 0.0, 1.1, 0.8), (0, 0, 0, 255))
    alpha = np.asarray(image)[..., 3].astype(np.int32) - np.asarray(cut)[..., 3]
    data = np.asarray(image).copy()
    data[..., 3] = np.clip(alpha, 0, 255)
    return Image.fromarray(data)


def shapes_pack():
    return {
        "circle": ellipse((0.04, 0.04, 0.96, 0.96), (230, 70, 60, 255)),
        "square": polygon([(0.06, 0.06), (0.94, 0.06), (0.94, 0.94), (0.06, 0.94)], (60, 120, 220, 255)),
        "triangle": polygon(regular(3, 0.5, -math.pi / 2), (250, 190, 40, 255)),
        "star": polygon(regular(5, 0.5, -math.pi / 2, inner=0.21), (255, 210, 30, 255)),
        "heart": heart((220, 40, 90, 255)),
        "hexagon": polygon(regular(6, 0.48, 0), (60, 180, 120, 255)),
        "diamond": polygon([(0.5, 0.02), (0.8, 0.5), (0.5, 0.98), (0.2, 0.5)], (140, 80, 200, 255)),
        "ring": ellipse((0.08, 0.08, 0.92, 0.92), (40, 160, 200, 255), width=0.14),
        "crescent": crescent((240, 230, 150, 255)),
        "cross": polygon([(0.35, 0.04), (0.65, 0.04), (0.65, 0.35), (0.96, 0.35), (0.96, 0.65), (0.65, 0.65),
                          (0.65, 0.96), (0.35, 0.96), (0.35, 0.65), (0.04, 0.65), (0.04, 0.35), (0.35, 0.35)],
                         (230, 120, 40, 255)),
        "drop": polygon([(0.5 + 0.38 * math.cos(t) * (1 - math.sin(t)) * 0.9,
                          0.62 - 0.58 * math.sin(t) * 0.9 + 0.02)
                         for t in np.linspace(0, 2 * math.pi, 200)], (70, 140, 240, 255)),
        "blob": polygon([(0.5 + (0.36 + 0.08 * math.sin(3 * t) + 0.04 * math.cos(5 * t)) * math.cos(t),
                          0.5 + (0.36 + 0.08 * math.sin(3 * t) + 0.04 * math.cos(5 * t)) * math.sin(t))
                         for t in np.linspace(0, 2 * math.pi, 300)], (120, 200, 80, 255)),
    }


def radial_alpha(hardness: float, rng: random.Random, noise: float = 0.0, stretch=(1.0, 1.0)):
    y, x = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32) / CANVAS - 0.5
    r = np.sqrt((x / stretch[0]) ** 2 + (y / stretch[1]) ** 2) / 0.48
    alpha = np.clip((1 - r) / max(1e-3, 1 - hardness), 0, 1)
    if noise:
        field = np.random.default_rng(rng.randrange(1 << 30)).random((CANVAS // 8, CANVAS // 8))
        field = np.asarray(Image.fromarray((field * 255).astype(np.uint8)).resize((CANVAS, CANVAS), Image.BICUBIC)) / 255.0
        alpha = alpha * np.clip(1 - noise + noise * 2 * field, 0, 1)
    return alpha


def grey_dab(alpha, shade=245):
    rgba = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    rgba[..., :3] = shade
    rgba[..., 3] = np.clip(alpha * 255, 0, 255).astype(np.uint8)
    return Image.fromarray(rgba)


def bristles(rng: random.Random, length=0.9, width=0.3, count=40):
    image = new_layer()
    draw = ImageDraw.Draw(image)
    for _ in range(count):
        y = 0.5 + rng.uniform(-width / 2, width / 2)
        x0 = 0.5 - length / 2 + rng.uniform(0, 0.08)
        x1 = 0.5 + length / 2 - rng.uniform(0, 0.12)
        draw.line([(x0 * CANVAS, y * CANVAS), (x1 * CANVAS, (y + rng.uniform(-0.02, 0.02)) * CANVAS)],
                  fill=(240, 240, 240, rng.randint(120, 255)), width=int(rng.uniform(0.008, 0.02) * CANVAS))
    return image.filter(ImageFilter.GaussianBlur(SS * 0.6))


def splatter(rng: random.Random):
    image = new_layer()
    draw = ImageDraw.Draw(image)
    draw.ellipse([0.3 * CANVAS, 0.3 * CANVAS, 0.7 * CANVAS, 0.7 * CANVAS], fill=(240, 240, 240, 255))
    for _ in range(40):
        a, d = rng.uniform(0, 2 * math.pi), rng.uniform(0.15, 0.45)
        r = rng.uniform(0.01, 0.06) * (1 - d)
        cx, cy = 0.5 + d * math.cos(a), 0.5 + d * math.sin(a)
        draw.ellipse([(cx - r) * CANVAS, (cy - r) * CANVAS, (cx + r) * CANVAS, (cy + r) * CANVAS],
                     fill=(240, 240, 240, 255))
    return image


def brush_pack():
    rng = random.Random(7)
    return {
        "soft-round": grey_dab(radial_alpha(0.0, rng)),
        "hard-round": grey_dab(radial_alpha(0.85, rng)),
        "chalk": grey_dab(radial_alpha(0.5, rng, noise=0.8)),
        "oval-stroke": grey_dab(radial_alpha(0.6, rng, stretch=(1.0, 0.35))),
        "flat-stroke": grey_dab(radial_alpha(0.9, rng, noise=0.3, stretch=(1.0, 0.22))),
        "bristle": bristles(rng),
        "dry-brush": bristles(rng, width=0.45, count=25),
        "splatter": splatter(rng),
    }


def leaf(rng: random.Random, color, length=0.92, width=0.3, lobes=0, tip=1.0):
    """A leaf along the x axis with a midrib and side veins drawn darker."""
    image = new_layer()
    draw = ImageDraw.Draw(image)
    pts = []
    for t in np.linspace(0, math.pi, 120):
        x = 0.5 - length / 2 + length * (1 - math.cos(t)) / 2
        w = width / 2 * math.sin(t) ** tip * (1 + 0.25 * math.sin(lobes * t) if lobes else 1)
        pts.append((x, 0.5 - w))
    pts += [(x, 1 - y) for x, y in reversed(pts)]
    draw.polygon([(x * CANVAS, y * CANVAS) for x, y in pts], fill=color)
    vein = tuple(int(c * 0.6) for c in color[:3]) + (255,)
    x0, x1 = 0.5 - length / 2, 0.5 + length / 2
    draw.line([(x0 * CANVAS, 0.5 * CANVAS), (x1 * CANVAS, 0.5 * CANVAS)], fill=vein, width=SS * 3)
    for i in range(1, 7):
        x = x0 + length * i / 7.5
        for side in (-1, 1):
            draw.line([(x * CANVAS, 0.5 * CANVAS), ((x + 0.08) * CANVAS, (0.5 + side * width * 0.32) * CANVAS)],
                      fill=vein, width=SS * 2)
    stem = (x0 - 0.04, 0.5)
    draw.line([(stem[0] * CANVAS, 0.5 * CANVAS), (x0 * CANVAS, 0.5 * CANVAS)], fill=vein, width=SS * 4)
    return image


def leaves_pack():
    rng = random.Random(11)
    return {
        "beech": leaf(rng, (70, 140, 50, 255), width=0.42),
        "willow": leaf(rng, (120, 170, 70, 255), width=0.14),
        "oak": leaf(rng, (90, 120, 40, 255), width=0.44, lobes=9),
        "maple-red": leaf(rng, (200, 50, 30, 255), width=0.62, lobes=5, tip=0.6),
        "birch-yellow": leaf(rng, (230, 190, 40, 255), width=0.5),
        "autumn-orange": leaf(rng, (230, 120, 30, 255), width=0.4, lobes=7),
        "laurel": leaf(rng, (40, 90, 50, 255), width=0.28),
        "dry-brown": leaf(rng, (130, 85, 45, 255), width=0.36, lobes=4),
    }


def main():
    for pack, sprites in (("shapes", shapes_pack()), ("brush", brush_pack()), ("leaves", leaves_pack())):
        folder = OUT / pack
        folder.mkdir(parents=True, exist_ok=True)
        for name, image in sprites.items():
            finish(image).save(folder / f"{name}.png", optimize=True)
        print(f"{pack}: {len(sprites)} sprites")


if __name__ == "__main__":
    main()
