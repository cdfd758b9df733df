"""`spritefit` end to end, and one-line errors with exit status 2 for bad input."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from psd_tools import PSDImage

from spritefit.images import load_rgb, prepare_target
from spritefit.scene import Scene

DEMO = Path(__file__).parents[1] / "core" / "spritefit" / "data" / "targets" / "chelsea.png"


def spritefit(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "spritefit.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


def fit_args(target, out, *extra):
    return ["fit", target, "--sprites", "shapes", "-n", "30", "--iters", "15", "--size", "48", "--out", out, *extra]


def test_version_is_the_installed_one():
    from importlib.metadata import version
    run = spritefit("--version")
    assert run.returncode == 0 and run.stdout == f"spritefit {version('spritefit')}\n"


def test_fit_then_render_at_scale(tmp_path):
    run = spritefit(*fit_args(DEMO, tmp_path / "out"))
    assert run.returncode == 0, run.stderr
    assert "PSNR" in run.stdout and "SSIM" in run.stdout
    result = load_rgb(tmp_path / "out" / "result.png")
    assert result.shape == (32, 48, 3)
    scene = Scene.load(tmp_path / "out" / "scene.json")
    assert len(scene) == 30 and (scene.width, scene.height) == (48, 32)
    assert not list((tmp_path / "out").glob(".*tmp"))          # no temporary files left behind
    run = spritefit("render", tmp_path / "out" / "scene.json", "--scale", "3", "-o", tmp_path / "x3.png")
    assert run.returncode == 0, run.stderr
    big = load_rgb(tmp_path / "x3.png")
    assert big.shape == (96, 144, 3)
    small = np.asarray(Image.fromarray((big * 255).astype(np.uint8)).resize((48, 32), Image.BOX)) / 255
    assert np.abs(small - result).mean() < 0.03


def test_few_sprites_say_they_are_placed_by_search(tmp_path):
    few = spritefit("fit", DEMO, "--sprites", "shapes", "-n", "4", "--iters", "5", "--size", "48",
                    "--formats", "json", "--out", tmp_path / "few")
    assert few.returncode == 0, few.stderr
    assert "4 sprites are placed by search" in few.stderr
    many = spritefit(*fit_args(DEMO, tmp_path / "many", "--formats", "json"))
    structure = spritefit("fit", DEMO, "--sprites", "shapes", "-n", "4", "--iters", "5", "--size", "48",
                          "--formats", "json", "--init", "structure", "--out", tmp_path / "structure")
    assert "placed by search" not in many.stderr + structure.stderr


def test_the_fit_command_takes_its_imports_out_of_the_garbage_collector(tmp_path):
    """No full collection runs while the command imports, its imports are frozen, and collection is
    on again afterwards."""
    code = ("import gc, sys; from spritefit.cli import main; assert gc.get_freeze_count() == 0; "
            "early = []; gc.callbacks.append(lambda phase, info: early.append(1) if phase == 'start' "
            "and info['generation'] == 2 and gc.get_freeze_count() == 0 else None); "
            "main(sys.argv[1:]); print(len(early), gc.isenabled(), gc.get_freeze_count())")
    run = subprocess.run([sys.executable, "-c", code, *map(str, fit_args(DEMO, tmp_path / "out", "--formats", "png"))],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    early, enabled, frozen = run.stdout.strip().splitlines()[-1].split()
    assert (early, enabled) == ("0", "True")
    assert int(frozen) > 50_000     # PyTorch's objects among them


def test_the_command_exits_with_its_status_after_its_threads_and_exit_handlers():
    """The command skips the interpreter's teardown, not what a normal exit owes: other threads
    finish, exit handlers run, buffered output is written."""
    code = ("import atexit, threading, time; from spritefit.startup import exit_without_teardown; "
            "atexit.register(lambda: print('handler')); "
            "threading.Thread(target=lambda: (time.sleep(0.3), print('thread'))).start(); "
            "print('main', end=' '); exit_without_teardown(3)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 3 and run.stdout.split() == ["main", "thread", "handler"], run


def test_fit_writes_all_four_formats_unless_told(tmp_path):
    run = spritefit(*fit_args(DEMO, tmp_path / "all"))
    assert run.returncode == 0, run.stderr
    names = sorted(p.name for p in (tmp_path / "all").iterdir())
    assert names == ["result.png", "result.psd", "result.svg", "scene.json"]
    assert len(PSDImage.open(tmp_path / "all" / "result.psd")[1]) > 20   # the group of sprite layers
    assert "<use " in (tmp_path / "all" / "result.svg").read_text()
    run = spritefit(*fit_args(DEMO, tmp_path / "some", "--formats", "json,png"))
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (tmp_path / "some").iterdir()) == ["result.png", "scene.json"]
    run = spritefit(*fit_args(DEMO, tmp_path / "bad", "--formats", "png,tiff"))
    assert run.returncode == 2 and "unknown format tiff" in run.stderr


def test_render_writes_each_format_by_its_extension(tmp_path):
    assert spritefit(*fit_args(DEMO, tmp_path, "--formats", "json")).returncode == 0
    scene = tmp_path / "scene.json"
    run = spritefit("render", scene, "--scale", "2", "-o", tmp_path / "x2.psd", "-o", tmp_path / "x2.svg")
    assert run.returncode == 0, run.stderr
    assert PSDImage.open(tmp_path / "x2.psd").size == (96, 64)
    assert 'width="96" height="64"' in (tmp_path / "x2.svg").read_text()
    run = spritefit("render", scene, "-o", tmp_path / "x.tiff")
    assert run.returncode == 2 and "cannot tell the format" in run.stderr


@pytest.mark.parametrize("damage, message", [
    (lambda text: text.replace('"version": 1', '"version": 7'), "version 7 is not supported"),
    (lambda text: text.replace('"x": ', '"x": Infinity, "was": ', 1), "non-finite"),
    (lambda text: text.replace('"size": ', '"width": ', 1), "missing field 'size' in instance 0"),
])
def test_render_of_a_bad_scene_writes_nothing(tmp_path, damage, message):
    assert spritefit(*fit_args(DEMO, tmp_path, "--formats", "json")).returncode == 0
    scene = tmp_path / "scene.json"
    scene.write_text(damage(scene.read_text()))
    run = spritefit("render", scene, "-o", tmp_path / "out.png", "-o", tmp_path / "out.psd")
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.json"]


def test_transparent_background_writes_alpha(tmp_path):
    run = spritefit(*fit_args(DEMO, tmp_path, "--background", "transparent"))
    assert run.returncode == 0, run.stderr
    assert Image.open(tmp_path / "result.png").mode == "RGBA"


def test_existing_results_need_force(tmp_path):
    assert spritefit(*fit_args(DEMO, tmp_path)).returncode == 0
    run = spritefit(*fit_args(DEMO, tmp_path))
    assert run.returncode == 2 and "--force" in run.stderr


def bad_target(tmp_path, kind):
    path = tmp_path / f"{kind}.png"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(DEMO.read_bytes()[:3000])
    elif kind == "not-an-image":
        path.write_text("hello, I am text")
    return path


@pytest.mark.parametrize("kind, message", [
    ("missing", "not found"), ("empty", "empty"), ("truncated", "damaged or truncated"),
    ("not-an-image", "not an image"),
])
def test_bad_targets(tmp_path, kind, message):
    run = spritefit(*fit_args(bad_target(tmp_path, kind), tmp_path / "out"))
    assert run.returncode == 2
    assert message in run.stderr and "Traceback" not in run.stderr
    assert run.stderr.strip().count("\n") == 0   # one line


def test_a_target_read_during_the_imports_reports_in_the_same_order(tmp_path):
    """The target is read on a thread while torch is imported; its error still comes after those
    of the options and of the output folder, and the fit works at the size asked for."""
    from spritefit.options import PRESETS
    assert all("size" not in changes for changes in PRESETS.values())   # the thread reads the size as typed
    missing = bad_target(tmp_path, "missing")
    args = fit_args(missing, tmp_path / "out")
    args[args.index("--out"):args.index("--out")] = ["--background", "plaid"]
    run = spritefit(*args)
    assert run.returncode == 2 and "background must be" in run.stderr and "not found" not in run.stderr
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "result.png").write_bytes(b"earlier result")
    run = spritefit(*fit_args(missing, tmp_path / "taken"))
    assert run.returncode == 2 and "--force" in run.stderr and "not found" not in run.stderr
    assert spritefit(*fit_args(DEMO, tmp_path / "done", "--formats", "json")).returncode == 0
    scene = Scene.load(tmp_path / "done" / "scene.json")
    assert (scene.height, scene.width) == prepare_target(DEMO, 48).shape[:2]


def test_bad_sprites_and_options(tmp_path):
    empty = tmp_path / "sprites"
    empty.mkdir()
    cases = [
        (["--sprites", empty], "holds no PNG"),
        (["-n", "0"], "-n must be an integer in 1..100000, not 0"),
        (["-n", "-3"], "-n must be an integer in 1..100000, not -3"),
        (["--size", "100000"], "--size must be an integer in 8..4096, not 100000"),
        (["--background", "plaid"], "background must be"),
    ]
    for extra, message in cases:
        args = fit_args(DEMO, tmp_path / "out")
        args[args.index("--out"):args.index("--out")] = extra
        run = spritefit(*args)
        assert run.returncode == 2 and message in run.stderr, (extra, run.stderr)
        assert "Traceback" not in run.stderr


def test_transparent_sprites_warn_then_fail(tmp_path):
    folder = tmp_path / "sprites"
    folder.mkdir()
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(folder / "clear.png")
    args = fit_args(DEMO, tmp_path / "out")
    args[args.index("shapes")] = folder
    run = spritefit(*args)
    assert run.returncode == 2
    assert "warning: sprite 'clear' has no opaque pixel" in run.stderr
    assert "fully transparent" in run.stderr


def test_unwritable_output_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    # Root ignores permission bits; /proc refuses new folders to everyone.
    out = Path("/proc/spritefit-out") if os.geteuid() == 0 else locked / "out"
    run = spritefit(*fit_args(DEMO, out))
    assert run.returncode == 2 and "cannot write to output folder" in run.stderr


def test_output_path_that_is_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    run = spritefit(*fit_args(DEMO, blocker / "out"))
    assert run.returncode == 2 and "cannot write to output folder" in run.stderr


def test_sprites_list():
    run = spritefit("sprites", "list")
    assert run.returncode == 0 and "shapes" in run.stdout and "leaves" in run.stdout


def test_progress_bar_reads_costly_values_for_at_most_a_fiftieth_of_the_time(monkeypatch):
    """On a large canvas the training PSNR is a pass over millions of pixels: the bar reads it
    a few times a second at most, and less often when reading it takes long (a fake clock)."""
    import spritefit.cli as cli
    clock = {"now": 0.0}
    monkeypatch.setattr(cli.time, "monotonic", lambda: clock["now"])

    class Progress:
        reads = 0

        def __init__(self, iteration, total, cost):
            self.iteration, self.total, self.loss, self.sigma, self.cost = iteration, total, 0.1, 0.0, cost

        @property
        def psnr(self):
            Progress.reads += 1
            clock["now"] += self.cost
            return 20.0

    for cost, iteration_s in [(0.03, 0.6), (0.0005, 0.02)]:    # a 2048 px fit; a 512 px one
        Progress.reads, clock["now"] = 0, 0.0
        bar = cli._ProgressBar(200)
        for i in range(1, 201):
            clock["now"] += iteration_s
            bar(Progress(i, 200, cost))
        bar.close()
        assert Progress.reads * cost <= 0.025 * clock["now"] + cost           # the share, and the last read
        assert Progress.reads >= min(200, clock["now"] / 2)                   # still shown every second or two
