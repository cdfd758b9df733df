#include "image_cpu.h"

#include <algorithm>
#include <vector>

#include "blur_rows.h"
#include "vector_clones.h"

namespace spritefit {

void downsample_rgba_box(const float* src, int64_t h, int64_t w, float* dst) {
  const int64_t oh = (h + 1) / 2, ow = (w + 1) / 2;
#pragma omp parallel for schedule(static)
  for (int64_t y = 0; y < oh; ++y) {
    for (int64_t x = 0; x < ow; ++x) {
      float premul[3] = {0.f, 0.f, 0.f};
      float alpha = 0.f;
      for (int64_t dy = 0; dy < 2; ++dy) {
        for (int64_t dx = 0; dx < 2; ++dx) {
          const int64_t sy = 2 * y + dy, sx = 2 * x + dx;
          if (sy >= h || sx >= w) continue;
          const float* p = src + (sy * w + sx) * 4;
          for (int c = 0; c < 3; ++c) premul[c] += p[c] * p[3];
          alpha += p[3];
        }
      }
      float* out = dst + (y * ow + x) * 4;
      for (int c = 0; c < 3; ++c) out[c] = alpha > 0.f ? std::min(premul[c] / alpha, 1.f) : 0.f;
      out[3] = alpha * 0.25f;
    }
  }
}

namespace {

constexpr float kVisibleAlpha = 1e-6f;

// Row y of one sprite, its four blurred planes in `rgba` (4 rows of side floats), written as
// straight RGBA channels last; the row's columns with alpha > 0 widen `occupied`.
SF_ALWAYS_INLINE void finish_row(const float* rgba, const float* bleed_row, size_t plane, int side, int y,
                                 float* out_row, int32_t* occupied) {
  const float *r = rgba, *g = rgba + side, *b = rgba + 2 * side, *a = rgba + 3 * side;
  int first = side, last = -1;
  for (int x = 0; x < side; ++x) {
    const float alpha = std::min(std::max(a[x], 0.f), 1.f);
    const float inv = 1.f / std::max(alpha, kVisibleAlpha);
    const bool visible = alpha > kVisibleAlpha;
    float* o = out_row + 4 * size_t(x);
    o[0] = visible ? std::min(std::max(r[x] * inv, 0.f), 1.f) : bleed_row[x];
    o[1] = visible ? std::min(std::max(g[x] * inv, 0.f), 1.f) : bleed_row[plane + x];
    o[2] = visible ? std::min(std::max(b[x] * inv, 0.f), 1.f) : bleed_row[2 * plane + x];
    o[3] = alpha;
    if (alpha > 0.f) {
      first = std::min(first, x);
      last = x;
    }
  }
  if (last >= 0) {
    occupied[0] = std::min(occupied[0], first);
    occupied[1] = std::max(occupied[1], last);
    occupied[2] = std::min(occupied[2], y);
    occupied[3] = std::max(occupied[3], y);
  }
}

}  // namespace

SF_VECTOR_CLONES
void blur_planes_cpu(const float* planes, int64_t count, int h, int w, const float* taps, int radius, float* out) {
  const Window k{taps, radius};
  const size_t plane = size_t(h) * w;
#pragma omp parallel if (count * plane >= (size_t(1) << 16))
  {
    std::vector<float> column(w);
#pragma omp for collapse(2) schedule(static)
    for (int64_t p = 0; p < count; ++p) {
      for (int y = 0; y < h; ++y) {
        blur_plane_row(planes + p * plane, h, w, y, k, column.data(), out + p * plane + size_t(y) * w);
      }
    }
  }
}

SF_VECTOR_CLONES
void atlas_level_cpu(const float* premul, const float* bleed, int sprites, int side, const float* taps,
                     int radius, float* out, int32_t* occupied) {
  const Window k{taps, radius};
  const size_t plane = size_t(side) * side;
  // Small levels are not worth waking the other threads for.
#pragma omp parallel if (sprites * plane >= (size_t(1) << 16))
  {
    std::vector<float> column(side), rgba(4 * size_t(side));
#pragma omp for schedule(dynamic)
    for (int s = 0; s < sprites; ++s) {
      int32_t* box = occupied + 4 * s;
      box[0] = box[2] = side;
      box[1] = box[3] = -1;
      for (int y = 0; y < side; ++y) {
        for (int c = 0; c < 4; ++c) {
          blur_plane_row(premul + (4 * size_t(s) + c) * plane, side, side, y, k, column.data(),
                         rgba.data() + c * size_t(side));
        }
        finish_row(rgba.data(), bleed + 3 * size_t(s) * plane + size_t(y) * side, plane, side, y,
                   out + (size_t(s) * plane + size_t(y) * side) * 4, box);
      }
    }
  }
}

}  // namespace spritefit
