// Device-side pieces shared by the CUDA binning, forward and backward passes.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "render_cuda.h"
#include "sprite_math.h"

namespace spritefit {

constexpr int kBlock = kTile * kTile;   // one thread per pixel of a tile

inline void cuda_check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(status));
  }
}

struct CudaTileBins {
  cudaStream_t stream = nullptr;
  int tiles_x = 0, tiles_y = 0;
  Instance* instances = nullptr;   // (n)
  int32_t* ids = nullptr;          // (pairs) instance ids sorted by (tile, depth)
  int2* ranges = nullptr;          // (tiles) [begin, end) into ids
  ~CudaTileBins() {
    cudaFreeAsync(instances, stream);
    cudaFreeAsync(ids, stream);
    cudaFreeAsync(ranges, stream);
  }
};

CudaTileBinsHandle bin_instances_cuda(const SceneBuffers& s, cudaStream_t stream);

__device__ __forceinline__ float warp_sum(float value) {
  for (int offset = 16; offset > 0; offset >>= 1) value += __shfl_down_sync(0xffffffffu, value, offset);
  return value;
}

}  // namespace spritefit
