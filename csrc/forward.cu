// Forward pass on the GPU: one block per 16x16 tile, one thread per pixel. The tile's instances
// are walked top first in shared-memory batches; a block stops once all its pixels are opaque.
#include "cuda_common.cuh"

namespace spritefit {
namespace {

__global__ void __launch_bounds__(kBlock) forward_kernel(SceneBuffers s, const Instance* instances,
                                                         const int32_t* ids, const int2* ranges, int tiles_x,
                                                         float* image, float* t_end, int32_t* n_contrib,
                                                         float* visibility) {
  __shared__ Instance batch[kBlock];
  __shared__ int32_t batch_ids[kBlock];
  const int tile = blockIdx.x;
  const int x = (tile % tiles_x) * kTile + threadIdx.x % kTile;
  const int y = (tile / tiles_x) * kTile + threadIdx.x / kTile;
  const bool inside = x < s.width && y < s.height;
  const int64_t pixel = int64_t(y) * s.width + x;
  const float px = x + 0.5f, py = y + 0.5f;
  const int begin = ranges[tile].x, end = ranges[tile].y;
  float T = 1.f, C[3] = {0.f, 0.f, 0.f};
  int32_t walked = 0;
  bool done = !inside;
  for (int top = end; top > begin; top -= kBlock) {
    if (__syncthreads_count(done) == kBlock) break;
    const int j = top - 1 - int(threadIdx.x);
    if (j >= begin) {
      batch_ids[threadIdx.x] = ids[j];
      batch[threadIdx.x] = instances[ids[j]];
    }
    __syncthreads();
    const int count = min(kBlock, top - begin);
    for (int k = 0; k < count; ++k) {
      if (!done && T < kTMin) done = true;
      float weight = 0.f;
      if (!done) {
        ++walked;
        Sample smp;
        if (sample_instance(s.textures, batch[k], px, py, &smp) && smp.alpha > 0.f) {
          float col[3];
          mode_color(s.color_mode, smp.rgba, batch[k], col);
          weight = T * smp.alpha;
          for (int c = 0; c < 3; ++c) C[c] += weight * col[c];
          T *= 1.f - smp.alpha;
        }
      }
      // Every lane reaches the reduction, so the whole warp adds one visibility sum.
      weight = warp_sum(weight);
      if ((threadIdx.x & 31) == 0 && weight != 0.f) atomicAdd(&visibility[batch_ids[k]], weight);
    }
    __syncthreads();
  }
  if (!inside) return;
  float bg[3];
  background_at(s, pixel, bg);
  const int64_t plane = int64_t(s.width) * s.height;
  for (int c = 0; c < 3; ++c) image[c * plane + pixel] = C[c] + T * bg[c];
  t_end[pixel] = T;
  n_contrib[pixel] = walked;
}

}  // namespace

CudaTileBinsHandle render_forward_cuda(const SceneBuffers& s, float* image, float* t_end, int32_t* n_contrib,
                                       float* visibility, uintptr_t stream_handle) {
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
  CudaTileBinsHandle handle = bin_instances_cuda(s, stream);
  cuda_check(cudaMemsetAsync(visibility, 0, s.n * sizeof(float), stream), "cudaMemsetAsync");
  const CudaTileBins& bins = *handle.bins;
  forward_kernel<<<int(handle.num_tiles), kBlock, 0, stream>>>(s, bins.instances, bins.ids, bins.ranges, bins.tiles_x,
                                                                image, t_end, n_contrib, visibility);
  cuda_check(cudaGetLastError(), "forward kernel");
  return handle;
}

}  // namespace spritefit
