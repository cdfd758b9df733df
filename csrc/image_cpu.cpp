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

// Widens a sprite's occupied box (first, last column, first, last row) by row y's first and last
// columns with alpha above 0, if any (the same before or after the row's clamp to [0, 1]): two
// scans from the row's ends, so that the loops over its texels carry no branch.
SF_ALWAYS_INLINE void widen_occupied(const float* alpha, int side, int y, int32_t* occupied) {
  int first = 0, last = side - 1;
  while (first < side && !(alpha[first] > 0.f)) ++first;
  while (last > first && !(alpha[last] > 0.f)) --last;
  if (first == side) return;
  occupied[0] = std::min(occupied[0], first);
  occupied[1] = std::max(occupied[1], last);
  occupied[2] = std::min(occupied[2], y);
  occupied[3] = std::max(occupied[3], y);
}

// Starts a sprite's occupied box empty: first beyond last.
SF_ALWAYS_INLINE void clear_occupied(int side, int32_t* occupied) {
  occupied[0] = occupied[2] = side;
  occupied[1] = occupied[3] = -1;
}

// Row y of one sprite, its four blurred planes in `rgba` (4 rows of side floats), written as
// straight RGBA channels last; the row's columns with alpha > 0 widen `occupied`.
SF_ALWAYS_INLINE void finish_row(const float* rgba, const float* bleed_row, size_t plane, int side, int y,
                                 float* out_row, int32_t* occupied) {
  const float *r = rgba, *g = rgba + side, *b = rgba + 2 * side, *a = rgba + 3 * side;
  for (int x = 0; x < side; ++x) {
    const float alpha = std::min(std::max(a[x], 0.f), 1.f);
    const float inv = 1.f / std::max(alpha, kVisibleAlpha);
    const bool visible = alpha > kVisibleAlpha;
    float* o = out_row + 4 * size_t(x);
    o[0] = visible ? std::min(std::max(r[x] * inv, 0.f), 1.f) : bleed_row[x];
    o[1] = visible ? std::min(std::max(g[x] * inv, 0.f), 1.f) : bleed_row[plane + x];
    o[2] = visible ? std::min(std::max(b[x] * inv, 0.f), 1.f) : bleed_row[2 * plane + x];
    o[3] = alpha;
  }
  widen_occupied(a, side, y, occupied);
}

// finish_row for the alpha plane alone, in place: clamped to [0, 1].
SF_ALWAYS_INLINE void finish_alpha_row(float* alpha, int side, int y, int32_t* occupied) {
#pragma omp simd
  for (int x = 0; x < side; ++x) alpha[x] = std::min(std::max(alpha[x], 0.f), 1.f);
  widen_occupied(alpha, side, y, occupied);
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

namespace {

// One sprite of one level, blurred as atlas_levels_cpu says: straight RGBA channels last, or the
// alpha plane alone when bleed is null. `column` and `rgba` are scratch of side and 4 side floats.
SF_ALWAYS_INLINE void blur_atlas_cell(const float* premul, const float* bleed, int side, Window k, float* column,
                                      float* rgba, float* out, int32_t* occupied) {
  const size_t plane = size_t(side) * side;
  clear_occupied(side, occupied);
  for (int y = 0; y < side; ++y) {
    if (bleed == nullptr) {
      float* row = out + size_t(y) * side;
      blur_plane_row(premul + 3 * plane, side, side, y, k, column, row);
      finish_alpha_row(row, side, y, occupied);
      continue;
    }
    for (int c = 0; c < 4; ++c)
      blur_plane_row(premul + c * plane, side, side, y, k, column, rgba + c * size_t(side));
    finish_row(rgba, bleed + size_t(y) * side, plane, side, y, out + size_t(y) * side * 4, occupied);
  }
}

}  // namespace

SF_VECTOR_CLONES
void atlas_levels_cpu(const AtlasLevels& atlas, const float* taps, int radius, float* out, int32_t* occupied) {
  const Window k{taps, radius};
  const bool alpha_only = atlas.bleed.empty();
  const int levels = int(atlas.side.size()), sprites = atlas.sprites;
  size_t texels = 0;
  int widest = 1;
  for (int side : atlas.side) texels += size_t(sprites) * side * side, widest = std::max(widest, side);
  // Small atlases are not worth waking the other threads for; alpha alone is a quarter of the work.
  [[maybe_unused]] const size_t threshold = alpha_only ? size_t(1) << 18 : size_t(1) << 16;
  // One parallel loop over every (level, sprite) cell, the largest level first: the small levels
  // share out among the threads too, instead of one thread doing each while the others wait.
#pragma omp parallel if (texels >= threshold)
  {
    std::vector<float> column(widest), rgba(4 * size_t(widest));
#pragma omp for schedule(dynamic)
    for (int cell = 0; cell < levels * sprites; ++cell) {
      const int level = cell / sprites, s = cell % sprites, side = atlas.side[level];
      const size_t plane = size_t(side) * side, channels = alpha_only ? 1 : 4;
      blur_atlas_cell(atlas.premul[level] + 4 * s * plane, alpha_only ? nullptr : atlas.bleed[level] + 3 * s * plane,
                      side, k, column.data(), rgba.data(), out + atlas.out_offset[level] + channels * s * plane,
                      occupied + 4 * size_t(cell));
    }
  }
}

}  // namespace spritefit
