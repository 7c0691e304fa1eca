// tf2torch::conv's layers described to oneDNN: the primitive descriptor of a convolution with
// its bias, residual add and activation fused (onednn_conv.cpp runs whole layers,
// onednn_bands.cpp bands of rows).

#include "onednn_common.h"

#include <cstdio>
#include <string>

namespace tf2torch_native {

namespace {

void append_activation(dnnl::post_ops& ops, const std::string& act) {
  if (act == "none") {
  } else if (act == "relu") {
    ops.append_eltwise(dnnl::algorithm::eltwise_relu, 0.f, 0.f);
  } else if (act == "relu6") {
    ops.append_eltwise(dnnl::algorithm::eltwise_clip, 0.f, 6.f);
  } else if (act == "silu") {
    ops.append_eltwise(dnnl::algorithm::eltwise_swish, 1.f, 0.f);
  } else if (act == "sigmoid") {
    ops.append_eltwise(dnnl::algorithm::eltwise_logistic, 0.f, 0.f);
  } else if (act.rfind("clip:", 0) == 0) {
    float low = 0.f, high = 0.f;
    TORCH_CHECK(std::sscanf(act.c_str(), "clip:%f:%f", &low, &high) == 2,
                "tf2torch::conv: bad activation ", act);
    ops.append_eltwise(dnnl::algorithm::eltwise_clip, low, high);
  } else {
    TORCH_CHECK(false, "tf2torch::conv: unknown activation ", act);
  }
}

}  // namespace

dnnl::convolution_forward::primitive_desc describe(
    const at::Tensor& w, bool bias, const memory::dims& src_dims, const memory::dims& out_dims,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
    const std::string& act, bool residual, int64_t src_block, int64_t block) {
  memory::desc src(src_dims, dt::f32, activation_tag(src_block));
  memory::desc dst(out_dims, dt::f32, activation_tag(block));
  memory::desc w_any(weight_dims(w, groups), dt::f32, tag::any);
  memory::desc b_desc = bias ? memory::desc({w.size(0)}, dt::f32, tag::a) : memory::desc();
  // oneDNN counts dilation from 0 (no gaps), PyTorch from 1
  memory::dims dilates{dilation[0] - 1, dilation[1] - 1};
  memory::dims pad_l{padding[0], padding[1]}, pad_r{padding[2], padding[3]};

  dnnl::primitive_attr attr;
  dnnl::post_ops ops;
  if (residual) {  // added before the activation (ResNet's add + ReLU), laid out as the output
    ops.append_binary(dnnl::algorithm::binary_add, dst);
  }
  append_activation(ops, act);
  attr.set_post_ops(ops);
  return dnnl::convolution_forward::primitive_desc(
      cpu_engine(), dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
      src, w_any, b_desc, dst, memory::dims{stride[0], stride[1]}, dilates, pad_l, pad_r,
      with_user_scratchpad(attr));
}

}  // namespace tf2torch_native
