// SF_VECTOR_CLONES before a function compiles it twice on x86-64 Linux, once for AVX2 with FMA
// and once for the baseline, and picks one when the module loads (GCC and Clang `target_clones`).
// Wheels must run on any x86-64, so they cannot be compiled for AVX2 throughout; elsewhere (MSVC,
// macOS, arm64) the macro is empty and the compiler's own vectorisation applies.
#pragma once

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(SPRITEFIT_NO_CLONES)
#define SF_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SF_VECTOR_CLONES
#endif
