"""What a SpriteFit process (the command line, the editors' worker) does once its heavy imports
are done; the library itself never calls it."""
from __future__ import annotations

import gc

_frozen = False


def freeze_imported_objects() -> None:
    """Take every object alive now out of the cyclic garbage collector's sight (a fit's imports
    leave some 170,000, most of them PyTorch's): they live as long as the process, and each full
    collection during a fit would walk them all, about 0.3 s of a default fit. Once per process."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.freeze()
