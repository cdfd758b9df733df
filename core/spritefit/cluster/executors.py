"""Executors: map a function over items and yield each item's outcome as it finishes.

LocalExecutor calls the function in this process, one item after another. RayExecutor makes each
item a Ray task declaring the CPUs (and GPU) it needs; Ray places it on any node with room,
retries it elsewhere when its node dies, and hands its return value back here.

A failure of one item (bad input, a task Ray gave up on) is that item's outcome; the others go on.
"""
from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from ..errors import SpriteFitError
from .connect import first_line

TASK_RETRIES = 3          # attempts after a node or worker process dies under a task


@dataclass
class Outcome:
    item: Any
    result: Any = None
    error: str | None = None     # what went wrong, one line naming it

    @property
    def ok(self) -> bool:
        return self.error is None


def describe_failure(exc: BaseException) -> str:
    if isinstance(exc, SpriteFitError):
        return str(exc)
    return f"internal error: {type(exc).__name__}: {exc}"


class LocalExecutor:
    """Items one after another, in this process."""
    where = "this machine"
    shares_files = True       # the function may write the caller's files itself

    def map(self, function: Callable, items: Iterable, *, cpus: int = 1, gpus: int = 0) -> Iterator[Outcome]:
        for item in items:
            try:
                yield Outcome(item, function(item))
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:   # one item's failure, reported with its name by the caller
                yield Outcome(item, error=describe_failure(exc))


class RayExecutor:
    """Items as Ray tasks on the cluster at `address` (`auto`: a Ray instance on this machine)."""
    shares_files = False      # a task's node may not see this machine's folders: results come back as values

    def __init__(self, address: str):
        from .connect import connect
        self.address, self.ray = address, connect(address)
        self.where = "a local Ray instance" if address == "auto" else f"the Ray cluster at {address}"

    def map(self, function: Callable, items: Iterable, *, cpus: int = 1, gpus: int = 0) -> Iterator[Outcome]:
        ray = self.ray
        task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=TASK_RETRIES,
                          retry_exceptions=False)(function)
        pending = {task.remote(item): item for item in items}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    yield self._outcome(pending.pop(ref), ref)
        finally:
            for ref in pending:          # interrupted (Ctrl-C, an error here): stop what still runs
                ray.cancel(ref, force=True)

    def _outcome(self, item, ref) -> Outcome:
        from ray.exceptions import RayError, RayTaskError
        try:
            return Outcome(item, self.ray.get(ref))
        except RayTaskError as exc:     # the function raised: the same error as a local run
            cause = getattr(exc, "cause", None)
            return Outcome(item, error=describe_failure(cause) if cause is not None else first_line(exc))
        except RayError as exc:         # the cluster gave up on it (node lost after every retry)
            return Outcome(item, error=f"{self.where} could not run it: {first_line(exc)}")


def executor_for(ray_address: str | None):
    """LocalExecutor without an address, else a RayExecutor joined to that cluster."""
    if not ray_address:
        return LocalExecutor()
    return RayExecutor(ray_address)


def task_location() -> dict:
    """Where the calling code runs: host, process and, inside a Ray task, the Ray node."""
    where = {"host": socket.gethostname(), "pid": os.getpid()}
    ray = sys.modules.get("ray")      # imported only where Ray runs us
    if ray is not None and ray.is_initialized():
        where["ray_node"] = ray.get_runtime_context().get_node_id()
    return where
