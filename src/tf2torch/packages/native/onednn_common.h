// Shared by onednn_conv.cpp and onednn_layout.cpp: oneDNN's CPU engine, a stream per
// thread, and the activation layouts (channels-last, or nChw<b>c as a 5-D tensor).
#pragma once

#include <ATen/ATen.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <cstdint>
#include <cstdlib>

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

// oneDNN's scratchpad, one per thread. The op's primitives are made with a user scratchpad:
// with the library's own, two threads running one cached primitive at once shared it and
// mixed their answers (tests/test_native_convs.py). A compiled program runs one call at a
// time, but the op may be called from any thread.
inline dnnl::primitive_attr with_user_scratchpad(dnnl::primitive_attr attr) {
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

inline void* thread_scratchpad(size_t bytes) {
  struct Buffer {
    void* data = nullptr;
    size_t size = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buffer;
  if (buffer.size < bytes) {
    std::free(buffer.data);
    buffer.size = (bytes + 63) / 64 * 64;
    buffer.data = std::aligned_alloc(64, buffer.size);
    TORCH_CHECK(buffer.data != nullptr, "tf2torch: no memory for oneDNN's scratchpad of ",
                bytes, " bytes");
  }
  return buffer.data;
}

inline int64_t blocks(int64_t channels, int64_t block) { return (channels + block - 1) / block; }

}  // namespace tf2torch_native
