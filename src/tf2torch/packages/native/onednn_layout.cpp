// tf2torch::to_blocked, tf2torch::from_blocked — an [N, C, H, W] tensor reordered between
// channels-last and oneDNN's blocked layout nChw<b>c, held as a 5-D tensor
// [N, ceil(C / b), H, W, b] (see onednn_conv.cpp); into blocks, the padded channels are zeroed.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "onednn_common.h"

using namespace tf2torch_native;

namespace {

struct Reorder {
  dnnl::reorder primitive;
  memory::desc src, dst, scratchpad;  // a scratchpad per thread, as the convolutions'
};

std::mutex reorders_mutex;
std::unordered_map<std::string, std::shared_ptr<const Reorder>> reorders;  // no weights: kept

// NHWC <-> nChw<b>c for an [N, C, H, W] tensor; the reorder zeroes the padded channels.
void reorder(const at::Tensor& from, const at::Tensor& to, const memory::dims& dims,
             int64_t block, bool into_blocked) {
  char key[160];
  std::snprintf(key, sizeof key, "%ld,%ld,%ld,%ld|%ld|%d|%d", dims[0], dims[1], dims[2],
                dims[3], block, into_blocked ? 1 : 0, at::get_num_threads());
  std::shared_ptr<const Reorder> found;
  {
    std::lock_guard<std::mutex> lock(reorders_mutex);
    auto it = reorders.find(key);
    if (it == reorders.end()) {
      memory::desc plain(dims, dt::f32, tag::nhwc), packed(dims, dt::f32, activation_tag(block));
      const auto& src = into_blocked ? plain : packed;
      const auto& dst = into_blocked ? packed : plain;
      dnnl::reorder::primitive_desc pd(cpu_engine(), src, cpu_engine(), dst,
                                       with_user_scratchpad(dnnl::primitive_attr()));
      it = reorders.emplace(key, std::make_shared<const Reorder>(
          Reorder{dnnl::reorder(pd), src, dst, pd.scratchpad_desc()})).first;
    }
    found = it->second;
  }
  const auto& engine = cpu_engine();
  memory src(found->src, engine, from.data_ptr()), dst(found->dst, engine, to.data_ptr());
  std::unordered_map<int, memory> args{{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}};
  if (const size_t bytes = found->scratchpad.get_size()) {
    args.insert({DNNL_ARG_SCRATCHPAD, memory(found->scratchpad, engine, thread_scratchpad(bytes))});
  }
  auto& stream = thread_stream();
  found->primitive.execute(stream, args);
  stream.wait();
}

at::Tensor to_blocked(const at::Tensor& x_in, int64_t block) {
  TORCH_CHECK(x_in.dim() == 4 && x_in.scalar_type() == at::kFloat,
              "tf2torch::to_blocked: 4-D float32 input expected");
  activation_tag(block);
  const at::Tensor x = x_in.contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor y = at::empty({x.size(0), blocks(x.size(1), block), x.size(2), x.size(3), block},
                           x.options().memory_format(at::MemoryFormat::Contiguous));
  reorder(x, y, memory::dims(x.sizes().begin(), x.sizes().end()), block, true);
  return y;
}

at::Tensor from_blocked(const at::Tensor& x_in, int64_t channels) {
  TORCH_CHECK(x_in.dim() == 5 && x_in.scalar_type() == at::kFloat &&
              x_in.size(1) == blocks(channels, x_in.size(4)),
              "tf2torch::from_blocked: input ", x_in.sizes(), " does not hold ", channels,
              " channels");
  const int64_t block = x_in.size(4);
  activation_tag(block);
  const at::Tensor x = x_in.contiguous();
  at::Tensor y = at::empty({x.size(0), channels, x.size(2), x.size(3)},
                           x.options().memory_format(at::MemoryFormat::ChannelsLast));
  reorder(x, y, memory::dims{x.size(0), channels, x.size(2), x.size(3)}, block, false);
  return y;
}

at::Tensor to_blocked_meta(const at::Tensor& x, int64_t block) {
  activation_tag(block);
  const int64_t channels = x.sym_size(1).guard_int(__FILE__, __LINE__);
  return at::empty_symint({x.sym_size(0), blocks(channels, block), x.sym_size(2), x.sym_size(3),
                           block}, x.options().memory_format(at::MemoryFormat::Contiguous));
}

at::Tensor from_blocked_meta(const at::Tensor& x, int64_t channels) {
  return at::empty_symint({x.sym_size(0), channels, x.sym_size(2), x.sym_size(3)},
                          x.options().memory_format(at::MemoryFormat::ChannelsLast));
}

}  // namespace

TORCH_LIBRARY_IMPL(tf2torch, CPU, m) {
  m.impl("to_blocked", &to_blocked);
  m.impl("from_blocked", &from_blocked);
}
TORCH_LIBRARY_IMPL(tf2torch, Meta, m) {
  m.impl("to_blocked", &to_blocked_meta);
  m.impl("from_blocked", &from_blocked_meta);
}
