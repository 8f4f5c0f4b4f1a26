// The runner of trace replays (the `trace` workload; DESIGN.md "The data
// path": one runner, generators apart). The generator
// (workloads/trace_replay_gen.h) yields each replay thread's operations;
// this runner owns the allocator, the object table and its publication
// states, the cross-thread waits, the epoch ring of time windows, one
// replay thread per recorded thread, `recorded` pacing, sampling, the
// summary and the result document:
//   the loading memory returned to the OS -> sample "start" (the baseline);
//   begin (long-lived epoch); the replay threads; "periodic" samples every
//   sample_ms meanwhile (fixed buffer, stride doubling when full) -> "end";
//   drain (every object still live freed, open epochs closed) ->
//   "post_drain". Summary keys: docs/trace.md "Replay".
// Epoch ring (temporal-slab with an epoch policy): the long-lived epoch 0
// is never closed; window w uses slot trace::window_slot(w), opened on its
// first allocation, closed once every replay thread has passed the window.
// A Gen gives threads(), max_obj(), begin(ex), replay_thread(t, ex) and
// drain(ex); ReplayRunPlanOf<Gen> instantiates them with ReplayExec (one
// virtual call per thread, none per operation).
// Thread-safety: run_replay is not reentrant; a ReplayExec belongs to one
// thread, the ReplayShared behind it to the whole replay.
#pragma once

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "harness/allocators.h"
#include "harness/registry.h"
#include "src/trace/replay_plan.h"

namespace znslab::harness {

// The replay's shared state: objects, their states, epoch windows,
// counters, the first error. Built by run_replay.
struct ReplayShared {
  // kNone: not (yet) created or published; kDone: ended. kAligned: a peer's
  // aligned allocation (aligned_alloc, freed with free).
  enum : uint8_t { kNone = 0, kAdapter = 1, kFallback = 2, kDone = 3, kAligned = 4 };

  ReplayShared(AllocatorAdapter& alloc, uint64_t max_obj, uint32_t threads);

  AllocatorAdapter& a;
  const bool slab;                         // the allocator has epochs
  uint64_t t0_ns = 0;                      // replay start (recorded pacing)
  uint64_t windows = 0;                    // the plan's windows (all threads done)
  std::vector<Obj> objs;                   // by object id
  std::unique_ptr<std::atomic<uint8_t>[]> state;  // published state by id
  std::vector<std::atomic<uint64_t>> cur_window;  // per thread; UINT64_MAX when done
  std::atomic<int64_t> slot_window[16];    // window in each ring slot, -1 none
  std::atomic<uint64_t> closed_upto{0};    // windows [0, closed_upto) closed
  std::mutex mu;                           // epoch ring changes, error
  std::atomic<bool> failed{false};
  std::string error;                       // first error (under mu)
  std::atomic<uint64_t> ops{0}, skipped{0}, fallback_ops{0}, fallback_bytes{0};
  std::atomic<uint64_t> cross_waits{0}, epoch_fallbacks{0}, forced_closes{0}, epochs_closed{0};

  void fail(const char* what);
};

// The executor a replay generator calls (vocabulary: workloads/
// trace_replay_gen.h). Fast path inline, no locks except when an epoch
// opens or closes; a refused allocation is counted in `skipped`; epoch
// calls the allocator refuses throw RunError (stopping this thread; the
// runner stops the others and reports the first error).
class ReplayExec {
 public:
  ReplayExec(ReplayShared& s, uint32_t thread) : s_(s), t_(thread) {}

  bool ok() const noexcept { return !s_.failed.load(std::memory_order_relaxed); }
  bool has_epochs() const noexcept { return s_.slab; }
  void op_done() noexcept { s_.ops.fetch_add(1, std::memory_order_relaxed); }
  // Waits until trace time ts_ns since the replay's start.
  void at(uint64_t ts_ns) const noexcept;
  void enter_window(uint64_t w);
  void thread_done();

  // Waits (spinning, then yielding) until object `id` is published; throws
  // RunError when the replay failed meanwhile.
  void wait_created(uint32_t id) {
    if (s_.state[id].load(std::memory_order_acquire) != ReplayShared::kNone) return;
    wait_slow(id);
  }

  // Allocations: object `id` of `bytes` (requested: the trace's size),
  // unpublished until publish(id, made) with the value returned (a state,
  // opaque to the generator); 0 when refused (counted).
  uint8_t allocate(uint32_t id, uint64_t bytes, uint64_t requested, bool in_window, uint32_t window) {
    Obj& o = s_.objs[id];
    uint32_t epoch = trace::kLongEpoch;
    if (in_window && s_.slab) epoch = window_epoch(window);
    if (!s_.a.allocate(bytes, epoch, o)) {
      if (epoch == trace::kLongEpoch || !s_.a.allocate(bytes, trace::kLongEpoch, o)) return refused();
      s_.epoch_fallbacks.fetch_add(1, std::memory_order_relaxed);
    }
    return created(o, requested, ReplayShared::kAdapter);
  }
  uint8_t allocate_aligned(uint32_t id, uint64_t bytes, uint64_t align, uint64_t requested) noexcept {
    Obj& o = s_.objs[id];
    o.ptr = std::aligned_alloc(align, (bytes + align - 1) / align * align);
    o.handle = 0;
    if (!o.ptr) return refused();
    return created(o, requested, ReplayShared::kAligned);
  }
  uint8_t allocate_fallback(uint32_t id, uint64_t bytes, uint64_t requested) noexcept {
    Obj& o = s_.objs[id];
    o.ptr = std::malloc(bytes);
    o.handle = 0;
    s_.fallback_ops.fetch_add(1, std::memory_order_relaxed);
    s_.fallback_bytes.fetch_add(requested, std::memory_order_relaxed);
    if (!o.ptr) return refused();
    return created(o, requested, ReplayShared::kFallback);
  }
  // The process's realloc of `old_id` into `id` (peers): the old object
  // ends; `id` unpublished. 0 when refused (old stays live; counted).
  uint8_t realloc(uint32_t old_id, uint32_t id, uint64_t bytes) noexcept {
    void* p = ::realloc(s_.objs[old_id].ptr, bytes ? bytes : 1);
    if (!p) return refused();
    Obj& n = s_.objs[id];
    n.ptr = p;
    s_.state[old_id].store(ReplayShared::kDone, std::memory_order_relaxed);
    return created(n, bytes, ReplayShared::kAdapter);
  }
  // A failed allocation of the trace: allocate and give back at once.
  void probe(uint64_t bytes) noexcept {
    Obj tmp;
    if (s_.a.allocate(bytes, trace::kLongEpoch, tmp)) s_.a.release(tmp);
  }
  void publish(uint32_t id, uint8_t made) noexcept { s_.state[id].store(made, std::memory_order_release); }

  uint64_t requested(uint32_t id) const noexcept { return s_.objs[id].requested; }
  // Writes one byte per 4 KiB of [off, off + n) of object id.
  void touch_pages(uint32_t id, uint64_t off, uint64_t n) noexcept {
    char* p = static_cast<char*>(s_.objs[id].ptr);
    if (!p || n == 0) return;
    for (uint64_t i = 0; i < n; i += 4096) p[off + i] = 1;
  }
  void fill(uint32_t id, uint64_t off, uint64_t n, int byte) noexcept {
    char* p = static_cast<char*>(s_.objs[id].ptr);
    if (p && n) std::memset(p + off, byte, n);
  }
  void copy(uint32_t from, uint32_t to, uint64_t n) noexcept {
    if (n) std::memcpy(s_.objs[to].ptr, s_.objs[from].ptr, n);
  }
  // Frees object id if it is live (published); else nothing.
  void release(uint32_t id) noexcept {
    const uint8_t st = s_.state[id].load(std::memory_order_acquire);
    if (st == ReplayShared::kAdapter) {
      s_.a.release(s_.objs[id]);
    } else if (st == ReplayShared::kFallback || st == ReplayShared::kAligned) {
      std::free(s_.objs[id].ptr);
    } else {
      return;
    }
    s_.state[id].store(ReplayShared::kDone, std::memory_order_relaxed);
  }
  size_t usable(uint32_t id) noexcept {
    const uint8_t st = s_.state[id].load(std::memory_order_acquire);
    volatile size_t u = 0;
    if (st == ReplayShared::kAdapter) u = s_.a.usable_size(s_.objs[id]);
    else if (st == ReplayShared::kFallback || st == ReplayShared::kAligned) u = malloc_usable_size(s_.objs[id].ptr);
    return u;
  }

  // Epoch events (main thread, cold). Throw RunError when refused.
  void epoch_open(uint32_t e, const char* label) { s_.a.epoch_open(e, label); }
  void epoch_close(uint32_t e) { s_.a.epoch_close(e); }
  // Closes every ring slot still holding an open window (drain).
  void close_open_windows();

 private:
  uint8_t refused() noexcept {
    s_.skipped.fetch_add(1);
    return ReplayShared::kNone;
  }
  static uint8_t created(Obj& o, uint64_t requested, uint8_t st) noexcept {
    o.requested = uint32_t(std::min<uint64_t>(requested, UINT32_MAX));
    return st;
  }
  void wait_slow(uint32_t id);
  uint32_t window_epoch(uint32_t w);
  void maybe_close();

  ReplayShared& s_;
  uint32_t t_;
};

// What run_replay needs of a generator, type-erased per thread.
class ReplayRunPlan {
 public:
  virtual ~ReplayRunPlan() = default;
  virtual uint32_t threads() const = 0;
  virtual uint64_t max_obj() const = 0;
  virtual uint64_t windows() const = 0;
  virtual void begin(ReplayExec& ex) const = 0;
  virtual void replay_thread(uint32_t t, ReplayExec& ex) const = 0;
  virtual void drain(ReplayExec& ex) const = 0;
};

template <class Gen>
class ReplayRunPlanOf final : public ReplayRunPlan {
 public:
  explicit ReplayRunPlanOf(const Gen& g) : g_(g) {}
  uint32_t threads() const override { return g_.threads(); }
  uint64_t max_obj() const override { return g_.max_obj(); }
  uint64_t windows() const override { return g_.windows(); }
  void begin(ReplayExec& ex) const override { g_.begin(ex); }
  void replay_thread(uint32_t t, ReplayExec& ex) const override { g_.replay_thread(t, ex); }
  void drain(ReplayExec& ex) const override { g_.drain(ex); }

 private:
  const Gen& g_;
};

// What the plan decided before the replay (trace::ReplayPlan), for the
// summary; the `*_objects` and mispredictions are shown only with epochs.
// trace_events: the ops the replay must complete.
struct ReplayPlanFacts {
  uint64_t trace_events = 0, cross_thread_frees = 0;
  uint64_t mispredicted = 0, window_objects = 0, long_objects = 0;
  double mispredicted_pct = 0;
  std::string epoch_policy;  // "none", "time", ...
  std::string path;          // trace file, for progress lines
};

// Measurement settings (workload keys the runner reads).
struct ReplayRunOptions {
  std::string experiment = "trace";
  uint32_t sample_ms = 10;  // periodic samples
  // Reads and plans the trace (the plan the generator reads), called once
  // the allocator is constructed and before the loading memory is returned
  // and the baseline sampled (the allocator's own setup precedes the
  // loading heap, which malloc_trim can then return); returns its facts.
  // May throw RunError.
  std::function<ReplayPlanFacts()> load;
};

// Runs `plan` against ctx.allocator (constructed here from ctx.config) and
// fills ctx.result: allocator, samples (start, periodic, end, post_drain),
// summary (docs/trace.md), allocator_stats, timeline, perf (opt.load sets
// result["trace"]). Throws RunError when the replay failed, an epoch call
// was refused, or fewer ops than facts.trace_events were replayed.
void run_replay(RunContext& ctx, const ReplayRunPlan& plan, const ReplayRunOptions& opt);

}  // namespace znslab::harness
