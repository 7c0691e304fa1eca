// Shared by the op's files: oneDNN's CPU engine, a stream and a scratchpad per thread, the
// activation layouts (channels-last, or nChw<b>c as a 5-D tensor), a layer's description.
#pragma once

#include <ATen/ATen.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>

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

// A convolution's weight as oneDNN counts it: [groups,] out, in per group, kh, kw
inline memory::dims weight_dims(const at::Tensor& w, int64_t groups) {
  return groups > 1 ? memory::dims{groups, w.size(0) / groups, w.size(1), w.size(2), w.size(3)}
                    : memory::dims{w.size(0), w.size(1), w.size(2), w.size(3)};
}

// A layer's primitive descriptor, its bias, residual add and activation fused
// (onednn_describe.cpp); padding is top, left, bottom, right; blocks as `activation_tag`.
dnnl::convolution_forward::primitive_desc describe(
    const at::Tensor& w, bool bias, const memory::dims& src_dims, const memory::dims& out_dims,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
    const std::string& act, bool residual, int64_t src_block, int64_t block);

inline int64_t blocks(int64_t channels, int64_t block) { return (channels + block - 1) / block; }

}  // namespace tf2torch_native
