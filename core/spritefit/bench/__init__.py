"""Benchmarks: `spritefit bench speed` (renderer time and memory), `spritefit bench quality`
(fit quality of the presets, and an ablation of the fitting techniques) and `spritefit bench
video` (temporal coherence on the bundled clip) and `spritefit bench batch` (a batch in this
process and on Ray clusters of one and two nodes)."""
from .batch import bench_batch
from .quality import ABLATIONS, BenchSettings, bench_quality, bundled_targets
from .speed import SCENARIOS, bench_speed
from .video import bench_video

__all__ = ["bench_batch", "SCENARIOS", "bench_speed", "ABLATIONS", "BenchSettings", "bench_quality", "bundled_targets", "bench_video"]
