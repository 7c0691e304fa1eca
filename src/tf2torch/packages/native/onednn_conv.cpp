// tf2torch::conv — a 2-D convolution run by oneDNN with its primitive kept between calls.
//
// ATen's oneDNN convolution builds a primitive descriptor, attributes and memory descriptors
// on every call: 21-42 us per layer on an AMD EPYC, where a 7x7x32 depthwise layer computes
// in 1-2 us (BENCHMARKS.md). This op builds them once per (weight, input shape, parameters,
// thread count), reorders the weight once into the layout the primitive wants, and then only
// executes. Keying by thread count means a count the thread rule picks later gets its own
// primitive and packing instead of a reorder on every call.
//
// Tensors are NCHW-shaped and laid out channels-last (NHWC in memory). `act` names the
// activation fused after the bias and the residual add: none, relu, relu6, silu, sigmoid, or
// clip:<min>:<max>. The weight must not be changed in place after the first call (a compiled
// program's weights are constants). An entry goes when its weight's storage is freed (swept
// whenever a layer is prepared); `cached_layers()` counts the entries.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/StorageImpl.h>
#include <c10/util/intrusive_ptr.h>
#include <torch/library.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <cstdio>
#include <cstring>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& thread_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

struct Prepared {
  c10::weak_intrusive_ptr<c10::StorageImpl> weight_storage;  // to notice a reused address
  dnnl::convolution_forward primitive;
  memory weights;
  memory bias;  // empty when the layer has none
  memory::desc src, dst;  // dst describes the residual too: it is laid out as the output
};

std::mutex cache_mutex;
std::unordered_map<std::string, std::shared_ptr<const Prepared>> cache;

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

Prepared prepare(const at::Tensor& x, const at::Tensor& w, const std::optional<at::Tensor>& b,
                 at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                 int64_t groups, const std::string& act, bool residual,
                 const memory::dims& out_dims) {
  const auto& engine = cpu_engine();
  memory::dims src_dims(x.sizes().begin(), x.sizes().end());
  memory::desc src(src_dims, dt::f32, tag::nhwc);
  memory::desc dst(out_dims, dt::f32, tag::nhwc);
  memory::dims w_dims = groups > 1
      ? memory::dims{groups, w.size(0) / groups, w.size(1), w.size(2), w.size(3)}
      : memory::dims{w.size(0), w.size(1), w.size(2), w.size(3)};
  memory::desc w_any(w_dims, dt::f32, tag::any);
  memory::desc b_desc = b ? memory::desc({w.size(0)}, dt::f32, tag::a) : memory::desc();
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
  dnnl::convolution_forward::primitive_desc pd(
      engine, dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src,
      w_any, b_desc, dst, memory::dims{stride[0], stride[1]}, dilates, pad_l, pad_r, attr);

  at::Tensor w_plain = w.contiguous();
  memory::desc w_user(w_dims, dt::f32, groups > 1 ? tag::goihw : tag::oihw);
  memory w_source(w_user, engine, w_plain.data_ptr());
  memory weights(pd.weights_desc(), engine);
  auto& stream = thread_stream();
  dnnl::reorder(w_source, weights).execute(stream, w_source, weights);
  memory bias;
  if (b) {
    at::Tensor b_plain = b->contiguous();
    bias = memory(b_desc, engine);
    std::memcpy(bias.get_data_handle(), b_plain.data_ptr(), b_plain.numel() * sizeof(float));
  }
  stream.wait();
  return Prepared{c10::weak_intrusive_ptr<c10::StorageImpl>(w.storage().getWeakStorageImpl()),
                  dnnl::convolution_forward(pd), weights, bias, src, dst};
}

std::vector<int64_t> output_size(const at::Tensor& x, const at::Tensor& w, at::IntArrayRef stride,
                                 at::IntArrayRef padding, at::IntArrayRef dilation) {
  std::vector<int64_t> out{x.size(0), w.size(0), 0, 0};
  for (int i = 0; i < 2; ++i) {
    int64_t span = dilation[i] * (w.size(2 + i) - 1) + 1;
    out[2 + i] = (x.size(2 + i) + padding[i] + padding[2 + i] - span) / stride[i] + 1;
  }
  return out;
}

void check_args(const at::Tensor& x, const at::Tensor& w, at::IntArrayRef stride,
                at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  TORCH_CHECK(x.dim() == 4 && w.dim() == 4, "tf2torch::conv: 4-D input and weight expected");
  TORCH_CHECK(stride.size() == 2 && dilation.size() == 2 && padding.size() == 4,
              "tf2torch::conv: stride[2], padding[4] (top, left, bottom, right), dilation[2]");
  TORCH_CHECK(groups >= 1 && x.size(1) == w.size(1) * groups && w.size(0) % groups == 0,
              "tf2torch::conv: channels do not match the weight and groups");
}

}  // namespace

at::Tensor conv(const at::Tensor& x_in, const at::Tensor& w, const std::optional<at::Tensor>& b,
                at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                int64_t groups, c10::string_view act_view,
                const std::optional<at::Tensor>& residual_in) {
  check_args(x_in, w, stride, padding, dilation, groups);
  TORCH_CHECK(x_in.scalar_type() == at::kFloat && w.scalar_type() == at::kFloat &&
              (!b || b->scalar_type() == at::kFloat) &&
              (!residual_in || residual_in->scalar_type() == at::kFloat),
              "tf2torch::conv: float32 only");
  TORCH_CHECK(!b || b->numel() == w.size(0), "tf2torch::conv: ", w.size(0),
              " output channels but ", b->numel(), " biases");
  const std::string act(act_view.data(), act_view.size());
  const at::Tensor x = x_in.contiguous(at::MemoryFormat::ChannelsLast);
  const auto out = output_size(x, w, stride, padding, dilation);
  const int threads = at::get_num_threads();

  char key[352];
  std::snprintf(key, sizeof key, "%p|%p|%ld,%ld,%ld,%ld|%ld,%ld|%ld,%ld,%ld,%ld|%ld,%ld|%ld|%d|%d|%s",
                w.data_ptr(), b ? b->data_ptr() : nullptr, x.size(0), x.size(1), x.size(2), x.size(3), stride[0], stride[1],
                padding[0], padding[1], padding[2], padding[3], dilation[0], dilation[1], groups,
                threads, residual_in.has_value() ? 1 : 0, act.c_str());
  std::shared_ptr<const Prepared> prepared;  // held: another thread may replace the entry
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    auto found = cache.find(key);
    if (found != cache.end() &&
        found->second->weight_storage.lock().get() != w.storage().unsafeGetStorageImpl()) {
      cache.erase(found);  // that weight was freed and its address reused
      found = cache.end();
    }
    if (found == cache.end()) {
      for (auto it = cache.begin(); it != cache.end();) {  // layers of models since freed
        it = it->second->weight_storage.expired() ? cache.erase(it) : std::next(it);
      }
      found = cache.emplace(key, std::make_shared<const Prepared>(prepare(
          x, w, b, stride, padding, dilation, groups, act, residual_in.has_value(),
          memory::dims(out.begin(), out.end())))).first;
    }
    prepared = found->second;
  }

  at::Tensor y = at::empty(out, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  const auto& engine = cpu_engine();
  memory src(prepared->src, engine, x.data_ptr());
  memory dst(prepared->dst, engine, y.data_ptr());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, prepared->weights},
                                       {DNNL_ARG_DST, dst}};
  if (b) args.insert({DNNL_ARG_BIAS, prepared->bias});
  at::Tensor residual;
  if (residual_in) {
    residual = residual_in->contiguous(at::MemoryFormat::ChannelsLast);
    TORCH_CHECK(residual.sizes() == y.sizes(), "tf2torch::conv: residual shape ",
                residual.sizes(), " does not match the output's ", y.sizes());
    args.insert({DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1,
                 memory(prepared->dst, engine, residual.data_ptr())});
  }
  auto& stream = thread_stream();
  prepared->primitive.execute(stream, args);
  stream.wait();
  return y;
}

at::Tensor conv_meta(const at::Tensor& x, const at::Tensor& w, const std::optional<at::Tensor>& b,
                     at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                     int64_t groups, c10::string_view act,
                     const std::optional<at::Tensor>& residual) {
  check_args(x, w, stride, padding, dilation, groups);
  return at::empty(output_size(x, w, stride, padding, dilation),
                   x.options().memory_format(at::MemoryFormat::ChannelsLast));
}

int64_t cached_layers() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  return static_cast<int64_t>(cache.size());
}

TORCH_LIBRARY(tf2torch, m) {
  m.def("conv(Tensor x, Tensor w, Tensor? b, int[] stride, int[] padding, int[] dilation, "
        "int groups, str act, Tensor? residual) -> Tensor");
  m.def("cached_layers() -> int", &cached_layers);
}
TORCH_LIBRARY_IMPL(tf2torch, CPU, m) { m.impl("conv", &conv); }
TORCH_LIBRARY_IMPL(tf2torch, Meta, m) { m.impl("conv", &conv_meta); }
