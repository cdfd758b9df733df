#include "render_cpu.h"

#include <algorithm>
#include <cmath>

namespace spritefit {
namespace {

constexpr int kTilePixels = kTile * kTile;

// One tile's pixels (canvas coordinates of its corner, its size) and its slice of the bins.
struct TileView {
  int x0, y0, width, height;
  int64_t begin, end;
};

// Tiles are independent and each is handled by one thread, start to finish.
template <typename TileFn>
void for_each_tile(const SceneBuffers& s, const TileBins& bins, TileFn&& fn) {
  const int64_t tiles = int64_t(bins.tiles_x) * bins.tiles_y;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t t = 0; t < tiles; ++t) {
    TileView v;
    v.x0 = int(t % bins.tiles_x) * kTile;
    v.y0 = int(t / bins.tiles_x) * kTile;
    v.width = std::min(kTile, s.width - v.x0);
    v.height = std::min(kTile, s.height - v.y0);
    v.begin = bins.offsets[t];
    v.end = bins.offsets[t + 1];
    fn(v);
  }
}

// The instance's pixels inside the tile, in tile-local coordinates. Looping over these instead of
// testing every pixel of the tile against every instance is what makes small sprites cheap.
PixelRect local_rect(const PixelRect& r, const TileView& v) {
  return PixelRect{std::max(r.x0 - v.x0, 0), std::min(r.x1 - v.x0, v.width - 1),
                   std::max(r.y0 - v.y0, 0), std::min(r.y1 - v.y0, v.height - 1)};
}

}  // namespace

TileBins bin_instances_cpu(const SceneBuffers& s) {
  TileBins bins;
  bins.tiles_x = (s.width + kTile - 1) / kTile;
  bins.tiles_y = (s.height + kTile - 1) / kTile;
  const int64_t tiles = int64_t(bins.tiles_x) * bins.tiles_y;
  bins.pixels.resize(s.n);
  bins.instances.resize(s.n);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < s.n; ++i) {
    bins.pixels[i] = instance_pixels(s, i);
    bins.instances[i] = make_instance(s, i);
  }
  // Counting sort by tile; instances are visited in order, so each tile's list stays in depth order.
  bins.offsets.assign(tiles + 1, 0);
  for (const PixelRect& p : bins.pixels) {
    const TileRect r = tiles_of(p);
    for (int ty = r.y0; ty <= r.y1; ++ty)
      for (int tx = r.x0; tx <= r.x1; ++tx) ++bins.offsets[int64_t(ty) * bins.tiles_x + tx + 1];
  }
  for (int64_t t = 0; t < tiles; ++t) bins.offsets[t + 1] += bins.offsets[t];
  bins.ids.resize(bins.offsets[tiles]);
  std::vector<int64_t> cursor(bins.offsets.begin(), bins.offsets.end() - 1);
  for (int64_t i = 0; i < s.n; ++i) {
    const TileRect r = tiles_of(bins.pixels[i]);
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
  for_each_tile(s, bins, [&](const TileView& v) {
    float T[kTilePixels], C[kTilePixels][3];
    int32_t walked[kTilePixels];
    std::fill(T, T + kTilePixels, 1.f);
    std::fill(&C[0][0], &C[0][0] + 3 * kTilePixels, 0.f);
    std::fill(walked, walked + kTilePixels, int32_t(v.end - v.begin));
    int alive = v.width * v.height;
    // Top instance first; a pixel stops once it is opaque, the tile once all its pixels are.
    for (int64_t j = v.end - 1; j >= v.begin && alive > 0; --j) {
      const int32_t id = bins.ids[j];
      const Instance& in = bins.instances[id];
      const PixelRect r = local_rect(bins.pixels[id], v);
      float entry_visibility = 0.f;
      for (int ly = r.y0; ly <= r.y1; ++ly) {
        int x0 = v.x0 + r.x0, x1 = v.x0 + r.x1;
        row_span(in, v.y0 + ly, &x0, &x1);
        for (int lx = x0 - v.x0; lx <= x1 - v.x0; ++lx) {
          const int p = ly * kTile + lx;
          if (T[p] < kTMin) continue;
          Sample smp;
          if (!sample_instance(s.textures, in, v.x0 + lx + 0.5f, v.y0 + ly + 0.5f, &smp) || smp.alpha <= 0.f)
            continue;
          float col[3];
          mode_color(s.color_mode, smp.rgba, in, col);
          const float weight = T[p] * smp.alpha;
          for (int c = 0; c < 3; ++c) C[p][c] += weight * col[c];
          entry_visibility += weight;
          T[p] *= 1.f - smp.alpha;
          if (T[p] < kTMin) {
            walked[p] = int32_t(v.end - j);   // entries the backward pass has to revisit
            --alive;
          }
        }
      }
      pair_visibility[j] = entry_visibility;
    }
    for (int ly = 0; ly < v.height; ++ly) {
      for (int lx = 0; lx < v.width; ++lx) {
        const int p = ly * kTile + lx;
        const int64_t pixel = int64_t(v.y0 + ly) * s.width + v.x0 + lx;
        float bg[3];
        background_at(s, pixel, bg);
        for (int c = 0; c < 3; ++c) image[c * plane + pixel] = C[p][c] + T[p] * bg[c];
        t_end[pixel] = T[p];
        n_contrib[pixel] = walked[p];
      }
    }
  });
  std::fill(visibility, visibility + s.n, 0.f);
  for (size_t j = 0; j < bins.ids.size(); ++j) visibility[bins.ids[j]] += pair_visibility[j];
}

namespace {

// Per-pixel state of the backward pass while it climbs a tile's list bottom to top.
struct BackwardPixel {
  float g[3];          // d(loss)/d(pixel colour)
  float T;             // transmittance above the instances visited so far
  float below;         // g . (colour accumulated under the current instance, background included)
  float d_alpha_out;   // d(loss)/d(alpha of the pixel) * T_end
  int64_t first;       // lowest list entry the forward pass reached
};

}  // namespace

void render_backward_cpu(const SceneBuffers& s, const TileBins& bins, const float* t_end,
                         const int32_t* n_contrib, const float* grad_image, const float* grad_alpha,
                         float* grads) {
  // No atomics: gradients go to per-(tile, entry) buffers owned by the tile's thread, then are
  // reduced in tile order, so every thread count gives the same numbers.
  std::vector<float> pair_grads(bins.ids.size() * kGradsPerInstance, 0.f);
  const int64_t plane = int64_t(s.width) * s.height;
  for_each_tile(s, bins, [&](const TileView& v) {
    if (v.begin == v.end) return;
    BackwardPixel state[kTilePixels];
    for (int ly = 0; ly < v.height; ++ly) {
      for (int lx = 0; lx < v.width; ++lx) {
        BackwardPixel& b = state[ly * kTile + lx];
        const int64_t pixel = int64_t(v.y0 + ly) * s.width + v.x0 + lx;
        for (int c = 0; c < 3; ++c) b.g[c] = grad_image[c * plane + pixel];
        b.T = t_end[pixel];
        float bg[3];
        background_at(s, pixel, bg);
        b.below = b.T * (b.g[0] * bg[0] + b.g[1] * bg[1] + b.g[2] * bg[2]);
        b.d_alpha_out = grad_alpha ? grad_alpha[pixel] * b.T : 0.f;
        b.first = v.end - n_contrib[pixel];
      }
    }
    for (int64_t j = v.begin; j < v.end; ++j) {   // bottom of the list first
      const int32_t id = bins.ids[j];
      const Instance& in = bins.instances[id];
      const PixelRect r = local_rect(bins.pixels[id], v);
      float entry_grads[kGradsPerInstance] = {};
      for (int ly = r.y0; ly <= r.y1; ++ly) {
        int x0 = v.x0 + r.x0, x1 = v.x0 + r.x1;
        row_span(in, v.y0 + ly, &x0, &x1);
        for (int lx = x0 - v.x0; lx <= x1 - v.x0; ++lx) {
          BackwardPixel& b = state[ly * kTile + lx];
          if (j < b.first) continue;
          Sample smp;
          if (!sample_instance(s.textures, in, v.x0 + lx + 0.5f, v.y0 + ly + 0.5f, &smp)) continue;
          const float a = smp.alpha;
          const float one_minus = 1.f - a;
          const float T_before = b.T / one_minus;
          float col[3];
          mode_color(s.color_mode, smp.rgba, in, col);
          const float g_dot_col = b.g[0] * col[0] + b.g[1] * col[1] + b.g[2] * col[2];
          const float d_alpha = T_before * g_dot_col - (b.below - b.d_alpha_out) / one_minus;
          const float d_col[3] = {b.g[0] * T_before * a, b.g[1] * T_before * a, b.g[2] * T_before * a};
          float local[kGradsPerInstance];
          instance_backward(in, s.color_mode, smp, d_alpha, d_col, local);
          for (int k = 0; k < kGradsPerInstance; ++k) entry_grads[k] += local[k];
          b.below += T_before * a * g_dot_col;
          b.T = T_before;
        }
      }
      std::copy(entry_grads, entry_grads + kGradsPerInstance, pair_grads.data() + size_t(j) * kGradsPerInstance);
    }
  });
  std::fill(grads, grads + s.n * kGradsPerInstance, 0.f);
  for (size_t j = 0; j < bins.ids.size(); ++j) {
    float* out = grads + size_t(bins.ids[j]) * kGradsPerInstance;
    for (int k = 0; k < kGradsPerInstance; ++k) out[k] += pair_grads[j * kGradsPerInstance + k];
  }
}

}  // namespace spritefit
