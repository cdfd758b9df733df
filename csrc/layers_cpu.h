// Each instance drawn on its own: the pixel layers of layered exports (PSD) and of the editors'
// results (render/layers.py), and the PackBits rows the PSD format stores them in.
#pragma once
#include <cstdint>

#include "sprite_math.h"

namespace spritefit {

// rects (n, 4): x0, x1, y0, y1, the canvas pixels (inclusive) each instance can touch, as the
// renderer bins it (instance_pixels); empty (x0 > x1) when it touches none.
void instance_rects_cpu(const SceneBuffers& scene, int32_t* rects);

// Instances [first, last) at full opacity, as straight RGBA bytes: instance i's patch (its rect's
// rows x columns x 4) at patches + offsets[i - first]. tight (last - first, 4) receives the
// columns and rows x0, x1, y0, y1 of the patch whose alpha is above 0 once rounded to 8 bits
// (x0 > x1 when none). Colour and alpha are the renderer's sample at each pixel centre, the
// colour by the scene's colour mode; the instance's opacity is left to the layer.
void instance_patches_cpu(const SceneBuffers& scene, int64_t first, int64_t last, const int32_t* rects,
                          const int64_t* offsets, uint8_t* patches, int32_t* tight);

// One PSD channel in Apple PackBits: `rows` rows of `width` bytes, byte (x, y) at
// data[y * row_stride + x * step]. `out` receives the rows' packed sizes as big-endian 16-bit
// counts, then the packed rows; it must hold packbits_bound(rows, width) bytes. Returns the bytes
// written.
int64_t packbits_channel(const uint8_t* data, int64_t rows, int64_t width, int64_t row_stride, int64_t step,
                         uint8_t* out);

inline int64_t packbits_bound(int64_t rows, int64_t width) { return rows * (2 + 2 * width); }   // 2 bytes a byte at worst

}  // namespace spritefit
