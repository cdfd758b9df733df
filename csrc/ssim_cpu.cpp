#include "ssim_cpu.h"

#include <algorithm>
#include <memory>
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

// The same window over the three coefficient planes (row `row` of each), for the gradient.
SF_VECTOR_CLONES
void blurred_coefficients(const float* coeff, size_t plane, int h, int w, int row, Window k, float* column,
                          float* out) {
  std::fill(column, column + 3 * w, 0.f);
  const RowRange r = rows_around(row, h, k);
  for (int s = 0; s < 3; ++s) add_rows(coeff + s * plane, w, r, row_taps(k, r), column + s * w);
  for (int s = 0; s < 3; ++s) blur_row(column + s * w, out + s * w, w, k);
}

}  // namespace

SF_VECTOR_CLONES
double ssim_cpu(const float* image, const float* target, int channels, int height, int width,
                const float* kernel, int radius, float* grad) {
  const Window k{kernel, radius};
  const int h = height, w = width;
  const size_t plane = size_t(h) * w;
  const double count = double(channels) * plane;
  // Per channel: d(map)/d(mu_x), d(map)/d(E[x^2]) and d(map)/d(E[xy]) for the backward blur.
  // Not a std::vector: every value is written before it is read, so no zero fill.
  std::unique_ptr<float[]> coeff(grad ? new float[3 * plane * channels] : nullptr);
  double total = 0.0;
#pragma omp parallel reduction(+ : total)
  {
    std::vector<float> column(5 * w), stats(5 * w);
#pragma omp for collapse(2) schedule(static)
    for (int c = 0; c < channels; ++c) {
      for (int row = 0; row < h; ++row) {
        local_statistics(image + c * plane, target + c * plane, h, w, row, k, column.data(), stats.data());
        const float *mu_x = stats.data(), *mu_y = mu_x + w, *exx = mu_y + w, *eyy = exx + w, *exy = eyy + w;
        // Without a gradient the coefficients go to a row of scratch that nobody reads.
        float* d = grad ? coeff.get() + 3 * plane * c + size_t(row) * w : column.data();
        const size_t step = grad ? plane : size_t(w);
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
          d[i] = (2 * u * (a2 - a1) - 2 * m * s * (b2 - b1)) * inv;
          d[step + i] = -s / b2;
          d[2 * step + i] = 2 * a1 * inv;
        }
        total += row_sum;
      }
    }
    if (grad != nullptr) {
      // The window is symmetric, so the adjoint of each blur is the same blur.
      const float scale = float(1.0 / count);
#pragma omp for collapse(2) schedule(static)
      for (int c = 0; c < channels; ++c) {
        for (int row = 0; row < h; ++row) {
          blurred_coefficients(coeff.get() + 3 * plane * c, plane, h, w, row, k, column.data(), stats.data());
          const float *g_mu = stats.data(), *g_exx = g_mu + w, *g_exy = g_exx + w;
          const size_t at = c * plane + size_t(row) * w;
          const float *x = image + at, *y = target + at;
#pragma omp simd
          for (int i = 0; i < w; ++i) grad[at + i] = scale * (g_mu[i] + 2 * x[i] * g_exx[i] + y[i] * g_exy[i]);
        }
      }
    }
  }
  return total / count;
}

}  // namespace spritefit
