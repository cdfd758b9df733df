"""Batches, video shots and editor jobs on a real Ray cluster started here: a head and a second
node on 127.0.0.1, 1 CPU each (spritefit.cluster.local). Results must equal local runs, a node lost
mid-batch must cost nothing, and an unusable cluster must be named before anything is written."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spritefit.cluster.local import LocalCluster, free_port, is_loopback, listening_sockets
from spritefit.scene import Scene
from test_batch import FAST, small_images, spritefit



CLIENT = Path(__file__).resolve().parents[1] / "plugins" / "client"
sys.path.insert(0, str(CLIENT))
import spritefit_client as client  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(cpus=[1, 1]) as running, pytest.MonkeyPatch.context() as patch:
        for name, value in running.environment.items():      # what the submitting processes need
            patch.setenv(name, value)
        yield running


@pytest.fixture
def own_cluster(monkeypatch):
    """Starts a cluster for one test, with its token in this test's environment."""
    started = []

    def start(**options) -> LocalCluster:
        cluster = LocalCluster(**options).__enter__()
        started.append(cluster)
        for name, value in cluster.environment.items():
            monkeypatch.setenv(name, value)
        return cluster
    yield start
    for cluster in started:
        cluster.stop()


def same_scene(a: Path, b: Path) -> None:
    """Equal within the float tolerance of the native CPU renderer."""
    first, second = Scene.load(a), Scene.load(b)
    assert len(first) == len(second) and np.array_equal(first.sprite, second.sprite)
    for name in ("xy", "size", "theta", "color", "opacity", "mix"):
        np.testing.assert_allclose(getattr(first, name), getattr(second, name), atol=1e-4, err_msg=name)


def test_a_batch_on_two_nodes_equals_the_local_run(cluster, tmp_path):
    small_images(tmp_path / "in", 6)
    (tmp_path / "in" / "zz-broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    local = spritefit("batch", tmp_path / "in", *FAST, "--out", tmp_path / "local")
    remote = spritefit("batch", tmp_path / "in", *FAST, "--out", tmp_path / "ray", "--ray", cluster.address)
    assert local.returncode == remote.returncode == 1, remote.stderr       # the broken image, in both
    assert f"fitted on the Ray cluster at {cluster.address}" in remote.stdout
    assert "zz-broken" in remote.stdout and "is damaged or truncated" in remote.stdout
    nodes = set()
    for i in range(6):
        same_scene(tmp_path / "local" / f"img{i}" / "scene.json", tmp_path / "ray" / f"img{i}" / "scene.json")
        record = json.loads((tmp_path / "ray" / f"img{i}" / "result.json").read_text())
        nodes.add(record["fitted_on"]["ray_node"])
        assert record["peak_memory_mb"] > 50
    assert len(nodes) == 2                                                 # both nodes took images
    rows = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert [r["status"] for r in rows] == ["done"] * 6 + ["failed"]


def test_a_node_killed_mid_batch_loses_nothing(tmp_path, own_cluster):
    small_images(tmp_path / "in", 6, size=96)
    out = tmp_path / "out"
    slow = ["--sprites", "shapes", "-n", "150", "--iters", "120", "--size", "96", "--formats", "png,psd,json"]
    cluster = own_cluster(cpus=[1, 1])
    batch = subprocess.Popen([sys.executable, "-m", "spritefit.cli", "batch", tmp_path / "in", *slow,
                              "--out", out, "--ray", cluster.address], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline, lost = time.monotonic() + 300, cluster.nodes[1]
    while not lost.running("fit_batch_image") and time.monotonic() < deadline and batch.poll() is None:
        time.sleep(0.1)
    assert batch.poll() is None and lost.running("fit_batch_image"), "the second node never took an image"
    lost.kill()                                  # with an image half-fitted on it
    stdout, stderr = batch.communicate(timeout=600)
    assert batch.returncode == 0, stdout + stderr
    rows = json.loads((out / "summary.json").read_text())
    assert [r["status"] for r in rows] == ["done"] * 6
    for i in range(6):                 # exactly one complete result each, the lost node's retried on the head
        record = json.loads((out / f"img{i}" / "result.json").read_text())
        assert sorted(record["files"]) == ["result.png", "result.psd", "scene.json"]
        assert sorted(p.name for p in (out / f"img{i}").iterdir()) == ["result.json", *record["files"]]
        assert len(Scene.load(out / f"img{i}" / "scene.json")) == 150
    assert not [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


def two_shot_clip(folder: Path) -> Path:
    """Three frames of a picture panning, then three of another one: a cut before frame 4."""
    folder.mkdir()
    photos = sorted((Path(__file__).resolve().parents[1] / "core" / "spritefit" / "data" / "targets" / "bench").glob("*.jpg"))
    for shot, photo in enumerate(photos[:2]):
        picture = Image.open(photo).convert("RGB")
        for t in range(3):
            crop = picture.crop((4 * t, 0, 4 * t + 150, 100)).resize((48, 32), Image.LANCZOS)
            crop.save(folder / f"{3 * shot + t:03d}.png")
    return folder


def test_a_two_shot_clip_on_two_nodes_equals_the_local_run(cluster, tmp_path):
    clip = two_shot_clip(tmp_path / "clip")
    settings = ["--sprites", "shapes", "-n", "25", "--iters", "12", "--frame-iters", "5", "--size", "48"]
    local = spritefit("video", clip, *settings, "--out", tmp_path / "local")
    remote = spritefit("video", clip, *settings, "--out", tmp_path / "ray", "--ray", cluster.address)
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr
    assert "6 frames in 2 shots" in remote.stdout
    metrics = [json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("local", "ray")]
    assert metrics[0]["shots"]["shots"] == metrics[1]["shots"]["shots"] == [{"first": 1, "last": 3},
                                                                           {"first": 4, "last": 6}]
    for a, b in zip(metrics[0]["frames"], metrics[1]["frames"]):
        for key in ("psnr", "ssim", "frozen", "render_change", "target_change", "flicker"):
            assert a[key] == pytest.approx(b[key], abs=1e-3), key
    for t in range(1, 7):
        same_scene(tmp_path / "local" / "scenes" / f"{t:04d}.json", tmp_path / "ray" / "scenes" / f"{t:04d}.json")
        frames = [np.asarray(Image.open(tmp_path / run / "frames" / f"{t:04d}.png"), np.int16) for run in ("local", "ray")]
        assert np.abs(frames[0] - frames[1]).max() <= 1
    for name in ("result.mp4", "result.gif", "comparison.mp4"):
        assert (tmp_path / "ray" / name).stat().st_size > 0
    # Per-shot resume: a finished shot is kept, the other one fitted again.
    (tmp_path / "ray" / "shots" / "0004.json").unlink()
    kept = (tmp_path / "ray" / "scenes" / "0002.json").stat().st_mtime_ns
    again = spritefit("video", clip, *settings, "--out", tmp_path / "ray", "--ray", cluster.address, "--resume")
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "ray" / "scenes" / "0002.json").stat().st_mtime_ns == kept
    assert (tmp_path / "ray" / "shots" / "0004.json").exists()


def job_folder(tmp_path: Path) -> str:
    folder = tmp_path / "job"
    small_images(folder, 1, size=48)
    return str(folder)


def test_an_editor_job_runs_on_the_cluster_with_progress_previews_and_cancel(cluster, tmp_path):
    options = {"n": 30, "iters": 40, "size": 48, "seed": 3}
    with client.WorkerProcess(sys.executable) as worker:
        local_folder = job_folder(tmp_path / "local")
        worker.run("here", local_folder, {"file": "img0.png"}, {"pack": "shapes"}, options, "RGBA8")
        folder, events = job_folder(tmp_path / "ray"), []
        manifest = worker.run("there", folder, {"file": "img0.png"}, {"pack": "shapes"},
                              client.with_cluster(options, cluster.address), "RGBA8", on_progress=events.append)
        assert not manifest["cancelled"] and len(manifest["layers"]) == 30
        assert events[-1]["iteration"] == 40 and os.path.isfile(events[-1]["preview"])
        assert events[-1]["preview"].startswith(folder)
        same_scene(Path(local_folder) / "scene.json", Path(folder) / "scene.json")

        started = []
        cancelled = worker.run("stop", job_folder(tmp_path / "stop"), {"file": "img0.png"}, {"pack": "shapes"},
                               client.with_cluster(dict(options, iters=100_000), cluster.address), "RGBA8",
                               on_progress=started.append, cancel=lambda: len(started) > 0)
        assert cancelled["cancelled"] and len(cancelled["layers"]) == 30     # the best result so far


def test_an_unreachable_cluster_is_named_and_nothing_is_written(tmp_path):
    small_images(tmp_path / "in", 1)
    address = f"127.0.0.1:{free_port()}"
    run = spritefit("batch", tmp_path / "in", *FAST, "--out", tmp_path / "out", "--ray", address)
    assert run.returncode == 2 and f"cannot reach the Ray cluster at {address}" in run.stderr
    assert not (tmp_path / "out").exists()
    folder = job_folder(tmp_path)
    with client.WorkerProcess(sys.executable) as worker:
        with pytest.raises(client.WorkerError, match="cannot reach the Ray cluster"):
            worker.run("j", folder, {"file": "img0.png"}, {"pack": "shapes"},
                       client.with_cluster({"n": 5, "iters": 2}, address), "RGBA8")
        assert worker.process.poll() is None           # the worker lives on for the next job
    assert not os.path.exists(os.path.join(folder, "manifest.json"))


def python_without_spritefit(folder: Path) -> str:
    """A virtual environment with this one's packages (Ray, torch, ...) linked in, but not SpriteFit."""
    venv.EnvBuilder(with_pip=False).create(folder)
    python = str(folder / "bin" / "python")
    site = Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    ours = Path(subprocess.check_output([sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    for entry in ours.iterdir():
        if "spritefit" not in entry.name.lower():
            (site / entry.name).symlink_to(entry)
    probe = subprocess.run([python, "-c", "import ray, torch; import spritefit"], capture_output=True, text=True,
                           cwd=folder)
    assert "No module named 'spritefit'" in probe.stderr, probe.stderr
    return python


def test_a_cluster_without_spritefit_is_named_and_nothing_is_written(tmp_path, own_cluster):
    small_images(tmp_path / "in", 1)
    bare = own_cluster(cpus=[1], python=python_without_spritefit(tmp_path / "bare"))
    run = spritefit("batch", tmp_path / "in", *FAST, "--out", tmp_path / "out", "--ray", bare.address)
    assert run.returncode == 2, run.stderr
    assert f"of the Ray cluster at {bare.address} cannot run SpriteFit (ModuleNotFoundError" in run.stderr
    assert "install spritefit==" in run.stderr
    assert not (tmp_path / "out").exists()
    folder = job_folder(tmp_path)
    with client.WorkerProcess(sys.executable) as worker:
        with pytest.raises(client.WorkerError, match="cannot run SpriteFit"):
            worker.run("j", folder, {"file": "img0.png"}, {"pack": "shapes"},
                       client.with_cluster({"n": 5, "iters": 2}, bare.address), "RGBA8")
    assert not os.path.exists(os.path.join(folder, "manifest.json"))


def test_the_local_cluster_listens_on_loopback_only(cluster, tmp_path):
    """Every socket of every process of the helper's cluster (head, second node, their workers after
    a batch) is on 127.0.0.0/8, whatever interfaces the machine has."""
    small_images(tmp_path / "in", 2)
    run = spritefit("batch", tmp_path / "in", *FAST, "--out", tmp_path / "out", "--ray", cluster.address)
    assert run.returncode == 0, run.stderr
    sockets = cluster.listening()
    names = {Path(f"/proc/{pid}/comm").read_text().strip() for pid, _, _ in sockets}
    assert {"gcs_server", "raylet"} <= names, names                    # the check saw Ray's servers
    assert len({pid for pid, _, _ in sockets if Path(f"/proc/{pid}/comm").read_text().strip() == "raylet"}) == 2
    assert [s for s in sockets if not is_loopback(s[1])] == []


def test_listening_sockets_are_read_from_proc():
    import socket
    with socket.create_server(("127.0.0.1", 0)) as server, socket.socket(socket.AF_INET6) as six:
        six.bind(("::", 0))
        six.listen()
        found = {(address, port) for pid, address, port in listening_sockets([os.getpid()])}
        assert ("127.0.0.1", server.getsockname()[1]) in found
        assert ("::", six.getsockname()[1]) in found
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.1.2.3")


def test_ray_auto_starts_a_local_instance_for_the_command_and_stops_it(tmp_path):
    small_images(tmp_path / "in", 6)
    ray_files = Path(tempfile.mkdtemp(prefix="sf-auto-", dir="/tmp"))        # short: Ray's sockets live here
    sockets: set[tuple[int, str, int]] = set()
    try:
        with open(tmp_path / "stdout", "w") as stdout, open(tmp_path / "stderr", "w") as stderr:
            # files, not pipes: a pipe held open by a process Ray left behind would hang the test
            batch = subprocess.Popen([sys.executable, "-m", "spritefit.cli", "batch", tmp_path / "in", *FAST, "--out",
                                      tmp_path / "out", "--ray", "auto"], stdout=stdout, stderr=stderr,
                                     env=dict(os.environ, RAY_TMPDIR=str(ray_files), RAY_AUTH_MODE="token",
                                              RAY_AUTH_TOKEN=secrets.token_hex(32)))   # not the user's ~/.ray
            deadline = time.monotonic() + 600
            while batch.poll() is None and time.monotonic() < deadline:   # every socket of the command's Ray
                sockets.update(listening_sockets(_ray_processes(ray_files)))
                time.sleep(0.1)
            batch.wait(timeout=max(1.0, deadline - time.monotonic()))
        assert batch.returncode == 0, (tmp_path / "stderr").read_text()
        assert len(sockets) >= 3, sockets                                 # GCS, raylet, workers were seen
        assert [s for s in sockets if not is_loopback(s[1])] == []
        assert "fitted on a local Ray instance" in (tmp_path / "stdout").read_text()
        records = [json.loads((tmp_path / "out" / f"img{i}" / "result.json").read_text()) for i in range(2)]
        assert all("ray_node" in r["fitted_on"] for r in records)
        assert not _ray_processes(ray_files), "Ray processes outlived the command"
    finally:
        for pid in _ray_processes(ray_files):          # stopped by process id, whatever happened
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        shutil.rmtree(ray_files, ignore_errors=True)


def _ray_processes(folder: Path) -> list[int]:
    """Processes started with RAY_TMPDIR=folder: the command's Ray instance and all it started."""
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _mentions(p, f"RAY_TMPDIR={folder}")]


def _mentions(process: Path, text: str) -> bool:
    try:
        return text.encode() in (process / "environ").read_bytes().split(b"\0")
    except OSError:
        return False
