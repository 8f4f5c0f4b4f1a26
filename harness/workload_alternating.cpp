// Workload "alternating": the latency/throughput microbenchmark (issue 2,
// section 4; seed 002 "Benchmarking Methodology": alternating alloc/free).
//
// A table of `live_slots` live objects; each step frees a random slot and
// allocates a random size in [min_size, max_size] into it. The op sequence
// (slot, size) is generated up front from `seed`, so every allocator gets the
// same malloc/free calls and no RNG runs inside a timed region.
//   1. fill the table (untimed), 2. `warmup_steps` untimed steps,
//   3. timed pass: `steps` steps, each free and each allocate individually
//      timed (harness/timer.h; overhead recorded under "timer", not
//      subtracted) -> latency_ns.alloc / latency_ns.free,
//   4. batch pass: the same `steps` again with no per-op timer ->
//      summary.ops_per_sec (allocs + frees per second) and mean_ns,
//   5. free everything.
// On temporal-slab every object is allocated in epoch 1 (ACTIVE throughout).
//
// threads = T > 1 (issue 14): cross-thread frees. Thread t allocates and
// hands each new object to thread (t+1) mod T through a FIFO ring; each step
// of thread t frees the oldest object it was handed (allocated by the other
// thread) and allocates a new one. Phases as above, each thread doing
// `steps` / T (and `warmup_steps` / T) steps, the table filled with
// `live_slots` / T objects per thread; histograms merge all threads;
// ops_per_sec = all allocs + frees / wall time of the batch pass.
#include <algorithm>
#include <atomic>
#include <barrier>
#include <exception>
#include <mutex>
#include <thread>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "harness/allocators.h"
#include "harness/config.h"
#include "harness/registry.h"
#include "harness/result.h"
#include "harness/sampler.h"
#include "harness/slab_options.h"
#include "harness/timer.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

class Alternating final : public Workload {
 public:
  json defaults() const override {
    json d = base_defaults();
    d.update(slab_option_defaults());  // every slab::Options field as slab_<field>
    return d;
  }
  json base_defaults() const {
    return json{{"live_slots", 4096},     {"steps", 2000000},      {"warmup_steps", 200000},
                {"min_size", 64},         {"max_size", 768},       {"seed", 42},
                {"fill", false},          {"threads", 1}};
  }
  void validate(const json& c) const override {
    check_int_range(c, "live_slots", 1, 1 << 24);
    check_int_range(c, "steps", 1, int64_t(1) << 34);
    check_int_range(c, "warmup_steps", 0, int64_t(1) << 34);
    check_int_range(c, "min_size", 1, 768);
    check_int_range(c, "max_size", 1, 768);
    if (cfg_int(c, "max_size") < cfg_int(c, "min_size"))
      throw_key_error("max_size", "must be >= min_size (" + std::to_string(cfg_int(c, "min_size")) +
                                      "), got " + std::to_string(cfg_int(c, "max_size")));
    check_int_range(c, "seed", 0, INT64_MAX);
    validate_slab_options(c);
    check_int_range(c, "threads", 1, 64);
    if (cfg_int(c, "live_slots") < cfg_int(c, "threads"))
      throw_key_error("live_slots", "must be >= threads (" + std::to_string(cfg_int(c, "threads")) + ")");
    if (cfg_int(c, "steps") < cfg_int(c, "threads"))
      throw_key_error("steps", "must be >= threads (" + std::to_string(cfg_int(c, "threads")) + ")");
  }

  void run(RunContext& ctx) override {
    const json& c = ctx.config;
    const uint64_t slots = cfg_u64(c, "live_slots"), steps = cfg_u64(c, "steps"),
                   warmup = cfg_u64(c, "warmup_steps");
    const uint32_t min_size = uint32_t(cfg_u64(c, "min_size")), max_size = uint32_t(cfg_u64(c, "max_size"));
    const bool fill = cfg_bool(c, "fill");
    ResultDoc& doc = *ctx.result;
    if (cfg_u64(c, "threads") > 1) return run_threads(ctx);

    auto alloc = make_allocator(ctx.allocator, c);
    doc.set_allocator(alloc->describe());
    timer_calibration();
    doc.doc()["timer"] = timer_json();
    Sampler sampler;
    const uint32_t epoch = 1;
    alloc->epoch_open(epoch, "alternating");

    // Op sequence, generated up front: (slot, size) per step.
    std::mt19937_64 rng(cfg_u64(c, "seed"));
    std::uniform_int_distribution<uint64_t> slot_d(0, slots - 1);
    std::uniform_int_distribution<uint32_t> size_d(min_size, max_size);
    const uint64_t nops = std::max(steps, warmup);
    std::vector<uint32_t> op_slot(nops), op_size(nops);
    for (uint64_t i = 0; i < nops; ++i) {
      op_slot[i] = uint32_t(slot_d(rng));
      op_size[i] = size_d(rng);
    }
    std::vector<Obj> table(slots);
    uint64_t errors = 0;
    auto must_alloc = [&](uint32_t size, Obj& o) {
      if (!alloc->allocate(size, epoch, o))
        throw RunError(std::string("alternating: ") + alloc->name() + " refused an allocation of " +
                       std::to_string(size) + " bytes");
      if (fill) std::memset(o.ptr, 0xA5, size);
    };
    for (uint64_t s = 0; s < slots; ++s) must_alloc(size_d(rng), table[s]);
    auto sample = [&](const char* phase) {
      json smp = sampler.sample();
      smp["phase"] = phase;
      AllocatorCounters ac;
      bool have = alloc->counters(ac);
      smp["committed_bytes"] = have ? json(ac.committed_bytes) : json(nullptr);
      smp["live_bytes"] = have ? json(ac.live_bytes) : json(nullptr);
      smp["requested_bytes"] = have ? json(ac.requested_bytes) : json(nullptr);
      doc.add_sample(std::move(smp));
    };
    sample("filled");
    if (ctx.progress)
      std::fprintf(stderr, "[alternating %s] %lu slots filled; warmup %lu steps\n", alloc->name(),
                   (unsigned long)slots, (unsigned long)warmup);
    for (uint64_t i = 0; i < warmup; ++i) {
      Obj& o = table[op_slot[i]];
      errors += !alloc->release(o);
      must_alloc(op_size[i], o);
    }

    // Timed pass.
    LatencyHistogram h_alloc, h_free;
    const uint64_t t0 = monotonic_ns();
    for (uint64_t i = 0; i < steps; ++i) {
      Obj& o = table[op_slot[i]];
      uint64_t a = timer_start();
      bool ok = alloc->release(o);
      uint64_t b = timer_stop();
      h_free.record(ticks_to_ns(b - a));
      errors += !ok;
      a = timer_start();
      ok = alloc->allocate(op_size[i], epoch, o);
      b = timer_stop();
      if (!ok) throw RunError(std::string("alternating: ") + alloc->name() + " refused an allocation");
      h_alloc.record(ticks_to_ns(b - a));
      if (fill) std::memset(o.ptr, 0xA5, op_size[i]);
    }
    const uint64_t t1 = monotonic_ns();
    sample("timed_done");
    if (ctx.progress)
      std::fprintf(stderr, "[alternating %s] timed pass: %lu steps in %.2f s\n", alloc->name(),
                   (unsigned long)steps, double(t1 - t0) / 1e9);

    // Batch pass: same sequence, no per-op timer.
    const uint64_t t2 = monotonic_ns();
    for (uint64_t i = 0; i < steps; ++i) {
      Obj& o = table[op_slot[i]];
      errors += !alloc->release(o);
      if (!alloc->allocate(op_size[i], epoch, o))
        throw RunError(std::string("alternating: ") + alloc->name() + " refused an allocation");
      if (fill) std::memset(o.ptr, 0xA5, op_size[i]);
    }
    const uint64_t t3 = monotonic_ns();
    sample("batch_done");
    for (auto& o : table) errors += !alloc->release(o);
    alloc->epoch_close(epoch);
    sample("freed");

    doc.set_latency("alloc", h_alloc);
    doc.set_latency("free", h_free);
    const double batch_s = double(t3 - t2) / 1e9, timed_s = double(t1 - t0) / 1e9;
    json& s = doc.summary();
    s["ops_per_sec"] = double(2 * steps) / batch_s;
    s["ops_per_sec_timed"] = double(2 * steps) / timed_s;
    s["mean_ns"] = double(t3 - t2) / double(2 * steps);
    s["steps"] = steps;
    s["ops"] = 2 * steps;
    s["batch_seconds"] = batch_s;
    s["timed_seconds"] = timed_s;
    s["free_errors"] = errors;
    doc.doc()["allocator_stats"] = alloc->final_stats();
  doc.doc()["timeline"] = alloc->timeline(doc.t0_ns());
    doc.doc()["perf"] = sampler.perf_info();
    if (ctx.progress)
      std::fprintf(stderr,
                   "[alternating %s] %.1f Mops/s; alloc p50/p99/p99.9 %lu/%lu/%lu ns; free p50/p99/p99.9 "
                   "%lu/%lu/%lu ns\n",
                   alloc->name(), s["ops_per_sec"].get<double>() / 1e6,
                   (unsigned long)h_alloc.percentile(0.5), (unsigned long)h_alloc.percentile(0.99),
                   (unsigned long)h_alloc.percentile(0.999), (unsigned long)h_free.percentile(0.5),
                   (unsigned long)h_free.percentile(0.99), (unsigned long)h_free.percentile(0.999));
    if (errors)
      throw RunError("alternating: " + std::to_string(errors) + " frees reported errors on " +
                     alloc->name());
  }

 private:
  void run_threads(RunContext& ctx);
};

// ---- threads > 1: the operation logic (no timing, no JSON) ---------------------

// Single-producer single-consumer FIFO of objects, sized to never fill.
class Ring {
 public:
  explicit Ring(size_t min_cap) {
    size_t cap = 64;
    while (cap < min_cap) cap <<= 1;
    buf_.resize(cap);
    mask_ = cap - 1;
  }
  void push(const Obj& o) noexcept {
    const uint64_t t = tail_.load(std::memory_order_relaxed);
    buf_[t & mask_] = o;
    tail_.store(t + 1, std::memory_order_release);
  }
  // Waits for an object (the producer is at most a few steps behind);
  // false once `stop` is set while waiting.
  bool pop(Obj& o, const std::atomic<bool>& stop) noexcept {
    const uint64_t h = head_.load(std::memory_order_relaxed);
    for (uint32_t spins = 0; tail_.load(std::memory_order_acquire) == h; ++spins) {
      if (spins > 64) {
        if (stop.load(std::memory_order_relaxed)) return false;
        std::this_thread::yield();
      }
    }
    o = buf_[h & mask_];
    head_.store(h + 1, std::memory_order_release);
    return true;
  }
  bool empty() const noexcept {
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
  }

 private:
  std::vector<Obj> buf_;
  size_t mask_ = 0;
  alignas(64) std::atomic<uint64_t> head_{0};
  alignas(64) std::atomic<uint64_t> tail_{0};
};

// One thread's side of the cross-thread exchange: frees what `in` hands it,
// allocates into `out`.
struct CrossStep {
  AllocatorAdapter* alloc;
  Ring* in;
  Ring* out;
  uint32_t epoch;
  bool fill;
  const std::atomic<bool>* stop;
  uint64_t errors = 0;
  bool allocate(uint32_t size) noexcept {
    Obj o;
    if (!alloc->allocate(size, epoch, o)) return false;
    if (fill) std::memset(o.ptr, 0xA5, size);
    out->push(o);
    return true;
  }
  void release_one() noexcept {
    Obj o;
    if (in->pop(o, *stop)) errors += !alloc->release(o);
  }
};

void Alternating::run_threads(RunContext& ctx) {
  const json& c = ctx.config;
  const uint32_t T = uint32_t(cfg_u64(c, "threads"));
  const uint64_t per_slots = cfg_u64(c, "live_slots") / T, per_steps = cfg_u64(c, "steps") / T,
                 per_warm = cfg_u64(c, "warmup_steps") / T;
  const uint32_t min_size = uint32_t(cfg_u64(c, "min_size")), max_size = uint32_t(cfg_u64(c, "max_size"));
  const bool fill = cfg_bool(c, "fill");
  ResultDoc& doc = *ctx.result;
  auto alloc = make_allocator(ctx.allocator, c);
  doc.set_allocator(alloc->describe());
  timer_calibration();
  doc.doc()["timer"] = timer_json();
  Sampler sampler;
  const uint32_t epoch = 1;
  alloc->epoch_open(epoch, "alternating");

  // Per-thread size sequences, generated up front.
  const uint64_t nops = std::max(per_steps, per_warm);
  std::vector<std::vector<uint32_t>> sizes(T);
  std::vector<std::vector<uint32_t>> fill_sizes(T);
  for (uint32_t t = 0; t < T; ++t) {
    std::mt19937_64 rng(cfg_u64(c, "seed") + t);
    std::uniform_int_distribution<uint32_t> size_d(min_size, max_size);
    fill_sizes[t].resize(per_slots);
    for (auto& z : fill_sizes[t]) z = size_d(rng);
    sizes[t].resize(nops);
    for (auto& z : sizes[t]) z = size_d(rng);
  }
  std::vector<std::unique_ptr<Ring>> rings;
  for (uint32_t t = 0; t < T; ++t) rings.push_back(std::make_unique<Ring>(per_slots + 1024));
  std::atomic<bool> failed{false};
  std::vector<CrossStep> st(T);
  for (uint32_t t = 0; t < T; ++t)
    st[t] = CrossStep{alloc.get(), rings[t].get(), rings[(t + 1) % T].get(), epoch, fill, &failed};
  std::vector<LatencyHistogram> h_alloc(T), h_free(T);

  // Phases: 0 fill, 1 warmup, 2 timed, 3 batch, 4 drain. Each worker runs a
  // phase between two barrier waits; main samples in between.
  std::barrier sync(T + 1);
  std::mutex err_mu;
  std::string err;
  auto fail = [&](const std::string& m) {
    std::lock_guard<std::mutex> g(err_mu);
    if (err.empty()) err = m;
    failed.store(true);
  };
  auto worker = [&](uint32_t t) {
    CrossStep& s = st[t];
    const auto& sz = sizes[t];
    sync.arrive_and_wait();  // fill
    for (uint64_t i = 0; i < per_slots && !failed.load(std::memory_order_relaxed); ++i)
      if (!s.allocate(fill_sizes[t][i])) fail("refused an allocation while filling");
    sync.arrive_and_wait();
    sync.arrive_and_wait();  // warmup
    for (uint64_t i = 0; i < per_warm && !failed.load(std::memory_order_relaxed); ++i) {
      s.release_one();
      if (!s.allocate(sz[i])) fail("refused an allocation");
    }
    sync.arrive_and_wait();
    sync.arrive_and_wait();  // timed
    for (uint64_t i = 0; i < per_steps && !failed.load(std::memory_order_relaxed); ++i) {
      Obj o;
      if (!s.in->pop(o, failed)) break;
      uint64_t a = timer_start();
      bool ok = alloc->release(o);
      uint64_t b = timer_stop();
      h_free[t].record(ticks_to_ns(b - a));
      s.errors += !ok;
      Obj n;
      a = timer_start();
      ok = alloc->allocate(sz[i], epoch, n);
      b = timer_stop();
      h_alloc[t].record(ticks_to_ns(b - a));
      if (!ok) {
        fail("refused an allocation");
        break;
      }
      if (fill) std::memset(n.ptr, 0xA5, sz[i]);
      s.out->push(n);
    }
    sync.arrive_and_wait();
    sync.arrive_and_wait();  // batch
    for (uint64_t i = 0; i < per_steps && !failed.load(std::memory_order_relaxed); ++i) {
      s.release_one();
      if (!s.allocate(sz[i])) fail("refused an allocation");
    }
    sync.arrive_and_wait();
    sync.arrive_and_wait();  // drain: free what this thread was handed
    while (!s.in->empty()) s.release_one();
    sync.arrive_and_wait();
  };
  std::vector<std::thread> th;
  for (uint32_t t = 0; t < T; ++t) th.emplace_back(worker, t);
  // Main: runs each phase (two barrier waits) and samples between phases.
  // No exception leaves this block before the threads are joined.
  uint64_t t_phase[5][2] = {};
  auto phase = [&](int k) {
    t_phase[k][0] = monotonic_ns();
    sync.arrive_and_wait();
    sync.arrive_and_wait();
    t_phase[k][1] = monotonic_ns();
  };
  auto sample = [&](const char* name) {
    json smp = sampler.sample();
    smp["phase"] = name;
    AllocatorCounters ac;
    bool have = alloc->counters(ac);
    smp["committed_bytes"] = have ? json(ac.committed_bytes) : json(nullptr);
    smp["live_bytes"] = have ? json(ac.live_bytes) : json(nullptr);
    smp["requested_bytes"] = have ? json(ac.requested_bytes) : json(nullptr);
    doc.add_sample(std::move(smp));
  };
  std::exception_ptr ex;
  const char* names[5] = {"filled", nullptr, "timed_done", "batch_done", "freed"};
  for (int k = 0; k < 5; ++k) {
    phase(k);
    if (ex) continue;
    try {
      if (k == 4) alloc->epoch_close(epoch);
      if (names[k]) sample(names[k]);
    } catch (...) {
      ex = std::current_exception();
    }
  }
  for (auto& x : th) x.join();
  if (ex) std::rethrow_exception(ex);
  if (failed.load()) throw RunError(std::string("alternating: ") + alloc->name() + ": " + err);
  uint64_t errors = 0;
  LatencyHistogram ha, hf;
  for (uint32_t t = 0; t < T; ++t) {
    errors += st[t].errors;
    ha.merge(h_alloc[t]);
    hf.merge(h_free[t]);
  }
  doc.set_latency("alloc", ha);
  doc.set_latency("free", hf);
  const uint64_t ops = 2 * per_steps * T;
  const double batch_s = double(t_phase[3][1] - t_phase[3][0]) / 1e9,
               timed_s = double(t_phase[2][1] - t_phase[2][0]) / 1e9;
  json& s = doc.summary();
  s["ops_per_sec"] = double(ops) / batch_s;
  s["ops_per_sec_timed"] = double(ops) / timed_s;
  s["mean_ns"] = batch_s * 1e9 / double(ops);
  s["steps"] = per_steps * T;
  s["ops"] = ops;
  s["batch_seconds"] = batch_s;
  s["timed_seconds"] = timed_s;
  s["free_errors"] = errors;
  doc.doc()["allocator_stats"] = alloc->final_stats();
  doc.doc()["timeline"] = alloc->timeline(doc.t0_ns());
  doc.doc()["perf"] = sampler.perf_info();
  if (ctx.progress)
    std::fprintf(stderr,
                 "[alternating %s, %u threads] %.1f Mops/s; alloc p50/p99/p99.9 %lu/%lu/%lu ns; free "
                 "p50/p99/p99.9 %lu/%lu/%lu ns\n",
                 alloc->name(), T, s["ops_per_sec"].get<double>() / 1e6,
                 (unsigned long)ha.percentile(0.5), (unsigned long)ha.percentile(0.99),
                 (unsigned long)ha.percentile(0.999), (unsigned long)hf.percentile(0.5),
                 (unsigned long)hf.percentile(0.99), (unsigned long)hf.percentile(0.999));
  if (errors)
    throw RunError("alternating: " + std::to_string(errors) + " frees reported errors on " +
                   alloc->name());
}

Registrar reg{WorkloadInfo{"alternating",
                           "latency/throughput: free a random slot, allocate a random size (64-768 B)",
                           [] { return std::make_unique<Alternating>(); }}};

}  // namespace
}  // namespace znslab::harness
