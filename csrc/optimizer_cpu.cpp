#include "optimizer_cpu.h"

#include <cmath>

#include "vector_clones.h"

namespace spritefit {

SF_VECTOR_CLONES
void adam_step_cpu(const std::vector<AdamTensor>& tensors, float avg_weight, float beta2, float square_weight,
                   float eps) {
  for (const AdamTensor& t : tensors) {
    float *param = t.param, *exp_avg = t.exp_avg, *exp_avg_sq = t.exp_avg_sq;
    const float* grad = t.grad;
    const float step_size = t.step_size, bias_root = t.bias_root;
    // exp_avg_sq's decay first, a pass of its own: in one expression with the gradient's square
    // the compiler could fuse either product into the addition, and torch fuses the second.
#pragma omp simd
    for (int64_t i = 0; i < t.n; ++i) exp_avg_sq[i] = exp_avg_sq[i] * beta2;
#pragma omp simd
    for (int64_t i = 0; i < t.n; ++i) {
      const float g = grad[i];
      const float m = exp_avg[i] + avg_weight * (g - exp_avg[i]);
      const float v = exp_avg_sq[i] + square_weight * g * g;
      const float denominator = std::sqrt(v) / bias_root + eps;
      exp_avg[i] = m, exp_avg_sq[i] = v;
      param[i] = param[i] + step_size * m / denominator;
    }
  }
}

}  // namespace spritefit
