#include "noise_cpu.h"

#include "vector_clones.h"

namespace spritefit {

namespace {

// SplitMix64's output for counter k (Steele, Lea & Flood 2014): a Weyl sequence through a 64-bit
// finaliser, so each value depends on its counter alone and the loop runs in parallel and in lanes.
SF_ALWAYS_INLINE uint64_t splitmix64(uint64_t seed, uint64_t k) {
  uint64_t z = seed + (k + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

constexpr float kUnit = 0x1p-24f;   // 24 random bits make a float in [0, 1) exactly

}  // namespace

SF_VECTOR_CLONES
void uniform_noise_cpu(float* out, int64_t n, uint64_t seed) {
  // Two values from each 64-bit output (its top and its low 24 bits): 64-bit multiplies are the
  // cost, and AVX2 has none of its own.
  const int64_t pairs = n / 2;
#pragma omp parallel for simd schedule(static)
  for (int64_t k = 0; k < pairs; ++k) {
    const uint64_t z = splitmix64(seed, uint64_t(k));
    out[2 * k] = float(uint32_t(z >> 40)) * kUnit;
    out[2 * k + 1] = float(uint32_t(z) & 0xffffffu) * kUnit;
  }
  if (n % 2) out[n - 1] = float(uint32_t(splitmix64(seed, uint64_t(pairs)) >> 40)) * kUnit;
}

}  // namespace spritefit
