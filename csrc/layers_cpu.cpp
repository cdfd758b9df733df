#include "layers_cpu.h"

#include <algorithm>
#include <cmath>

namespace spritefit {

void instance_rects_cpu(const SceneBuffers& s, int32_t* rects) {
#pragma omp parallel for schedule(static) if (s.n >= 4096)
  for (int64_t i = 0; i < s.n; ++i) {
    const PixelRect r = instance_pixels(s, i);
    int32_t* out = rects + 4 * i;
    out[0] = r.x0, out[1] = r.x1, out[2] = r.y0, out[3] = r.y1;
  }
}

namespace {

// A value in [0, 1] as a byte, rounded to the nearest (ties to even, as numpy rounds).
uint8_t to_byte(float v) { return uint8_t(std::nearbyint(std::min(std::max(v, 0.f), 1.f) * 255.f)); }

void draw_patch(const SceneBuffers& s, int64_t i, const int32_t* rect, uint8_t* patch, int32_t* tight) {
  const Instance in = make_instance(s, i);
  // In tint only alpha is read (the alpha plane), as the renderer's passes read it: the RGBA
  // textures may then be empty.
  const bool rgb = mode_reads_rgb(s.color_mode);
  const int cols = rect[1] - rect[0] + 1;
  int x_first = cols, x_last = -1, y_first = -1, y_last = -1;
  for (int y = rect[2]; y <= rect[3]; ++y) {
    uint8_t* row = patch + int64_t(y - rect[2]) * cols * 4;
    for (int x = rect[0]; x <= rect[1]; ++x) {
      Sample smp;
      if (rgb)
        sample_instance<true>(texels_for<true>(s), in, x + 0.5f, y + 0.5f, &smp);
      else
        sample_instance<false>(texels_for<false>(s), in, x + 0.5f, y + 0.5f, &smp);
      float color[3];
      mode_color(s.color_mode, smp.rgba, in, color);
      uint8_t* p = row + (x - rect[0]) * 4;
      for (int c = 0; c < 3; ++c) p[c] = to_byte(color[c]);
      p[3] = to_byte(smp.rgba[3]);
      if (p[3] > 0) {
        x_first = std::min(x_first, x - rect[0]), x_last = std::max(x_last, x - rect[0]);
        if (y_first < 0) y_first = y - rect[2];
        y_last = y - rect[2];
      }
    }
  }
  tight[0] = x_first, tight[1] = x_last, tight[2] = y_first, tight[3] = y_last;
}

}  // namespace

void instance_patches_cpu(const SceneBuffers& s, int64_t first, int64_t last, const int32_t* rects,
                          const int64_t* offsets, uint8_t* patches, int32_t* tight) {
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t i = first; i < last; ++i) {
    int32_t* bounds = tight + 4 * (i - first);
    const int32_t* rect = rects + 4 * i;
    if (rect[0] > rect[1] || rect[2] > rect[3]) {
      bounds[0] = 0, bounds[1] = -1, bounds[2] = 0, bounds[3] = -1;
      continue;
    }
    draw_patch(s, i, rect, patches + offsets[i - first], bounds);
  }
}

namespace {

// One row's PackBits: a run of 2 or more equal bytes as (257 - length, byte), the bytes up to
// the next run of 3 as literals (count - 1, bytes...): a run of 2 inside them would cost as much
// as it saves. At most 128 bytes a packet.
int64_t packbits_row(const uint8_t* row, int64_t width, int64_t step, uint8_t* out) {
  const auto at = [&](int64_t x) { return row[x * step]; };
  int64_t written = 0, i = 0;
  while (i < width) {
    int64_t run = 1;
    while (i + run < width && run < 128 && at(i + run) == at(i)) ++run;
    if (run >= 2) {
      out[written++] = uint8_t(257 - run);
      out[written++] = at(i);
      i += run;
      continue;
    }
    int64_t end = i + 1;   // literals up to the next run of 3 or the packet's limit
    while (end < width && end - i < 128 && !(end + 2 < width && at(end) == at(end + 1) && at(end) == at(end + 2))) ++end;
    out[written++] = uint8_t(end - i - 1);
    for (int64_t x = i; x < end; ++x) out[written++] = at(x);
    i = end;
  }
  return written;
}

}  // namespace

int64_t packbits_channel(const uint8_t* data, int64_t rows, int64_t width, int64_t row_stride, int64_t step,
                         uint8_t* out) {
  int64_t total = 2 * rows;   // the counts come first
  for (int64_t y = 0; y < rows; ++y) {
    const int64_t size = packbits_row(data + y * row_stride, width, step, out + total);
    out[2 * y] = uint8_t(size >> 8), out[2 * y + 1] = uint8_t(size & 0xff);
    total += size;
  }
  return total;
}

}  // namespace spritefit
