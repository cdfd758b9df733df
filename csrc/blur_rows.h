// Row-streaming separable blur with zero padding, shared by SSIM and the atlas's soft
// rasterisation: a plane is blurred one output row at a time, vertically into a row of scratch
// and then horizontally, so the whole plane is never copied. Always inlined, so that each caller's
// AVX2 clone (vector_clones.h) vectorises these loops too.
#pragma once
#include <algorithm>

#include "vector_clones.h"

namespace spritefit {

struct Window {
  const float* taps;   // 2 * radius + 1, symmetric
  int radius;
};

// out[x] = sum_t taps[t] * in[x + t], zero outside [0, width). Taps are the outer loop so the
// inner one runs over contiguous pixels and vectorises.
SF_ALWAYS_INLINE void blur_row(const float* in, float* out, int width, Window k) {
  std::fill(out, out + width, 0.f);
  for (int t = -k.radius; t <= k.radius; ++t) {
    const float weight = k.taps[t + k.radius];
    const int x0 = std::max(0, -t), x1 = std::min(width, width - t);
#pragma omp simd
    for (int x = x0; x < x1; ++x) out[x] += weight * in[x + t];
  }
}

// The window's rows around row y of an h-row plane: [first, last] and the tap of `first`.
struct RowRange {
  int first, last, tap;
};
SF_ALWAYS_INLINE RowRange rows_around(int y, int h, Window k) {
  const int first = std::max(0, y - k.radius), last = std::min(h - 1, y + k.radius);
  return RowRange{first, last, first - y + k.radius};
}

// Row `row` of one (h, w) plane blurred both ways; `column` is w floats of scratch.
SF_ALWAYS_INLINE void blur_plane_row(const float* plane, int h, int w, int row, Window k, float* column,
                                     float* out) {
  std::fill(column, column + w, 0.f);
  const RowRange r = rows_around(row, h, k);
  for (int v = r.first; v <= r.last; ++v) {
    const float weight = k.taps[r.tap + v - r.first];
    const float* pv = plane + size_t(v) * w;
#pragma omp simd
    for (int i = 0; i < w; ++i) column[i] += weight * pv[i];
  }
  blur_row(column, out, w, k);
}

}  // namespace spritefit
