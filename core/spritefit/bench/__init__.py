"""Benchmarks: `spritefit bench speed` (renderer time and memory) and `spritefit bench quality`
(fit quality of the presets, and an ablation of the fitting techniques)."""
from .quality import ABLATIONS, BenchSettings, bench_quality, bundled_targets
from .speed import SCENARIOS, bench_speed

__all__ = ["SCENARIOS", "bench_speed", "ABLATIONS", "BenchSettings", "bench_quality", "bundled_targets"]
