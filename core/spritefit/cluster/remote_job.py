"""An editor's job fitted on a Ray cluster: the worker on the artist's machine stays the editor's
peer (same requests, same events, same result files), and only the fit itself runs on a node.

The task and this machine talk through a small actor, the job's channel: the task posts its
progress events there (previews as PNG bytes, since the node cannot see the job folder) and asks
it whether the user cancelled; the worker takes the events every 0.1 s, writes the previews into
the job folder and passes the events on. A cancelled fit returns its best scene so far, as it
does locally; the worker then writes the result files as usual.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from ..errors import SpriteFitError
from .connect import ClusterError, connect, first_line
from .executors import TASK_RETRIES

POLL_S = 0.1
CANCEL_POLL_S = 0.5


class JobChannel:
    """The Ray actor between a job's task and the worker that submitted it."""

    def __init__(self):
        self.events: list[dict] = []
        self.cancelled = False

    def post(self, event: dict) -> None:
        self.events.append(event)

    def take(self) -> list[dict]:
        events, self.events = self.events, []
        return events

    def cancel(self) -> None:
        self.cancelled = True

    def is_cancelled(self) -> bool:
        return self.cancelled


def fit_task(job: str, target, sprites, options: dict, channel, reporter):
    """The Ray task: the fit, its progress posted to the channel through `reporter(job, None,
    post)` (the worker's progress reporter), its cancel read from the channel."""
    import ray

    from ..fitting import fit
    asked = {"at": 0.0, "cancelled": False}

    def cancelled() -> bool:
        now = time.monotonic()
        if not asked["cancelled"] and now - asked["at"] >= CANCEL_POLL_S:
            asked["at"], asked["cancelled"] = now, ray.get(channel.is_cancelled.remote())
        return asked["cancelled"]

    progress = reporter(job, None, lambda event: channel.post.remote(event))
    return fit(target, sprites, progress=progress, cancel=cancelled, **options)


def fit_on_cluster(address: str, job: str, folder: Path, target, sprites, options: dict,
                   emit: Callable[[dict], None], cancelled: Callable[[], bool], reporter: Callable):
    """Fit on the cluster at `address` and return the scene; progress and previews arrive in the
    job folder and through `emit` as with a local fit. reporter(job, folder, post) makes the
    task's progress callback (the worker's ProgressReporter: the cluster code does not know the
    worker's events)."""
    ray = connect(address)
    options, gpus = _placed(ray, options)
    channel = ray.remote(num_cpus=0)(JobChannel).remote()
    task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=TASK_RETRIES, retry_exceptions=False)(fit_task)
    result = task.remote(job, target, sprites, options, channel, reporter)
    try:
        _relay_until_done(ray, result, channel, folder, emit, cancelled)
        return _scene(ray, result, address)
    finally:
        ray.kill(channel)


def _placed(ray, options: dict) -> tuple[dict, int]:
    """Options with the device chosen by what the cluster has ("auto": a GPU where there is one),
    and the GPUs the task asks for."""
    device = options.get("device", "auto")
    if device == "auto":
        device = "cuda" if ray.cluster_resources().get("GPU", 0) >= 1 else "cpu"
    return dict(options, device=device), 1 if device.startswith("cuda") else 0


def _relay_until_done(ray, result, channel, folder: Path, emit, cancelled) -> None:
    cancel_sent = False
    while True:
        done, _ = ray.wait([result], timeout=POLL_S)
        for event in ray.get(channel.take.remote()):
            emit(_with_preview_file(event, folder))
        if not cancel_sent and cancelled():
            channel.cancel.remote()
            cancel_sent = True
        if done:
            return


def _with_preview_file(event: dict, folder: Path) -> dict:
    from ..files import write_bytes_atomic
    if isinstance(event.get("preview"), bytes):
        path = folder / "preview.png"
        write_bytes_atomic(path, event["preview"])
        event = dict(event, preview=str(path))
    return event


def _scene(ray, result, address: str):
    from ray.exceptions import RayError, RayTaskError
    try:
        return ray.get(result)
    except RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, SpriteFitError):
            raise cause from None
        raise ClusterError(f"the fit failed on the Ray cluster at {address}: {first_line(cause or exc)}") from None
    except RayError as exc:
        raise ClusterError(f"the Ray cluster at {address} lost the job: {first_line(exc)}") from None
