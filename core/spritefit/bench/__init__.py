"""Benchmarks: `spritefit bench speed` (renderer time and memory), `spritefit bench quality`
(fit quality of the presets, and an ablation of the fitting techniques) and `spritefit bench
video` (temporal coherence on the bundled clip) and `spritefit bench batch` (a batch in this
process and on Ray clusters of one and two nodes).

Each name is imported from its module on first use: the command line builds its `bench` parser
from SCENARIOS on every start, and need not import the quality bench (numpy, Pillow) for that."""
from importlib import import_module

_MODULES = {"bench_batch": "batch", "SCENARIOS": "speed", "bench_speed": "speed", "ABLATIONS": "quality",
            "BenchSettings": "quality", "bench_quality": "quality", "bundled_targets": "quality",
            "bench_video": "video"}

__all__ = list(_MODULES)


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_MODULES[name]}", __name__), name)
