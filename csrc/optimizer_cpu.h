// The fit's Adam step on the CPU: every parameter tensor in one call.
#pragma once
#include <cstdint>
#include <vector>

namespace spritefit {

// One parameter tensor of n floats, its gradient and its Adam moments; step_size is
// -lr / (1 - beta1^step) and bias_root sqrt(1 - beta2^step), as the caller counts steps.
struct AdamTensor {
  float* param;
  const float* grad;
  float* exp_avg;
  float* exp_avg_sq;
  int64_t n;
  float step_size, bias_root;
};

// Each tensor's step of Adam (Kingma & Ba 2015), in the operations of spritefit.fitting.adam's
// multi-tensor torch path, in their order (avg_weight = 1 - beta1, square_weight = 1 - beta2,
// each rounded from its double as torch rounds a Python number):
//   exp_avg += avg_weight (grad - exp_avg);  exp_avg_sq = beta2 exp_avg_sq + square_weight grad^2;
//   param += step_size exp_avg / (sqrt(exp_avg_sq) / bias_root + eps).
void adam_step_cpu(const std::vector<AdamTensor>& tensors, float avg_weight, float beta2, float square_weight,
                   float eps);

}  // namespace spritefit
