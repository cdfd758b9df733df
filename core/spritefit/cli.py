"""The `spritefit` command: fit, render, sprites."""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

from . import timing
from .errors import SpriteFitError
from .options import GROUPS, OPTIONS, cli_flag, default_text
from .startup import exit_without_teardown, freeze_imported_objects, imports_without_collection

EXIT_USER_ERROR = 2


def _add_fit_parser(commands) -> None:
    p = commands.add_parser("fit", help="fit sprites to a target image")
    p.add_argument("target", nargs="?", help="target image (PNG, JPEG, WebP, ...); optional with --prompt")
    _add_sprite_options(p)
    _add_output_files(p)
    p.add_argument("--init-scene", "--from-scene", metavar="SCENE", dest="init_scene",
                   help="start from this scene.json (same canvas size) instead of a new placement")
    p.add_argument("--lock", metavar="WHICH",
                   help="with --init-scene: instances kept exactly as they are: all-edited (changed since "
                        "SpriteFit wrote the scene), all, or ids and ranges such as 0,4,10-19")
    clip = p.add_argument_group("text guidance (CLIP, through open_clip)")
    clip.add_argument("--prompt", help='steer the fit towards a text, e.g. "a red fox in the snow"')
    clip.add_argument("--clip-model", default=None, help="open_clip model name (default ViT-B-32)")
    clip.add_argument("--clip-weights", metavar="FILE|TAG",
                      help="CLIP checkpoint file, or an open_clip tag already in the cache "
                           "(default $SPRITEFIT_CLIP_WEIGHTS, else laion2b_s34b_b79k)")
    clip.add_argument("--clip-weight", type=float, default=None,
                      help="weight of the CLIP loss beside the image loss (default 1; a prompt alone: 1)")
    clip.add_argument("--clip-views", type=int, default=8, help="augmented views per iteration (default 8)")
    clip.add_argument("--canvas", metavar="WxH", help="canvas size without a target image (default 512x512)")
    constraints = p.add_argument_group("spatial constraints (masks: white = in; an image's alpha when it has one)")
    constraints.add_argument("--mask", metavar="FILE", help="weight the loss by this mask: black pixels are ignored")
    constraints.add_argument("--keep-in", metavar="FILE", help="sprite centres stay inside this mask")
    constraints.add_argument("--keep-out", metavar="FILE", help="sprite centres stay outside this mask")
    constraints.add_argument("--region", metavar="MASK=SPRITES", action="append", default=[],
                             help="fill this mask with these sprites (pack or folder) instead of --sprites; repeatable")
    p.add_argument("--force", action="store_true", help="replace result files that exist")
    _add_fit_options(p)
    p.set_defaults(func=cmd_fit)


def _add_fit_options(p, command: str = "fit") -> None:
    """The fit's options, which `fit`, `batch` and `video` share, built from spritefit.options
    (a group of options each); DIFFERENCES says what an option means for one command."""
    for group, _, title in GROUPS:
        options = [o for o in OPTIONS.values() if o.group == group and o.cli]
        section = p.add_argument_group(f"fit options: {title}")
        for o in options:
            _add_option(section, o, DIFFERENCES.get((command, o.name), o.help))


# What an option means in a command other than `fit`.
DIFFERENCES = {
    ("video", "iters"): "iterations of each shot's first frame (later frames: --frame-iters)",
    ("video", "background"): "final background: white, black or #rrggbb (a video is opaque)",
    ("video", "seed"): "random seed of the first frame (frame t uses seed + t)",
}


def _add_option(parser, o, help: str) -> None:
    default = default_text(o)
    kwargs = dict(dest=o.name, default=argparse.SUPPRESS, help=help + (f" (default {default})" if default else ""))
    if o.kind == "bool":
        kwargs["action"] = argparse.BooleanOptionalAction
    else:
        kwargs["type"] = {"int": int, "float": float}.get(o.kind, str)
        if o.choices and o.name != "device":         # devices are also cuda:N
            kwargs["choices"] = list(o.choices)
        kwargs["metavar"] = o.name.upper() if not o.choices or o.name == "device" else None
    parser.add_argument(cli_flag(o), **kwargs)


def _given_options(args) -> dict:
    """The fit options typed on the command line (the others keep their defaults), checked."""
    return {name: o.check(getattr(args, name), cli_flag(o)) for name, o in OPTIONS.items()
            if o.cli and hasattr(args, name)}


def _add_output_files(p) -> None:
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--formats", default="png,psd,svg,json",
                   help="what to write, comma-separated: png, psd, svg, json (default: all four)")
    p.add_argument("--svg-linked", action="store_true",
                   help="SVG references sprite PNGs in a folder beside it instead of embedding them")


def _add_sprite_options(p) -> None:
    p.add_argument("--sprites", required=True, help="folder of sprite images or a built-in pack name")


def _load_sprites(args):
    """The sprite set of --sprites and --sprite-alpha, with a note of what auto did to each image."""
    from .sprites import load_sprites
    alpha = getattr(args, "sprite_alpha", OPTIONS["sprite_alpha"].default)
    sprites = load_sprites(args.sprites, alpha)
    if alpha == "auto":
        opaque = [s for s in sprites if not s.note.startswith("has transparency")]
        for sprite in opaque:
            print(f"spritefit: note: sprite {sprite.name!r}: {sprite.note}", file=sys.stderr)
        if opaque and len(opaque) < len(sprites):
            print(f"spritefit: note: {len(sprites) - len(opaque)} more sprites have transparency: kept as they are",
                  file=sys.stderr)
    return sprites


def _add_ray_option(p, what: str) -> None:
    p.add_argument("--ray", metavar="ADDRESS",
                   help=f"fit {what} as Ray tasks: `auto` (a Ray instance on this machine) or HOST:PORT of a "
                        f"cluster's head node (needs spritefit[cluster]; default: in this process)")


def _add_batch_parser(commands) -> None:
    p = commands.add_parser("batch", help="fit many images, one output folder each (locally or on Ray)")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders, glob patterns or text files listing images (one a line)")
    _add_sprite_options(p)
    _add_output_files(p)
    _add_ray_option(p, "the images")
    p.add_argument("--cpus-per-task", type=int, default=None,
                   help="CPUs each image's fit asks Ray for and uses (default 1 on Ray; all of them here)")
    p.add_argument("--force", action="store_true",
                   help="fit every image again, also those a previous run finished")
    _add_fit_options(p, "batch")
    p.set_defaults(func=cmd_batch)


@imports_without_collection
def cmd_batch(args) -> int:
    from .batch import BatchSettings, collect_inputs, run_batch, summary_table
    from .cluster import executor_for
    from .export import parse_formats
    from .files import prepare_output_dir
    from .fitting import make_config

    options = _given_options(args)
    config = make_config(**options)   # bad options fail here, once
    cpus = _cpus_per_task(args)
    settings = BatchSettings(formats=tuple(parse_formats(args.formats)), svg_linked=args.svg_linked,
                             options=options)
    images = collect_inputs(args.inputs)
    sprites = _load_sprites(args)
    executor = executor_for(args.ray)      # an unusable cluster is reported before anything is written
    out = prepare_output_dir(args.out)
    if args.ray is None and args.cpus_per_task is not None:   # here, the CPUs a Ray task would get
        from .render.native import set_cpu_threads
        set_cpu_threads(cpus)
    print(f"{len(images)} images, {len(sprites)} sprites, fitted on {executor.where}")
    bar = _BatchBar(len(images))
    freeze_imported_objects()
    try:
        rows = run_batch(images, sprites, settings, out, executor, redo=args.force, cpus=cpus,
                         gpus=1 if _uses_gpu(config.run.device) else 0, progress=bar)
    finally:
        bar.close()
    print(summary_table(rows))
    failed = sum(row.status == "failed" for row in rows)
    print(f"{len(rows) - failed} of {len(rows)} images finished; wrote {out / 'summary.csv'} and summary.json")
    return 1 if failed else 0


def _uses_gpu(device: str) -> bool:
    from .fitting import resolve_device
    return resolve_device(device).type == "cuda"


def _cpus_per_task(args) -> int:
    if args.cpus_per_task is not None and args.cpus_per_task < 1:
        raise SpriteFitError(f"--cpus-per-task must be at least 1, not {args.cpus_per_task}")
    return args.cpus_per_task or 1


class _BatchBar:
    """tqdm bar over the images of a batch, showing the last one finished."""

    def __init__(self, total: int):
        from tqdm import tqdm
        self.bar = tqdm(total=total, desc="batch", unit="image", dynamic_ncols=True)

    def __call__(self, row) -> None:
        self.bar.set_postfix(last=row.folder, status=row.status, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _add_output_options(p) -> None:
    p.add_argument("--svg-linked", action="store_true",
                   help="SVG references sprite PNGs in a folder beside it instead of embedding them")
    p.add_argument("--force", action="store_true", help="replace result files that exist")


def _add_render_parser(commands) -> None:
    p = commands.add_parser("render", help="re-render a scene file at any scale, as PNG, PSD or SVG")
    p.add_argument("scene", help="scene.json written by `spritefit fit`")
    p.add_argument("--scale", type=float, default=1.0, help="scale factor of the canvas (default 1)")
    p.add_argument("-o", "--output", required=True, action="append",
                   help="output file; its extension (.png, .psd, .svg) picks the format; repeatable")
    p.add_argument("--allow-outside", action="store_true",
                   help="let the scene link sprite files outside its own folder")
    _add_output_options(p)
    p.set_defaults(func=cmd_render)


def _add_video_parser(commands) -> None:
    p = commands.add_parser("video", help="fit a frame sequence with temporal coherence")
    p.add_argument("input", help="a folder of frames, an animated GIF/WebP/PNG, or a video file (MP4, MOV, ...)")
    _add_sprite_options(p)
    p.add_argument("--frame-iters", type=int, default=None,
                   help="iterations of every later frame (default: a quarter of frame 1's, at least 20)")
    p.add_argument("--start", type=int, default=0, help="first frame to use (default 0)")
    p.add_argument("--stop", type=int, default=None, help="frame to stop before (default: the last)")
    p.add_argument("--step", type=int, default=1, help="use every STEP-th frame (default 1)")
    p.add_argument("--fps", type=float, default=12.0, help="frame rate of the outputs (default 12)")
    p.add_argument("--no-temporal", action="store_true",
                   help="warm start only: no motion tracking, temporal terms or freezing")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--shots", metavar="FRAMES",
                   help="numbers of the frames that start a new shot, e.g. 25,60, or none (default: found by "
                        "a scene-cut test); each shot starts with a full fit")
    _add_ray_option(p, "the shots in parallel")
    p.add_argument("--cpus-per-task", type=int, default=None, help="CPUs each shot asks Ray for (default 1)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run in --out: finished shots are kept (and, fitted here, "
                        "finished frames)")
    p.add_argument("--force", action="store_true", help="replace an earlier run's results in --out")
    _add_fit_options(p, "video")
    p.set_defaults(func=cmd_video)


@imports_without_collection
def cmd_video(args) -> int:
    from .cluster import executor_for
    from .files import prepare_output_dir
    from .video import VideoFit, VideoSettings, parse_shots, read_frames

    from .fitting import make_config
    options = _given_options(args)
    if make_config(**options).run.background is None:
        raise SpriteFitError("video needs an opaque background (white, black or #rrggbb)")
    if not args.fps > 0:
        raise SpriteFitError(f"--fps must be positive, not {args.fps}")
    out = prepare_output_dir(args.out)
    if (out / "scenes").exists() and any((out / "scenes").iterdir()) and not (args.resume or args.force):
        raise SpriteFitError(f"{out} holds an earlier run: use --resume to continue it or --force to start over")
    if args.force and not args.resume:
        for old in [*(out / "scenes").glob("*.json"), *(out / "shots").glob("*.json")]:
            old.unlink()
    cpus = _cpus_per_task(args)
    manual_shots = parse_shots(args.shots)
    frames = read_frames(args.input, args.start, args.stop, args.step)
    settings = VideoSettings(options=options, frame_iters=args.frame_iters, fps=args.fps,
                             temporal=not args.no_temporal)
    video = VideoFit(frames, _load_sprites(args), settings, out, shots=manual_shots,
                     executor=executor_for(args.ray), cpus=cpus)
    shots = len(video.shots.starts)
    print(f"{len(frames)} frames in {shots} shot{'s' if shots > 1 else ''}, fitted on {video.executor.where}")
    bar = _VideoBar(video.iterations())
    video.progress, video.shot_finished = bar, bar.frames_done
    freeze_imported_objects()
    try:
        records = video.run(resume=args.resume)
    finally:
        bar.close()
    summary = json.loads((out / "metrics.json").read_text())
    print(f"{len(records)} frames, mean PSNR {summary['mean_psnr']:.2f} dB, flicker {summary['flicker']:.4f} "
          f"(target change {summary['target_change']:.4f}), {summary['seconds_per_frame']:.1f} s a frame\n"
          f"wrote {out / 'result.mp4'}, result.gif, comparison.mp4, metrics.json, scenes/ and frames/")
    return 0


class _VideoBar:
    """One tqdm bar over every iteration of every frame, showing the frame and its PSNR; shots that
    finish elsewhere (Ray) or earlier (--resume) count whole."""

    def __init__(self, iterations: list[int]):
        from tqdm import tqdm
        self.iterations, self.counted = iterations, [0] * len(iterations)
        self.bar = tqdm(total=sum(iterations), desc="video", unit="it", dynamic_ncols=True)

    def __call__(self, frame: int, frames: int, p) -> None:
        self.bar.set_postfix(frame=f"{frame + 1}/{frames}", psnr=f"{p.psnr:.2f}dB", refresh=False)
        self._count(frame, p.iteration)

    def frames_done(self, first: int, stop: int) -> None:
        for frame in range(first, stop):
            self._count(frame, self.iterations[frame])

    def _count(self, frame: int, iterations: int) -> None:
        self.bar.update(max(0, iterations - self.counted[frame]))
        self.counted[frame] = max(self.counted[frame], iterations)

    def close(self) -> None:
        self.bar.close()


def _add_sprites_parser(commands) -> None:
    p = commands.add_parser("sprites", help="built-in sprite packs")
    sub = p.add_subparsers(dest="sprites_command", required=True)
    sub.add_parser("list", help="list the built-in packs").set_defaults(func=cmd_sprites_list)


def _refuse_overwrite(paths: list[Path], force: bool) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise SpriteFitError(f"{', '.join(existing)} already exists (use --force to replace)")


class _ProgressBar:
    """tqdm bar over iterations showing the loss and the training PSNR, read a few times a second
    (each read waits for the device) and never for more than POSTFIX_SHARE of the time: on a
    large canvas the PSNR alone is a pass over millions of pixels (5 % of a 2048 px iteration if
    read at every one)."""

    POSTFIX_EVERY_S = 0.2
    POSTFIX_SHARE = 0.02

    def __init__(self, total: int):
        from tqdm import tqdm
        self.bar = tqdm(total=total, desc="fitting", unit="it", dynamic_ncols=True)
        self.last_postfix, self.postfix_every = -math.inf, self.POSTFIX_EVERY_S

    def __call__(self, p) -> None:
        now = time.monotonic()
        if now - self.last_postfix >= self.postfix_every or p.iteration == p.total:
            self.bar.set_postfix(loss=f"{p.loss:.4f}", psnr=f"{p.psnr:.2f}dB", sigma=f"{p.sigma:.2f}",
                                 refresh=False)
            self.last_postfix = time.monotonic()
            self.postfix_every = max(self.POSTFIX_EVERY_S, (self.last_postfix - now) / self.POSTFIX_SHARE)
        self.bar.update(p.iteration - self.bar.n)

    def close(self) -> None:
        self.bar.close()


class _LayerBar:
    """tqdm bar over the PSD's layers, shown once there are enough of them to take a moment."""

    def __init__(self):
        self.bar = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None and total >= 2000:
            from tqdm import tqdm
            self.bar = tqdm(total=total, desc="PSD layers", unit="layer", dynamic_ncols=True)
        if self.bar is not None:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _export(scene, outputs: dict, **options) -> None:
    from .export import export_scene
    bar = _LayerBar()
    try:
        export_scene(scene, outputs, progress=bar, **options)
    finally:
        bar.close()


def _prepare_target_meanwhile(path, size: int | None):
    """A future of images.prepare_target(path, size), made on a thread while the fit's modules
    (torch) are imported: PIL decodes and resizes without the GIL, and at 2048 px that was 0.1 to
    0.2 s of the start. Its errors come from result(), where the target was read before."""
    if path is None:
        return None
    from concurrent.futures import ThreadPoolExecutor
    from .images import prepare_target
    pool = ThreadPoolExecutor(1, thread_name_prefix="spritefit-target")
    future = pool.submit(prepare_target, path, size)
    pool.shutdown(wait=False)   # the thread ends with its one task
    return future


@imports_without_collection
def cmd_fit(args) -> int:
    options = _given_options(args)           # each option checked, before anything is loaded
    # The size as typed is config.run.size: no preset changes it (spritefit.options.PRESETS).
    target_loading = _prepare_target_meanwhile(args.target, options.get("size"))
    from .export import DEFAULT_NAMES, parse_formats
    from .files import prepare_output_dir
    from .fitting import evaluate, fit, make_config, resolve_device
    from .guidance import clip_similarity
    from .scene import Scene

    config = make_config(**options)          # options that do not go together fail here
    device = str(resolve_device(config.run.device))
    formats = parse_formats(args.formats)
    out = prepare_output_dir(args.out)
    outputs = {f: out / DEFAULT_NAMES[f] for f in formats}
    _refuse_overwrite(list(outputs.values()), args.force)
    if args.target is None and not args.prompt:
        raise SpriteFitError("give a target image, a --prompt, or both")
    if args.target is not None and args.canvas is not None:
        raise SpriteFitError("--canvas is for a prompt without a target image (the target sets the canvas)")
    target = target_loading.result() if target_loading else None
    guidance = _clip_guidance(args, device, config.run.seed)
    sprites = _load_sprites(args)
    start_options = {}
    if args.init_scene:
        previous = Scene.load(args.init_scene)
        if args.lock:
            print(f"{previous.lock(args.lock)} of {len(previous)} instances locked")
        sprites, start_options = previous.sprites, {"init": "scene", "init_scene": previous}
    elif args.lock:
        raise SpriteFitError("--lock needs --init-scene: the scene whose instances are locked")
    options.update(mask=args.mask, keep_in=args.keep_in, keep_out=args.keep_out, regions=_regions(args),
                   device=device, **start_options)
    freeze_imported_objects()
    with timing.clock_from_environment(_synchronize(device)):
        start = time.perf_counter()
        timing.mark("fit called")
        bar = _ProgressBar(config.schedule.iters)
        try:
            scene = fit(target, sprites, progress=bar, guidance=guidance, canvas=_canvas(args.canvas), **options)
        finally:
            bar.close()
        elapsed = time.perf_counter() - start
        timing.mark("fit done")
        _export(scene, outputs, target=target, svg_linked=args.svg_linked)
        timing.mark("exported")
    summary = f"{len(scene)} sprites, {scene.width}x{scene.height} px, {elapsed:.1f} s"
    if target is not None and scene.background is not None:
        metrics = evaluate(scene, target)
        summary += f", PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.3f}"
    if guidance is not None:
        summary += f", CLIP similarity {clip_similarity(scene, guidance):.3f}"
    print(f"{summary}\nwrote {', '.join(str(p) for p in outputs.values())}")
    return 0


def _synchronize(device: str):
    """What the timing clock waits on at each stage boundary (SPRITEFIT_TIMINGS only)."""
    if device.startswith("cuda"):
        import torch
        return torch.cuda.synchronize
    return None


def _clip_guidance(args, device: str, seed: int):
    if not args.prompt:
        for name in ("clip_model", "clip_weights", "clip_weight", "canvas"):
            if getattr(args, name) is not None:
                raise SpriteFitError(f"--{name.replace('_', '-')} needs --prompt")
        return None
    from .guidance import DEFAULT_MODEL, load_clip_guidance
    weight = 1.0 if args.clip_weight is None else args.clip_weight
    if not weight > 0:
        raise SpriteFitError(f"--clip-weight must be positive, not {args.clip_weight}")
    return load_clip_guidance(args.prompt, args.clip_model or DEFAULT_MODEL, args.clip_weights, device=device,
                              views=args.clip_views, weight=weight, seed=seed)


def _canvas(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    width, separator, height = text.lower().partition("x")
    if not separator or not width.isdigit() or not height.isdigit():
        raise SpriteFitError(f"--canvas {text!r}: write it as WIDTHxHEIGHT, e.g. 512x384")
    return int(width), int(height)


def _regions(args) -> tuple:
    from .fitting import Region
    regions = []
    for text in args.region:
        mask, separator, sprites = text.rpartition("=")
        if not separator or not mask or not sprites:
            raise SpriteFitError(f"--region {text!r}: write it as MASK=SPRITES, e.g. sky.png=shapes")
        regions.append(Region(mask, sprites, name=Path(mask).name))
    if regions and args.init_scene:
        raise SpriteFitError("--region cannot be combined with --init-scene, whose scene brings its own sprites")
    return tuple(regions)


def cmd_render(args) -> int:
    from .export import format_of
    from .render import scaled_canvas
    from .scene import Scene

    if not args.scale > 0 or args.scale > 64:
        raise SpriteFitError(f"--scale must be in (0, 64], not {args.scale}")
    outputs = {}
    for path in map(Path, args.output):
        fmt = format_of(path)
        if fmt in outputs:
            raise SpriteFitError(f"two outputs in {fmt.upper()} format: {outputs[fmt]} and {path}")
        if not path.parent.is_dir():
            raise SpriteFitError(f"output folder does not exist: {path.parent}")
        outputs[fmt] = path
    _refuse_overwrite(list(outputs.values()), args.force)
    scene = Scene.load(args.scene, allow_outside=args.allow_outside)
    _export(scene, outputs, scale=args.scale, svg_linked=args.svg_linked)
    size = "x".join(map(str, scaled_canvas(scene, args.scale))) + " px"
    print(f"wrote {', '.join(str(p) for p in outputs.values())} ({size})")
    return 0


def cmd_sprites_list(args) -> int:
    from .sprites import builtin_packs
    for name, files in builtin_packs().items():
        print(f"{name:10s} {len(files):3d} sprites: {', '.join(f.stem for f in files)}")
    return 0


def _add_bench_parser(commands) -> None:
    from .bench import SCENARIOS
    p = commands.add_parser("bench", help="benchmarks")
    sub = p.add_subparsers(dest="bench_command", required=True)
    speed = sub.add_parser("speed", help="renderer forward/backward time and memory per backend")
    speed.add_argument("--json", action="store_true", help="one JSON object per line")
    speed.add_argument("--scenario", action="append", choices=list(SCENARIOS),
                       help="run only these scenarios (default: all)")
    speed.add_argument("--repeats", type=int, default=3, help="timed runs per case (default 3)")
    speed.add_argument("--no-fit", action="store_true", help="only the kernels, not the real fit of each scenario")
    speed.set_defaults(func=cmd_bench_speed)
    quality = sub.add_parser("quality", help="fit quality of the presets on bundled targets, and an ablation")
    quality.add_argument("--json", action="store_true", help="one JSON object per line")
    quality.add_argument("--quick", action="store_true",
                         help="one small target, one N, a few iterations: checks that everything runs")
    quality.add_argument("--targets", help="comma-separated bundled targets (default: all)")
    quality.add_argument("--packs", default="shapes,leaves", help="comma-separated sprite packs (default shapes,leaves)")
    quality.add_argument("-n", default="200,1000,5000", help="comma-separated sprite counts (default 200,1000,5000)")
    quality.add_argument("--size", type=int, default=512, help="working size in pixels (default 512)")
    quality.add_argument("--iters", type=int, help="iterations of the preset runs (default: each preset's own)")
    quality.add_argument("--no-presets", action="store_true", help="skip the preset table")
    quality.add_argument("--no-ablation", action="store_true", help="skip the ablation")
    quality.add_argument("--report", metavar="DIR", help="write DIR/quality.md with the tables and a picture grid")
    quality.add_argument("--include", metavar="JSONL", help="add the rows of an earlier --json run to the report")
    quality.set_defaults(func=cmd_bench_quality)
    video = _bench_command(sub, "video", "three clips (one held out) fitted plain, with DiffBMP's recipe and with "
                           "temporal coherence, and an ablation of its techniques",
                           "3 frames, few sprites and iterations")
    _add_size_options(video, n=300, iters=200, iters_of="frame 1")
    video.add_argument("--frame-iters", type=int, default=50, help="iterations of later frames (default 50)")
    video.add_argument("--no-ablation", action="store_true", help="only the three methods")
    video.add_argument("--gif", metavar="PATH", help="write the held-out clip's target | plain | spritefit GIF")
    video.set_defaults(func=cmd_bench_video)
    versus = _bench_command(sub, "versus", "SpriteFit against a naive PyTorch fit and DiffBMP's recipe, on the "
                                           "tuning and the held-out sets", "one held-out target, tiny settings")
    versus.add_argument("--sets", default="tuning,held-out", help="comma-separated: tuning, held-out (default both)")
    versus.add_argument("--modes", default="tint,original", help="colour modes (default tint,original)")
    versus.add_argument("--limit", type=int, help="targets per set (default: all)")
    versus.add_argument("--methods", help="comma-separated, from spritefit, naive, diffbmp, spritefit-equal-time, "
                                          "spritefit-half-n (default: all; without the equal-time run the naive "
                                          "fit's time is that of the native renderer)")
    versus.add_argument("--equal-time-cap", type=int, default=800,
                        help="most iterations of the equal-time run (default 800; 0: as many as fit in the naive "
                             "fit's time)")
    versus.add_argument("--ablation", action="store_true",
                        help="instead of the baselines: SpriteFit with each of its techniques undone in turn")
    versus.add_argument("--report", metavar="DIR", help="write DIR/versus.md (DIR/versus-ablation.md)")
    versus.set_defaults(func=cmd_bench_versus)
    few = _bench_command(sub, "few", "k copies of one sprite on grey, fitted with 2k sprites: init auto (search) "
                                     "against the structure-aware start", "one target per set, k=2, few iterations")
    few.add_argument("-k", type=int, default=3, help="copies in each target (default 3)")
    few.add_argument("--cases", type=int, default=4, help="targets per set (default 4)")
    few.add_argument("--spacing", type=float, default=0.8,
                     help="copies' centres at least this times the sum of their half-sizes apart (default 0.8: "
                          "apart; 0.3: overlapping)")
    few.set_defaults(func=cmd_bench_few)
    live = sub.add_parser("live", help="a painting session replayed through the worker protocol: time from each "
                                        "stroke to its live frame, and how far sprites away from the strokes move")
    live.add_argument("--json", action="store_true", help="the summary as one JSON object")
    live.add_argument("--target", help="photo to paint on (default: the bundled one)")
    live.add_argument("--sprites", default="shapes", help="built-in pack or folder (default shapes)")
    live.add_argument("-n", type=int, default=300, help="sprites (default 300)")
    live.add_argument("--size", type=int, default=256, help="working size (default 256)")
    live.add_argument("--strokes", type=int, default=12, help="strokes painted (default 12)")
    live.set_defaults(func=cmd_bench_live)
    batch = _bench_command(sub, "batch", "a batch in this process and on local Ray clusters of 1 and 2 nodes",
                           "4 tiny images: checks that everything runs")
    batch.add_argument("--images", type=int, default=8, help="images in the batch (default 8)")
    _add_size_options(batch, n=300, iters=100, iters_of="each fit")
    batch.add_argument("--size", type=int, default=128, help="working size (default 128)")
    batch.set_defaults(func=cmd_bench_batch)


def _add_size_options(p, n: int, iters: int, iters_of: str) -> None:
    p.add_argument("-n", type=int, default=n, help=f"sprites (default {n})")
    p.add_argument("--iters", type=int, default=iters, help=f"iterations of {iters_of} (default {iters})")


def _bench_command(sub, name: str, help: str, quick: str):
    """A bench subcommand with --json and --quick (whose meaning `quick` gives)."""
    p = sub.add_parser(name, help=help)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--quick", action="store_true", help=quick)
    return p


def cmd_bench_speed(args) -> int:
    from .bench import SCENARIOS, bench_speed
    rows = bench_speed(args.scenario or list(SCENARIOS), args.json, max(1, args.repeats), fits=not args.no_fit)
    return 1 if any("error" in row for row in rows) else 0


def cmd_bench_live(args) -> int:
    from .bench.live import bench_live
    bench_live(args.target, args.sprites, args.n, args.size, args.strokes, as_json=args.json)
    return 0


def cmd_bench_video(args) -> int:
    from .bench import bench_video
    if args.quick:
        bench_video(n=40, iters=30, frame_iters=8, frames=3, as_json=args.json, ablation=not args.no_ablation,
                    gif=args.gif)
    else:
        bench_video(n=args.n, iters=args.iters, frame_iters=args.frame_iters, as_json=args.json,
                    ablation=not args.no_ablation, gif=args.gif)
    return 0


def cmd_bench_versus(args) -> int:
    from .bench.versus import METHODS, SETS, VersusSettings, bench_versus
    sets = tuple(v.strip() for v in args.sets.split(",") if v.strip())
    modes = tuple(v.strip() for v in args.modes.split(",") if v.strip())
    methods = tuple(v.strip() for v in (args.methods or ",".join(METHODS)).split(",") if v.strip())
    if "spritefit" not in methods or any(v not in METHODS for v in methods):
        raise SpriteFitError(f"--methods {args.methods!r}: choose from {', '.join(METHODS)}, with spritefit among them")
    if not sets or any(v not in SETS for v in sets):
        raise SpriteFitError(f"--sets {args.sets!r}: choose from {', '.join(SETS)}")
    if not modes or any(v not in ("tint", "original") for v in modes):
        raise SpriteFitError(f"--modes {args.modes!r}: choose from tint, original")
    if args.equal_time_cap < 0:
        raise SpriteFitError(f"--equal-time-cap must be 0 (no cap) or a number of iterations, not {args.equal_time_cap}")
    settings = (VersusSettings(sets=("held-out",), modes=("tint",), size=48, n=20, iters=4, limit=1) if args.quick
                else VersusSettings(sets=sets, modes=modes, limit=args.limit, methods=methods,
                                    equal_time_cap=args.equal_time_cap or None))
    if args.ablation:
        from .bench.versus_ablation import bench_versus_ablation
        bench_versus_ablation(settings, as_json=args.json, report=args.report)
    else:
        bench_versus(settings, as_json=args.json, report=args.report)
    return 0


def cmd_bench_few(args) -> int:
    from .bench.few import FewSettings, bench_few
    if args.k < 1 or args.cases < 1:
        raise SpriteFitError(f"-k and --cases must be at least 1, not {args.k} and {args.cases}")
    if not 0 <= args.spacing <= 1.2:
        raise SpriteFitError(f"--spacing must be between 0 and 1.2 (wider copies do not fit the canvas), not {args.spacing}")
    settings = (FewSettings(k=2, cases=1, size=96, iters=10) if args.quick
                else FewSettings(k=args.k, cases=args.cases, spacing=args.spacing))
    bench_few(settings, as_json=args.json)
    return 0


def cmd_bench_batch(args) -> int:
    from .bench import bench_batch
    if args.quick:
        bench_batch(images=4, n=20, iters=5, size=32, as_json=args.json)
    elif args.images < 2:
        raise SpriteFitError(f"--images must be at least 2, not {args.images}")
    else:
        bench_batch(images=args.images, n=args.n, iters=args.iters, size=args.size, as_json=args.json)
    return 0


def cmd_bench_quality(args) -> int:
    from .bench import BenchSettings, bench_quality, bundled_targets
    from .sprites import builtin_packs

    def listed(text: str, allowed, what: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        unknown = [v for v in values if v not in allowed]
        if unknown or not values:
            raise SpriteFitError(f"unknown {what} {', '.join(unknown) or repr(text)} (choose from {', '.join(allowed)})")
        return values

    if args.quick:
        settings = BenchSettings.quick()
    else:
        try:
            counts = [int(v) for v in args.n.split(",")]
        except ValueError:
            raise SpriteFitError(f"-n must be comma-separated whole numbers, not {args.n!r}") from None
        settings = BenchSettings(targets=listed(args.targets, bundled_targets(), "target") if args.targets
                                 else bundled_targets(), packs=listed(args.packs, builtin_packs(), "pack"),
                                 counts=counts, size=args.size, iters=args.iters)
    settings.presets, settings.ablation = not args.no_presets, not args.no_ablation
    earlier = []
    if args.include:
        try:
            earlier = [json.loads(line) for line in Path(args.include).read_text().splitlines() if line.strip()]
        except (OSError, json.JSONDecodeError) as exc:
            raise SpriteFitError(f"cannot read earlier results {args.include}: {exc}") from None
    bench_quality(settings, as_json=args.json, report=args.report, earlier_rows=earlier)
    return 0


class _VersionAction(argparse.Action):
    """--version, with the version looked up only when asked for (spritefit.__version__)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from . import __version__
        print(f"spritefit {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spritefit", description="Reproduce an image with sprites.")
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_fit_parser(commands)
    _add_batch_parser(commands)
    _add_render_parser(commands)
    _add_video_parser(commands)
    _add_sprites_parser(commands)
    _add_bench_parser(commands)
    worker = commands.add_parser("worker", help="the JSON-lines worker the editor plugins start")
    worker.set_defaults(func=lambda args: __import__("spritefit.worker", fromlist=["main"]).main())
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):
    from .fitting.config import FitOverride
    kind = "note" if issubclass(category, FitOverride) else "warning"
    print(f"spritefit: {kind}: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.showwarning = _show_warning
    try:
        return args.func(args)
    except SpriteFitError as exc:
        print(f"spritefit: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("spritefit: interrupted", file=sys.stderr)
        return 130


def run() -> None:
    """The `spritefit` command (main() is the same, for callers in Python): its status is the
    process's, which ends without the interpreter's teardown."""
    exit_without_teardown(main())


if __name__ == "__main__":
    run()
