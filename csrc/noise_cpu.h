// The noisy canvas of a fit's first iterations, filled on the CPU.
#pragma once
#include <cstdint>

namespace spritefit {

// out[i] = a uniform value in [0, 1) (a multiple of 2^-24) for i in [0, n), from SplitMix64's
// output for the counter i / 2 from `seed`: the same seed gives the same canvas whatever the
// number of threads, and the canvases of random seeds are independent.
void uniform_noise_cpu(float* out, int64_t n, uint64_t seed);

}  // namespace spritefit
