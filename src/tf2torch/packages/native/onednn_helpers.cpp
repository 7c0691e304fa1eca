// The helper threads of tf2torch::conv's shared mode (`tf2torch::share_rows`), and a call's
// run over its bands (onednn_bands.cpp cuts a layer into them).
//
// The calling thread publishes the layer's bands and takes them one after another; each
// helper that is running takes the next free one too and writes it straight into the output.
// A helper sharing its core with another process may be descheduled for milliseconds at any
// moment, so the caller never waits for a helper to arrive, and waits for a band a helper
// holds only as long as one of its own bands took: then it takes the band back. Under
// oneDNN's even split, every layer waited for such a thread (BENCHMARKS.md).
//
// A helper that lost its band may still write it later. So at the first take-back the caller
// moves the output to a fresh tensor, copies the bands finished so far, and computes the rest
// there; the old output is dropped. The job holds the call's tensors until the last helper
// lets it go, so their memory stays allocated while a helper may still touch it.

#include "onednn_bands.h"

#include <ATen/ATen.h>

#include <linux/futex.h>
#include <omp.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstring>
#include <mutex>
#include <thread>

namespace tf2torch_native {

namespace {

enum State : int { OPEN = 0, HELPER = 1, DONE = 2, TAKEN_BACK = 3 };

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Job {
  std::shared_ptr<const Bands> bands;
  at::Tensor x, y;  // held, with the optional ones below, while any helper holds the job
  std::optional<at::Tensor> residual, bias;
  std::atomic<int64_t> next{0};  // the next band nobody has taken
  std::unique_ptr<std::atomic<int>[]> state;  // per band, for the bands helpers took
  std::unique_ptr<std::atomic<int64_t>[]> since;  // when a helper took it
  std::atomic<int> failed{dnnl_success};

  Job(std::shared_ptr<const Bands> b, const at::Tensor& in, const at::Tensor& out,
      const std::optional<at::Tensor>& res, const std::optional<at::Tensor>& bias_in)
      : bands(std::move(b)), x(in), y(out), residual(res), bias(bias_in),
        state(new std::atomic<int>[bands->bands.size()]),
        since(new std::atomic<int64_t>[bands->bands.size()]) {
    for (size_t i = 0; i < bands->bands.size(); ++i) state[i].store(OPEN);
  }
};

// Bands the calling threads ran, bands helpers finished, bands taken back from helpers:
// `tf2torch::shared_counts`, for benchmarks and tests.
std::atomic<int64_t> ran_by_caller{0}, ran_by_helpers{0}, taken_back{0};
std::atomic<int64_t> fixed_patience_ns{-1};

struct Pool {
  std::shared_ptr<Job> job;  // read and written with std::atomic_load / std::atomic_store
  std::atomic<uint32_t> generation{0};  // bumped per job; the futex sleeping helpers wait on
  std::atomic<int> sleepers{0};
  std::atomic<int> wanted{0};  // helpers with a lower index take bands
  std::atomic<int> cpus[MAX_HELPERS];  // the CPU each helper keeps to; -1: any
  std::mutex calls;  // one call at a time has the helpers; another runs its bands alone
  std::mutex starting;
  int started = 0;
};

Pool& pool() {
  static Pool* made = new Pool;  // never destroyed: helpers may outlive static destruction
  return *made;
}

// Runs band `i` of the job's layer into `out` (where the band's output rows go).
dnnl_status_t execute_band(const Job& job, int64_t i, Handles& h, float* out) {
  const Bands& bands = *job.bands;
  const Band& band = bands.bands[i];
  const Shape& shape = bands.shapes[band.shape];
  dnnl_exec_arg_t args[6] = {{DNNL_ARG_WEIGHTS, bands.packed[shape.weights].get()}};
  int n = 1;
  h.src.set_data_handle(job.x.data_ptr<float>() + band.in_row * bands.in_row_floats);
  args[n++] = {DNNL_ARG_SRC, h.src.get()};
  h.dst.set_data_handle(out);
  args[n++] = {DNNL_ARG_DST, h.dst.get()};
  if (job.bias) {
    h.bias.set_data_handle(job.bias->data_ptr());
    args[n++] = {DNNL_ARG_BIAS, h.bias.get()};
  }
  if (job.residual) {
    h.residual.set_data_handle(job.residual->data_ptr<float>() +
                               band.out_row * bands.out_row_floats);
    args[n++] = {DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, h.residual.get()};
  }
  if (const size_t bytes = shape.scratchpad.get_size()) {
    h.scratchpad.set_data_handle(thread_scratchpad(bytes));
    args[n++] = {DNNL_ARG_SCRATCHPAD, h.scratchpad.get()};
  }
  auto& stream = thread_stream();
  const dnnl_status_t status = dnnl_primitive_execute(shape.primitive.get(), stream.get(), n, args);
  stream.wait();
  return status;
}

float* output_rows(const at::Tensor& y, const Bands& bands, int64_t i) {
  return y.data_ptr<float>() + bands.bands[i].out_row * bands.out_row_floats;
}

size_t output_bytes(const Bands& bands, int64_t i) {
  return bands.shapes[bands.bands[i].shape].dst.get_size();
}

// A helper's part of a job: the bands still free, each written straight into the output and
// counted done only if the caller has not taken it back meanwhile.
void help(Job& job, int index) {
  const Bands& bands = *job.bands;
  const int64_t count = static_cast<int64_t>(bands.bands.size());
  for (int64_t i; (i = job.next.fetch_add(1)) < count;) {
    job.since[i].store(now_ns(), std::memory_order_relaxed);
    int open = OPEN;
    if (!job.state[i].compare_exchange_strong(open, HELPER)) continue;  // taken back
    auto& slot = bands.helper_handles[index];
    if (!slot) slot = std::make_unique<std::vector<Handles>>(handles_for(bands));
    const dnnl_status_t status = execute_band(job, i, (*slot)[i], output_rows(job.y, bands, i));
    // a failure is reported even for a band taken back since: oneDNN failing is a fault
    if (status != dnnl_success) job.failed.store(status);  // before DONE: the caller reads it
    int held = HELPER;
    if (job.state[i].compare_exchange_strong(held, DONE, std::memory_order_acq_rel)) {
      ran_by_helpers.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

constexpr int SPINS = 20000;  // about 50 us of polling before a helper sleeps

// Keeps the calling helper on `cpu` (-1: on the CPUs it was started with).
void keep_to(int cpu, const cpu_set_t& allowed) {
  cpu_set_t set = allowed;
  if (cpu >= 0) {
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
  }
  sched_setaffinity(0, sizeof set, &set);  // a CPU we may not use is refused: stay as is
}

void helper(int index) {
  Pool& p = pool();
  omp_set_num_threads(1);  // a band's primitive runs on the thread that takes it
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  sched_getaffinity(0, sizeof allowed, &allowed);
  int kept = -1;
  uint32_t seen = p.generation.load();
  for (;;) {
    for (int spin = 0; spin < SPINS && p.generation.load(std::memory_order_acquire) == seen;
         ++spin) {
      __builtin_ia32_pause();
    }
    if (p.generation.load() == seen) {  // sleep until a call wakes the helpers
      p.sleepers.fetch_add(1);
      if (p.generation.load() == seen) {
        syscall(SYS_futex, reinterpret_cast<uint32_t*>(&p.generation), FUTEX_WAIT_PRIVATE,
                seen, nullptr, nullptr, 0);
      }
      p.sleepers.fetch_sub(1);
      continue;
    }
    seen = p.generation.load();
    if (index >= p.wanted.load(std::memory_order_relaxed)) continue;
    if (const int cpu = p.cpus[index].load(std::memory_order_relaxed); cpu != kept) {
      keep_to(cpu, allowed);
      kept = cpu;
    }
    if (std::shared_ptr<Job> job = std::atomic_load(&p.job)) {
      try {
        help(*job, index);
      } catch (...) {  // e.g. no memory for its handles: the caller takes its band back
      }
    }
  }
}

}  // namespace

void set_helpers(const std::vector<int64_t>& cpus) {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.starting);
  const int count = static_cast<int>(cpus.size());
  for (int i = 0; i < count; ++i) p.cpus[i].store(static_cast<int>(cpus[i]));
  for (; p.started < count; ++p.started) {
    p.cpus[p.started].store(static_cast<int>(cpus[p.started]));
    std::thread(helper, p.started).detach();
  }
  p.wanted.store(count);
}

void set_patience(int64_t us) { fixed_patience_ns.store(us < 0 ? -1 : us * 1000); }

std::vector<int64_t> shared_counts() {
  return {ran_by_caller.load(), ran_by_helpers.load(), taken_back.load()};
}

int64_t sharing_threads() {
  return bands_per_thread() > 0 ? pool().wanted.load(std::memory_order_relaxed) + 1 : 0;
}

at::Tensor run_bands(const std::shared_ptr<const Bands>& shared, const at::Tensor& x,
                     const at::Tensor& y, const std::optional<at::Tensor>& b,
                     const std::optional<at::Tensor>& residual) {
  Pool& p = pool();
  const Bands& bands = *shared;
  const int64_t count = static_cast<int64_t>(bands.bands.size());
  const bool own = !bands.in_use.test_and_set(std::memory_order_acquire);
  std::vector<Handles> fresh = own ? std::vector<Handles>() : handles_for(bands);
  std::vector<Handles>& handles = own ? bands.handles : fresh;
  auto job = std::make_shared<Job>(shared, x, y, residual, b);
  std::unique_lock<std::mutex> lock(p.calls, std::try_to_lock);
  const bool helped = lock.owns_lock() && p.wanted.load() > 0;
  if (helped) {  // publish; wake the helpers that sleep
    std::atomic_store(&p.job, job);
    p.generation.fetch_add(1);
    if (p.sleepers.load() > 0) {
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(&p.generation), FUTEX_WAKE_PRIVATE,
              INT_MAX, nullptr, nullptr, 0);
    }
  }
  int failed = dnnl_success;
  std::vector<char> mine(count, 0);
  int64_t done = 0;
  const int64_t began = now_ns();
  for (int64_t i; (i = job->next.fetch_add(1)) < count; ++done) {
    mine[i] = 1;
    const dnnl_status_t status = execute_band(*job, i, handles[i], output_rows(y, bands, i));
    if (status != dnnl_success) failed = status;
  }
  // The bands helpers took: each is waited for as long as one of ours took, then taken
  // back. A helper that has it may still write it later, so the output moves to a fresh
  // tensor first, with every band finished so far copied over.
  at::Tensor out = y;
  const auto move = [&] {
    out = at::empty(y.sizes(), y.options().memory_format(at::MemoryFormat::ChannelsLast));
    for (int64_t j = 0; j < count; ++j) {
      if (mine[j] || job->state[j].load(std::memory_order_acquire) == DONE) {
        std::memcpy(output_rows(out, bands, j), output_rows(y, bands, j), output_bytes(bands, j));
      }
    }
  };
  const int64_t fixed = fixed_patience_ns.load(std::memory_order_relaxed);
  const int64_t patience = fixed >= 0 ? fixed : done ? (now_ns() - began) / done : 20000;
  for (int64_t i = 0; i < count; ++i) {
    while (!mine[i]) {
      int state = job->state[i].load(std::memory_order_acquire);
      if (state == DONE) {
        if (!out.is_same(y)) {
          std::memcpy(output_rows(out, bands, i), output_rows(y, bands, i), output_bytes(bands, i));
        }
        break;
      }
      const bool overdue = state == HELPER &&
                           now_ns() - job->since[i].load(std::memory_order_relaxed) > patience;
      if (state == OPEN || overdue) {
        if (job->state[i].compare_exchange_strong(state, TAKEN_BACK)) {
          taken_back.fetch_add(1, std::memory_order_relaxed);
          if (out.is_same(y)) move();
          const dnnl_status_t status =
              execute_band(*job, i, handles[i], output_rows(out, bands, i));
          if (status != dnnl_success) failed = status;
          break;
        }
        continue;
      }
      __builtin_ia32_pause();
    }
  }
  ran_by_caller.fetch_add(done, std::memory_order_relaxed);
  if (helped) std::atomic_store(&p.job, std::shared_ptr<Job>());
  if (failed == dnnl_success) failed = job->failed.load();
  if (own) bands.in_use.clear(std::memory_order_release);
  TORCH_CHECK(failed == dnnl_success, "tf2torch::conv: oneDNN failed to run a band of a layer "
              "(status ", failed, ")");
  return out;
}

}  // namespace tf2torch_native
