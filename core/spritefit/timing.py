"""Where the time of a fit goes: wall time per stage, native kernel time, and moments of a run.

Nothing is timed unless a `StageClock` is active (`with clock.active():`), so a normal fit pays
one global lookup per stage. The active clock is a module global, not a context variable,
because autograd may run the renderer's backward on another thread (CUDA) than the one that
activated the clock; `spritefit bench speed` and `SPRITEFIT_TIMINGS` are its only users, one
fit at a time.
"""
from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

TIMINGS_ENV = "SPRITEFIT_TIMINGS"   # a file to which `spritefit fit` writes its clock as JSON

_active: "StageClock | None" = None


class StageClock:
    """Sums wall time per stage, counts (samples) per name, and keeps marks (the wall-clock
    time.time() of named moments, comparable across processes). Stages nest: a stage's key is
    its path, "iterations/forward/kernel forward", and so is a count's."""

    def __init__(self, synchronize=None):
        self.seconds: dict[str, float] = defaultdict(float)
        self.counts: dict[str, float] = defaultdict(float)
        self.marks: dict[str, float] = {}
        self.path: list[str] = []
        self.unclocked = 0.0   # seconds spent in `unclocked` blocks, left out of every stage around them
        self._synchronize = synchronize or (lambda: None)   # torch.cuda.synchronize on a GPU

    def key(self, name: str) -> str:
        return "/".join([*self.path, name])

    @contextmanager
    def active(self):
        global _active
        before, _active = _active, self
        try:
            yield self
        finally:
            _active = before

    def as_dict(self) -> dict:
        return {"seconds": dict(self.seconds), "counts": dict(self.counts), "marks": dict(self.marks)}


@contextmanager
def stage(name: str):
    """Time the block as `name` on the active clock (stages may nest: a kernel inside a pass)."""
    clock = _active
    if clock is None:
        yield
        return
    key = clock.key(name)
    clock._synchronize()
    clock.path.append(name)
    start, unclocked_before = time.perf_counter(), clock.unclocked
    try:
        yield
    finally:
        clock._synchronize()
        clock.seconds[key] += time.perf_counter() - start - (clock.unclocked - unclocked_before)
        clock.path.pop()


@contextmanager
def unclocked():
    """Leave the block's time out of the stages around it: the clock's own bookkeeping (counting
    samples) is not the fit's time."""
    clock = _active
    if clock is None:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        clock.unclocked += time.perf_counter() - start


def count(name: str, amount: float = 1.0) -> None:
    if _active is not None:
        _active.counts[_active.key(name)] += amount


def mark(name: str) -> None:
    """Note the first time the run reaches `name`."""
    if _active is not None:
        _active.marks.setdefault(name, time.time())


def is_active() -> bool:
    return _active is not None


@contextmanager
def clock_from_environment(synchronize=None):
    """Activate a clock when SPRITEFIT_TIMINGS names a file, and write it there at the end."""
    path = os.environ.get(TIMINGS_ENV)
    if not path:
        yield None
        return
    clock = StageClock(synchronize)
    try:
        with clock.active():
            yield clock
    finally:
        clock.marks.setdefault("end", time.time())
        Path(path).write_text(json.dumps(clock.as_dict()))
