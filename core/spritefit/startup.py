"""What a SpriteFit process (the command line, the editors' worker) does around its heavy imports;
the library itself never calls it."""
from __future__ import annotations

import functools
import gc

_frozen = False


def imports_without_collection(command):
    """The command runs with cyclic garbage collection off until it calls freeze_imported_objects:
    its imports (PyTorch and the rest) create few cycles, and the full collections they trigger
    walk every object created so far (about 0.2 s of a fit's start)."""
    @functools.wraps(command)
    def paused(*args, **kwargs):
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return command(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()
    return paused


def freeze_imported_objects() -> None:
    """Take every object alive now out of the cyclic garbage collector's sight (a fit's imports
    leave some 170,000, most of them PyTorch's): they live as long as the process, and each full
    collection during a fit would walk them all, about 0.3 s of a default fit. Once per process;
    collection (paused by imports_without_collection) resumes."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()
    gc.enable()
