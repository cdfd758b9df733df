#include "render_cpu.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "vector_clones.h"

namespace spritefit {
namespace {

constexpr int kTilePixels = kTile * kTile;
// The backward pass runs each row span in whole vectors of kLanes pixels: tile rows are at most
// kTile wide, so most spans are shorter than two vectors, and a compiler's scalar remainder loop
// would do most of the work. The lanes past a span's end are masked (they add nothing and leave
// their pixel's state as it was); they may reach kLanes - 1 pixels past the tile's last pixel,
// which the per-pixel arrays hold as padding.
constexpr int kLanes = 8;
constexpr int kPaddedTilePixels = kTilePixels + kLanes;

// 1 where a <= b, else 0, by arithmetic: a comparison's bool would be branched on (|b - a| < 2^31).
SF_ALWAYS_INLINE int at_or_below(int a, int b) { return ((b - a) >> 31) + 1; }

// The sum of a row of per-lane sums (a span has at most kTile lanes) by halves, in a fixed order:
// loops of constant length, which the compiler unrolls into a vector add or two.
template <class T>
SF_ALWAYS_INLINE T lane_sum(const T (&lanes)[kTile]) {
  static_assert(kTile == 16, "four halvings");
  T eight[8], four[4];
  for (int k = 0; k < 8; ++k) eight[k] = lanes[k] + lanes[k + 8];
  for (int k = 0; k < 4; ++k) four[k] = eight[k] + eight[k + 4];
  return (four[0] + four[2]) + (four[1] + four[3]);
}

// Rounds a span's pixel count up to whole vectors.
SF_ALWAYS_INLINE int whole_lanes(int count) { return (count + kLanes - 1) / kLanes * kLanes; }

// One tile's pixels (canvas coordinates of its corner, its size) and its slice of the bins.
struct TileView {
  int x0, y0, width, height;
  int64_t begin, end;
};

// Tile t's pixels and its slice of the bins. Tiles are independent: each is handled by one
// thread, start to finish.
TileView tile_view(const SceneBuffers& s, const TileBins& bins, int64_t t) {
  TileView v;
  v.x0 = int(t % bins.tiles_x) * kTile;
  v.y0 = int(t / bins.tiles_x) * kTile;
  v.width = std::min(kTile, s.width - v.x0);
  v.height = std::min(kTile, s.height - v.y0);
  v.begin = bins.offsets[t];
  v.end = bins.offsets[t + 1];
  return v;
}

// The instance's pixels inside the tile, in tile-local coordinates. Looping over these instead of
// testing every pixel of the tile against every instance is what makes small sprites cheap.
PixelRect local_rect(const PixelRect& r, const TileView& v) {
  return PixelRect{std::max(r.x0 - v.x0, 0), std::min(r.x1 - v.x0, v.width - 1),
                   std::max(r.y0 - v.y0, 0), std::min(r.y1 - v.y0, v.height - 1)};
}

// The canvas columns [*x0, *x1] of the instance's exact row span in tile row ly (a tile-local
// row of r); returns the row's pixel centre y. Both passes walk an instance's pixels row by row
// this way; the backward pass makes each row one `omp simd` loop (8 pixels at a time in the
// AVX2 clone).
SF_ALWAYS_INLINE float row_pixels(const Instance& in, const SpanLines& lines, const PixelRect& r, const TileView& v,
                                  int ly, int* x0, int* x1) {
  *x0 = v.x0 + r.x0;
  *x1 = v.x0 + r.x1;
  row_span(in, lines, v.y0 + ly, x0, x1);
  return v.y0 + ly + 0.5f;
}

// The background's three channels along `width` pixels from canvas pixel `start` (one tile row):
// copied out once per row, so that the loops over the row's pixels have no per-pixel branch on
// the kind of background and vectorise.
SF_ALWAYS_INLINE void background_row(const SceneBuffers& s, int64_t start, int width, float bg[3][kTile]) {
  const int64_t plane = int64_t(s.width) * s.height;
  for (int c = 0; c < 3; ++c) {
    if (s.background_kind == kImage) {
      // A loop, not std::copy: that is a call to memmove for at most a tile row of floats.
      const float* row = s.background + c * plane + start;
      for (int x = 0; x < width; ++x) bg[c][x] = row[x];
    } else {
      std::fill(bg[c], bg[c] + width, s.background_kind == kColor ? s.background[c] : 0.f);
    }
  }
}


// row_step(start, row, bg) for each row of the tile: its first canvas pixel, its first index in
// the tile's per-pixel arrays, and its background (background_row).
template <class RowStep>
SF_ALWAYS_INLINE void for_each_tile_row(const SceneBuffers& s, const TileView& v, RowStep&& row_step) {
  for (int ly = 0; ly < v.height; ++ly) {
    const int64_t start = int64_t(v.y0 + ly) * s.width + v.x0;
    float bg[3][kTile];
    background_row(s, start, v.width, bg);
    row_step(start, ly * kTile, bg);
  }
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

namespace {

// One forward tile for colour mode Mode (a constant, so the mode's switch folds away).
template <int Mode>
SF_ALWAYS_INLINE void forward_tile(const SceneBuffers& s, const TileBins& bins, const TileView& v,
                                   float* image, float* t_end, float* alpha, int32_t* n_contrib,
                                   float* pair_visibility) {
  constexpr bool kRgb = mode_reads_rgb(Mode);
  const float* texels = texels_for<kRgb>(s);
  alignas(64) float T[kPaddedTilePixels], R[kPaddedTilePixels], G[kPaddedTilePixels], B[kPaddedTilePixels];
  alignas(64) int32_t walked[kPaddedTilePixels];
  std::fill(T, T + kPaddedTilePixels, 1.f);
  std::fill(R, R + kPaddedTilePixels, 0.f);
  std::fill(G, G + kPaddedTilePixels, 0.f);
  std::fill(B, B + kPaddedTilePixels, 0.f);
  std::fill(walked, walked + kPaddedTilePixels, int32_t(v.end - v.begin));
  int alive = v.width * v.height;
  // Top instance first; a pixel stops once it is opaque, the tile once all its pixels are.
  for (int64_t j = v.end - 1; j >= v.begin && alive > 0; --j) {
    const int32_t id = bins.ids[j];
    const Instance in = bins.instances[id];
    const PixelRect r = local_rect(bins.pixels[id], v);
    const SpanLines lines = span_lines(in);
    const int32_t entries_walked = int32_t(v.end - j);   // what the backward pass has to revisit
    // Summed per lane over the rows, then over the lanes (as the backward pass's gradients)
    alignas(64) float lane_visibility[kTile] = {};
    alignas(64) int32_t lane_stopped[kTile] = {};
    // Branch-free rows of whole vectors, as in the backward pass: a stopped pixel, or a lane past
    // the span, composites nothing (its weight is 0) and keeps its state.
    for (int ly = r.y0; ly <= r.y1; ++ly) {
      int x0, x1;
      const float py = row_pixels(in, lines, r, v, ly, &x0, &x1);
      const int row = ly * kTile - v.x0;   // + canvas x: the pixel's index in the tile
      const int lanes = x0 <= x1 ? whole_lanes(x1 - x0 + 1) : 0;
#pragma omp simd
      for (int k = 0; k < lanes; ++k) {
        const int x = x0 + k;
        const int p = row + x;
        const float live = float(at_or_below(x, x1)) * float(T[p] >= kTMin);
        const PixelComposite c = composite_forward<kRgb>(texels, in, Mode, x + 0.5f, py, live, T[p]);
        R[p] += c.weight * c.color[0];
        G[p] += c.weight * c.color[1];
        B[p] += c.weight * c.color[2];
        lane_visibility[k] += c.weight;
        const int now_stopped = (live > 0.f) & (c.T_after < kTMin);
        walked[p] = now_stopped ? entries_walked : walked[p];
        lane_stopped[k] += now_stopped;
        T[p] = c.T_after;
      }
    }
    alive -= lane_sum(lane_stopped);
    pair_visibility[j] = lane_sum(lane_visibility);
  }
  const int64_t plane = int64_t(s.width) * s.height;
  for_each_tile_row(s, v, [&](int64_t start, int row, const float(&bg)[3][kTile]) SF_INLINE_LAMBDA {
#pragma omp simd
    for (int lx = 0; lx < v.width; ++lx) {
      const int p = row + lx;
      image[start + lx] = R[p] + T[p] * bg[0][lx];
      image[plane + start + lx] = G[p] + T[p] * bg[1][lx];
      image[2 * plane + start + lx] = B[p] + T[p] * bg[2][lx];
      t_end[start + lx] = T[p];
      alpha[start + lx] = 1.f - T[p];
      n_contrib[start + lx] = walked[p];
    }
  });
}

// One backward tile for colour mode Mode: climbs the tile's list bottom to top, undoing the
// compositing pixel by pixel.
template <int Mode>
SF_ALWAYS_INLINE void backward_tile(const SceneBuffers& s, const TileBins& bins, const TileView& v,
                                    const float* t_end, const int32_t* n_contrib, const float* grad_image,
                                    const float* grad_alpha, float* pair_grads) {
  constexpr bool kRgb = mode_reads_rgb(Mode);
  const float* texels = texels_for<kRgb>(s);
  alignas(64) float g0[kPaddedTilePixels], g1[kPaddedTilePixels], g2[kPaddedTilePixels];   // d(loss)/d(pixel colour)
  alignas(64) float T[kPaddedTilePixels];             // transmittance above the instances visited so far
  alignas(64) float below[kPaddedTilePixels];         // g . (colour accumulated under the current instance, background included)
  alignas(64) float d_alpha_out[kPaddedTilePixels];   // d(loss)/d(alpha of the pixel) * T_end
  alignas(64) int32_t lowest[kPaddedTilePixels];      // lowest list entry (from the tile's start) the forward pass reached
  // Pixels outside the canvas (and the padding) are never reached: masked lanes read them.
  std::fill(g0, g0 + kPaddedTilePixels, 0.f);
  std::fill(g1, g1 + kPaddedTilePixels, 0.f);
  std::fill(g2, g2 + kPaddedTilePixels, 0.f);
  std::fill(T, T + kPaddedTilePixels, 1.f);
  std::fill(below, below + kPaddedTilePixels, 0.f);
  std::fill(d_alpha_out, d_alpha_out + kPaddedTilePixels, 0.f);
  std::fill(lowest, lowest + kPaddedTilePixels, std::numeric_limits<int32_t>::max());
  const int64_t plane = int64_t(s.width) * s.height;
  const int32_t entries = int32_t(v.end - v.begin);
  int32_t tile_lowest = entries;   // the lowest entry any pixel of the tile reached
  for_each_tile_row(s, v, [&](int64_t start, int row, const float(&bg)[3][kTile]) SF_INLINE_LAMBDA {
#pragma omp simd
    for (int lx = 0; lx < v.width; ++lx) {
      const int p = row + lx;
      const int64_t pixel = start + lx;
      g0[p] = grad_image[pixel];
      g1[p] = grad_image[plane + pixel];
      g2[p] = grad_image[2 * plane + pixel];
      T[p] = t_end[pixel];
      below[p] = T[p] * (g0[p] * bg[0][lx] + g1[p] * bg[1][lx] + g2[p] * bg[2][lx]);
      lowest[p] = entries - n_contrib[pixel];
    }
    for (int lx = 0; lx < v.width; ++lx) tile_lowest = std::min(tile_lowest, lowest[row + lx]);
    if (grad_alpha) {
#pragma omp simd
      for (int lx = 0; lx < v.width; ++lx) d_alpha_out[row + lx] = grad_alpha[start + lx] * T[row + lx];
    }
  });
  // Bottom of the list first, from the lowest entry reached: the forward pass stopped every pixel
  // above the entries under it (their gradients stay 0), as it stops a tile once it is opaque.
  for (int64_t j = v.begin + tile_lowest; j < v.end; ++j) {
    const int32_t id = bins.ids[j];
    const Instance in = bins.instances[id];
    const PixelRect r = local_rect(bins.pixels[id], v);
    const SpanLines lines = span_lines(in);
    const int32_t entry = int32_t(j - v.begin);
    // The entry's gradients (x, y, log_size, theta, tint rgb, opacity, mix) summed per lane over
    // its rows, and over the lanes once at the end: a reduction per row summed the lanes of nine
    // vectors one by one, a tenth of the pass where sprites span a vector or two.
    alignas(64) float lane_sums[kGradsPerInstance][kTile] = {};
    // Branch-free, as the forward pass: a pixel the forward pass stopped above this entry, or
    // that the sprite misses, adds 0 to the gradients and keeps its state.
    for (int ly = r.y0; ly <= r.y1; ++ly) {
      int x0, x1;
      const float py = row_pixels(in, lines, r, v, ly, &x0, &x1);
      const int row = ly * kTile - v.x0;
      const int lanes = x0 <= x1 ? whole_lanes(x1 - x0 + 1) : 0;
#pragma omp simd
      for (int k = 0; k < lanes; ++k) {
        const int x = x0 + k;
        const int p = row + x;
        // Values only: a local whose address were taken here would become a per-lane array in
        // memory (how `omp simd` privatises it), and the loop would not vectorise.
        const PixelStep step = composite_backward<kRgb>(texels, in, Mode, x + 0.5f, py,
                                                        float(at_or_below(x, x1) & at_or_below(lowest[p], entry)),
                                                        g0[p], g1[p], g2[p], T[p], below[p], d_alpha_out[p]);
        unrolled<kGradsPerInstance>([&](int g) SF_INLINE_LAMBDA { lane_sums[g][k] += step.grads[g]; });
        below[p] = step.below;
        T[p] = step.T_before;
      }
    }
    for (int g = 0; g < kGradsPerInstance; ++g) pair_grads[size_t(j) * kGradsPerInstance + g] = lane_sum(lane_sums[g]);
  }
}

}  // namespace

// SF_VECTOR_CLONES: an AVX2 copy of the whole pass (the tile functions are inlined into it) is
// picked on CPUs that have it.
SF_VECTOR_CLONES
void render_forward_cpu(const SceneBuffers& s, const TileBins& bins, float* image, float* t_end, float* alpha,
                        int32_t* n_contrib, float* visibility) {
  // Sums are kept per (tile, entry) pair, each written by the one thread that owns the tile, and
  // reduced in tile order: the result does not depend on the number of threads.
  std::vector<float> pair_visibility(bins.ids.size(), 0.f);
  float* pairs = pair_visibility.data();
  const int64_t tiles = int64_t(bins.tiles_x) * bins.tiles_y;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t t = 0; t < tiles; ++t) {
    const TileView v = tile_view(s, bins, t);
    switch (s.color_mode) {
      case kOriginal: forward_tile<kOriginal>(s, bins, v, image, t_end, alpha, n_contrib, pairs); break;
      case kTint: forward_tile<kTint>(s, bins, v, image, t_end, alpha, n_contrib, pairs); break;
      case kMix: forward_tile<kMix>(s, bins, v, image, t_end, alpha, n_contrib, pairs); break;
      default: forward_tile<kMultiply>(s, bins, v, image, t_end, alpha, n_contrib, pairs); break;
    }
  }
  std::fill(visibility, visibility + s.n, 0.f);
  for (size_t j = 0; j < bins.ids.size(); ++j) visibility[bins.ids[j]] += pair_visibility[j];
}

SF_VECTOR_CLONES
void render_backward_cpu(const SceneBuffers& s, const TileBins& bins, const float* t_end,
                         const int32_t* n_contrib, const float* grad_image, const float* grad_alpha,
                         float* grads) {
  // No atomics: gradients go to per-(tile, entry) buffers owned by the tile's thread, then are
  // reduced in tile order, so every thread count gives the same numbers.
  std::vector<float> pair_grads(bins.ids.size() * kGradsPerInstance, 0.f);
  float* pairs = pair_grads.data();
  const int64_t tiles = int64_t(bins.tiles_x) * bins.tiles_y;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t t = 0; t < tiles; ++t) {
    const TileView v = tile_view(s, bins, t);
    if (v.begin == v.end) continue;
    switch (s.color_mode) {
      case kOriginal: backward_tile<kOriginal>(s, bins, v, t_end, n_contrib, grad_image, grad_alpha, pairs); break;
      case kTint: backward_tile<kTint>(s, bins, v, t_end, n_contrib, grad_image, grad_alpha, pairs); break;
      case kMix: backward_tile<kMix>(s, bins, v, t_end, n_contrib, grad_image, grad_alpha, pairs); break;
      default: backward_tile<kMultiply>(s, bins, v, t_end, n_contrib, grad_image, grad_alpha, pairs); break;
    }
  }
  std::fill(grads, grads + s.n * kGradsPerInstance, 0.f);
  for (size_t j = 0; j < bins.ids.size(); ++j) {
    float* out = grads + size_t(bins.ids[j]) * kGradsPerInstance;
    for (int k = 0; k < kGradsPerInstance; ++k) out[k] += pair_grads[j * kGradsPerInstance + k];
  }
}

}  // namespace spritefit
