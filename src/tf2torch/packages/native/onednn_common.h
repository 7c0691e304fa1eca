// Shared by onednn_conv.cpp and onednn_layout.cpp: oneDNN's CPU engine, a stream per
// thread, and the activation layouts (channels-last, or nChw<b>c as a 5-D tensor).
#pragma once

#include <ATen/ATen.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <cstdint>

namespace tf2torch_native {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

inline dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

inline dnnl::stream& thread_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

// 0: NHWC; -1: NCHW (a stem's input, which oneDNN's jit kernels take into blocks); 8, 16
inline tag activation_tag(int64_t block) {
  if (block == 0) return tag::nhwc;
  if (block == -1) return tag::nchw;
  if (block == 8) return tag::nChw8c;
  TORCH_CHECK(block == 16, "tf2torch::conv: block ", block, " (0, 8 or 16 expected)");
  return tag::nChw16c;
}

inline int64_t blocks(int64_t channels, int64_t block) { return (channels + block - 1) / block; }

}  // namespace tf2torch_native
