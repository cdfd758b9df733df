#include "image_cpu.h"

#include <algorithm>

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

}  // namespace spritefit
