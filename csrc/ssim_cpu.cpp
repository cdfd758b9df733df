#include "ssim_cpu.h"

#include <algorithm>
#include <type_traits>
#include <vector>

#include "vector_clones.h"

namespace spritefit {
namespace {

constexpr float kC1 = 0.01f * 0.01f, kC2 = 0.03f * 0.03f;
// Rows a thread does start to finish; a block's halo costs 2 radius rows.
constexpr int kBlockRows = 128;
// Rows whose vertical passes run together (vertical_sums): SSIM with its gradient at 3 x 341 x
// 512 on 2 threads took 1.6-1.8, 1.35-1.42, 1.29-1.44 and 1.26-1.35 ms with 1, 2, 3 and 4 rows,
// the same numbers to the last bit.
constexpr int kRowsAtOnce = 4;

// Sums over some rows: SSIM and squared error.
struct RowSums {
  double ssim = 0.0, squared_error = 0.0;
};

// Each pass over a row is a function of its own, compiled in both clones, that copies the taps
// into registers first: inlined into ssim_rows (one large function), its taps and row pointers
// were spilled and read back from the stack at every tap, and SSIM took 15-25 % longer.

// out[k][i] = sum over t of taps[t] * rows[k + t][i] for the kRows rows k: one vertical pass of
// the window for kRows consecutive rows. The pass is bound by its reads (its rows come from
// level-2 cache), and each row read serves every sum it is in: four rows at once read 14 rows,
// not 44. Few enough rows that their pointers stay in registers, all taps added in registers; each
// sum adds its taps in the same order whatever kRows.
template <int kTaps, int kRows>
SF_WIDE_VECTOR_CLONES
SF_NOINLINE void vertical_sums(const float* const* rows, const float* tap_values, int w,
                               float* const* out) {
  float taps[kTaps];
  std::copy(tap_values, tap_values + kTaps, taps);
  const float* r[kTaps + kRows - 1];
  std::copy(rows, rows + kTaps + kRows - 1, r);
  float* o[kRows];
  std::copy(out, out + kRows, o);
#pragma omp simd
  for (int i = 0; i < w; ++i) {
    float sum[kRows] = {};   // stored after every read: a store in between could alias a row
    unrolled<kTaps>([&](int t) SF_INLINE_LAMBDA {
      unrolled<kRows>([&](int k) SF_INLINE_LAMBDA { sum[k] += taps[t] * r[k + t][i]; });
    });
    unrolled<kRows>([&](int k) SF_INLINE_LAMBDA { o[k][i] = sum[k]; });
  }
}

// The same pass over the rows and over their squares.
template <int kTaps, int kRows>
SF_WIDE_VECTOR_CLONES
SF_NOINLINE void vertical_sums_and_squares(const float* const* rows, const float* tap_values, int w,
                                           float* const* out, float* const* out_squares) {
  float taps[kTaps];
  std::copy(tap_values, tap_values + kTaps, taps);
  const float* r[kTaps + kRows - 1];
  std::copy(rows, rows + kTaps + kRows - 1, r);
  float *o[kRows], *o_squares[kRows];
  std::copy(out, out + kRows, o);
  std::copy(out_squares, out_squares + kRows, o_squares);
#pragma omp simd
  for (int i = 0; i < w; ++i) {
    float sum[kRows] = {}, squares[kRows] = {};
    unrolled<kTaps>([&](int t) SF_INLINE_LAMBDA {
      unrolled<kRows>([&](int k) SF_INLINE_LAMBDA {
        const float v = r[k + t][i], a = taps[t] * v;
        sum[k] += a, squares[k] += a * v;
      });
    });
    unrolled<kRows>([&](int k) SF_INLINE_LAMBDA { o[k][i] = sum[k], o_squares[k][i] = squares[k]; });
  }
}

// The window's horizontal pass over two rows of vertical sums (R zeros at both ends).
template <int kTaps>
SF_WIDE_VECTOR_CLONES
SF_NOINLINE void horizontal_sum_pair(const float* a, const float* b, const float* tap_values, int w,
                                     float* out_a, float* out_b) {
  constexpr int R = kTaps / 2;
  float taps[kTaps];
  std::copy(tap_values, tap_values + kTaps, taps);
#pragma omp simd
  for (int i = 0; i < w; ++i) {
    float sum_a = 0.f, sum_b = 0.f;
    unrolled<kTaps>([&](int t) SF_INLINE_LAMBDA {
      const int j = i - R + t;
      sum_a += taps[t] * a[j], sum_b += taps[t] * b[j];
    });
    out_a[i] = sum_a, out_b[i] = sum_b;
  }
}

// The SSIM of each pixel of a row from its rows of vertical sums (R zeros at both ends), and its
// coefficients d0, d1, d2; returns the row's sum.
template <int R, bool kTargetStats>
SF_WIDE_VECTOR_CLONES
SF_NOINLINE float ssim_map_row(
    const float* s_x, const float* s_y, const float* s_xx, const float* s_yy, const float* s_xy, const float* mean_y,
    const float* square_mean_y, const float* tap_values, int w, float* d0, float* d1, float* d2) {
  constexpr int kTaps = 2 * R + 1;
  float taps[kTaps];
  std::copy(tap_values, tap_values + kTaps, taps);
  float row_sum = 0.f;
#pragma omp simd reduction(+ : row_sum)
  for (int i = 0; i < w; ++i) {
    float m = 0.f, u = 0.f, exx = 0.f, eyy = 0.f, exy = 0.f;
    unrolled<kTaps>([&](int t) SF_INLINE_LAMBDA {
      const int j = i - R + t;
      m += taps[t] * s_x[j], exx += taps[t] * s_xx[j], exy += taps[t] * s_xy[j];
      if (!kTargetStats) u += taps[t] * s_y[j], eyy += taps[t] * s_yy[j];
    });
    if (kTargetStats) u = mean_y[i], eyy = square_mean_y[i];
    const float a1 = 2 * m * u + kC1, b1 = m * m + u * u + kC1;
    const float a2 = 2 * (exy - m * u) + kC2, b2 = (exx - m * m) + (eyy - u * u) + kC2;
    const float inv = 1.f / (b1 * b2);
    const float s = a1 * a2 * inv;
    row_sum += s;
    // s = a1 a2 / (b1 b2), where a1, b1, a2 and b2 depend on mu_x, E[x^2] and E[xy]
    d0[i] = (2 * u * (a2 - a1) - 2 * m * s * (b2 - b1)) * inv;
    d1[i] = -s * b1 * inv;   // -s / b2
    d2[i] = 2 * a1 * inv;
  }
  return row_sum;
}

// A row of the gradient from its rows of blurred-back coefficients' vertical sums (R zeros at
// both ends): their horizontal pass, the chain rule through mu_x, E[x^2] and E[xy], and the
// squared error's term.
template <int R>
SF_WIDE_VECTOR_CLONES
SF_NOINLINE void gradient_map_row(const float* s0, const float* s1, const float* s2, const float* xp,
                                  const float* yp, const float* tap_values, int w, float ssim_scale,
                                  float l2_scale, float* out) {
  constexpr int kTaps = 2 * R + 1;
  float taps[kTaps];
  std::copy(tap_values, tap_values + kTaps, taps);
#pragma omp simd
  for (int i = 0; i < w; ++i) {
    float g_mu = 0.f, g_exx = 0.f, g_exy = 0.f;
    unrolled<kTaps>([&](int t) SF_INLINE_LAMBDA {
      const int j = i - R + t;
      g_mu += taps[t] * s0[j], g_exx += taps[t] * s1[j], g_exy += taps[t] * s2[j];
    });
    out[i] = ssim_scale * (g_mu + 2 * xp[i] * g_exx + yp[i] * g_exy) + l2_scale * (xp[i] - yp[i]);
  }
}

// Rows [first, last) of one channel (x, y: its planes) with a window of 2 R + 1 taps: the sums
// of their SSIM and squared error and, when grad is given, their rows of the gradient of
// ssim_scale * (sum of SSIM) + l2_scale * (sum of squared error).
//
// Each pass of the separable window is one loop over the pixels of a row whose 2 R + 1 taps
// (a constant, so unrolled) add into registers: no partial sum goes to memory and back between
// taps. A vertical pass reads one plane (x, y, x * y made once, or one coefficient plane) for
// kRowsAtOnce rows at once, so the pointers to its rows stay in registers too. Zero padding
// costs no tests: rows above and below the plane read a row of zeros, and the rows of vertical
// sums have R zeros at both ends, which the horizontal pass reads.
// The coefficient rows (d(map)/d(mu_x), d(map)/d(E[x^2]), d(map)/d(E[xy])) are kept in a ring
// of the rows still needed: rows of the gradient are made as soon as the rows of their windows
// are, so no plane of coefficients goes to memory and back, and x and y are read again while
// still in cache. The window's rows beyond [first, last) are computed too (a halo, recomputed by
// the neighbouring block), but counted once.
// With kTargetStats, y_stats holds the target's windowed mean and mean square (two planes,
// ssim_target_statistics_cpu): they stay the same for every render of a fit, and the target's
// own passes, two of the five statistics, are skipped.
template <int R, bool kTargetStats>
SF_ALWAYS_INLINE RowSums ssim_rows_with_radius(const float* x, const float* y, const float* y_stats, int h, int w,
                                               int first, int last, const float* kernel, float ssim_scale,
                                               float l2_scale, float* grad) {
  constexpr int kTaps = 2 * R + 1;
  const size_t padded = size_t(w) + 2 * R;
  // Coefficient rows the gradient's rows still need when a group of rows is made.
  const int ring_rows = grad ? kTaps + 2 * kRowsAtOnce - 2 : kRowsAtOnce;
  std::vector<float> zeros(w, 0.f), sums_rows(8 * kRowsAtOnce * padded, 0.f), ring(3 * size_t(ring_rows) * w);
  float taps[kTaps];
  std::copy(kernel, kernel + kTaps, taps);
  // For the k-th row of a group: rows 5 k to 5 k + 4 the vertical sums of mu_x, mu_y, E[x^2],
  // E[y^2], E[xy]; rows 5 kRowsAtOnce + 3 k to 5 kRowsAtOnce + 3 k + 2 the gradient's.
  const auto sum_row = [&](int s) SF_INLINE_LAMBDA { return sums_rows.data() + s * padded + R; };
  // Row v of the rows row_at(v) gives, or the row of zeros above and below the plane: the zero
  // padding of every vertical pass.
  const auto row_or_zeros = [&](int v, auto row_at) SF_INLINE_LAMBDA {
    return v >= 0 && v < h ? static_cast<const float*>(row_at(v)) : static_cast<const float*>(zeros.data());
  };
  const auto plane_row = [&](const float* plane, int v) SF_INLINE_LAMBDA {
    return row_or_zeros(v, [&](int u) SF_INLINE_LAMBDA { return plane + size_t(u) * w; });
  };
  // x * y of the rows that the window of rows [begin, end) reaches, for E[xy]'s vertical pass
  const int begin = grad ? std::max(0, first - R) : first, end = grad ? std::min(h, last + R) : last;
  const int reached_first = std::max(0, begin - R), reached_end = std::min(h, end + R);
  std::vector<float> products(size_t(reached_end - reached_first) * w);
  for (int v = reached_first; v < reached_end; ++v) {
    const float *xv = x + size_t(v) * w, *yv = y + size_t(v) * w;
    float* out = products.data() + size_t(v - reached_first) * w;
#pragma omp simd
    for (int i = 0; i < w; ++i) out[i] = xv[i] * yv[i];
  }
  const auto product_row = [&](int v) SF_INLINE_LAMBDA {
    return row_or_zeros(v, [&](int u) SF_INLINE_LAMBDA { return products.data() + size_t(u - reached_first) * w; });
  };
  const auto coefficients = [&](int s, int v) SF_INLINE_LAMBDA {   // plane s of coefficient row v
    return ring.data() + (size_t(s) * ring_rows + v % ring_rows) * w;
  };

  // SSIM of each pixel of the K rows from q, their coefficients into the ring, each row's sum
  // into row_ssim.
  const auto ssim_rows_from = [&](int q, auto rows, float* row_ssim) SF_INLINE_LAMBDA {
    constexpr int K = decltype(rows)::value;
    const float *xr[kTaps + K - 1], *yr[kTaps + K - 1], *xyr[kTaps + K - 1];
    for (int t = 0; t < kTaps + K - 1; ++t)
      xr[t] = plane_row(x, q - R + t), yr[t] = plane_row(y, q - R + t), xyr[t] = product_row(q - R + t);
    float *s_x[K], *s_y[K], *s_xx[K], *s_yy[K], *s_xy[K];
    for (int k = 0; k < K; ++k)
      s_x[k] = sum_row(5 * k), s_y[k] = sum_row(5 * k + 1), s_xx[k] = sum_row(5 * k + 2),
      s_yy[k] = sum_row(5 * k + 3), s_xy[k] = sum_row(5 * k + 4);
    vertical_sums_and_squares<kTaps, K>(xr, taps, w, s_x, s_xx);
    if (!kTargetStats) vertical_sums_and_squares<kTaps, K>(yr, taps, w, s_y, s_yy);
    vertical_sums<kTaps, K>(xyr, taps, w, s_xy);
    for (int k = 0; k < K; ++k) {
      const int row = q + k;
      const float* mean_y = kTargetStats ? y_stats + size_t(row) * w : nullptr;
      const float* square_mean_y = kTargetStats ? y_stats + size_t(h + row) * w : nullptr;
      row_ssim[k] = ssim_map_row<R, kTargetStats>(s_x[k], s_y[k], s_xx[k], s_yy[k], s_xy[k], mean_y, square_mean_y,
                                                  taps, w, coefficients(0, row), coefficients(1, row),
                                                  coefficients(2, row));
    }
  };

  // The K rows of the gradient from p: the coefficients blurred back (the window is symmetric),
  // then the chain rule through mu_x, E[x^2] and E[xy], and the squared error's term.
  const auto gradient_rows_from = [&](int p, auto rows) SF_INLINE_LAMBDA {
    constexpr int K = decltype(rows)::value;
    const float *c0[kTaps + K - 1], *c1[kTaps + K - 1], *c2[kTaps + K - 1];
    for (int t = 0; t < kTaps + K - 1; ++t) {
      const int v = p - R + t;
      c0[t] = row_or_zeros(v, [&](int u) SF_INLINE_LAMBDA { return coefficients(0, u); });
      c1[t] = row_or_zeros(v, [&](int u) SF_INLINE_LAMBDA { return coefficients(1, u); });
      c2[t] = row_or_zeros(v, [&](int u) SF_INLINE_LAMBDA { return coefficients(2, u); });
    }
    float *s0[K], *s1[K], *s2[K];
    for (int k = 0; k < K; ++k)
      s0[k] = sum_row(5 * kRowsAtOnce + 3 * k), s1[k] = sum_row(5 * kRowsAtOnce + 3 * k + 1),
      s2[k] = sum_row(5 * kRowsAtOnce + 3 * k + 2);
    vertical_sums<kTaps, K>(c0, taps, w, s0);
    vertical_sums<kTaps, K>(c1, taps, w, s1);
    vertical_sums<kTaps, K>(c2, taps, w, s2);
    for (int k = 0; k < K; ++k) {
      const size_t row = size_t(p + k) * w;
      gradient_map_row<R>(s0[k], s1[k], s2[k], x + row, y + row, taps, w, ssim_scale, l2_scale, grad + row);
    }
  };

  const std::integral_constant<int, kRowsAtOnce> group;
  const std::integral_constant<int, 1> one;
  RowSums sums;
  int next_gradient = first;   // the first row of the gradient not made yet
  for (int q = begin; q < end;) {
    float row_ssim[kRowsAtOnce];
    const int rows = end - q >= kRowsAtOnce ? kRowsAtOnce : 1;
    if (rows == kRowsAtOnce) ssim_rows_from(q, group, row_ssim);
    else ssim_rows_from(q, one, row_ssim);
    for (int k = 0; k < rows; ++k) {
      const int row = q + k;
      if (row < first || row >= last) continue;
      const float *xq = x + size_t(row) * w, *yq = y + size_t(row) * w;
      float row_error = 0.f;
#pragma omp simd reduction(+ : row_error)
      for (int i = 0; i < w; ++i) row_error += (xq[i] - yq[i]) * (xq[i] - yq[i]);
      sums.ssim += row_ssim[k];
      sums.squared_error += row_error;
    }
    q += rows;
    if (!grad) continue;
    // Each row of the gradient as soon as its window's coefficient rows are made (rows past the
    // bottom of the plane read zeros).
    const auto made = [&](int v) SF_INLINE_LAMBDA { return std::min(v, h - 1) < q; };
    for (; next_gradient + kRowsAtOnce <= last && made(next_gradient + kRowsAtOnce - 1 + R);
         next_gradient += kRowsAtOnce)
      gradient_rows_from(next_gradient, group);
    for (; next_gradient < last && next_gradient + kRowsAtOnce > last && made(next_gradient + R); ++next_gradient)
      gradient_rows_from(next_gradient, one);
  }
  return sums;
}

// body(std::integral_constant<int, R>) for the radius R known only at run time (the callers
// check 1 <= radius <= kSsimMaxRadius): one copy of body per radius, each compiled in the
// caller's clones.
template <int R = 1, class Body>
SF_ALWAYS_INLINE auto with_radius(int radius, Body&& body) {
  static_assert(R <= kSsimMaxRadius, "one copy per radius");
  if constexpr (R < kSsimMaxRadius) {
    if (radius != R) return with_radius<R + 1>(radius, body);
  }
  return body(std::integral_constant<int, R>{});
}

SF_WIDE_VECTOR_CLONES
RowSums ssim_rows(const float* x, const float* y, const float* y_stats, int h, int w, int first, int last,
                  const float* kernel, int radius, float ssim_scale, float l2_scale, float* grad) {
  return with_radius(radius, [&](auto r) SF_INLINE_LAMBDA {
    constexpr int R = decltype(r)::value;
    return y_stats ? ssim_rows_with_radius<R, true>(x, y, y_stats, h, w, first, last, kernel, ssim_scale, l2_scale, grad)
                   : ssim_rows_with_radius<R, false>(x, y, y_stats, h, w, first, last, kernel, ssim_scale, l2_scale,
                                                     grad);
  });
}

}  // namespace

SF_WIDE_VECTOR_CLONES
SsimAndMse ssim_cpu(const float* image, const float* target, const float* target_stats, int channels, int height,
                    int width, const float* kernel, int radius, float l2_weight, float ssim_weight, float* grad) {
  const size_t plane = size_t(height) * width;
  const double count = double(channels) * plane;
  const float ssim_scale = float(ssim_weight / count), l2_scale = float(2.0 * l2_weight / count);
  const int blocks = (height + kBlockRows - 1) / kBlockRows;
  double ssim_total = 0.0, error_total = 0.0;
#pragma omp parallel for collapse(2) schedule(dynamic) reduction(+ : ssim_total, error_total)
  for (int c = 0; c < channels; ++c) {
    for (int b = 0; b < blocks; ++b) {
      const RowSums sums = ssim_rows(image + c * plane, target + c * plane,
                                     target_stats ? target_stats + 2 * c * plane : nullptr, height, width,
                                     b * kBlockRows, std::min(height, (b + 1) * kBlockRows), kernel, radius,
                                     ssim_scale, l2_scale, grad ? grad + c * plane : nullptr);
      ssim_total += sums.ssim;
      error_total += sums.squared_error;
    }
  }
  return SsimAndMse{ssim_total / count, error_total / count};
}

namespace {

// Rows [first, last) of target_statistics for one channel: the same passes, in the same order, as
// ssim_rows_with_radius makes for the target, so that SSIM is the same number with them or without.
template <int R>
SF_ALWAYS_INLINE void target_statistics_rows(const float* y, int h, int w, int first, int last, const float* kernel,
                                             float* mean, float* square_mean) {
  constexpr int kTaps = 2 * R + 1;
  const size_t padded = size_t(w) + 2 * R;
  std::vector<float> zeros(w, 0.f), sums_rows(2 * padded, 0.f);
  float taps[kTaps];
  std::copy(kernel, kernel + kTaps, taps);
  float *s_y = sums_rows.data() + R, *s_yy = sums_rows.data() + padded + R;
  for (int q = first; q < last; ++q) {
    const float* yr[kTaps];
    for (int t = 0; t < kTaps; ++t) {
      const int v = q - R + t;
      yr[t] = v >= 0 && v < h ? y + size_t(v) * w : zeros.data();
    }
    vertical_sums_and_squares<kTaps, 1>(yr, taps, w, &s_y, &s_yy);
    horizontal_sum_pair<kTaps>(s_y, s_yy, taps, w, mean + size_t(q) * w, square_mean + size_t(q) * w);
  }
}

SF_WIDE_VECTOR_CLONES
void target_statistics_block(const float* y, int h, int w, int first, int last, const float* kernel, int radius,
                             float* mean, float* square_mean) {
  with_radius(radius, [&](auto r) SF_INLINE_LAMBDA {
    target_statistics_rows<decltype(r)::value>(y, h, w, first, last, kernel, mean, square_mean);
  });
}

}  // namespace

void ssim_target_statistics_cpu(const float* target, int channels, int height, int width, const float* kernel,
                                int radius, float* out) {
  const size_t plane = size_t(height) * width;
  const int blocks = (height + kBlockRows - 1) / kBlockRows;
#pragma omp parallel for collapse(2) schedule(dynamic)
  for (int c = 0; c < channels; ++c) {
    for (int b = 0; b < blocks; ++b) {
      target_statistics_block(target + c * plane, height, width, b * kBlockRows,
                              std::min(height, (b + 1) * kBlockRows), kernel, radius, out + 2 * c * plane,
                              out + (2 * c + 1) * plane);
    }
  }
}

}  // namespace spritefit
