// A single image's convolution cut into bands of output rows (onednn_bands.cpp) that the
// calling thread and helper threads take in turn (onednn_helpers.cpp).
#pragma once

#include "onednn_common.h"

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tf2torch_native {

struct Shape {  // a band geometry's primitive: bands of equal height and padding share one
  dnnl::convolution_forward primitive;
  memory::desc src, dst, scratchpad;
  int weights;  // index into Bands::packed
};

struct Band {
  int64_t in_row, out_row;  // where the band starts in the input and the output
  int shape;
};

// The memory objects the calling thread points at a call's tensors, one set per band: made
// once, since creating them per call costs allocations (onednn_conv.cpp). A concurrent call
// on the same layer, and each helper, make their own.
struct Handles {
  memory src, dst, residual, bias, scratchpad;
};

constexpr int MAX_HELPERS = 63;
// A band computes at least this many multiply-adds (about 10-20 us on one core), so handing
// one over costs little beside it; 2^18 and 2^22 measured alike (BENCHMARKS.md). A layer of
// less than two bands' worth runs whole on the calling thread.
constexpr int64_t MIN_BAND_MACS = 1 << 20;

struct Bands {
  std::vector<Shape> shapes;
  std::vector<memory> packed;
  std::vector<Band> bands;
  memory::desc bias_desc;
  int64_t in_row_floats = 0, out_row_floats = 0;
  mutable std::vector<Handles> handles;
  mutable std::atomic_flag in_use = ATOMIC_FLAG_INIT;
  // each helper's own memory objects, per band, made on its first use by that helper (only
  // that helper touches its slot)
  mutable std::vector<std::unique_ptr<std::vector<Handles>>> helper_handles =
      std::vector<std::unique_ptr<std::vector<Handles>>>(MAX_HELPERS);
};

// A set of memory objects per band, pointing nowhere yet.
std::vector<Handles> handles_for(const Bands& bands);

// Bands per thread for a single channels-last image under `tf2torch::share_rows`; 0 when
// each layer runs whole, split evenly by oneDNN.
int64_t bands_per_thread();

// A layer of one NHWC image cut into `count` bands of output rows, each its own primitive
// made for one thread, the weight packed once per layout they want.
std::shared_ptr<const Bands> prepare_bands(
    const at::Tensor& w, bool bias, const memory::dims& src_dims, const memory::dims& out_dims,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
    const std::string& act, bool residual, int64_t count);

// Runs the bands on the calling thread and the helpers (onednn_helpers.cpp says how); the
// output is `y`, or a fresh tensor where a band was taken back from a helper.
at::Tensor run_bands(const std::shared_ptr<const Bands>& bands, const at::Tensor& x,
               const at::Tensor& y, const std::optional<at::Tensor>& b,
               const std::optional<at::Tensor>& residual);

// The threads a banded layer runs on (the caller and its helpers); 0 when the mode is off.
int64_t sharing_threads();

// Bands run by calling threads, finished by helpers, and taken back from helpers so far.
std::vector<int64_t> shared_counts();

// How long the caller waits for a band a helper holds before taking it back, in us; -1: as
// long as one of its own bands took in that call.
void set_patience(int64_t us);

// One helper per entry of `cpus`, kept to that CPU (-1: any); started on first need.
void set_helpers(const std::vector<int64_t>& cpus);

}  // namespace tf2torch_native
