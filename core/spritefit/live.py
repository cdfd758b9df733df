"""Live mode: the arrangement follows a target that keeps changing (an artist painting).

A LiveSession fits the first target in full, then refits each new target from the current scene:
instances whose box does not touch what changed are frozen (they stay exactly where they are,
as still parts of a video do), and the loss weighs the changed region most, so the few
iterations of an update go where the picture changed. A new N adds instances (or drops the
topmost) without a restart; a new sprite set, colour mode or working size starts afresh.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from .options import OPTIONS
from .scene import Scene

CHANGE_THRESHOLD = 0.02    # a pixel whose colour moved by more than this (any channel) changed
CHANGE_MARGIN_PX = 3       # changed pixels widened by this much before touching instances
OUTSIDE_WEIGHT = 0.25      # the loss weight of unchanged pixels next to the changed region's 1
UPDATE_ITERS = 25          # iterations of an update (a first fit takes the preset's)
# An update starts from a fitted scene: the noisy canvas, which helps a fit out of a poor start,
# would only shake it, and respawns come sooner so that a short update still moves sprites into
# a new stroke. Options the user set win.
UPDATE_SETTINGS = {"noisy_canvas": False, "respawn_every": 10}
RESTARTING = ("color_mode", "size", "preset", "seed", "sprites")   # options after which nothing carries over


@dataclass
class LiveFrame:
    scene: Scene
    update: int            # 0 for the first fit, then 1, 2, ... for each update that did work
    seconds: float         # how long the update took
    frozen: int            # instances left exactly where they were
    restarted: bool        # the whole scene was fitted again


class LiveSession:
    """fit_frame(target, sprites, **options) -> Scene is the fit (spritefit.fitting.fit, or a
    stand-in in tests); options are fit options, plus `sprites` (any value; a change restarts)."""

    def __init__(self, target: np.ndarray, sprites, options: dict, fit_frame=None):
        from .fitting import fit
        self._fit = fit_frame or fit
        self.sprites, self.options = sprites, dict(options)
        self.update_count = 0
        self.target = self._working(target)
        self.frame = self._timed(lambda: self._fit(self.target, self.sprites, **self._fit_options()), 0, True)

    @property
    def scene(self) -> Scene:
        return self.frame.scene

    def update(self, target: np.ndarray | None = None, options: dict | None = None, sprites=None) -> LiveFrame:
        """Refit for a new target, changed options (None: back to the option's default) or sprite
        set; the current frame when nothing changed."""
        changed = {k: v for k, v in (options or {}).items() if self.options.get(k) != v}
        if "size" in changed:                      # the new target is read at the new size
            self._set_options({"size": changed["size"]})
        new_target = self.target if target is None else self._working(target)
        if sprites is not None:
            self.sprites, changed["sprites"] = sprites, True
        if new_target.shape != self.target.shape or set(changed) & set(RESTARTING):
            self._set_options(changed)
            self.target = new_target
            self.update_count += 1
            self.frame = self._timed(lambda: self._fit(self.target, self.sprites, **self._fit_options()),
                                     self.update_count, True)
            return self.frame
        region = changed_region(self.target, new_target)
        if not region.any() and not changed:
            return self.frame
        self._set_options(changed)
        self.target = new_target
        self.update_count += 1
        self.frame = self._timed(lambda: self._refit(region), self.update_count, False)
        return self.frame

    def _set_options(self, changed: dict) -> None:
        for name, value in changed.items():
            if name == "sprites":
                continue
            if value is None:
                self.options.pop(name, None)
            else:
                self.options[name] = value

    def _working(self, target: np.ndarray) -> np.ndarray:
        """The target at the working size: changes are found, and sprites frozen, where the fit sees them."""
        from .fitting import prepare_target
        return prepare_target(np.asarray(target, np.float32), self.options.get("size"))

    def _fit_options(self) -> dict:
        return {k: v for k, v in self.options.items() if k != "update_iters"}

    def _refit(self, region: np.ndarray) -> Scene:
        start = resized(self.scene, int(self.options.get("n", OPTIONS["n"].default)))
        touched = instances_touching(region, start) if region.any() else np.ones(len(start), bool)
        start.frozen = ~touched
        mask = np.where(region, 1.0, OUTSIDE_WEIGHT).astype(np.float32) if region.any() else None
        options = dict(UPDATE_SETTINGS, **self._fit_options())
        options.update(iters=self.options.get("update_iters", UPDATE_ITERS), init="scene", init_scene=start,
                       respawn_on_top=False, mask=mask)
        self.last_frozen = int(start.frozen.sum())
        scene = self._fit(self.target, self.sprites, **options)
        scene.frozen = np.zeros(len(scene), bool)      # frozen for this update only
        return scene

    def _timed(self, work, update: int, restarted: bool) -> LiveFrame:
        start = time.perf_counter()
        self.last_frozen = 0
        scene = work()
        return LiveFrame(scene, update, time.perf_counter() - start, self.last_frozen, restarted)


def changed_region(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels whose colour moved by more than CHANGE_THRESHOLD, widened by
    CHANGE_MARGIN_PX so that the sprites overlapping a stroke's edge take part in the refit."""
    from scipy.ndimage import binary_dilation
    changed = np.abs(after - before).max(axis=2) > CHANGE_THRESHOLD
    if not changed.any():
        return changed
    return binary_dilation(changed, iterations=CHANGE_MARGIN_PX)


def instances_touching(region: np.ndarray, scene: Scene) -> np.ndarray:
    """(N,) whether each instance's pixel box (where its alpha can be non-zero, rotation included)
    overlaps the (H, W) boolean region, by a summed-area table of the region."""
    from .render import scene_atlas, scene_tensors
    from .render.native import instance_rects
    rects = instance_rects(scene_atlas(scene), scene_tensors(scene), width=scene.width, height=scene.height,
                           color_mode=scene.color_mode).astype(np.int64)
    height, width = region.shape
    x0, x1 = rects[:, 0].clip(0, width), rects[:, 1].clip(-1, width - 1) + 1    # [x0, x1) on the region
    y0, y1 = rects[:, 2].clip(0, height), rects[:, 3].clip(-1, height - 1) + 1
    table = np.pad(region.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    inside = (x0 < x1) & (y0 < y1)   # the table's sum over an empty box means nothing
    return inside & (table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0] > 0)


PER_INSTANCE = ("xy", "size", "theta", "color", "opacity", "sprite", "mix", "frozen", "edited")


def resized(scene: Scene, n: int) -> Scene:
    """A copy of the scene with at most n instances, the topmost dropped (a fit from a scene with
    fewer instances than n adds the missing ones itself)."""
    keep = slice(0, min(n, len(scene)))
    return replace(scene, **{name: getattr(scene, name)[keep].copy() for name in PER_INSTANCE})
