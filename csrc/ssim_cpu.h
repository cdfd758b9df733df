// SSIM with a Gaussian window and its gradient, on the CPU: the image loss's structural term.
#pragma once
#include <cstdint>

namespace spritefit {

// The widest window ssim_cpu takes: radius 8 (a Gaussian of sigma up to 8/3; the loss uses 1.5).
constexpr int kSsimMaxRadius = 8;

struct SsimAndMse {
  double ssim, mse;
};

// Mean SSIM (Wang et al. 2004) of image against target, both (channels, h, w), over every channel
// and pixel, with local statistics from a separable window `kernel` of 2 * radius + 1 taps
// (1 <= radius <= kSsimMaxRadius) and
// zero padding (as losses.py's torch version), and their mean squared error. When grad is not
// null it receives d(l2_weight * MSE + ssim_weight * SSIM)/d(image), (channels, h, w): the image
// loss's two usual terms in one pass, where torch needs five blurs forward and three more
// backward for SSIM alone, and autograd's temporaries.
// target_stats: null, or the target's statistics from ssim_target_statistics_cpu, which a fit
// makes once for its fixed target.
SsimAndMse ssim_cpu(const float* image, const float* target, const float* target_stats, int channels, int height,
                    int width, const float* kernel, int radius, float l2_weight, float ssim_weight, float* grad);

// The target's windowed mean and mean square for ssim_cpu, (channels, 2, h, w): per channel its
// mean plane, then its mean-square plane.
void ssim_target_statistics_cpu(const float* target, int channels, int height, int width, const float* kernel,
                                int radius, float* out);

}  // namespace spritefit
