"""What a SpriteFit process (the command line, the editors' worker) does around its heavy imports;
the library itself never calls it."""
from __future__ import annotations

import atexit
import functools
import gc
import os
import sys
import threading
from typing import NoReturn

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


def exit_without_teardown(code: int) -> NoReturn:
    """End the process once a command is done, without the interpreter's teardown: freeing
    PyTorch's objects one by one and running its libraries' destructors takes 0.1-0.4 s that
    nobody waits for. What a normal exit does that matters still happens first: other threads
    finish, the exit handlers run (temporary files, Ray, logging), the output is flushed."""
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
