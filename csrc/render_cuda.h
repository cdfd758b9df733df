// CUDA backend of the tile renderer. Plain C++ interface (no CUDA types) so that the pybind11
// bindings compile with the host compiler; pointers are device pointers, `stream` a cudaStream_t.
#pragma once
#include <cstdint>
#include <memory>

#include "sprite_math.h"

namespace spritefit {

struct CudaTileBins;   // device buffers of the binning, kept from forward for backward

struct CudaTileBinsHandle {
  std::shared_ptr<CudaTileBins> bins;
  int64_t num_pairs = 0;
  int64_t num_tiles = 0;
};

CudaTileBinsHandle render_forward_cuda(const SceneBuffers& scene, float* image, float* t_end,
                                       int32_t* n_contrib, float* visibility, uintptr_t stream);

void render_backward_cuda(const SceneBuffers& scene, const CudaTileBinsHandle& bins, const float* t_end,
                          const int32_t* n_contrib, const float* grad_image, const float* grad_alpha,
                          float* grads, uintptr_t stream);

}  // namespace spritefit
