// CPU image helpers used when building sprite atlases.
#pragma once
#include <cstdint>

namespace spritefit {

// Halves a straight-alpha RGBA float image (h, w, 4), row-major, by a 2x2 box filter computed on
// premultiplied colour, so transparent texels do not darken the edges. Odd sizes round up; the
// missing texels count as transparent. `dst` holds ((h+1)/2, (w+1)/2, 4).
void downsample_rgba_box(const float* src, int64_t h, int64_t w, float* dst);

}  // namespace spritefit
