// SSIM with a Gaussian window and its gradient, on the CPU: the image loss's structural term.
#pragma once
#include <cstdint>

namespace spritefit {

// Mean SSIM (Wang et al. 2004) of image against target, both (channels, h, w), over every channel
// and pixel, with local statistics from a separable window `kernel` of 2 * radius + 1 taps and
// zero padding (as losses.py's torch version). When grad is not null it receives
// d(mean SSIM)/d(image), (channels, h, w). One call does what torch needs five blurs forward and
// three more backward for, without autograd's temporaries.
double ssim_cpu(const float* image, const float* target, int channels, int height, int width,
                const float* kernel, int radius, float* grad);

}  // namespace spritefit
