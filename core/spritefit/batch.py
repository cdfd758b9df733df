"""Batch: one fit per image of a list, each into its own output folder.

    spritefit batch photos/ covers/*.jpg list.txt --sprites leaves --out mosaics/

Each image is fitted by `fit_batch_image`, wherever the executor runs it (this process or a Ray
worker): it gets the image's bytes and the sprites, and returns the exported files as bytes with
the metrics. This machine writes them into OUT/<image name>/ (every file atomically), then
`result.json` last: an image whose folder has a complete result.json is finished and is skipped
when the batch runs again; any other is fitted again. A summary (image, PSNR, SSIM, seconds,
status) is printed and written as summary.csv and summary.json.
"""
from __future__ import annotations

import csv
import glob
import io
import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .errors import SpriteFitError
from .files import write_bytes_atomic
from .images import IMAGE_EXTENSIONS
from .sprites import Sprite

LIST_EXTENSIONS = {".txt", ".lst"}
RESULT_FILE = "result.json"
SUMMARY_FIELDS = ("image", "folder", "status", "psnr", "ssim", "seconds", "error")


@dataclass
class BatchSettings:
    """What every image of a batch is fitted with."""
    formats: tuple[str, ...] = ("png", "psd", "svg", "json")
    svg_linked: bool = False
    options: dict = field(default_factory=dict)    # fit options (spritefit.options), as given


@dataclass
class BatchImage:
    """One image of the batch: where it is read from and the output folder it gets."""
    path: Path
    folder: str


@dataclass
class ImageTask:
    """Everything a task needs, so it can run on a node that cannot see this machine's files."""
    folder: str
    label: str
    image: bytes
    sprites: list[Sprite]
    settings: BatchSettings


@dataclass
class SummaryRow:
    image: str
    folder: str
    status: str                 # done, skipped (finished before) or failed
    psnr: float | None = None
    ssim: float | None = None
    seconds: float | None = None
    error: str | None = None


# --- inputs ---------------------------------------------------------------------------------------

def collect_inputs(inputs: list[str]) -> list[BatchImage]:
    """Image files from files, folders (their images, sorted), globs and list files (one path a
    line, relative to the list; # starts a comment). Each gets a distinct output folder named
    after the file (photo, photo-2, ... when names repeat)."""
    paths: list[Path] = []
    for text in inputs:
        paths.extend(_expand(text))
    unique = list(dict.fromkeys(p.resolve() for p in paths))
    if not unique:
        raise SpriteFitError("no input images were given")
    images, used = [], set()
    for path in unique:
        name, count = path.stem, 1
        while name.lower() in used:
            count += 1
            name = f"{path.stem}-{count}"
        used.add(name.lower())
        images.append(BatchImage(path, name))
    return images


def _expand(text: str) -> list[Path]:
    path = Path(text)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not found:
            raise SpriteFitError(f"folder {path} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        return found
    if path.is_file():
        return _listed(path) if path.suffix.lower() in LIST_EXTENSIONS else [path]
    matches = sorted(Path(m) for m in glob.glob(text, recursive=True) if Path(m).is_file())
    if not matches:
        raise SpriteFitError(f"input {text!r} is no file, folder or pattern that matches an image")
    return matches


def _listed(list_file: Path) -> list[Path]:
    paths = []
    for number, line in enumerate(list_file.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        path = Path(line) if Path(line).is_absolute() else list_file.parent / line
        if not path.is_file():
            raise SpriteFitError(f"{list_file} line {number}: {line} is not a file")
        paths.append(path)
    return paths


# --- one image (runs wherever the executor puts it) ----------------------------------------------

def fit_batch_image(task: ImageTask) -> dict:
    """Fit one image; returns {"files": {relative path: bytes}, "psnr", "ssim", "seconds",
    "peak_memory_mb"}. Writes nothing outside a temporary folder of its own."""
    from .cluster import task_location
    from .export import DEFAULT_NAMES, export_scene
    from .fitting import evaluate, fit, prepare_target
    from .images import load_rgb

    start = time.perf_counter()
    s = task.settings
    target = prepare_target(load_rgb(task.image, f"image {task.label}"), s.options.get("size"))
    scene = fit(target, task.sprites, **s.options)
    seconds = time.perf_counter() - start
    metrics = evaluate(scene, target) if scene.background is not None else {}
    with tempfile.TemporaryDirectory(prefix="spritefit-batch-") as tmp:
        folder = Path(tmp)
        export_scene(scene, {f: folder / DEFAULT_NAMES[f] for f in s.formats}, target=target,
                     svg_linked=s.svg_linked)
        files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    return {"files": files, "psnr": _rounded(metrics.get("psnr"), 3), "ssim": _rounded(metrics.get("ssim"), 4),
            "seconds": round(seconds, 2), "peak_memory_mb": peak_memory_mb(), "fitted_on": task_location()}


def _rounded(value, digits: int):
    return None if value is None else round(float(value), digits)


def peak_memory_mb() -> float | None:
    """Peak resident memory of this process so far (None where the OS does not say)."""
    try:
        import resource
    except ImportError:     # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    import sys
    return round(peak / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)


# --- the batch (runs on the submitting machine) --------------------------------------------------

def finished(folder: Path) -> dict | None:
    """The result record of a finished image, or None when it must be fitted (again)."""
    try:
        record = json.loads((folder / RESULT_FILE).read_text())
        complete = all((folder / name).is_file() for name in record["files"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record if complete else None


def write_image_result(folder: Path, image: BatchImage, result: dict) -> None:
    """The files of one image, each atomically, then result.json (which marks it finished)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RESULT_FILE).unlink(missing_ok=True)     # unfinished until the new files are all in
    for relative, data in result["files"].items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(folder / relative, data)
    record = {k: v for k, v in result.items() if k != "files"}
    record.update(image=str(image.path), files=sorted(result["files"]))
    write_bytes_atomic(folder / RESULT_FILE, json.dumps(record, indent=1).encode())


def run_batch(images: list[BatchImage], sprites: list[Sprite], settings: BatchSettings, out: Path,
              executor, *, redo: bool = False, gpus: int = 0, cpus: int = 1,
              progress: Callable[[SummaryRow], None] | None = None) -> list[SummaryRow]:
    """Fit every image not finished yet (all with redo) and write the summary; returns its rows
    in input order."""
    rows: dict[str, SummaryRow] = {}
    todo = []
    for image in images:
        record = None if redo else finished(out / image.folder)
        if record is not None:
            rows[image.folder] = SummaryRow(str(image.path), image.folder, "skipped", record.get("psnr"),
                                            record.get("ssim"), record.get("seconds"))
            _report(progress, rows[image.folder])
        else:
            todo.append(image)
    by_folder = {image.folder: image for image in todo}
    for outcome in executor.map(fit_batch_image, _tasks(todo, sprites, settings, rows, progress),
                                cpus=cpus, gpus=gpus):
        image = by_folder[outcome.item.folder]
        if outcome.ok:
            write_image_result(out / image.folder, image, outcome.result)
            r = outcome.result
            row = SummaryRow(str(image.path), image.folder, "done", r["psnr"], r["ssim"], r["seconds"])
        else:
            row = SummaryRow(str(image.path), image.folder, "failed", error=outcome.error)
        rows[image.folder] = row
        _report(progress, row)
    ordered = [rows[image.folder] for image in images]
    write_summary(out, ordered)
    return ordered


def _tasks(images: list[BatchImage], sprites: list[Sprite], settings: BatchSettings, rows: dict, progress):
    """A task per image, its bytes read here; an unreadable file is a failed row instead."""
    for image in images:
        try:
            data = image.path.read_bytes()
        except OSError as exc:
            rows[image.folder] = SummaryRow(str(image.path), image.folder, "failed",
                                            error=f"cannot read {image.path}: {exc.strerror or exc}")
            _report(progress, rows[image.folder])
            continue
        yield ImageTask(image.folder, str(image.path), data, sprites, settings)


def _report(progress, row: SummaryRow) -> None:
    if progress is not None:
        progress(row)


def write_summary(out: Path, rows: list[SummaryRow]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(asdict(row) for row in rows)
    write_bytes_atomic(out / "summary.csv", buffer.getvalue().encode())
    write_bytes_atomic(out / "summary.json", json.dumps([asdict(row) for row in rows], indent=1).encode())


def summary_table(rows: list[SummaryRow]) -> str:
    """The summary as aligned text, one line an image."""
    def number(value, unit: str = "") -> str:
        return "-" if value is None else f"{value:.2f}{unit}" if unit else f"{value:.3f}"
    lines = [f"{'image':30s} {'PSNR':>9s} {'SSIM':>6s} {'seconds':>8s}  status"]
    for row in rows:
        status = row.status if row.error is None else f"failed: {row.error}"
        seconds = "-" if row.seconds is None else f"{row.seconds:.1f}"
        lines.append(f"{_clip(row.folder, 30):30s} {number(row.psnr, ' dB'):>9s} {number(row.ssim):>6s} "
                     f"{seconds:>8s}  {status}")
    return "\n".join(lines)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"
