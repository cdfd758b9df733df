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
// inner one runs over contiguous pixels and vectorises; three taps a pass, so that each load and
// store of out[] carries three multiply-adds (one a pass would make the loop wait on memory).
SF_ALWAYS_INLINE void blur_row(const float* in, float* out, int width, Window k) {
  std::fill(out, out + width, 0.f);
  const float* taps = k.taps + k.radius;
  int t = -k.radius;
  for (; t + 2 <= k.radius; t += 3) {
    const float w0 = taps[t], w1 = taps[t + 1], w2 = taps[t + 2];
    // [inside, inside_end): every pixel whose three taps fall in the row; the others test each
    const int inside = std::min(width, std::max(0, -t));
    const int inside_end = std::max(inside, std::min(width, width - t - 2));
    const auto edge = [&](int x) SF_INLINE_LAMBDA {
      for (int u = t; u < t + 3; ++u)
        if (x + u >= 0 && x + u < width) out[x] += taps[u] * in[x + u];
    };
    for (int x = 0; x < inside; ++x) edge(x);
#pragma omp simd
    for (int x = inside; x < inside_end; ++x) out[x] += w0 * in[x + t] + w1 * in[x + t + 1] + w2 * in[x + t + 2];
    for (int x = inside_end; x < width; ++x) edge(x);
  }
  for (; t <= k.radius; ++t) {
    const float weight = taps[t];
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

// column[i] += sum over rows v of r of taps[v] * row_at(v)[i]: the vertical pass (taps[v] the
// weight of row v, row_at(v) a pointer to row v's w floats), two rows a pass for the same reason
// as blur_row's three taps.
template <class RowAt>
SF_ALWAYS_INLINE void add_rows(RowAt row_at, int w, const RowRange& r, const float* taps, float* column) {
  int v = r.first;
  for (; v + 1 <= r.last; v += 2) {
    const float w0 = taps[v], w1 = taps[v + 1];
    const float *p0 = row_at(v), *p1 = row_at(v + 1);
#pragma omp simd
    for (int i = 0; i < w; ++i) column[i] += w0 * p0[i] + w1 * p1[i];
  }
  if (v == r.last) {
    const float weight = taps[v], *pv = row_at(v);
#pragma omp simd
    for (int i = 0; i < w; ++i) column[i] += weight * pv[i];
  }
}

// The taps of the window around row y, indexed by plane row (taps[v] for v in r).
SF_ALWAYS_INLINE const float* row_taps(Window k, const RowRange& r) { return k.taps + r.tap - r.first; }

// Row `row` of one (h, w) plane blurred both ways; `column` is w floats of scratch.
SF_ALWAYS_INLINE void blur_plane_row(const float* plane, int h, int w, int row, Window k, float* column,
                                     float* out) {
  std::fill(column, column + w, 0.f);
  const RowRange r = rows_around(row, h, k);
  add_rows([&](int v) SF_INLINE_LAMBDA { return plane + size_t(v) * w; }, w, r, row_taps(k, r), column);
  blur_row(column, out, w, k);
}

}  // namespace spritefit
