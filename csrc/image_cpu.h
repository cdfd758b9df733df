// CPU image helpers used when building sprite atlases.
#pragma once
#include <cstdint>

namespace spritefit {

// Halves a straight-alpha RGBA float image (h, w, 4), row-major, by a 2x2 box filter computed on
// premultiplied colour, so transparent texels do not darken the edges. Odd sizes round up; the
// missing texels count as transparent. `dst` holds ((h+1)/2, (w+1)/2, 4).
void downsample_rgba_box(const float* src, int64_t h, int64_t w, float* dst);

// Separable blur of `count` planes (count, h, w) with the symmetric window `taps` (2 * radius + 1)
// and zero padding, into `out` (same shape, not overlapping `planes`).
void blur_planes_cpu(const float* planes, int64_t count, int h, int w, const float* taps, int radius, float* out);

// One mip level of the atlas blurred for soft rasterisation. `premul` holds the K sprites' padded
// premultiplied RGBA planes (K, 4, side, side), `bleed` their bleed colours (K, 3, side, side).
// Each plane is blurred with the separable window `taps` (2 * radius + 1, zero padding); the
// result is written as straight RGBA, channels last (K, side, side, 4): alpha clamped to [0, 1],
// colour = premultiplied / alpha clamped to [0, 1] where alpha > 1e-6, else the bleed colour.
// `occupied` (K, 4) receives the first and last column and the first and last row whose alpha
// is above 0 (side and -1 when there is none), from which the renderer's support boxes come.
void atlas_level_cpu(const float* premul, const float* bleed, int sprites, int side, const float* taps,
                     int radius, float* out, int32_t* occupied);

// atlas_level_cpu's alpha alone (what tint reads): `out` (K, side, side) receives each sprite's
// blurred alpha plane clamped to [0, 1], `occupied` the same boxes; the colour planes are not
// blurred, a quarter of the work.
void atlas_alpha_level_cpu(const float* premul, int sprites, int side, const float* taps, int radius, float* out,
                           int32_t* occupied);

}  // namespace spritefit
