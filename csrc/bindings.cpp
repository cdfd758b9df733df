// Python bindings of the native module. Tensors cross as raw pointers (integers) with their
// shapes, checked by the Python wrapper, so the module never links against libtorch and one build
// works with any torch version.
#ifdef SPRITEFIT_WITH_OPENMP
#include <omp.h>
#endif
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "image_cpu.h"
#include "layers_cpu.h"
#include "noise_cpu.h"
#include "optimizer_cpu.h"
#include "render_cpu.h"
#include "ssim_cpu.h"
#ifdef SPRITEFIT_WITH_CUDA
#include "render_cuda.h"
#endif

namespace py = pybind11;
using namespace spritefit;

namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

FloatArray downsample_rgba(const FloatArray& image) {
  if (image.ndim() != 3 || image.shape(2) != 4) {
    throw py::value_error("downsample_rgba expects an (h, w, 4) RGBA image");
  }
  const int64_t h = image.shape(0), w = image.shape(1);
  if (h < 1 || w < 1) throw py::value_error("downsample_rgba: the image is empty");
  FloatArray out({(h + 1) / 2, (w + 1) / 2, int64_t{4}});
  {
    py::gil_scoped_release release;
    downsample_rgba_box(image.data(), h, w, out.mutable_data());
  }
  return out;
}

template <typename T>
T* pointer(const py::dict& d, const char* key) {
  return reinterpret_cast<T*>(d[key].cast<uintptr_t>());
}

// The render call's buffers from the dictionary built by render/native.py.
SceneBuffers scene_from(const py::dict& d) {
  SceneBuffers s;
  s.n = d["n"].cast<int64_t>();
  s.width = d["width"].cast<int>();
  s.height = d["height"].cast<int>();
  // Each buffer is looked up by the name of its SceneBuffers field.
#define SF_BUFFER(field) s.field = pointer<std::remove_pointer_t<decltype(s.field)>>(d, #field)
  SF_BUFFER(xy);
  SF_BUFFER(log_size);
  SF_BUFFER(theta);
  SF_BUFFER(color);
  SF_BUFFER(opacity);
  SF_BUFFER(mix);
  SF_BUFFER(sprite);
  SF_BUFFER(level);
  SF_BUFFER(textures);
  SF_BUFFER(alpha);
  SF_BUFFER(level_offset);
  SF_BUFFER(level_size);
  SF_BUFFER(support);
  SF_BUFFER(background);
#undef SF_BUFFER
  s.pad = d["pad"].cast<int>();
  s.num_sprites = d["num_sprites"].cast<int>();
  s.color_mode = d["color_mode"].cast<int>();
  s.background_kind = d["background_kind"].cast<int>();
  if (s.width < 1 || s.height < 1) throw py::value_error("canvas must be at least 1x1 pixels");
  if (s.n < 0) throw py::value_error("negative instance count");
  return s;
}

std::shared_ptr<TileBins> forward_cpu(const py::dict& scene, uintptr_t image, uintptr_t t_end, uintptr_t alpha,
                                      uintptr_t n_contrib, uintptr_t visibility) {
  const SceneBuffers s = scene_from(scene);
  py::gil_scoped_release release;
  auto bins = std::make_shared<TileBins>(bin_instances_cpu(s));
  render_forward_cpu(s, *bins, reinterpret_cast<float*>(image), reinterpret_cast<float*>(t_end),
                     reinterpret_cast<float*>(alpha), reinterpret_cast<int32_t*>(n_contrib),
                     reinterpret_cast<float*>(visibility));
  return bins;
}

void backward_cpu(const py::dict& scene, const TileBins& bins, uintptr_t t_end, uintptr_t n_contrib,
                  uintptr_t grad_image, uintptr_t grad_alpha, uintptr_t grads) {
  const SceneBuffers s = scene_from(scene);
  py::gil_scoped_release release;
  render_backward_cpu(s, bins, reinterpret_cast<const float*>(t_end),
                      reinterpret_cast<const int32_t*>(n_contrib), reinterpret_cast<const float*>(grad_image),
                      reinterpret_cast<const float*>(grad_alpha), reinterpret_cast<float*>(grads));
}

// Index of the first float32 buffer (pointer, count) holding a NaN or an infinity, -1 if none:
// the render's check of its parameters in one pass, where torch needs five operations a tensor.
// Read from the bits, so that no compiler flag can assume the values finite.
int first_non_finite(const std::vector<std::pair<uintptr_t, int64_t>>& buffers) {
  py::gil_scoped_release release;
  for (size_t b = 0; b < buffers.size(); ++b) {
    const uint32_t* bits = reinterpret_cast<const uint32_t*>(buffers[b].first);
    uint32_t all_ones = 0;   // any value whose exponent bits are all set: inf or NaN
    for (int64_t i = 0; i < buffers[b].second; ++i) all_ones |= (bits[i] & 0x7f800000u) == 0x7f800000u;
    if (all_ones) return int(b);
  }
  return -1;
}

void uniform_noise(uintptr_t out, int64_t n, uint64_t seed) {
  if (n < 0) throw py::value_error("uniform_noise: negative count");
  py::gil_scoped_release release;
  uniform_noise_cpu(reinterpret_cast<float*>(out), n, seed);
}

// One Adam step of every (param, grad, exp_avg, exp_avg_sq, n, step_size, bias_root) float32 buffer.
void adam_step(const std::vector<std::tuple<uintptr_t, uintptr_t, uintptr_t, uintptr_t, int64_t, float, float>>& tensors,
               float avg_weight, float beta2, float square_weight, float eps) {
  std::vector<AdamTensor> steps;
  steps.reserve(tensors.size());
  for (const auto& [param, grad, exp_avg, exp_avg_sq, n, step_size, bias_root] : tensors)
    steps.push_back(AdamTensor{reinterpret_cast<float*>(param), reinterpret_cast<const float*>(grad),
                               reinterpret_cast<float*>(exp_avg), reinterpret_cast<float*>(exp_avg_sq), n, step_size,
                               bias_root});
  py::gil_scoped_release release;
  adam_step_cpu(steps, avg_weight, beta2, square_weight, eps);
}

// Whether every one of the n int32 (or, wide, int64) indices lies in [0, count).
template <typename Index>
bool all_below(const Index* indices, int64_t n, int64_t count) {
  bool inside = true;
  for (int64_t i = 0; i < n; ++i) inside &= indices[i] >= 0 && indices[i] < count;
  return inside;
}

bool indices_in_range(uintptr_t indices, int64_t n, bool wide, int64_t count) {
  py::gil_scoped_release release;
  return wide ? all_below(reinterpret_cast<const int64_t*>(indices), n, count)
              : all_below(reinterpret_cast<const int32_t*>(indices), n, count);
}

void check_ssim_shape(int channels, int height, int width, int radius) {
  if (channels < 1 || height < 1 || width < 1 || radius < 1) throw py::value_error("ssim: empty image or window");
  if (radius > kSsimMaxRadius)
    throw py::value_error("ssim: window radius " + std::to_string(radius) + " is over " +
                          std::to_string(kSsimMaxRadius));
}

py::tuple ssim(uintptr_t image, uintptr_t target, uintptr_t target_stats, int channels, int height, int width,
               uintptr_t kernel, int radius, float l2_weight, float ssim_weight, uintptr_t grad) {
  check_ssim_shape(channels, height, width, radius);
  SsimAndMse result;
  {
    py::gil_scoped_release release;
    result = ssim_cpu(reinterpret_cast<const float*>(image), reinterpret_cast<const float*>(target),
                      reinterpret_cast<const float*>(target_stats), channels, height, width,
                      reinterpret_cast<const float*>(kernel), radius, l2_weight, ssim_weight,
                      reinterpret_cast<float*>(grad));
  }
  return py::make_tuple(result.ssim, result.mse);
}

void ssim_target_statistics(uintptr_t target, int channels, int height, int width, uintptr_t kernel, int radius,
                            uintptr_t out) {
  check_ssim_shape(channels, height, width, radius);
  py::gil_scoped_release release;
  ssim_target_statistics_cpu(reinterpret_cast<const float*>(target), channels, height, width,
                             reinterpret_cast<const float*>(kernel), radius, reinterpret_cast<float*>(out));
}

void instance_rects(const py::dict& scene, uintptr_t rects) {
  const SceneBuffers s = scene_from(scene);
  py::gil_scoped_release release;
  instance_rects_cpu(s, reinterpret_cast<int32_t*>(rects));
}

void instance_patches(const py::dict& scene, int64_t first, int64_t last, uintptr_t rects, uintptr_t offsets,
                      uintptr_t patches, uintptr_t tight) {
  const SceneBuffers s = scene_from(scene);
  if (first < 0 || last < first || last > s.n) throw py::value_error("instance_patches_cpu: bad instance range");
  py::gil_scoped_release release;
  instance_patches_cpu(s, first, last, reinterpret_cast<const int32_t*>(rects),
                       reinterpret_cast<const int64_t*>(offsets), reinterpret_cast<uint8_t*>(patches),
                       reinterpret_cast<int32_t*>(tight));
}

py::bytes packbits(const py::array& plane) {
  if (plane.ndim() != 2 || !plane.dtype().is(py::dtype::of<uint8_t>()) || plane.strides(0) < 0 ||
      plane.strides(1) < 0) {
    throw py::value_error("packbits_channel expects a (rows, width) uint8 array with positive strides");
  }
  const int64_t rows = plane.shape(0), width = plane.shape(1);
  std::string out(size_t(packbits_bound(rows, width)), '\0');
  int64_t size;
  {
    py::gil_scoped_release release;
    size = packbits_channel(static_cast<const uint8_t*>(plane.data()), rows, width, plane.strides(0),
                            plane.strides(1), reinterpret_cast<uint8_t*>(out.data()));
  }
  out.resize(size_t(size));
  return py::bytes(out);
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "SpriteFit native kernels (C++ with OpenMP when the compiler has it, optional CUDA)";
#ifdef SPRITEFIT_WITH_OPENMP
  m.attr("with_openmp") = true;
  m.def("cpu_threads", []() { return omp_get_max_threads(); },
        "Number of OpenMP threads the CPU kernels use");
  m.def("set_cpu_threads", [](int n) {
        if (n < 1) throw py::value_error("thread count must be at least 1");
        omp_set_num_threads(n); },
        py::arg("n"), "Set the number of OpenMP threads for the CPU kernels");
#else
  // Built without OpenMP (Apple clang has none): the CPU kernels run on one thread.
  m.attr("with_openmp") = false;
  m.def("cpu_threads", []() { return 1; }, "Number of threads the CPU kernels use (1 without OpenMP)");
  m.def("set_cpu_threads", [](int n) {
        if (n < 1) throw py::value_error("thread count must be at least 1"); },
        py::arg("n"), "Accepted and ignored: this build has no OpenMP");
#endif
  m.def("downsample_rgba", &downsample_rgba, py::arg("image"),
        "Halve an (h, w, 4) straight-alpha float32 image with a premultiplied 2x2 box filter");
  m.def("blur_planes_cpu", [](uintptr_t planes, int64_t count, int h, int w, uintptr_t taps, int radius,
                               uintptr_t out) {
        if (count < 0 || h < 1 || w < 1 || radius < 0) throw py::value_error("blur_planes_cpu: bad sizes");
        py::gil_scoped_release release;
        blur_planes_cpu(reinterpret_cast<const float*>(planes), count, h, w, reinterpret_cast<const float*>(taps),
                        radius, reinterpret_cast<float*>(out));
      },
        py::arg("planes"), py::arg("count"), py::arg("h"), py::arg("w"), py::arg("taps"), py::arg("radius"),
        py::arg("out"), "Separable blur of (count, h, w) float32 planes with zero padding");
  m.def("atlas_levels_cpu", [](const std::vector<uintptr_t>& premul, const std::vector<uintptr_t>& bleed,
                                const std::vector<int>& sides, const std::vector<int64_t>& out_offsets, int sprites,
                                uintptr_t taps, int radius, uintptr_t out, uintptr_t occupied) {
        if (sprites < 1 || radius < 0 || sides.empty() || premul.size() != sides.size() ||
            out_offsets.size() != sides.size() || !(bleed.empty() || bleed.size() == sides.size()) ||
            *std::min_element(sides.begin(), sides.end()) < 1)
          throw py::value_error("atlas_levels_cpu: bad sizes");
        AtlasLevels atlas{sprites, {}, {}, sides, out_offsets};
        for (uintptr_t p : premul) atlas.premul.push_back(reinterpret_cast<const float*>(p));
        for (uintptr_t p : bleed) atlas.bleed.push_back(reinterpret_cast<const float*>(p));
        py::gil_scoped_release release;
        atlas_levels_cpu(atlas, reinterpret_cast<const float*>(taps), radius, reinterpret_cast<float*>(out),
                         reinterpret_cast<int32_t*>(occupied));
      },
        py::arg("premul"), py::arg("bleed"), py::arg("sides"), py::arg("out_offsets"), py::arg("sprites"),
        py::arg("taps"), py::arg("radius"), py::arg("out"), py::arg("occupied"),
        "Blur every atlas level's premultiplied planes (K, 4, S, S) at once: straight RGBA (K, S, S, 4) a level "
        "at out + out_offsets[level] floats, or its alpha (K, S, S) alone when bleed is empty, and the occupied "
        "columns and rows of each sprite (levels, K, 4)");
  m.def("ssim_cpu", &ssim, py::arg("image"), py::arg("target"), py::arg("target_stats"), py::arg("channels"),
        py::arg("height"), py::arg("width"), py::arg("kernel"), py::arg("radius"), py::arg("l2_weight"),
        py::arg("ssim_weight"), py::arg("grad"),
        "(mean SSIM, MSE) of two (channels, h, w) float32 images, SSIM with a separable window; the "
        "gradient of l2_weight * MSE + ssim_weight * SSIM into grad when grad is not 0. target_stats: 0, "
        "or the target's statistics from ssim_target_statistics_cpu");
  m.def("ssim_target_statistics_cpu", &ssim_target_statistics, py::arg("target"), py::arg("channels"),
        py::arg("height"), py::arg("width"), py::arg("kernel"), py::arg("radius"), py::arg("out"),
        "the target's windowed mean and mean square, (channels, 2, h, w) float32 into out, for ssim_cpu");
  m.def("first_non_finite_cpu", &first_non_finite, py::arg("buffers"),
        "index of the first float32 buffer (pointer, count) holding a NaN or an infinity, -1 if none");
  m.def("adam_step_cpu", &adam_step, py::arg("tensors"), py::arg("avg_weight"), py::arg("beta2"),
        py::arg("square_weight"), py::arg("eps"),
        "one Adam step of each (param, grad, exp_avg, exp_avg_sq, n, step_size, bias_root) float32 buffer, in place");
  m.def("uniform_noise_cpu", &uniform_noise, py::arg("out"), py::arg("n"), py::arg("seed"),
        "n float32 values uniform in [0, 1) into out, the same for the same seed on any number of threads");
  m.def("indices_in_range_cpu", &indices_in_range, py::arg("indices"), py::arg("n"), py::arg("wide"),
        py::arg("count"), "whether all n int32 (wide: int64) indices lie in [0, count)");
  m.def("instance_rects_cpu", &instance_rects, py::arg("scene"), py::arg("rects"),
        "the canvas pixels x0, x1, y0, y1 (inclusive; x0 > x1: none) each instance can touch, (n, 4) int32");
  m.def("instance_patches_cpu", &instance_patches, py::arg("scene"), py::arg("first"), py::arg("last"),
        py::arg("rects"), py::arg("offsets"), py::arg("patches"), py::arg("tight"),
        "instances [first, last) each drawn alone at full opacity as straight RGBA bytes over its rect, "
        "at patches + offsets[i - first], and the bounds of its non-zero alpha into tight (last - first, 4)");
  m.def("packbits_channel", &packbits, py::arg("plane"),
        "a (rows, width) uint8 plane in Apple PackBits as a PSD channel stores it: the rows' big-endian "
        "16-bit sizes, then the packed rows");
  m.attr("SSIM_MAX_RADIUS") = kSsimMaxRadius;
  m.attr("TILE") = kTile;
  m.attr("GRADS_PER_INSTANCE") = kGradsPerInstance;

  py::class_<TileBins, std::shared_ptr<TileBins>>(m, "TileBins", "Instances binned into tiles (CPU)")
      .def_property_readonly("num_pairs", [](const TileBins& b) { return b.ids.size(); })
      .def_property_readonly("num_tiles", [](const TileBins& b) { return b.tiles_x * b.tiles_y; });
  m.def("forward_cpu", &forward_cpu, py::arg("scene"), py::arg("image"), py::arg("t_end"), py::arg("alpha"),
        py::arg("n_contrib"), py::arg("visibility"), "Tile renderer forward pass on the CPU");
  m.def("backward_cpu", &backward_cpu, py::arg("scene"), py::arg("bins"), py::arg("t_end"),
        py::arg("n_contrib"), py::arg("grad_image"), py::arg("grad_alpha"), py::arg("grads"),
        "Tile renderer backward pass on the CPU");
#ifdef SPRITEFIT_WITH_CUDA
  m.attr("with_cuda") = true;
  py::class_<CudaTileBinsHandle>(m, "CudaTileBins", "Instances binned into tiles (CUDA)")
      .def_readonly("num_pairs", &CudaTileBinsHandle::num_pairs)
      .def_readonly("num_tiles", &CudaTileBinsHandle::num_tiles);
  m.def("forward_cuda", [](const py::dict& scene, uintptr_t image, uintptr_t t_end, uintptr_t n_contrib,
                           uintptr_t visibility, uintptr_t stream) {
        const SceneBuffers s = scene_from(scene);
        py::gil_scoped_release release;
        return render_forward_cuda(s, reinterpret_cast<float*>(image), reinterpret_cast<float*>(t_end),
                                   reinterpret_cast<int32_t*>(n_contrib), reinterpret_cast<float*>(visibility), stream);
      }, "Tile renderer forward pass on the GPU (device pointers, cudaStream_t)");
  m.def("backward_cuda", [](const py::dict& scene, const CudaTileBinsHandle& bins, uintptr_t t_end,
                            uintptr_t n_contrib, uintptr_t grad_image, uintptr_t grad_alpha, uintptr_t grads,
                            uintptr_t stream) {
        const SceneBuffers s = scene_from(scene);
        py::gil_scoped_release release;
        render_backward_cuda(s, bins, reinterpret_cast<const float*>(t_end),
                             reinterpret_cast<const int32_t*>(n_contrib), reinterpret_cast<const float*>(grad_image),
                             reinterpret_cast<const float*>(grad_alpha), reinterpret_cast<float*>(grads), stream);
      }, "Tile renderer backward pass on the GPU");
#else
  m.attr("with_cuda") = false;
#endif
}
