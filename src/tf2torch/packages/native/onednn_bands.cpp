// tf2torch::conv's shared mode (`tf2torch::share_rows`), its layers: each layer of a single
// NHWC image cut into bands of output rows, which the calling thread and helper threads take
// in turn (onednn_helpers.cpp). Under oneDNN's even split between threads, a thread sharing
// its core with another process held back every layer, so the thread rule ran one thread
// under load; bands let a helper on that core do what its share of the core allows
// (BENCHMARKS.md, "Steady under load").
//
// The rows of one NHWC image are contiguous, so a band of output rows reads a contiguous run
// of input rows (its halo included) and writes a contiguous run of output rows: each band is
// a plain convolution over pointers into the call's tensors, padded only where it meets the
// image's edge. Its primitive is made for one thread and runs on the thread that takes it.

#include "onednn_bands.h"

#include <ATen/Parallel.h>
#include <torch/library.h>

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <tuple>
#include <vector>

namespace tf2torch_native {

std::atomic<int64_t> shared_bands{0};

int64_t bands_per_thread() { return shared_bands.load(std::memory_order_relaxed); }

namespace {

// The oneDNN primitive descriptor for a band, made as if for one thread.
dnnl::convolution_forward::primitive_desc describe_single_thread(
    const at::Tensor& w, bool bias, const memory::dims& src, const memory::dims& out,
    at::IntArrayRef stride, const std::array<int64_t, 4>& pad, at::IntArrayRef dilation,
    int64_t groups, const std::string& act, bool residual) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);  // oneDNN plans its blocking for the threads it is told of
  try {
    auto pd = describe(w, bias, src, out, stride, pad, dilation, groups, act, residual, 0, 0);
    omp_set_num_threads(threads);
    return pd;
  } catch (...) {
    omp_set_num_threads(threads);
    throw;
  }
}

}  // namespace

std::vector<Handles> handles_for(const Bands& bands) {
  const auto& engine = cpu_engine();
  std::vector<Handles> made;
  for (const Band& band : bands.bands) {
    const Shape& shape = bands.shapes[band.shape];
    made.push_back(
        {memory(shape.src, engine, nullptr), memory(shape.dst, engine, nullptr),
         memory(shape.dst, engine, nullptr),
         bands.bias_desc.get_size() ? memory(bands.bias_desc, engine, nullptr) : memory(),
         shape.scratchpad.get_size() ? memory(shape.scratchpad, engine, nullptr) : memory()});
  }
  return made;
}

std::shared_ptr<const Bands> prepare_bands(
    const at::Tensor& w, bool bias, const memory::dims& src_dims, const memory::dims& out_dims,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
    const std::string& act, bool residual, int64_t count) {
  auto made = std::make_shared<Bands>();
  const int64_t h_in = src_dims[2], h_out = out_dims[2];
  const int64_t span = dilation[0] * (w.size(2) - 1) + 1;
  made->in_row_floats = src_dims[1] * src_dims[3];
  made->out_row_floats = out_dims[1] * out_dims[3];
  at::Tensor w_plain = w.contiguous();
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t>, int> geometry;  // → shape index
  auto& stream = thread_stream();
  // guided: each band a `count`-th of the rows left, so the last bands, which a thread may
  // end up waiting for, are the shortest
  const int64_t row_macs = out_dims[1] * out_dims[3] * w.size(1) * w.size(2) * w.size(3);
  const int64_t min_rows = std::max<int64_t>(1, (MIN_BAND_MACS + row_macs - 1) / row_macs);
  for (int64_t out_row = 0, out_rows = 0; out_row < h_out; out_row += out_rows) {
    out_rows = std::min(h_out - out_row,
                        std::max(min_rows, (h_out - out_row + count - 1) / count));
    // the input rows this band reads, before clipping to the image: its padding is the part
    // outside
    const int64_t first = out_row * stride[0] - padding[0];
    const int64_t end = (out_row + out_rows - 1) * stride[0] - padding[0] + span;
    const int64_t top = std::max<int64_t>(0, -first), bottom = std::max<int64_t>(0, end - h_in);
    const int64_t in_row = std::max<int64_t>(0, first);
    const int64_t in_rows = std::min(h_in, end) - in_row;
    const auto key = std::make_tuple(in_rows, out_rows, top, bottom);
    auto found = geometry.find(key);
    if (found == geometry.end()) {
      const memory::dims src{1, src_dims[1], in_rows, src_dims[3]};
      const memory::dims out{1, out_dims[1], out_rows, out_dims[3]};
      auto pd = describe_single_thread(w, bias, src, out, stride,
                                       {top, padding[1], bottom, padding[3]}, dilation, groups,
                                       act, residual);
      int packed = -1;
      for (size_t i = 0; i < made->packed.size(); ++i) {
        if (made->packed[i].get_desc() == pd.weights_desc()) packed = static_cast<int>(i);
      }
      if (packed < 0) {  // the weight in the layout this band's kernel wants, packed once
        memory source({weight_dims(w, groups), dt::f32, groups > 1 ? tag::goihw : tag::oihw},
                      cpu_engine(), w_plain.data_ptr());
        memory weights(pd.weights_desc(), cpu_engine());
        dnnl::reorder(source, weights).execute(stream, source, weights);
        stream.wait();
        made->packed.push_back(weights);
        packed = static_cast<int>(made->packed.size()) - 1;
      }
      made->bias_desc = pd.bias_desc();
      made->shapes.push_back({dnnl::convolution_forward(pd), pd.src_desc(), pd.dst_desc(),
                              pd.scratchpad_desc(), packed});
      found = geometry.emplace(key, static_cast<int>(made->shapes.size()) - 1).first;
    }
    made->bands.push_back({in_row, out_row, found->second});
  }
  made->handles = handles_for(*made);
  return made;
}

}  // namespace tf2torch_native

namespace {

// The shared mode: each single-image layer cut into about `bands` bands per thread, run by
// the calling thread and one helper per entry of `cpus`, kept to that CPU (-1: any). No
// CPUs, or 0 bands, turns it off: layers run whole, split by oneDNN. `patience_us` (for
// tests) fixes how long the caller waits for a helper's band before taking it back; -1:
// as long as one of its own bands took.
void share_rows(at::IntArrayRef cpus, int64_t bands, int64_t patience_us) {
  using namespace tf2torch_native;
  TORCH_CHECK(cpus.size() <= static_cast<size_t>(MAX_HELPERS) && bands >= 0 && bands <= 64,
              "tf2torch::share_rows: at most ", MAX_HELPERS, " helpers and 0 to 64 bands "
              "per thread");
  set_patience(patience_us);
  const bool on = bands > 0 && !cpus.empty();
  set_helpers(on ? cpus.vec() : std::vector<int64_t>());
  shared_bands.store(on ? bands : 0, std::memory_order_relaxed);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(tf2torch, m) {
  m.def("share_rows(int[] cpus, int bands, int patience_us=-1) -> ()", &share_rows);
  m.def("shared_counts() -> int[]", &tf2torch_native::shared_counts);
}
