// Tile binning on the GPU: every instance emits one (tile << 32 | depth) key per tile its box
// touches; a radix sort groups the keys by tile and keeps depth order inside each tile.
#include <cub/cub.cuh>

#include "cuda_common.cuh"

namespace spritefit {
namespace {

__global__ void preprocess_kernel(SceneBuffers s, Instance* instances,
                                  int64_t* tile_counts) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= s.n) return;
  instances[i] = make_instance(s, i);
  const TileRect r = instance_tiles(s, i);
  tile_counts[i] = rect_empty(r) ? 0 : int64_t(r.x1 - r.x0 + 1) * (r.y1 - r.y0 + 1);
}

__global__ void emit_keys_kernel(SceneBuffers s, int tiles_x, const int64_t* ends,
                                 uint64_t* keys, int32_t* values) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (i >= s.n) return;
  const TileRect r = instance_tiles(s, i);
  if (rect_empty(r)) return;
  int64_t out = i == 0 ? 0 : ends[i - 1];
  for (int ty = r.y0; ty <= r.y1; ++ty) {
    for (int tx = r.x0; tx <= r.x1; ++tx) {
      keys[out] = (uint64_t(ty * tiles_x + tx) << 32) | uint64_t(i);
      values[out++] = int32_t(i);
    }
  }
}

__global__ void tile_ranges_kernel(const uint64_t* keys, int64_t pairs, int2* ranges) {
  const int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (j >= pairs) return;
  const int tile = int(keys[j] >> 32);
  if (j == 0 || int(keys[j - 1] >> 32) != tile) ranges[tile].x = int(j);
  if (j == pairs - 1 || int(keys[j + 1] >> 32) != tile) ranges[tile].y = int(j + 1);
}

template <typename T>
T* device_alloc(size_t count, cudaStream_t stream) {
  void* p = nullptr;
  cuda_check(cudaMallocAsync(&p, count * sizeof(T) + 1, stream), "cudaMallocAsync");
  return static_cast<T*>(p);
}

int blocks_for(int64_t n, int threads) { return int((n + threads - 1) / threads); }

}  // namespace

CudaTileBinsHandle bin_instances_cuda(const SceneBuffers& s, cudaStream_t stream) {
  auto bins = std::make_shared<CudaTileBins>();
  bins->stream = stream;
  bins->tiles_x = (s.width + kTile - 1) / kTile;
  bins->tiles_y = (s.height + kTile - 1) / kTile;
  const int64_t tiles = int64_t(bins->tiles_x) * bins->tiles_y;
  bins->instances = device_alloc<Instance>(s.n, stream);
  bins->ranges = device_alloc<int2>(tiles, stream);
  cuda_check(cudaMemsetAsync(bins->ranges, 0, tiles * sizeof(int2), stream), "cudaMemsetAsync");
  CudaTileBinsHandle handle{bins, 0, tiles};
  if (s.n == 0) {
    bins->ids = device_alloc<int32_t>(1, stream);
    return handle;
  }
  int64_t* counts = device_alloc<int64_t>(s.n, stream);
  preprocess_kernel<<<blocks_for(s.n, 256), 256, 0, stream>>>(s, bins->instances, counts);
  size_t temp_bytes = 0;
  cub::DeviceScan::InclusiveSum(nullptr, temp_bytes, counts, counts, s.n, stream);
  void* temp = device_alloc<char>(temp_bytes, stream);
  cub::DeviceScan::InclusiveSum(temp, temp_bytes, counts, counts, s.n, stream);
  cudaFreeAsync(temp, stream);
  int64_t pairs = 0;
  cuda_check(cudaMemcpyAsync(&pairs, counts + s.n - 1, sizeof(int64_t), cudaMemcpyDeviceToHost, stream), "copy");
  cuda_check(cudaStreamSynchronize(stream), "binning");
  handle.num_pairs = pairs;
  uint64_t* keys = device_alloc<uint64_t>(2 * pairs, stream);
  int32_t* values = device_alloc<int32_t>(pairs, stream);
  bins->ids = device_alloc<int32_t>(pairs, stream);
  if (pairs > 0) {
    emit_keys_kernel<<<blocks_for(s.n, 256), 256, 0, stream>>>(s, bins->tiles_x, counts, keys, values);
    int end_bit = 32;   // keys: depth in the low 32 bits, tile above
    while ((int64_t(1) << (end_bit - 32)) < tiles + 1) ++end_bit;
    cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys, keys + pairs, values, bins->ids, pairs, 0, end_bit, stream);
    temp = device_alloc<char>(temp_bytes, stream);
    cub::DeviceRadixSort::SortPairs(temp, temp_bytes, keys, keys + pairs, values, bins->ids, pairs, 0, end_bit, stream);
    cudaFreeAsync(temp, stream);
    tile_ranges_kernel<<<blocks_for(pairs, 256), 256, 0, stream>>>(keys + pairs, pairs, bins->ranges);
  }
  cudaFreeAsync(counts, stream);
  cudaFreeAsync(keys, stream);
  cudaFreeAsync(values, stream);
  cuda_check(cudaGetLastError(), "binning kernels");
  return handle;
}

}  // namespace spritefit
