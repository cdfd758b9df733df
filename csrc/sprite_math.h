// Per-pixel math of the sprite renderer, shared by the CPU (C++/OpenMP) and CUDA backends so
// both evaluate exactly the same formulas as render/reference.py.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "vector_clones.h"

// Small fixed loops (channels, corners) are unrolled before the CPU kernels' lane loops are
// vectorised: the vectoriser gives up on a lane loop that still holds a loop.
#if defined(__CUDACC__) || defined(__clang__)
#define SF_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define SF_UNROLL _Pragma("GCC unroll 16")
#else
#define SF_UNROLL
#endif

// On the CPU every helper is inlined: the kernels' AVX2 clones vectorise them only then.
#if defined(__CUDACC__)
#define SF_HD __host__ __device__ __forceinline__
#else
#define SF_HD SF_ALWAYS_INLINE
#endif

namespace spritefit {

#if !defined(__CUDACC__)
using std::min;
#endif

constexpr float kAlphaMax = 0.99f;   // per-instance alpha clamp (T recoverable by division)
constexpr float kTMin = 1e-4f;       // a pixel stops once its transmittance is below this
constexpr int kTile = 16;            // tiles are kTile x kTile pixels
constexpr int kGradsPerInstance = 9; // x, y, log_size, theta, r, g, b, opacity, mix

enum ColorMode : int { kOriginal = 0, kTint = 1, kMix = 2, kMultiply = 3 };
enum BackgroundKind : int { kTransparent = 0, kColor = 1, kImage = 2 };

// Raw buffers of one render call; every array is contiguous float32 / int32 as checked in Python.
struct SceneBuffers {
  int64_t n;
  int width, height;
  const float* xy;          // (n, 2)
  const float* log_size;    // (n,)
  const float* theta;       // (n,)
  const float* color;       // (n, 3)
  const float* opacity;     // (n,)
  const float* mix;         // (n,)
  const int32_t* sprite;    // (n,)
  const int32_t* level;     // (n,) mip level, chosen in Python (one rule for every backend)
  const float* textures;    // all mip levels concatenated, level l: (K, W_l, W_l, 4), W_l = S_l + 2 pad
  const float* alpha;       // textures' alpha channel alone, (K, W_l, W_l) per level: tint reads only
                            // this, and four times as many of its texels share a cache line
  const int64_t* level_offset;  // (levels,) float offset of each level in `textures`
  const int32_t* level_size;    // (levels,) S_l
  const float* support;     // (levels, K, 4) unit-box bounds u0, u1, v0, v1 of non-zero alpha
  int pad;                  // transparent texels around each level
  int num_sprites;          // K
  int color_mode;
  int background_kind;
  const float* background;  // (3,) or (3, H, W)
};

// What one instance needs per pixel, computed once per call.
struct Instance {
  float cx, cy, cos_t, sin_t, inv_size;
  float tex_scale;    // S_l / 2: unit box -> texels
  float tex_center;   // W_l / 2 - 0.5: texel coordinate of the unit box centre
  int tex_width;      // W_l
  int64_t tex;        // float offset of the sprite's texture
  float opacity, mix;
  float tint[3];
  float support[4];   // u0, u1, v0, v1: unit-box bounds outside which alpha is 0
};

SF_HD Instance make_instance(const SceneBuffers& s, int64_t i) {
  Instance in;
  in.cx = s.xy[2 * i];
  in.cy = s.xy[2 * i + 1];
  in.cos_t = cosf(s.theta[i]);
  in.sin_t = sinf(s.theta[i]);
  in.inv_size = expf(-s.log_size[i]);
  const int level = s.level[i];
  const int size = s.level_size[level];
  in.tex_width = size + 2 * s.pad;
  in.tex_scale = 0.5f * size;
  in.tex_center = 0.5f * in.tex_width - 0.5f;
  in.tex = s.level_offset[level] + int64_t(s.sprite[i]) * in.tex_width * in.tex_width * 4;
  in.opacity = s.opacity[i];
  in.mix = s.mix[i];
  for (int c = 0; c < 3; ++c) in.tint[c] = s.color[3 * i + c];
  const float* sup = s.support + (int64_t(level) * s.num_sprites + s.sprite[i]) * 4;
  for (int k = 0; k < 4; ++k) in.support[k] = sup[k];
  return in;
}

// Offsets from the instance centre (pixels) of the axis-aligned box holding every pixel where the
// instance's alpha can be non-zero: its support box rotated and scaled into the canvas.
struct Box {
  float x0, x1, y0, y1;
};

// Not fminf/fmaxf: on x86-64 without -ffinite-math-only those are libm calls in the hot loop.
SF_HD float lower(float a, float b) { return a < b ? a : b; }
SF_HD float upper(float a, float b) { return a < b ? b : a; }

SF_HD Box instance_box(const SceneBuffers& s, int64_t i) {
  const float* sup = s.support + (int64_t(s.level[i]) * s.num_sprites + s.sprite[i]) * 4;
  const float size = expf(s.log_size[i]);
  const float c = cosf(s.theta[i]) * size, n = sinf(s.theta[i]) * size;
  // canvas offset d = size * R(-theta) u, i.e. dx = c ux + n uy, dy = -n ux + c uy
  Box b;
  b.x0 = lower(c * sup[0], c * sup[1]) + lower(n * sup[2], n * sup[3]);
  b.x1 = upper(c * sup[0], c * sup[1]) + upper(n * sup[2], n * sup[3]);
  b.y0 = lower(-n * sup[0], -n * sup[1]) + lower(c * sup[2], c * sup[3]);
  b.y1 = upper(-n * sup[0], -n * sup[1]) + upper(c * sup[2], c * sup[3]);
  if (sup[0] > sup[1] || sup[2] > sup[3]) b.x0 = b.y0 = 1.f, b.x1 = b.y1 = -1.f;   // nothing opaque
  return b;
}

// Inclusive pixel (or tile) index ranges [x0, x1] x [y0, y1]; empty when x0 > x1.
struct PixelRect {
  int x0, x1, y0, y1;
};
using TileRect = PixelRect;

SF_HD bool rect_empty(const PixelRect& r) { return r.x0 > r.x1 || r.y0 > r.y1; }

// The canvas pixels the instance can touch: those whose centres (x + 0.5) fall inside its box.
SF_HD PixelRect instance_pixels(const SceneBuffers& s, int64_t i) {
  const Box b = instance_box(s, i);
  const float cx = s.xy[2 * i], cy = s.xy[2 * i + 1];
  const float px0 = ceilf(cx + b.x0 - 0.5f), px1 = floorf(cx + b.x1 - 0.5f);
  const float py0 = ceilf(cy + b.y0 - 0.5f), py1 = floorf(cy + b.y1 - 0.5f);
  PixelRect r{1, 0, 1, 0};
  if (!(px0 <= px1 && py0 <= py1 && px1 >= 0 && py1 >= 0 && px0 < s.width && py0 < s.height)) return r;
  // Clamp in float first: a far-away instance must not overflow the int conversion.
  r.x0 = int(upper(px0, 0.f));
  r.x1 = int(lower(px1, float(s.width - 1)));
  r.y0 = int(upper(py0, 0.f));
  r.y1 = int(lower(py1, float(s.height - 1)));
  return r;
}

// Tiles holding the pixels of `pixels`.
SF_HD TileRect tiles_of(const PixelRect& pixels) {
  if (rect_empty(pixels)) return pixels;
  return TileRect{pixels.x0 / kTile, pixels.x1 / kTile, pixels.y0 / kTile, pixels.y1 / kTile};
}

SF_HD TileRect instance_tiles(const SceneBuffers& s, int64_t i) { return tiles_of(instance_pixels(s, i)); }

// Unit-box coordinates of the pixel centre (px, py): u = R(-theta)(p - c) / s.
SF_HD void unit_coords(const Instance& in, float px, float py, float* ux, float* uy) {
  const float dx = px - in.cx, dy = py - in.cy;
  *ux = (in.cos_t * dx - in.sin_t * dy) * in.inv_size;
  *uy = (in.sin_t * dx + in.cos_t * dy) * in.inv_size;
}

// Where the instance's rotated support box crosses a row, as offsets dx from its centre: the
// span is [max of the lower lines, min of the upper lines] at the row's dy, each line P + Q dy.
// Built once per instance and tile, so a row costs a few multiply-adds, not four divisions.
struct SpanLines {
  float low[2], high[2], slope[2];   // P of the lower and upper line, and Q, of the two constraints
};

// The constraint lo_u <= a dx + c dy <= hi_u as the lines dx = (bound - c dy) / a.
SF_HD void span_constraint(float a, float c, float lo_u, float hi_u, float* low, float* high, float* slope) {
  if (fabsf(a) < 1e-4f) {   // nearly independent of dx: leave it to the other constraint
    *low = -3.4e38f, *high = 3.4e38f, *slope = 0.f;
    return;
  }
  const float inv = 1.f / a;
  *low = (a > 0.f ? lo_u : hi_u) * inv;
  *high = (a > 0.f ? hi_u : lo_u) * inv;
  *slope = -c * inv;
}

SF_HD SpanLines span_lines(const Instance& in) {
  const float size = 1.f / in.inv_size;
  SpanLines l;
  // ux * size = cos dx - sin dy in [u0, u1] * size;  uy * size = sin dx + cos dy in [v0, v1] * size
  span_constraint(in.cos_t, -in.sin_t, in.support[0] * size, in.support[1] * size, &l.low[0], &l.high[0], &l.slope[0]);
  span_constraint(in.sin_t, in.cos_t, in.support[2] * size, in.support[3] * size, &l.low[1], &l.high[1], &l.slope[1]);
  return l;
}

// Pixels [*x0, *x1] of row y where the instance's rotated support box lies, clipped to the given
// range: the exact span, so rotated sprites cost their area rather than their bounding box's.
SF_HD void row_span(const Instance& in, const SpanLines& l, int y, int* x0, int* x1) {
  const float dy = y + 0.5f - in.cy;
  const float lo = upper(l.low[0] + l.slope[0] * dy, l.low[1] + l.slope[1] * dy);
  const float hi = lower(l.high[0] + l.slope[0] * dy, l.high[1] + l.slope[1] * dy);
  const float eps = 1e-2f;   // never lose a boundary pixel to rounding; alpha is ~0 there anyway
  const float first = ceilf(upper(in.cx + lo - 0.5f - eps, float(*x0)));
  const float last = floorf(lower(in.cx + hi - 0.5f + eps, float(*x1)));
  *x0 = int(first);
  *x1 = first <= last ? int(last) : *x0 - 1;
}

// Bilinear footprint of texture coordinates, with zero outside the texture (like grid_sample
// with align_corners=False and zero padding).
struct Bilinear {
  int x0, y0;
  float fx, fy;
};

// floorf by arithmetic alone, as a float: no libm call and no rounding instruction (SSE2 has
// none), so that it vectorises on every x86-64, and no float(int(x)) round trip, which compilers
// turn into a truncation that some targets cannot vectorise. Adding and subtracting 1.5 * 2^23
// rounds to the nearest integer; exact for |x| < 2^22 (texture coordinates are far smaller).
SF_HD float floor_exact(float x) {
  const float magic = 12582912.0f;
  const float nearest = (x + magic) - magic;
  return nearest > x ? nearest - 1.0f : nearest;
}

SF_HD Bilinear bilinear_at(const Instance& in, float ux, float uy) {
  const float tx = ux * in.tex_scale + in.tex_center;
  const float ty = uy * in.tex_scale + in.tex_center;
  const float x0 = floor_exact(tx), y0 = floor_exact(ty);
  Bilinear b;
  b.x0 = int(x0);
  b.y0 = int(y0);
  b.fx = tx - x0;
  b.fy = ty - y0;
  return b;
}

SF_HD bool bilinear_outside(const Instance& in, const Bilinear& b) {
  return b.x0 < -1 || b.y0 < -1 || b.x0 >= in.tex_width || b.y0 >= in.tex_width;
}

// Whether a colour mode reads the sprite's colour channels: tint colours every sprite with its
// learned colour and reads only the sprite's alpha, a quarter of the texels.
SF_HD constexpr bool mode_reads_rgb(int mode) { return mode != kTint; }

// The first channel a sample reads: 0 (RGBA), or 3 (alpha alone; its RGB are left zero).
template <bool kRgb>
SF_HD constexpr int first_channel() { return kRgb ? 0 : 3; }

// The four corner texels (RGBA each), zero outside the texture (so all zero where the footprint
// misses it). Branch-free, so that the CPU kernels run it for 8 pixels at once: a corner is read
// at its coordinates clamped into the texture, always in bounds, and weighs 0 where the clamp
// moved it. `texels` is the RGBA textures, or without kRgb the alpha plane (one float a texel;
// RGB are left zero).
// x clamped into [0, last], as a min and a max: the offsets stay 32-bit integers, which the
// vectorised texel reads (gathers) need.
SF_HD int clamp_int(int x, int last) {
  const int above = x < 0 ? 0 : x;
  return above < last ? above : last;
}

template <bool kRgb = true>
SF_HD void bilinear_corners(const float* texels, const Instance& in, const Bilinear& b, float t[4][4]) {
  constexpr int kStride = kRgb ? 4 : 1;          // floats a texel
  const float* sprite = texels + in.tex / (4 / kStride);
  const int last = in.tex_width - 1;
  SF_UNROLL
  for (int k = 0; k < 4; ++k) {
    const int x = b.x0 + (k & 1), y = b.y0 + (k >> 1);
    const int xc = clamp_int(x, last), yc = clamp_int(y, last);
    // Texel times 0 or 1, not `ok ? texel : 0`: with a select the compiler would read the texel
    // only where ok holds, and a conditional read keeps a lane loop from vectorising. Texels
    // are finite, so the product is the texel or 0.
    const float keep = ((x - xc) | (y - yc)) == 0 ? 1.0f : 0.0f;   // one compare: no chain of bools to select
    const int offset = (yc * in.tex_width + xc) * kStride;
    if (!kRgb) t[k][0] = t[k][1] = t[k][2] = 0.0f;
    SF_UNROLL
    for (int c = first_channel<kRgb>(); c < 4; ++c) t[k][c] = sprite[offset + c - first_channel<kRgb>()] * keep;
  }
}

template <bool kRgb = true>
SF_HD void bilinear_value(const float t[4][4], const Bilinear& b, float out[4]) {
  const float w00 = (1 - b.fx) * (1 - b.fy), w10 = b.fx * (1 - b.fy);
  const float w01 = (1 - b.fx) * b.fy, w11 = b.fx * b.fy;
  if (!kRgb) out[0] = out[1] = out[2] = 0.0f;
  SF_UNROLL
  for (int c = first_channel<kRgb>(); c < 4; ++c)
    out[c] = w00 * t[0][c] + w10 * t[1][c] + w01 * t[2][c] + w11 * t[3][c];
}

// d(loss)/d(texel coordinates) given d(loss)/d(sampled RGBA) (without kRgb, d_out's RGB are 0).
template <bool kRgb = true>
SF_HD void bilinear_backward(const float t[4][4], const Bilinear& b, const float d_out[4],
                             float* d_tx, float* d_ty) {
  float gx = 0.f, gy = 0.f;
  SF_UNROLL
  for (int c = first_channel<kRgb>(); c < 4; ++c) {
    gx += d_out[c] * ((1 - b.fy) * (t[1][c] - t[0][c]) + b.fy * (t[3][c] - t[2][c]));
    gy += d_out[c] * ((1 - b.fx) * (t[2][c] - t[0][c]) + b.fx * (t[3][c] - t[1][c]));
  }
  *d_tx = gx;
  *d_ty = gy;
}

SF_HD void mode_color(int mode, const float rgb[3], const Instance& in, float col[3]) {
  SF_UNROLL
  for (int c = 0; c < 3; ++c) {
    switch (mode) {
      case kOriginal: col[c] = rgb[c]; break;
      case kTint: col[c] = in.tint[c]; break;
      case kMix: col[c] = in.mix * rgb[c] + (1 - in.mix) * in.tint[c]; break;
      default: col[c] = rgb[c] * in.tint[c]; break;
    }
  }
}

SF_HD void mode_color_backward(int mode, const float rgb[3], const Instance& in, const float d_col[3],
                               float d_rgb[3], float d_tint[3], float* d_mix) {
  *d_mix = 0.f;
  SF_UNROLL
  for (int c = 0; c < 3; ++c) {
    switch (mode) {
      case kOriginal: d_rgb[c] = d_col[c]; d_tint[c] = 0.f; break;
      case kTint: d_rgb[c] = 0.f; d_tint[c] = d_col[c]; break;
      case kMix:
        d_rgb[c] = in.mix * d_col[c];
        d_tint[c] = (1 - in.mix) * d_col[c];
        *d_mix += d_col[c] * (rgb[c] - in.tint[c]);
        break;
      default: d_rgb[c] = d_col[c] * in.tint[c]; d_tint[c] = d_col[c] * rgb[c]; break;
    }
  }
}

SF_HD void background_at(const SceneBuffers& s, int64_t pixel, float bg[3]) {
  const int64_t plane = int64_t(s.width) * s.height;
  SF_UNROLL
  for (int c = 0; c < 3; ++c) {
    bg[c] = s.background_kind == kColor ? s.background[c]
          : s.background_kind == kImage ? s.background[c * plane + pixel] : 0.0f;
  }
}

// What sample_instance<kRgb> reads: the RGBA textures, or the alpha plane.
template <bool kRgb>
SF_HD const float* texels_for(const SceneBuffers& s) { return kRgb ? s.textures : s.alpha; }

// Per-pixel result of sampling one instance.
struct Sample {
  Bilinear b;
  float texels[4][4];
  float rgba[4];
  float ux, uy;
  float raw_alpha;   // opacity * sprite alpha, before the clamp
  float alpha;
};

// Samples the instance at the pixel centre (px, py); false (and a transparent sample) where the
// pixel's bilinear footprint misses the instance's texture. Without kRgb only alpha is sampled,
// and `textures` is the alpha plane (texels_for).
template <bool kRgb = true>
SF_HD bool sample_instance(const float* textures, const Instance& in, float px, float py, Sample* s) {
  unit_coords(in, px, py, &s->ux, &s->uy);
  s->b = bilinear_at(in, s->ux, s->uy);
  bilinear_corners<kRgb>(textures, in, s->b, s->texels);
  bilinear_value<kRgb>(s->texels, s->b, s->rgba);
  s->raw_alpha = in.opacity * s->rgba[3];
  s->alpha = lower(s->raw_alpha, kAlphaMax);
  return !bilinear_outside(in, s->b);
}

// Gradients of one instance at one pixel, given d(loss)/d(alpha) and d(loss)/d(colour).
// Writes kGradsPerInstance values: x, y, log_size, theta, tint rgb, opacity, mix. kRgb as the
// sample was taken: false only for a mode that reads no sprite colour (d_rgb is then 0).
template <bool kRgb = true>
SF_HD void instance_backward(const Instance& in, int mode, const Sample& s, float d_alpha,
                             const float d_col[3], float grads[kGradsPerInstance]) {
  // Times 0 or 1 rather than selected (see composite_backward): where the clamp holds, no gradient.
  const float d_raw = d_alpha * float(s.raw_alpha <= kAlphaMax);
  float d_rgb[3], d_tint[3], d_mix;
  mode_color_backward(mode, s.rgba, in, d_col, d_rgb, d_tint, &d_mix);
  const float d_sample[4] = {d_rgb[0], d_rgb[1], d_rgb[2], d_raw * in.opacity};
  float d_tx, d_ty;
  bilinear_backward<kRgb>(s.texels, s.b, d_sample, &d_tx, &d_ty);
  const float d_ux = d_tx * in.tex_scale, d_uy = d_ty * in.tex_scale;
  grads[0] = -(d_ux * in.cos_t + d_uy * in.sin_t) * in.inv_size;
  grads[1] = (d_ux * in.sin_t - d_uy * in.cos_t) * in.inv_size;
  grads[2] = -(d_ux * s.ux + d_uy * s.uy);
  grads[3] = -d_ux * s.uy + d_uy * s.ux;
  grads[4] = d_tint[0];
  grads[5] = d_tint[1];
  grads[6] = d_tint[2];
  grads[7] = d_raw * s.rgba[3];
  grads[8] = d_mix;
}

// One pixel's step of the forward pass through one instance (from the top of the list down):
// what it composites there and the transmittance left below it. `live`: 1 where the pixel is
// still open and in the instance's span, 0 where not; at 0 the weight is 0 and T is kept, so the
// CPU kernels run it branch-free for 8 pixels at once.
struct PixelComposite {
  float weight;     // T * alpha: how much of the instance's colour the pixel shows
  float color[3];   // the instance's colour at the pixel (by its colour mode)
  float T_after;    // transmittance below the instance
};

template <bool kRgb = true>
SF_HD PixelComposite composite_forward(const float* texels, const Instance& in, int mode, float px, float py,
                                       float live, float T) {
  Sample smp;
  sample_instance<kRgb>(texels, in, px, py, &smp);   // a footprint off the texture samples 0
  const float a = smp.alpha * live;
  PixelComposite c;
  mode_color(mode, smp.rgba, in, c.color);
  c.weight = T * a;
  c.T_after = T * (1.f - a);
  return c;
}

// One pixel's step of the backward pass through one instance (climbing the list from the
// bottom): the instance's gradients at the pixel and the pixel's state above it. `reached`: 1
// where the forward pass composited this instance here, 0 where not; at 0 (or where the sprite
// misses the pixel) the gradients are 0 and the state is kept (T_before = T, below as given),
// so the CPU kernels run it branch-free for 8 pixels at once.
struct PixelStep {
  float grads[kGradsPerInstance];
  float T_before;   // transmittance above the instance
  float below;      // g . (colour composited under the instance above), background included
};

// g0..g2: d(loss)/d(pixel colour); T: transmittance above the instances visited so far; below:
// g . (colour composited under them); d_alpha_out: d(loss)/d(pixel alpha) * T_end.
template <bool kRgb = true>
SF_HD PixelStep composite_backward(const float* texels, const Instance& in, int mode, float px, float py,
                                   float reached, float g0, float g1, float g2, float T, float below,
                                   float d_alpha_out) {
  Sample smp;
  sample_instance<kRgb>(texels, in, px, py, &smp);   // a footprint off the texture samples 0: no gradient
  // `reached` is multiplied in rather than tested: the compiler computes a selected value only
  // where it is chosen, and that branch keeps a lane loop from vectorising (inputs are finite).
  const float a = smp.alpha * reached;
  const float inv_one_minus = 1.f / (1.f - a);   // one division per pixel: a is at most kAlphaMax
  PixelStep step;
  step.T_before = T * inv_one_minus;
  float col[3];
  mode_color(mode, smp.rgba, in, col);
  const float g_dot_col = g0 * col[0] + g1 * col[1] + g2 * col[2];
  const float d_alpha = (step.T_before * g_dot_col - (below - d_alpha_out) * inv_one_minus) * reached;
  const float d_col[3] = {g0 * step.T_before * a, g1 * step.T_before * a, g2 * step.T_before * a};
  float local[kGradsPerInstance];
  instance_backward<kRgb>(in, mode, smp, d_alpha, d_col, local);
  SF_UNROLL
  for (int k = 0; k < kGradsPerInstance; ++k) step.grads[k] = local[k] * reached;
  step.below = below + step.T_before * a * g_dot_col;
  return step;
}

}  // namespace spritefit
