"""Many fits at once: one after another in this process, or as Ray tasks on a cluster.

Batch fits (spritefit.batch), the shots of a video (spritefit.video) and the editors' jobs
(spritefit.worker) hand their work to an executor, which maps a function over items and yields
each item's outcome as it finishes. The function runs where the executor puts it (this process,
or a Ray worker on any node) and returns everything it produced as values; the caller writes the
files, on the submitting machine, once per item, so a task that Ray retries after a node dies
still leaves exactly one result.

Ray is an optional extra (`pip install 'spritefit[cluster]'`): nothing outside this package
imports it, and without it every command runs locally.
"""
from __future__ import annotations

from .executors import LocalExecutor, Outcome, executor_for, task_location

__all__ = ["LocalExecutor", "Outcome", "executor_for", "task_location", "RAY_ADDRESS_VARIABLE"]

# The cluster the editors' worker sends its jobs to (the plugins set it from their settings).
RAY_ADDRESS_VARIABLE = "SPRITEFIT_RAY_ADDRESS"
