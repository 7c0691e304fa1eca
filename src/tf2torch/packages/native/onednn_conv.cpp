// tf2torch::conv — a 2-D convolution run by oneDNN with its primitive kept between calls.
//
// ATen's oneDNN convolution builds a primitive descriptor, attributes and memory descriptors
// on every call: 21-42 us per layer on an AMD EPYC, where a 7x7x32 depthwise layer computes
// in 1-2 us (BENCHMARKS.md). This op builds them once per (weight, input shape, parameters,
// thread count), reorders the weight once into the layout the primitive wants, and then only
// executes. Keying by thread count means a count the thread rule picks later gets its own
// primitive and packing instead of a reorder on every call.
//
// `conv` takes and returns NCHW-shaped tensors laid out channels-last (NHWC in memory).
// `conv_blocked` takes and returns oneDNN's blocked layout nChw<b>c as a 5-D tensor
// [N, ceil(C / b), H, W, b] (channels past C zero), which `to_blocked` and `from_blocked`
// reorder into and out of: a chain of convolutions then stays blocked, and oneDNN's
// depthwise and 1x1 kernels ran a batch of 32 through Keras' MobileNetV2 in 0.8x the time
// they took on NHWC (BENCHMARKS.md). `act` names the activation fused after the bias and
// the residual add: none, relu, relu6, silu, sigmoid, or clip:<min>:<max>. The weight must
// not be changed in place after the first call (a compiled program's weights are constants);
// the bias is read on every call. An entry goes when its weight's storage is freed (swept
// whenever a layer is prepared); `cached_layers()` counts the entries. A call looks its layer
// up by a fixed-size key and runs it through the C API with memory objects made once, since
// per-call formatting and allocation were a measurable share of a single image (BENCHMARKS.md).
// In the shared mode (`share_rows`, set by the thread rule under load), a single image's
// layers are cut into bands of rows that helper threads take too (onednn_bands.cpp).

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/StorageImpl.h>
#include <c10/util/intrusive_ptr.h>
#include <torch/library.h>

#include "onednn_bands.h"
#include "onednn_common.h"

#include <array>
#include <atomic>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

using namespace tf2torch_native;

namespace {

struct Prepared {
  dnnl::convolution_forward primitive;
  memory weights;
  memory::desc bias_desc;  // empty when the layer has none
  memory::desc src, dst;  // dst describes the residual too: it is laid out as the output
  memory::desc scratchpad;  // of the primitive, given per thread (onednn_common.h says why)
  // Memory objects for the activations, pointed at each call's tensors: creating three per
  // call (allocations in oneDNN) was a measurable share of a single image's time. One call
  // at a time uses them; a concurrent call on the same layer makes its own.
  memory src_mem, dst_mem, residual_mem, bias_mem, scratchpad_mem;
  mutable std::atomic_flag in_use = ATOMIC_FLAG_INIT;

  Prepared(dnnl::convolution_forward conv, memory packed, const memory::desc& bias,
           const memory::desc& src_desc, const memory::desc& dst_desc,
           const memory::desc& scratchpad_desc)
      : primitive(std::move(conv)),
        weights(std::move(packed)), bias_desc(bias), src(src_desc), dst(dst_desc),
        scratchpad(scratchpad_desc), src_mem(src, cpu_engine(), nullptr),
        dst_mem(dst, cpu_engine(), nullptr), residual_mem(dst, cpu_engine(), nullptr),
        bias_mem(bias_desc.get_size() ? memory(bias_desc, cpu_engine(), nullptr) : memory()),
        scratchpad_mem(scratchpad.get_size() ? memory(scratchpad, cpu_engine(), nullptr)
                                             : memory()) {}
};

// A layer as cached: run whole, or cut into bands (onednn_bands.cpp); the weight's storage
// tells a reused address from the weight it was prepared for.
struct Entry {
  c10::weak_intrusive_ptr<c10::StorageImpl> weight_storage;
  std::shared_ptr<const Prepared> whole;
  std::shared_ptr<const Bands> bands;
};

// A layer's identity in the cache: its weight's address, whether it has a bias, input dims,
// parameters, thread count, layouts, bands (0: whole), activation (fixed-size: a lookup
// formats and allocates nothing). Not the bias's address: a bias is read from the call's own
// tensor, as AOTInductor hands a small one over in a fresh buffer on every call
// (EfficientNet's 4- to 8-channel gate layers), which re-prepared those layers on every call
// and kept every copy.
struct Key {
  std::array<int64_t, 20> ints;
  std::string act;
  bool operator==(const Key& other) const { return ints == other.ints && act == other.act; }
};

struct KeyHash {
  size_t operator()(const Key& key) const {
    size_t h = std::hash<std::string>()(key.act);
    for (int64_t v : key.ints) h = h * 1099511628211ULL ^ std::hash<int64_t>()(v);
    return h;
  }
};

std::mutex cache_mutex;
std::unordered_map<Key, Entry, KeyHash> cache;

std::shared_ptr<const Prepared> prepare(
    const at::Tensor& w, const std::optional<at::Tensor>& b, const memory::dims& src_dims,
    const memory::dims& out_dims, at::IntArrayRef stride, at::IntArrayRef padding,
    at::IntArrayRef dilation, int64_t groups, const std::string& act, bool residual,
    int64_t src_block, int64_t block) {
  const auto& engine = cpu_engine();
  auto pd = describe(w, b.has_value(), src_dims, out_dims, stride, padding, dilation, groups,
                     act, residual, src_block, block);
  const memory::dims w_dims = weight_dims(w, groups);
  at::Tensor w_plain = w.contiguous();
  memory::desc w_user(w_dims, dt::f32, groups > 1 ? tag::goihw : tag::oihw);
  memory w_source(w_user, engine, w_plain.data_ptr());
  memory weights(pd.weights_desc(), engine);
  auto& stream = thread_stream();
  dnnl::reorder(w_source, weights).execute(stream, w_source, weights);
  stream.wait();
  return std::make_shared<const Prepared>(
      dnnl::convolution_forward(pd), weights, pd.bias_desc(), pd.src_desc(), pd.dst_desc(),
      pd.scratchpad_desc());
}

// Output height and width; SymInt so that the Meta kernels serve programs of any batch.
std::vector<c10::SymInt> output_hw(const c10::SymInt& h, const c10::SymInt& w_in,
                                   const at::Tensor& w, at::IntArrayRef stride,
                                   at::IntArrayRef padding, at::IntArrayRef dilation) {
  std::vector<c10::SymInt> out;
  const c10::SymInt sizes[2] = {h, w_in};
  for (int i = 0; i < 2; ++i) {
    int64_t span = dilation[i] * (w.size(2 + i) - 1) + 1;
    out.push_back((sizes[i] + padding[i] + padding[2 + i] - span) / stride[i] + 1);
  }
  return out;
}

void check_args(const at::Tensor& w, const std::optional<at::Tensor>& b,
                at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                int64_t groups, int64_t channels) {
  TORCH_CHECK(w.dim() == 4, "tf2torch::conv: 4-D weight expected");
  TORCH_CHECK(stride.size() == 2 && dilation.size() == 2 && padding.size() == 4,
              "tf2torch::conv: stride[2], padding[4] (top, left, bottom, right), dilation[2]");
  TORCH_CHECK(groups >= 1 && channels == w.size(1) * groups && w.size(0) % groups == 0,
              "tf2torch::conv: channels do not match the weight and groups");
  TORCH_CHECK(!b || b->numel() == w.size(0), "tf2torch::conv: ", w.size(0),
              " output channels but ", b->numel(), " biases");
}

// The layer's primitive and packed weight, prepared on first use (see the file's comment);
// `bands` > 0 cuts a single NHWC image's layer into that many bands (onednn_bands.cpp).
Entry lookup(const at::Tensor& w, const std::optional<at::Tensor>& b,
             const memory::dims& src_dims, const memory::dims& out_dims, at::IntArrayRef stride,
             at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
             const std::string& act, bool residual, int64_t src_block, int64_t block,
             int64_t bands = 0) {
  const Key key{{reinterpret_cast<int64_t>(w.data_ptr()), b ? 1 : 0, src_dims[0], src_dims[1],
                 src_dims[2], src_dims[3], stride[0], stride[1], padding[0], padding[1],
                 padding[2], padding[3], dilation[0], dilation[1], groups,
                 at::get_num_threads(), residual ? 1 : 0, src_block, block, bands},
                act};
  std::lock_guard<std::mutex> lock(cache_mutex);
  auto found = cache.find(key);
  if (found != cache.end() &&
      found->second.weight_storage.lock().get() != w.storage().unsafeGetStorageImpl()) {
    cache.erase(found);  // that weight was freed and its address reused
    found = cache.end();
  }
  if (found == cache.end()) {
    for (auto it = cache.begin(); it != cache.end();) {  // layers of models since freed
      it = it->second.weight_storage.expired() ? cache.erase(it) : std::next(it);
    }
    Entry entry{c10::weak_intrusive_ptr<c10::StorageImpl>(w.storage().getWeakStorageImpl()),
                nullptr, nullptr};
    if (bands > 0) {
      entry.bands = prepare_bands(w, b.has_value(), src_dims, out_dims, stride, padding,
                                  dilation, groups, act, residual, bands);
    } else {
      entry.whole = prepare(w, b, src_dims, out_dims, stride, padding, dilation, groups, act,
                            residual, src_block, block);
    }
    found = cache.emplace(key, std::move(entry)).first;
  }
  return found->second;  // held by the caller: another thread may replace the entry
}

void execute(const Prepared& prepared, const at::Tensor& x, const at::Tensor& y,
             const std::optional<at::Tensor>& b, const at::Tensor* residual) {
  const bool own = !prepared.in_use.test_and_set(std::memory_order_acquire);
  const auto& engine = cpu_engine();
  // the C call: an argument array on the stack instead of a std::unordered_map per call
  dnnl_exec_arg_t args[6] = {{DNNL_ARG_WEIGHTS, prepared.weights.get()}};
  int count = 1;
  memory held[5];  // this call's memory objects, alive until the primitive has run
  int bound = 0;
  const auto bind = [&](int arg, const memory& cached, const memory::desc& desc, void* data) {
    memory& object = held[bound++];
    object = own ? cached : memory(desc, engine, nullptr);
    object.set_data_handle(data);
    args[count++] = {arg, object.get()};
  };
  bind(DNNL_ARG_SRC, prepared.src_mem, prepared.src, x.data_ptr());
  bind(DNNL_ARG_DST, prepared.dst_mem, prepared.dst, y.data_ptr());
  if (b) bind(DNNL_ARG_BIAS, prepared.bias_mem, prepared.bias_desc, b->data_ptr());  // contiguous
  if (residual) {
    bind(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, prepared.residual_mem,
         prepared.dst, residual->data_ptr());
  }
  if (const size_t bytes = prepared.scratchpad.get_size()) {
    bind(DNNL_ARG_SCRATCHPAD, prepared.scratchpad_mem, prepared.scratchpad,
         thread_scratchpad(bytes));
  }
  auto& stream = thread_stream();
  const dnnl_status_t status =
      dnnl_primitive_execute(prepared.primitive.get(), stream.get(), count, args);
  if (own) prepared.in_use.clear(std::memory_order_release);
  TORCH_CHECK(status == dnnl_success, "tf2torch::conv: oneDNN failed to run a layer (status ",
              static_cast<int>(status), ")");
  stream.wait();
}

std::optional<at::Tensor> contiguous(const std::optional<at::Tensor>& b) {
  return b ? std::optional<at::Tensor>(b->contiguous()) : std::nullopt;
}

void check_float(const at::Tensor& x, const at::Tensor& w, const std::optional<at::Tensor>& b,
                 const std::optional<at::Tensor>& residual) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && w.scalar_type() == at::kFloat &&
              (!b || b->scalar_type() == at::kFloat) &&
              (!residual || residual->scalar_type() == at::kFloat),
              "tf2torch::conv: float32 only");
}

}  // namespace

at::Tensor conv(const at::Tensor& x_in, const at::Tensor& w, const std::optional<at::Tensor>& b,
                at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                int64_t groups, c10::string_view act_view,
                const std::optional<at::Tensor>& residual_in) {
  TORCH_CHECK(x_in.dim() == 4, "tf2torch::conv: 4-D input expected");
  check_args(w, b, stride, padding, dilation, groups, x_in.size(1));
  check_float(x_in, w, b, residual_in);
  const at::Tensor x = x_in.contiguous(at::MemoryFormat::ChannelsLast);
  const auto hw = output_hw(x.size(2), x.size(3), w, stride, padding, dilation);
  const memory::dims out{x.size(0), w.size(0), hw[0].expect_int(), hw[1].expect_int()};
  // one image on several threads in the shared mode: bands the threads take in turn
  const int64_t threads = sharing_threads();
  const int64_t macs = out[1] * out[2] * out[3] * w.size(1) * w.size(2) * w.size(3);
  const int64_t bands = threads > 1 && out[0] == 1 && out[2] > 1 && macs >= 2 * MIN_BAND_MACS
                            ? std::min(out[2], bands_per_thread() * threads) : 0;
  const Entry entry = lookup(w, b, memory::dims(x.sizes().begin(), x.sizes().end()), out,
                             stride, padding, dilation, groups,
                             std::string(act_view.data(), act_view.size()),
                             residual_in.has_value(), 0, 0, bands);
  at::Tensor y = at::empty(out, x.options().memory_format(at::MemoryFormat::ChannelsLast));
  at::Tensor residual;
  if (residual_in) {
    residual = residual_in->contiguous(at::MemoryFormat::ChannelsLast);
    TORCH_CHECK(residual.sizes() == y.sizes(), "tf2torch::conv: residual shape ",
                residual.sizes(), " does not match the output's ", y.sizes());
  }
  if (entry.bands) {  // a fresh output where a band was taken back from a helper
    return run_bands(entry.bands, x, y, contiguous(b),
                     residual_in ? std::optional<at::Tensor>(residual) : std::nullopt);
  }
  execute(*entry.whole, x, y, contiguous(b), residual_in ? &residual : nullptr);
  return y;
}

at::Tensor conv_blocked(const at::Tensor& x_in, const at::Tensor& w,
                        const std::optional<at::Tensor>& b, at::IntArrayRef stride,
                        at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                        c10::string_view act_view, const std::optional<at::Tensor>& residual_in,
                        int64_t block) {
  const int64_t channels = w.size(1) * groups;
  // a 4-D input is read as NCHW: a stem's 3 channels are not padded to a block
  const bool plain = x_in.dim() == 4;
  TORCH_CHECK(plain ? x_in.size(1) == channels
                    : x_in.dim() == 5 && x_in.size(4) == block &&
                          x_in.size(1) == blocks(channels, block),
              "tf2torch::conv_blocked: input ", x_in.sizes(), " is not ", channels,
              " channels, in blocks of ", block, " or channels-last");
  check_args(w, b, stride, padding, dilation, groups, channels);
  check_float(x_in, w, b, residual_in);
  const at::Tensor x = x_in.contiguous();
  const int64_t n = x.size(0), h_in = x.size(2), w_in = x.size(3);  // N, C|Cb, H, W[, b]
  const auto hw = output_hw(h_in, w_in, w, stride, padding, dilation);
  const int64_t h = hw[0].expect_int(), wd = hw[1].expect_int();
  const Entry entry = lookup(w, b, memory::dims{n, channels, h_in, w_in},
                         memory::dims{n, w.size(0), h, wd}, stride, padding, dilation,
                         groups, std::string(act_view.data(), act_view.size()),
                         residual_in.has_value(), plain ? -1 : block, block);
  at::Tensor y = at::empty({x.size(0), blocks(w.size(0), block), h, wd, block}, x.options());
  at::Tensor residual;
  if (residual_in) {
    residual = residual_in->contiguous();
    TORCH_CHECK(residual.sizes() == y.sizes(), "tf2torch::conv_blocked: residual shape ",
                residual.sizes(), " does not match the output's ", y.sizes());
  }
  execute(*entry.whole, x, y, contiguous(b), residual_in ? &residual : nullptr);
  return y;
}

// The oneDNN implementation a blocked layer would run ("jit_dw:avx512_core", "ref:any", ...):
// a graph pass keeps a layer off the blocked layout where only the slow reference one takes
// it (grouped layers of a few channels per group, depthwise ones with a multiplier).
std::string blocked_kernel(const at::Tensor& w, at::IntArrayRef src, at::IntArrayRef stride,
                           at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                           bool plain_input, int64_t block) {
  TORCH_CHECK(src.size() == 4, "tf2torch::blocked_kernel: the input's N, C, H, W expected");
  check_args(w, std::nullopt, stride, padding, dilation, groups, src[1]);
  const auto hw = output_hw(src[2], src[3], w, stride, padding, dilation);
  auto pd = describe(w, true, memory::dims(src.begin(), src.end()),
                     memory::dims{src[0], w.size(0), hw[0].expect_int(), hw[1].expect_int()},
                     stride, padding, dilation, groups, "none", false, plain_input ? -1 : block,
                     block);
  return pd.impl_info_str();
}

// --- shapes without data (export, AOTInductor) ---------------------------------------

at::Tensor conv_meta(const at::Tensor& x, const at::Tensor& w, const std::optional<at::Tensor>& b,
                     at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation,
                     int64_t groups, c10::string_view act,
                     const std::optional<at::Tensor>& residual) {
  TORCH_CHECK(x.dim() == 4, "tf2torch::conv: 4-D input expected");
  check_args(w, b, stride, padding, dilation, groups, x.sym_size(1).guard_int(__FILE__, __LINE__));
  auto hw = output_hw(x.sym_size(2), x.sym_size(3), w, stride, padding, dilation);
  return at::empty_symint({x.sym_size(0), w.size(0), hw[0], hw[1]},
                          x.options().memory_format(at::MemoryFormat::ChannelsLast));
}

at::Tensor conv_blocked_meta(const at::Tensor& x, const at::Tensor& w,
                             const std::optional<at::Tensor>& b, at::IntArrayRef stride,
                             at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
                             c10::string_view act, const std::optional<at::Tensor>& residual,
                             int64_t block) {
  TORCH_CHECK(x.dim() == 5 || x.dim() == 4, "tf2torch::conv_blocked: 4-D or 5-D input expected");
  check_args(w, b, stride, padding, dilation, groups, w.size(1) * groups);
  auto hw = output_hw(x.sym_size(2), x.sym_size(3), w, stride, padding, dilation);
  return at::empty_symint({x.sym_size(0), blocks(w.size(0), block), hw[0], hw[1], block},
                          x.options());
}

int64_t cached_layers() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  return static_cast<int64_t>(cache.size());
}

TORCH_LIBRARY(tf2torch, m) {
  m.def("conv(Tensor x, Tensor w, Tensor? b, int[] stride, int[] padding, int[] dilation, "
        "int groups, str act, Tensor? residual) -> Tensor");
  m.def("conv_blocked(Tensor x, Tensor w, Tensor? b, int[] stride, int[] padding, "
        "int[] dilation, int groups, str act, Tensor? residual, int block) -> Tensor");
  m.def("to_blocked(Tensor x, int block) -> Tensor");
  m.def("from_blocked(Tensor x, int channels) -> Tensor");
  m.def("cached_layers() -> int", &cached_layers);
  m.def("blocked_kernel(Tensor w, int[] src, int[] stride, int[] padding, int[] dilation, "
        "int groups, bool plain_input, int block) -> str", &blocked_kernel);
}
TORCH_LIBRARY_IMPL(tf2torch, CPU, m) {
  m.impl("conv", &conv);
  m.impl("conv_blocked", &conv_blocked);
}
TORCH_LIBRARY_IMPL(tf2torch, Meta, m) {
  m.impl("conv", &conv_meta);
  m.impl("conv_blocked", &conv_blocked_meta);
}
