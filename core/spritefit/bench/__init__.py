"""Benchmarks: `spritefit bench speed` (renderer time and memory), `spritefit bench quality`
(fit quality of the presets, and an ablation of the fitting techniques) and `spritefit bench
video` (temporal coherence on the bundled clip)."""
from .quality import ABLATIONS, BenchSettings, bench_quality, bundled_targets
from .speed import SCENARIOS, bench_speed
from .video import bench_video

__all__ = ["SCENARIOS", "bench_speed", "ABLATIONS", "BenchSettings", "bench_quality", "bundled_targets", "bench_video"]
