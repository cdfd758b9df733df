// CPU backend of the tile renderer (C++17 + OpenMP).
#pragma once
#include <cstdint>
#include <vector>

#include "sprite_math.h"

namespace spritefit {

// Instances binned into 16x16 tiles: tile t owns ids[offsets[t] .. offsets[t+1]) in painter's
// order (bottom first). Kept from the forward pass for the backward pass.
struct TileBins {
  int tiles_x = 0, tiles_y = 0;
  std::vector<int64_t> offsets;
  std::vector<int32_t> ids;
  std::vector<Instance> instances;
  std::vector<PixelRect> pixels;   // per instance: the canvas pixels it can touch
};

TileBins bin_instances_cpu(const SceneBuffers& scene);

// image (3, H, W), t_end (H, W), alpha (H, W): 1 - t_end, written here rather than by a pass of
// its own after the kernel; n_contrib (H, W): list entries walked per pixel, visibility (N).
void render_forward_cpu(const SceneBuffers& scene, const TileBins& bins, float* image, float* t_end, float* alpha,
                        int32_t* n_contrib, float* visibility);

// grads (N, kGradsPerInstance) from d(loss)/d(image) (3, H, W) and d(loss)/d(alpha) (H, W).
void render_backward_cpu(const SceneBuffers& scene, const TileBins& bins, const float* t_end,
                         const int32_t* n_contrib, const float* grad_image, const float* grad_alpha,
                         float* grads);

}  // namespace spritefit
