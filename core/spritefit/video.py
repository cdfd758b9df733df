"""Video: fit a sequence of frames so that the arrangement moves with the picture instead of
boiling.

The clip is cut into shots. A shot's first frame is fitted fully; every later frame starts from
the previous frame's scene with fewer iterations and, with temporal coherence (the default), its
sprites carried along the optical flow (moved, scaled and turned with the picture), a sharp
refinement that keeps Adam's moments from the frame before, the temporal terms of
fitting/temporal.py, and still instances frozen where the picture stands still. `temporal=False`
is the plain warm start and `diffbmp_recipe=True` DiffBMP's video recipe, both for comparison
(`spritefit bench video`). Respawned instances keep their slot, so instance i is the same sprite
in every frame. Each frame's scene and render are written as soon as it is done, so an
interrupted run loses nothing finished and `resume` continues after the last finished frame.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .errors import InputImageError, SpriteFitError
from .files import atomic_path, write_bytes_atomic
from .images import IMAGE_EXTENSIONS, load_rgb, save_png, to_uint8
from .fitting.temporal import OptimizerMemory
from .flicker import tensor
from .scene import Scene
from .sprites import Sprite

ANIMATED_EXTENSIONS = {".gif", ".webp", ".png", ".apng"}
VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mpg", ".mpeg"}
MAX_FRAMES = 10_000
# Later frames start from the previous one's sprites: they take a third of the steps a fit from
# scratch takes (every method: the plain warm start jitters more with whole steps, and the
# temporal method measured 0.3 best against 0.5 and 1 on the pan clip).
LATER_FRAME_LR = 0.3
# DiffBMP's video recipe (the baseline of `bench video`): an instance is frozen unless the target
# changed by more than DIFFBMP_CHANGE (mean over channels) within DIFFBMP_FREEZE_DISTANCE (of the
# canvas's longer side) of its box; DiffBMP's
# distance is 12 px on its 512 px canvases, scaled here with the canvas.
DIFFBMP_CHANGE = 0.1
DIFFBMP_FREEZE_DISTANCE = 12 / 512


# --- reading ------------------------------------------------------------------------------------

def read_frames(source: str | os.PathLike, start: int = 0, stop: int | None = None, step: int = 1) -> list[np.ndarray]:
    """The frames of a folder of images, an animated GIF/WebP/PNG or a video file, as float RGB
    (h, w, 3), frames start:stop:step. Every frame must have the same size; two at least."""
    path = Path(source)
    if step < 1 or start < 0:
        raise SpriteFitError(f"frame step must be at least 1 and start at least 0 (got start {start}, step {step})")
    if not path.exists():
        raise InputImageError(f"video input not found: {path}")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        frames = [load_rgb(p, f"frame {p.name}") for p in files[start:stop:step]]
    elif path.suffix.lower() in VIDEO_EXTENSIONS:
        frames = _video_frames(path)[start:stop:step]
    else:
        frames = _animated_frames(path)[start:stop:step]
    if len(frames) < 2:
        raise SpriteFitError(f"{path} gives {len(frames)} frame{'s' if len(frames) != 1 else ''} "
                             f"(after start/stop/step); a video needs 2 at least (use `spritefit fit` for one image)")
    if len(frames) > MAX_FRAMES:
        raise SpriteFitError(f"{path} gives {len(frames):,} frames; at most {MAX_FRAMES:,} are supported (use --step)")
    size = frames[0].shape[:2]
    for i, frame in enumerate(frames):
        if frame.shape[:2] != size:
            raise InputImageError(f"frame {start + i * step} of {path} is {frame.shape[1]}x{frame.shape[0]} px, "
                                  f"the first is {size[1]}x{size[0]} px: every frame must have the same size")
    return frames


def _animated_frames(path: Path) -> list[np.ndarray]:
    from PIL import Image, ImageSequence, UnidentifiedImageError

    from .images import MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with Image.open(path) as image:
            frames = []
            for frame in ImageSequence.Iterator(image):
                rgba = np.asarray(frame.convert("RGBA"), np.float32) / 255
                frames.append(rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:]))
            return frames
    except UnidentifiedImageError:
        raise InputImageError(f"{path} is neither a folder of frames, an animated image nor a video "
                              f"SpriteFit can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputImageError(f"{path} is damaged or truncated: {exc}") from None


def _video_frames(path: Path) -> list[np.ndarray]:
    import imageio_ffmpeg
    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        width, height = meta["size"]
        return [np.frombuffer(data, np.uint8).reshape(height, width, 3).astype(np.float32) / 255
                for data in reader]
    except (OSError, RuntimeError, StopIteration, KeyError) as exc:
        raise InputImageError(f"cannot decode the video {path}: {str(exc).strip().splitlines()[-1] if str(exc) else 'no frames'}") from None


# --- writing --------------------------------------------------------------------------------------

def write_gif(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """One palette for every frame (from up to four frames spread over the clip), no dithering:
    palettes or dither patterns that change from frame to frame would flicker themselves."""
    from PIL import Image
    pictures = [Image.fromarray(to_uint8(f)) for f in frames]
    samples = [pictures[i] for i in sorted({round(k * (len(pictures) - 1) / 3) for k in range(4)})]
    strip = Image.new("RGB", (samples[0].width, samples[0].height * len(samples)))
    for i, picture in enumerate(samples):
        strip.paste(picture, (0, i * picture.height))
    palette = strip.quantize(256, dither=Image.Dither.NONE)
    indexed = [p.quantize(palette=palette, dither=Image.Dither.NONE) for p in pictures]
    with atomic_path(path) as tmp:
        indexed[0].save(tmp, format="GIF", save_all=True, append_images=indexed[1:],
                        duration=round(1000 / fps), loop=0, optimize=True)


def write_mp4(path: Path, frames: list[np.ndarray], fps: float) -> None:
    """H.264 in yuv420p (plays everywhere); odd sizes are padded by one pixel."""
    import imageio_ffmpeg
    height, width = frames[0].shape[:2]
    padded = (width + width % 2, height + height % 2)
    with atomic_path(path) as tmp:
        writer = imageio_ffmpeg.write_frames(str(tmp), padded, fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                             macro_block_size=1, output_params=["-f", "mp4"], quality=8)
        writer.send(None)
        for frame in frames:
            picture = np.zeros((padded[1], padded[0], 3), np.uint8)
            picture[:height, :width] = to_uint8(frame)
            writer.send(picture.tobytes())
        writer.close()


def decode_video(path: str | os.PathLike) -> list[np.ndarray]:
    """Frames of a file this module wrote (for checks): float RGB."""
    return _video_frames(Path(path)) if Path(path).suffix.lower() in VIDEO_EXTENSIONS else _animated_frames(Path(path))


# --- fitting ----------------------------------------------------------------------------------------

@dataclass
class VideoSettings:
    # Fit options (spritefit.options) of every frame, as given; their iters are those of each
    # shot's first frame, their seed that of frame 1 (frame t: seed + t).
    options: dict = field(default_factory=dict)
    frame_iters: int | None = None          # later frames (None: a quarter of frame 1's, at least 20)
    fps: float = 12.0
    temporal: bool = True                   # temporal coherence (False: plain warm start, for comparison)
    diffbmp_recipe: bool = False            # DiffBMP's video recipe instead (a baseline of `bench video`)
    # The techniques of temporal coherence, each of them a row of `bench video`'s ablation:
    carry: bool = True                      # sprites carried along the flow (moved, scaled, turned)
    warm_optimizer: bool = True             # Adam's moments kept from frame to frame
    sharp_refine: bool = True               # later frames without the noisy canvas and the blur
    temporal_weight: float = 0.3            # pull towards where the instance was carried
    temporal_render_weight: float = 10.0    # keep the sprites' layer where the picture only moved...
    trusted_error: float = 0.2              # ...and the previous render was within this of the target
                                            # (mean |error|, blurred; 0: wherever the picture only moved)
    free_above: float = 0.08                # no pull where the picture under an instance changed by
                                            # more than its motion by this much (0: pulled everywhere)
    freeze: bool = True                     # freeze still instances where the picture stands still
    freeze_below: float = 0.05              # px an instance may move and still count as still
    freeze_after: int = 2                   # frames still before it is frozen
    refit: bool = True                      # off: a later frame is the carried scene as it is, not
                                            # fitted (the flicker floor of carrying, for the bench)

    def config(self):
        """The first frame's FitConfig."""
        from .fitting import make_config
        return make_config(**self.options)


@dataclass
class FrameRecord:
    frame: int
    psnr: float
    ssim: float
    seconds: float
    frozen: int
    render_change: float | None = None     # mean |R_t - R_t-1|
    target_change: float | None = None     # mean |T_t - T_t-1|
    flicker: float | None = None           # the render's change beyond the motion (spritefit.flicker)
    e_warp: float | None = None            # Lai et al.'s warping error (spritefit.flicker)


class ShotFit:
    """One shot fitted frame by frame into `out`: scenes/NNNN.json and frames/NNNN.png as each
    frame finishes, numbered from `first` (the shot's first frame in the whole video)."""

    def __init__(self, targets: list[np.ndarray], sprites: list[Sprite], settings: VideoSettings, out: Path,
                 first: int = 0, frames_total: int | None = None,
                 progress: Callable[[int, int, object], None] | None = None):
        self.targets, self.first = targets, first
        self.frames_total = frames_total or first + len(targets)
        self.sprites, self.settings, self.out, self.progress = sprites, settings, Path(out), progress
        self.still_frames = np.zeros(settings.config().run.n, np.int64)
        self.flows: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.last_render = None      # the render of the last frame recorded...
        self.last_frame = None       # ...and its image as written (8 bits)
        self.memory = OptimizerMemory()   # Adam's moments from one frame's fit to the next
        (self.out / "scenes").mkdir(parents=True, exist_ok=True)
        (self.out / "frames").mkdir(parents=True, exist_ok=True)

    def scene_path(self, t: int) -> Path:
        return scene_file(self.out, self.first + t)

    def frame_path(self, t: int) -> Path:
        return frame_file(self.out, self.first + t)

    def run(self, resume: bool = False) -> list[FrameRecord]:
        """Fit every frame (with resume, load those already written) and return their records."""
        records: list[FrameRecord] = []
        previous = None
        for t, target in enumerate(self.targets):
            start = time.perf_counter()
            if resume and self.scene_path(t).exists() and self.frame_path(t).exists():
                scene = Scene.load(self.scene_path(t))
            else:
                scene = self._fit_frame(t, target, previous)
                scene.save(self.scene_path(t))
            records.append(self._record(t, scene, previous, time.perf_counter() - start))
            previous = scene
        return records

    def flow(self, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(forward, backward) flow between frames t-1 and t."""
        from .fitting.flow import optical_flow
        if t not in self.flows:
            before, now = tensor(self.targets[t - 1]), tensor(self.targets[t])
            self.flows[t] = optical_flow(before, now), optical_flow(now, before)
        return self.flows[t]

    def _carried(self, t: int, previous: Scene) -> Scene:
        """The previous scene with its sprites carried along the flow: moved, scaled and turned
        with the picture around them (frozen ones stay). They may leave the canvas with it."""
        from dataclasses import replace

        from .fitting.flow import local_motion
        forward, _ = self.flow(t)
        shift, scale, turn = (v.numpy() for v in local_motion(forward, torch.from_numpy(previous.xy),
                                                              torch.from_numpy(previous.size)))
        moving = ~previous.frozen
        xy, size, theta = previous.xy.copy(), previous.size.copy(), previous.theta.copy()
        xy[moving] += shift[moving]
        size[moving] *= scale[moving]
        theta[moving] -= turn[moving]        # the renderer turns a sprite by -theta on the canvas
        return replace(previous, xy=xy, size=size, theta=theta)

    def _fit_frame(self, t: int, target: np.ndarray, previous: Scene | None) -> Scene:
        from .fitting import fit
        from .fitting.config import scaled_learning_rates
        s = self.settings
        config = s.config()
        options = dict(s.options, seed=config.run.seed + self.first + t)
        frame_progress = (lambda p: self.progress(self.first + t, self.frames_total, p)) if self.progress else None
        options.update(iters=frame_iterations(s, t), progress=frame_progress)
        if previous is None:
            return fit(target, self.sprites, memory=self.memory, **options)
        smaller = scaled_learning_rates(config, LATER_FRAME_LR)
        options.update({name: lr for name, lr in smaller.items() if s.options.get(name) is None},   # yours stay
                       init="scene", respawn_on_top=False)
        if s.diffbmp_recipe:
            return self._fit_diffbmp(t, target, previous, options)
        if not s.temporal:
            return fit(target, self.sprites, init_scene=previous, **options)
        return self._fit_coherent(t, target, previous, options)

    def _fit_coherent(self, t: int, target: np.ndarray, previous: Scene, options: dict) -> Scene:
        """A later frame with temporal coherence: from the carried scene, tied to the previous
        frame by the temporal terms, still instances frozen."""
        from .fitting import fit
        from .fitting.flow import warp
        from .fitting.temporal import PreviousFrame, foreground
        s = self.settings
        previous.frozen = self._frozen_for(t, previous) if s.freeze else np.zeros(len(previous), bool)
        start = self._carried(t, previous) if s.carry else previous
        if not s.refit:
            return start
        rendered = self.last_render
        background = torch.tensor(previous.background or (0.0, 0.0, 0.0))
        _, backward = self.flow(t)
        moved_target = warp(tensor(self.targets[t - 1]), backward)
        tie = PreviousFrame(moved_target, warp(foreground(rendered.image, rendered.alpha, background), backward),
                            self._pull_weight(tensor(target), moved_target, start),
                            self._trust(tensor(target), warp(rendered.image, backward)))
        options.update(temporal_weight=s.temporal_weight, temporal_render_weight=s.temporal_render_weight,
                       leave_canvas=s.carry)
        if s.sharp_refine:
            options.update(noisy_canvas=False, blur_schedule="none")
        return fit(target, self.sprites, init_scene=start, previous=tie,
                   memory=self.memory if s.warm_optimizer else None, **options)

    def _fit_diffbmp(self, t: int, target: np.ndarray, previous: Scene, options: dict) -> Scene:
        """DiffBMP's recipe (main_sequential.py): the previous frame's parameters, a fresh Adam,
        a sharp render, and gradients zeroed for instances far from where the target changed;
        no carrying, no temporal loss. Its opacity reduction of large front-most instances at fixed
        iterations is left out (it also runs on single images, which SpriteFit fits otherwise)."""
        from dataclasses import replace

        from scipy.ndimage import distance_transform_edt

        from .fitting import fit
        changed = np.abs(self.targets[t] - self.targets[t - 1]).mean(axis=2) > DIFFBMP_CHANGE
        height, width = changed.shape
        if changed.any():
            distance = distance_transform_edt(~changed)
            x, y = _centre_pixels(previous, height, width)
            reach = np.sqrt(2) * previous.size + DIFFBMP_FREEZE_DISTANCE * max(width, height)
            frozen = distance[y, x] > reach
        else:
            frozen = np.ones(len(previous), bool)
        options.update(noisy_canvas=False, blur_schedule="none", respawn_every=0)
        return fit(target, self.sprites, init_scene=replace(previous, frozen=frozen), **options)

    def _trust(self, target: torch.Tensor, previous_render: torch.Tensor) -> torch.Tensor | None:
        """1 - (the previous render's error against this target / trusted_error), in [0, 1]: the
        rendered-change term keeps what was right and lets the image term mend the rest (where
        the carried sprites drifted, or the last frame was not fitted well), instead of holding
        every error in place."""
        if self.settings.trusted_error <= 0:
            return None
        from .fitting.temporal import resampling_blur
        error = resampling_blur((previous_render - target).abs().mean(0, keepdim=True))[0]
        return (1 - error / self.settings.trusted_error).clamp(0, 1)

    def _pull_weight(self, target: torch.Tensor, moved_target: torch.Tensor, start: Scene) -> torch.Tensor | None:
        """1 - (the largest change beyond the motion under each instance / free_above), in [0, 1]."""
        if self.settings.free_above <= 0:
            return None
        from .fitting.temporal import motion_residual
        from .sprites import gaussian_blur
        residual = gaussian_blur(motion_residual(target, moved_target)[None, None], 1.0)[0, 0].numpy()
        under = largest_under(residual, start)
        return torch.from_numpy((1 - np.clip(under / self.settings.free_above, 0, 1)).astype(np.float32))

    def _frozen_for(self, t: int, previous: Scene) -> np.ndarray:
        """Instances still for freeze_after frames, where the target around them stands still."""
        from .fitting.temporal import STILL_THRESHOLD
        change = np.abs(self.targets[t] - self.targets[t - 1]).max(axis=2)
        calm = largest_under(change, previous) < STILL_THRESHOLD
        return (self.still_frames[:len(previous)] >= self.settings.freeze_after) & calm

    def _record(self, t: int, scene: Scene, previous: Scene | None, seconds: float) -> FrameRecord:
        from .fitting import image_metrics
        from .flicker import frame_change
        from .render import as_array, render_scene
        self.last_render = render_scene(scene)     # the next frame's temporal terms start from it
        image = as_array(scene, self.last_render)[..., :3]
        save_png(self.frame_path(t), image)
        # the frame as written (8 bits), so that rounding counts alike on either side of the flicker
        written, before = to_uint8(image).astype(np.float32) / 255, self.last_frame
        self.last_frame = written
        metrics = image_metrics(self.last_render.image, self.targets[t])
        record = FrameRecord(self.first + t + 1, round(metrics["psnr"], 3), round(metrics["ssim"], 4), round(seconds, 2),
                             int(scene.frozen.sum()))
        if previous is not None:
            moved = np.abs(scene.xy - previous.xy).max(axis=1) + np.abs(scene.size - previous.size)
            self.still_frames = np.where(moved < self.settings.freeze_below, self.still_frames + 1, 0)
            change = frame_change(written, before, self.targets[t], self.targets[t - 1], *self.flow(t))
            for name, value in asdict(change).items():
                setattr(record, name, round(value, 6))
        return record


def _centre_pixels(scene: Scene, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the pixel under each instance's centre, clamped to the canvas."""
    return (np.clip(scene.xy[:, 0].astype(int), 0, width - 1), np.clip(scene.xy[:, 1].astype(int), 0, height - 1))


def largest_under(values: np.ndarray, scene: Scene) -> np.ndarray:
    """(N,) the largest of values (H, W) inside each instance's box (half-size at least 1 px)."""
    x, y = _centre_pixels(scene, *values.shape)
    radius = np.maximum(1, np.ceil(scene.size).astype(int))
    return np.array([values[max(0, b - r):b + r + 1, max(0, a - r):a + r + 1].max() for a, b, r in zip(x, y, radius)])


def frame_iterations(settings: VideoSettings, t: int) -> int:
    """Iterations of a shot's frame t: a full fit for its first frame, fewer for the rest."""
    first = settings.config().schedule.iters
    return first if t == 0 else settings.frame_iters or max(20, first // 4)


def scene_file(out: Path, t: int) -> Path:
    """Where frame t (0-based, in the whole clip) keeps its scene; frame_file: its render."""
    return out / "scenes" / f"{t + 1:04d}.json"


def frame_file(out: Path, t: int) -> Path:
    return out / "frames" / f"{t + 1:04d}.png"


def read_frame_image(path: Path) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255


# --- shots ------------------------------------------------------------------------------------------

CUT_THRESHOLD = 0.12     # mean |frame - previous| (0..1) above which the picture may have cut
CUT_CONTRAST = 4.0       # ... and at least this many times the clip's median change


@dataclass
class Shots:
    """Where a clip is cut: the first frame (0-based) of every shot, and why."""
    starts: list[int]
    method: str                              # "auto" (scene-cut test), "manual" (--shots)
    differences: list[float] = field(default_factory=list)   # mean |T_t - T_t-1| for t >= 1

    def ranges(self, frames: int) -> list[tuple[int, int]]:
        bounds = self.starts + [frames]
        return [(bounds[k], bounds[k + 1]) for k in range(len(self.starts))]

    def report(self, frames: int) -> dict:
        return {"method": self.method, "threshold": CUT_THRESHOLD, "contrast": CUT_CONTRAST,
                "frame_differences": [round(d, 5) for d in self.differences],
                "shots": [{"first": a + 1, "last": b} for a, b in self.ranges(frames)]}


def detect_shots(targets: list[np.ndarray], manual: list[int] | None = None) -> Shots:
    """Cut where a frame differs from the one before by more than CUT_THRESHOLD on average and by
    CUT_CONTRAST times the clip's median change (a pan or a moving subject changes every frame a
    little; a cut changes one frame a lot). `manual`: 1-based numbers of the frames that start a
    new shot, instead of the test."""
    differences = [float(np.abs(b - a).mean()) for a, b in zip(targets, targets[1:])]
    if manual is not None:
        bad = [f for f in manual if not 2 <= f <= len(targets)]
        if bad:
            raise SpriteFitError(f"--shots: frame {bad[0]} cannot start a shot (use 2..{len(targets)}, "
                                 f"the numbers of the output frames)")
        return Shots([0] + sorted({f - 1 for f in manual}), "manual", differences)
    median = float(np.median(differences)) if differences else 0.0
    starts = [t + 1 for t, d in enumerate(differences) if d > CUT_THRESHOLD and d > CUT_CONTRAST * median]
    return Shots([0] + starts, "auto", differences)


def parse_shots(text: str | None) -> list[int] | None:
    """--shots "25,60" -> [25, 60]; "none" -> [] (one shot); None -> None (detect cuts)."""
    if text is None:
        return None
    if text.strip().lower() == "none":
        return []
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SpriteFitError(f"--shots {text!r}: give the numbers of the frames that start a shot, "
                             f"e.g. 25,60 (or none)") from None


@dataclass
class ShotTask:
    """One shot, with everything needed to fit it on a node that cannot see this machine's files."""
    first: int
    targets: list[np.ndarray]
    sprites: list[Sprite]
    settings: VideoSettings
    frames_total: int


def fit_shot(task: ShotTask, out: Path | None = None, resume: bool = False, progress=None) -> dict:
    """Fit a shot frame by frame. With `out` (this machine) its frames and scenes are written
    there as they finish; without (a Ray task) they go to a temporary folder and come back as
    bytes. Returns {"records": [...], "files": {relative path: bytes}}."""
    if out is not None:
        shot = ShotFit(task.targets, task.sprites, task.settings, out, task.first, task.frames_total, progress)
        return {"records": [asdict(r) for r in shot.run(resume)], "files": {}}
    with tempfile.TemporaryDirectory(prefix="spritefit-shot-") as tmp:
        shot = ShotFit(task.targets, task.sprites, task.settings, _video_folders(Path(tmp)), task.first,
                       task.frames_total)
        records = [asdict(r) for r in shot.run()]
        files = {str(p.relative_to(tmp)): p.read_bytes() for p in sorted(Path(tmp).rglob("*")) if p.is_file()}
    return {"records": records, "files": files}


def _video_folders(out: Path) -> Path:
    for name in ("scenes", "frames", "shots"):
        (out / name).mkdir(parents=True, exist_ok=True)
    return out


# --- the whole clip ---------------------------------------------------------------------------------

class VideoFit:
    """A video run writing into `out`: the clip is cut into shots, every shot is fitted frame by
    frame (its first frame afresh), scenes/NNNN.json and frames/NNNN.png are written as frames
    finish and shots/NNNN.json (the shot's frame records) when a shot is complete; then
    result.mp4, result.gif, comparison.mp4 (target | result) and metrics.json.

    executor: where the shots are fitted (spritefit.cluster; default here, one after another).
    With a Ray executor shots run in parallel and their files are written here as each returns.
    shots: 1-based numbers of the frames that start a shot (default: a scene-cut test)."""

    def __init__(self, frames: list[np.ndarray], sprites: list[Sprite], settings: VideoSettings, out: Path,
                 progress: Callable[[int, int, object], None] | None = None, executor=None,
                 shots: list[int] | None = None, cpus: int = 1):
        from .cluster import LocalExecutor
        from .fitting import prepare_target
        self.targets = [prepare_target(frame, settings.options.get("size")) for frame in frames]
        self.sprites, self.settings, self.out, self.progress = sprites, settings, _video_folders(Path(out)), progress
        self.executor, self.cpus = executor or LocalExecutor(), cpus
        self.shots = detect_shots(self.targets, shots)
        self.shot_finished: Callable[[int, int], None] | None = None   # (first, stop) of each shot done

    def iterations(self) -> list[int]:
        """Iterations of each frame's fit."""
        return [frame_iterations(self.settings, t - a) for a, b in self.shots.ranges(len(self.targets))
                for t in range(a, b)]

    def shot_record_path(self, first: int) -> Path:
        return self.out / "shots" / f"{first + 1:04d}.json"

    def run(self, resume: bool = False) -> list[FrameRecord]:
        records: dict[int, list[dict]] = {}
        todo = []
        for first, stop in self.shots.ranges(len(self.targets)):
            done = self._finished_shot(first, stop) if resume else None
            if done is not None:
                records[first] = done
                self._report_shot(first, stop)
            else:
                todo.append(ShotTask(first, self.targets[first:stop], self.sprites, self.settings, len(self.targets)))
        failures = []
        for outcome in self.executor.map(self._shot_function(resume), todo, cpus=self.cpus,
                                         gpus=1 if self.settings.config().run.device.startswith("cuda") else 0):
            task = outcome.item
            stop = task.first + len(task.targets)
            if not outcome.ok:
                failures.append(f"frames {task.first + 1}-{stop}: {outcome.error}")
                continue
            for relative, data in outcome.result["files"].items():
                write_bytes_atomic(self.out / relative, data)
            records[task.first] = outcome.result["records"]
            write_bytes_atomic(self.shot_record_path(task.first), json.dumps(records[task.first]).encode())
            self._report_shot(task.first, stop)
        if failures:
            raise SpriteFitError(f"{len(failures)} shot{'s' if len(failures) > 1 else ''} failed "
                                 f"({'; '.join(failures)}); the other shots are saved: run again with --resume")
        ordered = [FrameRecord(**r) for first in sorted(records) for r in records[first]]
        write_video_outputs(self.out, self.targets, ordered, self.settings, self.shots)
        return ordered

    def _shot_function(self, resume: bool):
        if getattr(self.executor, "shares_files", False):
            from functools import partial
            return partial(fit_shot, out=self.out, resume=resume, progress=self.progress)
        return fit_shot

    def _finished_shot(self, first: int, stop: int) -> list[dict] | None:
        try:
            records = json.loads(self.shot_record_path(first).read_text())
        except (OSError, ValueError):
            return None
        frames_there = all(scene_file(self.out, t).exists() and frame_file(self.out, t).exists()
                           for t in range(first, stop))
        return records if frames_there and len(records) == stop - first else None

    def _report_shot(self, first: int, stop: int) -> None:
        if self.shot_finished is not None:
            self.shot_finished(first, stop)


def write_video_outputs(out: Path, targets: list[np.ndarray], records: list[FrameRecord], settings: VideoSettings,
                        shots: Shots) -> None:
    results = [read_frame_image(frame_file(out, t)) for t in range(len(targets))]
    write_mp4(out / "result.mp4", results, settings.fps)
    write_gif(out / "result.gif", results, settings.fps)
    write_mp4(out / "comparison.mp4", [np.concatenate([target, result], axis=1)
                                       for target, result in zip(targets, results)], settings.fps)
    metrics = dict(summary(records, settings), shots=shots.report(len(targets)))
    write_bytes_atomic(out / "metrics.json", json.dumps(metrics, indent=1).encode())


def summary(records: list[FrameRecord], settings: VideoSettings) -> dict:
    later = [r for r in records if r.flicker is not None]
    mean = lambda key: round(float(np.mean([getattr(r, key) for r in later])), 6) if later else None
    return {"frames": [asdict(r) for r in records],
            "mean_psnr": round(float(np.mean([r.psnr for r in records])), 3),
            "mean_ssim": round(float(np.mean([r.ssim for r in records])), 4),
            "flicker": mean("flicker"), "e_warp": mean("e_warp"), "render_change": mean("render_change"),
            "target_change": mean("target_change"),
            "seconds_per_frame": round(float(np.mean([r.seconds for r in later or records])), 2),
            "first_frame_seconds": records[0].seconds,
            "settings": asdict(settings)}
