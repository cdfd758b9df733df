#include "ssim_cpu.h"

#include <algorithm>
#include <vector>

#include "blur_rows.h"
#include "vector_clones.h"

namespace spritefit {
namespace {

constexpr float kC1 = 0.01f * 0.01f, kC2 = 0.03f * 0.03f;

// Row y of the five local statistics of one channel (mu_x, mu_y, E[x^2], E[y^2], E[xy]), blurred
// from the pixels directly: a vertical pass into `column` (5 rows), then a horizontal one.
SF_VECTOR_CLONES
void local_statistics(const float* x, const float* y, int h, int w, int row, Window k, float* column,
                      float* stats) {
  std::fill(column, column + 5 * w, 0.f);
  const RowRange r = rows_around(row, h, k);
  float *m_x = column, *m_y = column + w, *m_xx = column + 2 * w, *m_yy = column + 3 * w, *m_xy = column + 4 * w;
  const float* taps = row_taps(k, r);
  // Two rows a pass: each load and store of the five sums carries twice the arithmetic.
  int v = r.first;
  for (; v + 1 <= r.last; v += 2) {
    const float w0 = taps[v], w1 = taps[v + 1];
    const float *x0 = x + size_t(v) * w, *y0 = y + size_t(v) * w, *x1 = x0 + w, *y1 = y0 + w;
    // omp simd: the rows do not overlap, which the compiler cannot prove (it would stay scalar).
#pragma omp simd
    for (int i = 0; i < w; ++i) {
      const float a0 = w0 * x0[i], b0 = w0 * y0[i], a1 = w1 * x1[i], b1 = w1 * y1[i];
      m_x[i] += a0 + a1;
      m_y[i] += b0 + b1;
      m_xx[i] += a0 * x0[i] + a1 * x1[i];
      m_yy[i] += b0 * y0[i] + b1 * y1[i];
      m_xy[i] += a0 * y0[i] + a1 * y1[i];
    }
  }
  for (; v <= r.last; ++v) {
    const float weight = taps[v];
    const float *xv = x + size_t(v) * w, *yv = y + size_t(v) * w;
#pragma omp simd
    for (int i = 0; i < w; ++i) {
      const float wx = weight * xv[i], wy = weight * yv[i];
      m_x[i] += wx;
      m_y[i] += wy;
      m_xx[i] += wx * xv[i];
      m_yy[i] += wy * yv[i];
      m_xy[i] += wx * yv[i];
    }
  }
  for (int s = 0; s < 5; ++s) blur_row(column + s * w, stats + s * w, w, k);
}

// SSIM of each pixel of one row from its local statistics (five rows of w, as local_statistics
// leaves them); returns the row's sum. d0, d1 and d2 receive d(map)/d(mu_x), d(map)/d(E[x^2]) and
// d(map)/d(E[xy]), which the gradient blurs back.
SF_ALWAYS_INLINE float ssim_row(const float* stats, int w, float* d0, float* d1, float* d2) {
  const float *mu_x = stats, *mu_y = mu_x + w, *exx = mu_y + w, *eyy = exx + w, *exy = eyy + w;
  float row_sum = 0.f;
#pragma omp simd reduction(+ : row_sum)
  for (int i = 0; i < w; ++i) {
    const float m = mu_x[i], u = mu_y[i];
    const float a1 = 2 * m * u + kC1, b1 = m * m + u * u + kC1;
    const float a2 = 2 * (exy[i] - m * u) + kC2, b2 = (exx[i] - m * m) + (eyy[i] - u * u) + kC2;
    const float inv = 1.f / (b1 * b2);
    const float s = a1 * a2 * inv;
    row_sum += s;
    // s = a1 a2 / (b1 b2), where a1, b1, a2 and b2 depend on mu_x, E[x^2] and E[xy]
    d0[i] = (2 * u * (a2 - a1) - 2 * m * s * (b2 - b1)) * inv;
    d1[i] = -s / b2;
    d2[i] = 2 * a1 * inv;
  }
  return row_sum;
}

// Sums over some rows: SSIM and squared error.
struct RowSums {
  double ssim = 0.0, squared_error = 0.0;
};

// Rows [first, last) of one channel (x, y: its planes): the sums of their SSIM and squared error
// and, when grad is given, their rows of the gradient of ssim_scale * (sum of SSIM) + l2_scale *
// (sum of squared error). The coefficient rows are kept in a ring of 2 radius + 1 rows: a gradient
// row is made as soon as the rows of its window are, so no plane of coefficients goes to memory
// and back, and x and y are read again while still in cache. The window's rows beyond
// [first, last) are computed too (a halo, recomputed by the neighbouring block), but counted once.
SF_VECTOR_CLONES
RowSums ssim_rows(const float* x, const float* y, int h, int w, int first, int last, Window k, float ssim_scale,
                  float l2_scale, float* grad) {
  const int ring_rows = grad ? 2 * k.radius + 1 : 1;
  std::vector<float> column(5 * size_t(w)), stats(5 * size_t(w)), ring(3 * size_t(ring_rows) * w),
      blurred(3 * size_t(w));
  const auto coefficients = [&](int s, int v) SF_INLINE_LAMBDA {   // plane s of coefficient row v
    return ring.data() + (size_t(s) * ring_rows + v % ring_rows) * w;
  };
  const auto gradient_row = [&](int p) SF_INLINE_LAMBDA {
    std::fill(column.begin(), column.begin() + 3 * size_t(w), 0.f);
    const RowRange r = rows_around(p, h, k);
    for (int s = 0; s < 3; ++s) {
      add_rows([&](int v) SF_INLINE_LAMBDA { return static_cast<const float*>(coefficients(s, v)); }, w, r,
               row_taps(k, r), column.data() + s * size_t(w));
      blur_row(column.data() + s * size_t(w), blurred.data() + s * size_t(w), w, k);
    }
    const float *g_mu = blurred.data(), *g_exx = g_mu + w, *g_exy = g_exx + w;
    const float *xp = x + size_t(p) * w, *yp = y + size_t(p) * w;
    float* out = grad + size_t(p) * w;
#pragma omp simd
    for (int i = 0; i < w; ++i)
      out[i] = ssim_scale * (g_mu[i] + 2 * xp[i] * g_exx[i] + yp[i] * g_exy[i]) + l2_scale * (xp[i] - yp[i]);
  };
  RowSums sums;
  const int begin = grad ? std::max(0, first - k.radius) : first, end = grad ? std::min(h, last + k.radius) : last;
  for (int q = begin; q < end; ++q) {
    local_statistics(x, y, h, w, q, k, column.data(), stats.data());
    const float row_ssim = ssim_row(stats.data(), w, coefficients(0, q), coefficients(1, q), coefficients(2, q));
    if (q >= first && q < last) {
      const float *xq = x + size_t(q) * w, *yq = y + size_t(q) * w;
      float row_error = 0.f;
#pragma omp simd reduction(+ : row_error)
      for (int i = 0; i < w; ++i) row_error += (xq[i] - yq[i]) * (xq[i] - yq[i]);
      sums.ssim += row_ssim;
      sums.squared_error += row_error;
    }
    if (grad && q - k.radius >= first) gradient_row(q - k.radius);
  }
  if (grad)   // the last rows, whose windows the bottom of the plane cut short
    for (int p = std::max(first, end - k.radius); p < last; ++p) gradient_row(p);
  return sums;
}

}  // namespace

SF_VECTOR_CLONES
SsimAndMse ssim_cpu(const float* image, const float* target, int channels, int height, int width,
                    const float* kernel, int radius, float l2_weight, float ssim_weight, float* grad) {
  const Window k{kernel, radius};
  const size_t plane = size_t(height) * width;
  const double count = double(channels) * plane;
  const float ssim_scale = float(ssim_weight / count), l2_scale = float(2.0 * l2_weight / count);
  // Blocks of rows, each done start to finish by one thread; their halos cost 2 radius rows each.
  constexpr int kBlockRows = 128;
  const int blocks = (height + kBlockRows - 1) / kBlockRows;
  double ssim_total = 0.0, error_total = 0.0;
#pragma omp parallel for collapse(2) schedule(dynamic) reduction(+ : ssim_total, error_total)
  for (int c = 0; c < channels; ++c) {
    for (int b = 0; b < blocks; ++b) {
      const RowSums sums = ssim_rows(image + c * plane, target + c * plane, height, width, b * kBlockRows,
                                     std::min(height, (b + 1) * kBlockRows), k, ssim_scale, l2_scale,
                                     grad ? grad + c * plane : nullptr);
      ssim_total += sums.ssim;
      error_total += sums.squared_error;
    }
  }
  return SsimAndMse{ssim_total / count, error_total / count};
}

}  // namespace spritefit
