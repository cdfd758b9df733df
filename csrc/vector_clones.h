// SF_VECTOR_CLONES before a function compiles it twice on x86-64 Linux, once for AVX2 with FMA
// (x86-64-v3) and once for the baseline, and picks one when the module loads (GCC and Clang
// `target_clones`). Wheels must run on any x86-64, so they cannot be compiled for AVX2
// throughout; elsewhere (MSVC, macOS, arm64) the macro is empty and the compiler vectorises for
// the baseline (SSE2, NEON). What the function calls runs in its clone only where it is inlined:
// the hot helpers are SF_ALWAYS_INLINE. Define SPRITEFIT_NO_CLONES for the baseline alone.
#pragma once

#if defined(__x86_64__) && defined(__linux__) && (defined(__clang__) || __GNUC__ >= 11) && \
    !defined(SPRITEFIT_NO_CLONES)
#define SF_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
// SSIM's passes gain from AVX-512's 32 vector registers and masked tails (their many row pointers
// and taps no longer spill); the render kernels ran slower in that clone, so they keep AVX2.
#define SF_WIDE_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SF_VECTOR_CLONES
#define SF_WIDE_VECTOR_CLONES
#endif

#if defined(_MSC_VER)
#define SF_ALWAYS_INLINE __forceinline
#define SF_NOINLINE __declspec(noinline)
#define SF_INLINE_LAMBDA
#else
#define SF_NOINLINE __attribute__((noinline))
#define SF_ALWAYS_INLINE inline __attribute__((always_inline))
// After a lambda's parameter list: inline it into its caller (and so into the caller's clone).
#define SF_INLINE_LAMBDA __attribute__((always_inline))
#endif

#include <utility>

namespace spritefit {

// step(0); step(1); ... step(N - 1) as straight-line code: inside a vectorised loop over pixels
// a loop of N taps must be unrolled before the vectoriser sees it, or it vectorises the taps
// instead of the pixels (GCC ignores `#pragma GCC unroll` there).
template <int N, class Step, int... I>
SF_ALWAYS_INLINE void unrolled(Step&& step, std::integer_sequence<int, I...>) {
  (step(I), ...);
}
template <int N, class Step>
SF_ALWAYS_INLINE void unrolled(Step&& step) {
  unrolled<N>(step, std::make_integer_sequence<int, N>());
}

}  // namespace spritefit
