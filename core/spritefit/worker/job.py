"""One `run` request of the worker: read the host's pixels from the job folder, fit, and write
the result back into the folder as pre-rendered layer patches in the host's byte order.

Result files (all written atomically, `manifest.json` last, so a manifest always describes
complete files):
    patches.bin     every layer's pixels, one after the other, in the requested pixel format
    manifest.json   "spritefit-layers" v1: canvas, background, and per layer its name, sprite,
                    offset, size, opacity, byte range in patches.bin and placement (for hosts
                    that draw sprites themselves, such as Blender)
    composite.png   the render at the document's size, what the layers composite to
    scene.json      the scene, re-renderable with `spritefit render`
    sprites/K.png   the sprite bitmaps, for hosts that draw the sprites themselves (Blender)
"""
from __future__ import annotations

import json
import os
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import SpriteFitError
from ..files import atomic_path, write_bytes_atomic
from ..fitting.constraints import mask_values
from ..images import encode_png, load_rgba, save_png
from ..options import DEFAULT_WORKING_SIZE, JOB_OPTIONS, OPTIONS, check_options
from ..scene import Scene
from ..sprites import Sprite, load_sprites, sprite_from_bytes
from . import pixels

MAX_LAYER_SPRITES = 1_000        # sprite layers a host may send
MAX_CANVAS_SIDE = 30_000
MASKS = ("mask", "keep_in", "keep_out")   # request fields: images of the target's shape (layers, files)
PREVIEW_EVERY_S = 1.0
PROGRESS_EVERY_S = 0.1


@dataclass
class RunRequest:
    job: str
    folder: Path
    target: np.ndarray                 # (h, w, 3) float RGB at the document's size
    sprites: list[Sprite]
    options: dict
    background: tuple[float, float, float] | None
    out_format: str
    out_rows: str
    warnings: list[str]                # sprites skipped while loading, passed on to the host


def _field(request: dict, key: str, kind, where: str = "run request"):
    if key not in request:
        raise SpriteFitError(f"{where}: missing field {key!r}")
    value = request[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise SpriteFitError(f"{where}: field {key!r} must be {_kind_name(kind)}, not {type(value).__name__}")
    return value


def _kind_name(kind) -> str:
    names = {str: "a string", int: "an integer", dict: "an object", list: "a list"}
    return names.get(kind, getattr(kind, "__name__", str(kind)))


def _inside(folder: Path, relative: str, where: str) -> Path:
    path = (folder / relative).resolve()
    if folder.resolve() not in path.parents:
        raise SpriteFitError(f"{where}: file {relative!r} is outside the job folder")
    if not path.is_file():
        raise SpriteFitError(f"{where}: file {relative!r} not found in the job folder")
    return path


def read_pixels(folder: Path, descriptor, where: str) -> np.ndarray:
    """An image of the job folder: an image file, or raw pixels with width, height and format."""
    if not isinstance(descriptor, dict):
        raise SpriteFitError(f"{where} must be an object with a 'file' field")
    path = _inside(folder, _field(descriptor, "file", str, where), where)
    if "format" not in descriptor:
        return load_rgba(path, where)
    width, height = (_field(descriptor, key, int, where) for key in ("width", "height"))
    if not (0 < width <= MAX_CANVAS_SIDE and 0 < height <= MAX_CANVAS_SIDE):
        raise SpriteFitError(f"{where}: a {width}x{height} image is outside 1..{MAX_CANVAS_SIDE} px a side")
    return pixels.decode(path.read_bytes(), width, height, _field(descriptor, "format", str, where),
                         descriptor.get("rows"), where)


def _target(folder: Path, descriptor) -> np.ndarray:
    rgba = read_pixels(folder, descriptor, "target")
    if rgba[..., 3].max() <= 0:
        raise SpriteFitError("target: every pixel is transparent (nothing to reproduce)")
    alpha = rgba[..., 3:4]
    return (rgba[..., :3] * alpha + (1 - alpha)).astype(np.float32)   # over white, as load_rgb does


def _sprites(folder: Path, spec, alpha: str) -> tuple[list[Sprite], list[str]]:
    """The sprite set and the warnings raised while loading it (skipped sprites). alpha: how
    opaque images of packs and folders become sprites (the option sprite_alpha, or the spec's
    own "alpha")."""
    if not isinstance(spec, dict):
        raise SpriteFitError("sprites must be an object: {'pack': name}, {'folder': path} or {'layers': [...]}")
    alpha = OPTIONS["sprite_alpha"].check(spec.get("alpha", alpha), "sprites: 'alpha'")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if "pack" in spec:
            sprites = load_sprites(_field(spec, "pack", str, "sprites"), alpha)
        elif "folder" in spec:
            sprites = load_sprites(Path(_field(spec, "folder", str, "sprites")), alpha)
        else:
            sprites = _layer_sprites(folder, _field(spec, "layers", list, "sprites"))
    return sprites, [str(w.message) for w in caught]


def _layer_sprites(folder: Path, layers: list) -> list[Sprite]:
    if not layers:
        raise SpriteFitError("no sprite layers were sent (select the layers to use as sprites)")
    if len(layers) > MAX_LAYER_SPRITES:
        raise SpriteFitError(f"{len(layers)} sprite layers is more than the {MAX_LAYER_SPRITES} supported")
    sprites = []
    for i, layer in enumerate(layers):
        where = f"sprite layer {i + 1}"
        name = layer.get("name", where) if isinstance(layer, dict) else where
        rgba = read_pixels(folder, layer, f"sprite layer {name!r}")
        sprite = sprite_from_bytes(str(name), encode_png(rgba), {"layer": str(name)})
        if sprite is not None:
            sprites.append(sprite)
    if not sprites:
        raise SpriteFitError("every sprite layer is fully transparent: paint something on them first")
    return sprites


def _start_from_scene(folder: Path, descriptor, options: dict) -> list[Sprite]:
    """Set `options` to start from the scene file of the job folder (an earlier result, perhaps
    edited by the host), with the instances `options["lock"]` names frozen; returns its sprites."""
    if not isinstance(descriptor, dict):
        raise SpriteFitError("init_scene must be an object with a 'file' field")
    scene = Scene.load(_inside(folder, _field(descriptor, "file", str, "init_scene"), "init_scene"))
    scene.lock(options.pop("lock", "none"))
    options.update(init="scene", init_scene=scene, n=options.get("n", len(scene)))
    return scene.sprites


def _options(options) -> dict:
    """The request's options, checked against spritefit.options (what the hello event lists)."""
    if not isinstance(options, dict):
        raise SpriteFitError("options must be an object")
    return check_options(options)


def parse_run(request: dict, sprites: list[Sprite] | None = None) -> RunRequest:
    """Validate a run request and load its inputs; every problem is a SpriteFitError naming it.
    sprites: already loaded for this request (a live update that keeps its sprite set)."""
    if not isinstance(request, dict):
        raise SpriteFitError("a request must be a JSON object")
    job = _field(request, "job", str)
    folder = Path(_field(request, "dir", str))
    if not folder.is_dir():
        raise SpriteFitError(f"job folder {folder} does not exist")
    options = _options(request.get("options", {}))
    background = options.pop("background", OPTIONS["background"].default)
    output = request.get("output", {})
    if not isinstance(output, dict):
        raise SpriteFitError("output must be an object such as {'format': 'BGRA8'}")
    out_format = output.get("format", "RGBA8")
    out_rows = pixels.check_format(out_format, output.get("rows"))
    target = _target(folder, request.get("target"))
    if sprites is not None:
        warned = []
    elif request.get("init_scene") is not None:
        sprites, warned = _start_from_scene(folder, request["init_scene"], options), []
    elif "lock" in options:
        raise SpriteFitError("option 'lock' needs an init_scene: the scene whose instances are locked")
    else:
        sprites, warned = _sprites(folder, request.get("sprites"), options.get("sprite_alpha", "auto"))
    for name in MASKS:
        if request.get(name) is not None:
            options[name] = mask_values(read_pixels(folder, request[name], name.replace("_", "-") + " mask"))
    return RunRequest(job, folder, target, sprites, options, background, out_format, out_rows, warned)


class ProgressReporter:
    """Turns fit progress into `progress` events, throttled, with a preview image now and then."""

    def __init__(self, job: str, folder: Path | None, emit: Callable[[dict], None]):
        self.job, self.folder, self.emit = job, folder, emit
        self.last_event = self.last_preview = 0.0

    def __call__(self, p) -> None:
        now = time.monotonic()
        last = p.iteration == p.total
        if not last and now - self.last_event < PROGRESS_EVERY_S:
            return
        self.last_event = now
        event = {"event": "progress", "job": self.job, "iteration": p.iteration, "total": p.total,
                 "loss": round(p.loss, 6), "psnr": round(p.psnr, 3)}
        if now - self.last_preview >= PREVIEW_EVERY_S or last:
            self.last_preview = now
            event["preview"] = self.preview(p.current_scene())
        self.emit(event)

    def preview(self, scene):
        """The preview's path in the job folder (without a folder, as on a cluster node: its PNG bytes)."""
        from ..render import render_scene_array
        if self.folder is None:
            return encode_png(render_scene_array(scene))
        path = self.folder / "preview.png"
        save_png(path, render_scene_array(scene))
        return str(path)


def fit_options(run: RunRequest) -> dict:
    """The fit's options: the request's but the job's own (cluster, lock), with the working size
    defaulted (the document's, at most DEFAULT_WORKING_SIZE)."""
    options = {k: v for k, v in run.options.items() if k not in JOB_OPTIONS}
    options.update(background=run.background)
    options.setdefault("size", min(max(run.target.shape[:2]), DEFAULT_WORKING_SIZE))
    return options


def execute(run: RunRequest, emit: Callable[[dict], None], cancelled: Callable[[], bool]) -> dict:
    """Fit (here, or on the Ray cluster the request or $SPRITEFIT_RAY_ADDRESS names) and write the
    result files; returns the manifest."""
    from ..cluster import RAY_ADDRESS_VARIABLE
    options = fit_options(run)
    address = run.options.get("cluster") or os.environ.get(RAY_ADDRESS_VARIABLE, "").strip()
    if address:
        from ..cluster.remote_job import fit_on_cluster
        scene = fit_on_cluster(address, run.job, run.folder, run.target, run.sprites, options, emit, cancelled,
                               ProgressReporter)
    else:
        from ..fitting import fit
        with overrides_as_warnings(run.job, emit):
            scene = fit(run.target, run.sprites, progress=ProgressReporter(run.job, run.folder, emit),
                        cancel=cancelled, **options)
    return write_result(run, scene, cancelled=cancelled())


@contextmanager
def overrides_as_warnings(job: str, emit: Callable[[dict], None]):
    """Send what automatic settings changed in the fit (FitOverride) as `warning` events."""
    from ..fitting.config import FitOverride
    with warnings.catch_warnings():
        warnings.simplefilter("always", FitOverride)
        shown = warnings.showwarning

        def show(message, category, *args, **kwargs):
            if issubclass(category, FitOverride):
                emit({"event": "warning", "job": job, "message": str(message)})
            else:
                shown(message, category, *args, **kwargs)
        warnings.showwarning = show
        yield


def write_result(run: RunRequest, scene, cancelled: bool) -> dict:
    from ..fitting import evaluate
    from ..render import render_scene_array, scene_atlas
    from ..render.layers import instance_layers

    height, width = run.target.shape[:2]
    scale = width / scene.width
    layers = []
    with atomic_path(run.folder / "patches.bin") as tmp, open(tmp, "wb") as blob:
        for layer in instance_layers(scene, scene_atlas(scene, scale), scale, canvas=(width, height)):
            data = pixels.encode(layer.rgba, run.out_format, run.out_rows)
            layers.append(_layer_record(scene, layer, scale, blob.tell(), len(data)))
            blob.write(data)
    save_png(run.folder / "composite.png", render_scene_array(scene, scale=scale, canvas=(width, height)))
    scene.save(run.folder / "scene.json")
    sprites = _write_sprites(run.folder, scene.sprites)
    metrics = evaluate(scene, _working_target(run.target, scene)) if scene.background is not None else {}
    manifest = {"format": "spritefit-layers", "version": 1, "job": run.job, "width": width, "height": height,
                "pixel_format": run.out_format, "rows": run.out_rows, "patches": "patches.bin",
                "composite": "composite.png", "scene": "scene.json", "cancelled": cancelled,
                "color_mode": scene.color_mode,
                "background": None if scene.background is None else [round(c, 6) for c in scene.background],
                "sprites": sprites, "layers": layers,
                **{k: round(v, 4) for k, v in metrics.items()}}
    write_bytes_atomic(run.folder / "manifest.json", json.dumps(manifest).encode())
    return manifest


def _write_sprites(folder: Path, sprites: list[Sprite]) -> list[dict]:
    """Each sprite as a PNG (trimmed to its pixels), for hosts that draw sprites themselves."""
    (folder / "sprites").mkdir(exist_ok=True)
    records = []
    for k, sprite in enumerate(sprites):
        save_png(folder / "sprites" / f"{k}.png", sprite.rgba)
        height, width = sprite.rgba.shape[:2]
        records.append({"name": sprite.name, "file": f"sprites/{k}.png", "width": width, "height": height})
    return records


def _layer_record(scene, layer, scale: float, offset: int, size: int) -> dict:
    i = layer.index
    height, width = layer.rgba.shape[:2]
    return {"name": layer.name, "sprite": int(scene.sprite[i]), "x": layer.left, "y": layer.top,
            "width": width, "height": height, "opacity": round(layer.opacity, 6), "offset": offset, "size": size,
            "placement": {"x": float(scene.xy[i][0] * scale), "y": float(scene.xy[i][1] * scale),
                          "size": float(scene.size[i] * scale), "angle": float(scene.theta[i]),
                          "color": [float(c) for c in scene.color[i]], "mix": float(scene.mix[i])}}


def _working_target(target: np.ndarray, scene) -> np.ndarray:
    from ..images import resize_to_longest
    return resize_to_longest(target, max(scene.width, scene.height))

