// Python bindings of the native module. Buffers cross as NumPy arrays or raw pointers with their
// shapes, so the module never links against libtorch and works with any torch version.
#include <omp.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include "image_cpu.h"

namespace py = pybind11;

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
    spritefit::downsample_rgba_box(image.data(), h, w, out.mutable_data());
  }
  return out;
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "SpriteFit native kernels (C++/OpenMP, optional CUDA)";
  m.def("cpu_threads", []() { return omp_get_max_threads(); },
        "Number of OpenMP threads the CPU kernels use");
  m.def("set_cpu_threads", [](int n) {
        if (n < 1) throw py::value_error("thread count must be at least 1");
        omp_set_num_threads(n); },
        py::arg("n"), "Set the number of OpenMP threads for the CPU kernels");
#ifdef SPRITEFIT_WITH_CUDA
  m.attr("with_cuda") = true;
#else
  m.attr("with_cuda") = false;
#endif
  m.def("downsample_rgba", &downsample_rgba, py::arg("image"),
        "Halve an (h, w, 4) straight-alpha float32 image with a premultiplied 2x2 box filter");
}
