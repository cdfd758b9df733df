// Backward pass on the GPU: each tile walks the entries its pixels used, bottom first, recovering
// T by division; per-instance gradients are summed across each warp and added with float atomics.
#include "cuda_common.cuh"

namespace spritefit {
namespace {

__global__ void __launch_bounds__(kBlock) backward_kernel(SceneBuffers s, const Instance* instances,
                                                          const int32_t* ids, const int2* ranges, int tiles_x,
                                                          const float* t_end, const int32_t* n_contrib,
                                                          const float* grad_image, const float* grad_alpha,
                                                          float* grads) {
  __shared__ Instance batch[kBlock];
  __shared__ int32_t batch_ids[kBlock];
  __shared__ int most_walked;
  const int tile = blockIdx.x;
  const int x = (tile % tiles_x) * kTile + threadIdx.x % kTile;
  const int y = (tile / tiles_x) * kTile + threadIdx.x / kTile;
  const bool inside = x < s.width && y < s.height;
  const int64_t pixel = int64_t(y) * s.width + x;
  const int64_t plane = int64_t(s.width) * s.height;
  const float px = x + 0.5f, py = y + 0.5f;
  const int end = ranges[tile].y;
  const int walked = inside ? n_contrib[pixel] : 0;
  if (threadIdx.x == 0) most_walked = 0;
  __syncthreads();
  atomicMax(&most_walked, walked);
  __syncthreads();
  float g[3] = {0.f, 0.f, 0.f}, bg[3] = {0.f, 0.f, 0.f}, T = 1.f, below = 0.f, d_alpha_out = 0.f;
  if (inside) {
    for (int c = 0; c < 3; ++c) g[c] = grad_image[c * plane + pixel];
    background_at(s, pixel, bg);
    T = t_end[pixel];
    below = T * (g[0] * bg[0] + g[1] * bg[1] + g[2] * bg[2]);
    d_alpha_out = grad_alpha ? grad_alpha[pixel] * T : 0.f;
  }
  const int first = end - most_walked;   // the lowest entry any pixel of the tile reached
  for (int start = first; start < end; start += kBlock) {
    const int j = start + int(threadIdx.x);
    if (j < end) {
      batch_ids[threadIdx.x] = ids[j];
      batch[threadIdx.x] = instances[ids[j]];
    }
    __syncthreads();
    const int count = min(kBlock, end - start);
    for (int k = 0; k < count; ++k) {
      float local[kGradsPerInstance] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
      Sample smp;
      const bool active = start + k >= end - walked;
      if (active && sample_instance(s.textures, batch[k], px, py, &smp)) {
        const float a = smp.alpha, one_minus = 1.f - a, T_before = T / one_minus;
        float col[3];
        mode_color(s.color_mode, smp.rgba, batch[k], col);
        const float g_dot_col = g[0] * col[0] + g[1] * col[1] + g[2] * col[2];
        const float d_alpha = T_before * g_dot_col - (below - d_alpha_out) / one_minus;
        const float d_col[3] = {g[0] * T_before * a, g[1] * T_before * a, g[2] * T_before * a};
        instance_backward(batch[k], s.color_mode, smp, d_alpha, d_col, local);
        below += T_before * a * g_dot_col;
        T = T_before;
      }
      for (int q = 0; q < kGradsPerInstance; ++q) {
        const float sum = warp_sum(local[q]);
        if ((threadIdx.x & 31) == 0 && sum != 0.f) atomicAdd(&grads[int64_t(batch_ids[k]) * kGradsPerInstance + q], sum);
      }
    }
    __syncthreads();
  }
}

}  // namespace

void render_backward_cuda(const SceneBuffers& s, const CudaTileBinsHandle& handle, const float* t_end,
                          const int32_t* n_contrib, const float* grad_image, const float* grad_alpha,
                          float* grads, uintptr_t stream_handle) {
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
  cuda_check(cudaMemsetAsync(grads, 0, s.n * kGradsPerInstance * sizeof(float), stream), "cudaMemsetAsync");
  const CudaTileBins& bins = *handle.bins;
  backward_kernel<<<int(handle.num_tiles), kBlock, 0, stream>>>(s, bins.instances, bins.ids, bins.ranges,
                                                                 bins.tiles_x, t_end, n_contrib, grad_image,
                                                                 grad_alpha, grads);
  cuda_check(cudaGetLastError(), "backward kernel");
}

}  // namespace spritefit
