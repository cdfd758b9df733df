#include "render_cpu.h"

#include <algorithm>
#include <cmath>

namespace spritefit {
namespace {

template <typename PixelFn>
void for_each_tile_pixel(const SceneBuffers& s, const TileBins& bins, PixelFn&& fn) {
  const int64_t tiles = int64_t(bins.tiles_x) * bins.tiles_y;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t t = 0; t < tiles; ++t) {
    const int tx = int(t % bins.tiles_x), ty = int(t / bins.tiles_x);
    const int64_t begin = bins.offsets[t], end = bins.offsets[t + 1];
    for (int y = ty * kTile; y < std::min((ty + 1) * kTile, s.height); ++y) {
      for (int x = tx * kTile; x < std::min((tx + 1) * kTile, s.width); ++x) {
        fn(x, y, begin, end);
      }
    }
  }
}

}  // namespace

TileBins bin_instances_cpu(const SceneBuffers& s) {
  TileBins bins;
  bins.tiles_x = (s.width + kTile - 1) / kTile;
  bins.tiles_y = (s.height + kTile - 1) / kTile;
  const int64_t tiles = int64_t(bins.tiles_x) * bins.tiles_y;
  std::vector<TileRect> ranges(s.n);
  bins.instances.resize(s.n);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < s.n; ++i) {
    ranges[i] = instance_tiles(s, i, bins.tiles_x, bins.tiles_y);
    bins.instances[i] = make_instance(s, i);
  }
  // Counting sort by tile; instances are visited in order, so each tile's list stays in depth order.
  bins.offsets.assign(tiles + 1, 0);
  for (const TileRect& r : ranges)
    for (int ty = r.y0; ty <= r.y1; ++ty)
      for (int tx = r.x0; tx <= r.x1; ++tx) ++bins.offsets[int64_t(ty) * bins.tiles_x + tx + 1];
  for (int64_t t = 0; t < tiles; ++t) bins.offsets[t + 1] += bins.offsets[t];
  bins.ids.resize(bins.offsets[tiles]);
  std::vector<int64_t> cursor(bins.offsets.begin(), bins.offsets.end() - 1);
  for (int64_t i = 0; i < s.n; ++i) {
    const TileRect& r = ranges[i];
    for (int ty = r.y0; ty <= r.y1; ++ty)
      for (int tx = r.x0; tx <= r.x1; ++tx) bins.ids[cursor[int64_t(ty) * bins.tiles_x + tx]++] = int32_t(i);
  }
  return bins;
}

void render_forward_cpu(const SceneBuffers& s, const TileBins& bins, float* image, float* t_end,
                        int32_t* n_contrib, float* visibility) {
  // Sums are kept per (tile, entry) pair, each written by the one thread that owns the tile, and
  // reduced in tile order: the result does not depend on the number of threads.
  std::vector<float> pair_visibility(bins.ids.size(), 0.f);
  const int64_t plane = int64_t(s.width) * s.height;
  for_each_tile_pixel(s, bins, [&](int x, int y, int64_t begin, int64_t end) {
    const int64_t pixel = int64_t(y) * s.width + x;
    const float px = x + 0.5f, py = y + 0.5f;
    float T = 1.f, C[3] = {0.f, 0.f, 0.f};
    int32_t walked = 0;
    for (int64_t j = end - 1; j >= begin && T >= kTMin; --j) {   // top instance first
      ++walked;
      const int32_t id = bins.ids[j];
      const Instance& in = bins.instances[id];
      Sample smp;
      if (!sample_instance(s.textures, in, px, py, &smp) || smp.alpha <= 0.f) continue;
      float col[3];
      mode_color(s.color_mode, smp.rgba, in, col);
      const float weight = T * smp.alpha;
      for (int c = 0; c < 3; ++c) C[c] += weight * col[c];
      pair_visibility[j] += weight;
      T *= 1.f - smp.alpha;
    }
    float bg[3];
    background_at(s, pixel, bg);
    for (int c = 0; c < 3; ++c) image[c * plane + pixel] = C[c] + T * bg[c];
    t_end[pixel] = T;
    n_contrib[pixel] = walked;
  });
  std::fill(visibility, visibility + s.n, 0.f);
  for (size_t j = 0; j < bins.ids.size(); ++j) visibility[bins.ids[j]] += pair_visibility[j];
}

void render_backward_cpu(const SceneBuffers& s, const TileBins& bins, const float* t_end,
                         const int32_t* n_contrib, const float* grad_image, const float* grad_alpha,
                         float* grads) {
  // No atomics: gradients go to per-(tile, entry) buffers owned by the tile's thread, then are
  // reduced in tile order, so every thread count gives the same numbers.
  std::vector<float> pair_grads(bins.ids.size() * kGradsPerInstance, 0.f);
  const int64_t plane = int64_t(s.width) * s.height;
  for_each_tile_pixel(s, bins, [&](int x, int y, int64_t begin, int64_t end) {
    const int64_t pixel = int64_t(y) * s.width + x;
    const float px = x + 0.5f, py = y + 0.5f;
    const float g[3] = {grad_image[pixel], grad_image[plane + pixel], grad_image[2 * plane + pixel]};
    const float T_end = t_end[pixel];
    float bg[3];
    background_at(s, pixel, bg);
    // below: g . (colour accumulated under the current instance, background included)
    float below = T_end * (g[0] * bg[0] + g[1] * bg[1] + g[2] * bg[2]);
    const float d_alpha_out = grad_alpha ? grad_alpha[pixel] * T_end : 0.f;
    float T = T_end;
    for (int64_t j = end - n_contrib[pixel]; j < end; ++j) {   // bottom of the walked list first
      const int32_t id = bins.ids[j];
      const Instance& in = bins.instances[id];
      Sample smp;
      if (!sample_instance(s.textures, in, px, py, &smp)) continue;
      const float a = smp.alpha;
      const float one_minus = 1.f - a;
      const float T_before = T / one_minus;
      float col[3];
      mode_color(s.color_mode, smp.rgba, in, col);
      const float g_dot_col = g[0] * col[0] + g[1] * col[1] + g[2] * col[2];
      const float d_alpha = T_before * g_dot_col - (below - d_alpha_out) / one_minus;
      const float d_col[3] = {g[0] * T_before * a, g[1] * T_before * a, g[2] * T_before * a};
      float local[kGradsPerInstance];
      instance_backward(in, s.color_mode, smp, d_alpha, d_col, local);
      float* out = pair_grads.data() + size_t(j) * kGradsPerInstance;
      for (int k = 0; k < kGradsPerInstance; ++k) out[k] += local[k];
      below += T_before * a * g_dot_col;
      T = T_before;
    }
  });
  std::fill(grads, grads + s.n * kGradsPerInstance, 0.f);
  for (size_t j = 0; j < bins.ids.size(); ++j) {
    float* out = grads + size_t(bins.ids[j]) * kGradsPerInstance;
    for (int k = 0; k < kGradsPerInstance; ++k) out[k] += pair_grads[j * kGradsPerInstance + k];
  }
}

}  // namespace spritefit
