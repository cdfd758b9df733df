// CPU image helpers used when building sprite atlases.
#pragma once
#include <cstdint>
#include <vector>

namespace spritefit {

// Halves a straight-alpha RGBA float image (h, w, 4), row-major, by a 2x2 box filter computed on
// premultiplied colour, so transparent texels do not darken the edges. Odd sizes round up; the
// missing texels count as transparent. `dst` holds ((h+1)/2, (w+1)/2, 4).
void downsample_rgba_box(const float* src, int64_t h, int64_t w, float* dst);

// Separable blur of `count` planes (count, h, w) with the symmetric window `taps` (2 * radius + 1)
// and zero padding, into `out` (same shape, not overlapping `planes`).
void blur_planes_cpu(const float* planes, int64_t count, int h, int w, const float* taps, int radius, float* out);

// The mip levels of an atlas: level l holds the K sprites' padded premultiplied RGBA planes
// premul[l] (K, 4, side[l], side[l]) and, unless `bleed` is empty, their bleed colours bleed[l]
// (K, 3, side[l], side[l]); out_offset[l] is where the level's result starts in `out`, in floats.
struct AtlasLevels {
  int sprites;
  std::vector<const float*> premul, bleed;
  std::vector<int> side;
  std::vector<int64_t> out_offset;
};

// Every level of the atlas blurred for soft rasterisation. Each plane is blurred with the
// separable window `taps` (2 * radius + 1, zero padding); each level is written as straight RGBA,
// channels last (K, side, side, 4): alpha clamped to [0, 1], colour = premultiplied / alpha
// clamped to [0, 1] where alpha > 1e-6, else the bleed colour. Without bleed colours only the
// alpha planes are blurred (what tint reads, a quarter of the work): (K, side, side) a level,
// clamped to [0, 1]. `occupied` (levels, K, 4) receives each sprite's first and last column and
// first and last row whose alpha is above 0 (side and -1 when there is none), from which the
// renderer's support boxes come.
void atlas_levels_cpu(const AtlasLevels& atlas, const float* taps, int radius, float* out, int32_t* occupied);

}  // namespace spritefit
