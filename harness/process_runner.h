// The runner of multi-process shared-pool workloads (varslot-growth; issue
// 8 "one runner, generators apart", issue 13). A generator
// (workloads/varslot_growth_gen.h) yields each process's allocations,
// releases and passes; this runner owns everything else: the src/varslot
// pool (file or memfd segment), the guest processes (forked children of
// build/znslab that attach by path or inherit the memfd), the shared
// control block and the handle rings between processes, patterned payloads
// and their verification, killing one guest when asked (kill -9 while it
// holds slots), the alloc+free latency histograms (one per process, pooled),
// the host's growth timings, sampling, the summary (docs/varslot.md
// "Workload varslot-growth") and the result document.
//
// A generator Gen gives Gen(params, me) and, per process, step(ex) and
// timed_pair(ex) calling ProcessExec; ProcessPlanOf<Gen> runs the loop of
// one process (one virtual call per process, none per operation).
// Thread-safety: run_processes is not reentrant; a ProcessExec belongs to
// one process (its main thread).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "harness/registry.h"
#include "harness/result.h"
#include "harness/timer.h"
#include "src/varslot/pool.h"

namespace znslab::harness {

inline constexpr uint32_t kProcMax = 16;   // host + up to 15 guests
inline constexpr uint32_t kProcRing = 32;  // bounds the handles in flight per pair

// ---- shared control block (MAP_SHARED anonymous, made before fork) --------
struct alignas(64) ProcRing {  // single producer, single consumer
  std::atomic<uint32_t> head{0}, tail{0};
  uint64_t h[kProcRing];
};

struct alignas(64) ProcShared {
  std::atomic<uint32_t> peer{0}, ready{0}, done{0}, dead{0};
  std::atomic<uint64_t> ops{0}, live_bytes{0}, live_peak{0};
  std::atomic<uint64_t> inflight_bytes{0};  // passed to this process, not yet freed
  std::atomic<uint64_t> corruptions{0}, handle_errors{0}, alloc_failures{0};
  std::atomic<uint64_t> passed{0}, remaps{0};
  LatencyHistogram alloc_free;  // written once by the process at its end
};

struct ProcControl {
  std::atomic<uint32_t> start{0};
  // kill_guest: nobody releases its slots at the end until the host has
  // killed guest 1 (so the kill always finds it holding slots).
  std::atomic<uint32_t> hold{0};
  std::atomic<uint64_t> live_peak{0};  // max over time of the sum of live + in-flight bytes
  ProcShared proc[kProcMax];
  ProcRing ring[kProcMax][kProcMax];  // [from][to]
};

// Payload pattern: word 0 holds the handle; words spread over the slot (at
// most 8, plus the last word) hold a mix of the handle and their index. Two
// owners of one slot, or a write past a slot, break it.
void write_payload(uint8_t* p, uint32_t bytes, varslot::Handle h) noexcept;
bool verify_payload(const uint8_t* p, uint32_t bytes, varslot::Handle h) noexcept;

// One process's executor: the pool calls behind a generator's operations,
// with the held handles, payloads, passing and the timed pairs. Failures are
// counted in the control block, never thrown (fast path).
class ProcessExec {
 public:
  ProcessExec(varslot::Pool& pool, ProcControl& ctl, uint32_t me, uint32_t nprocs, uint32_t classes)
      : pool_(pool), ctl_(ctl), me_(me), nprocs_(nprocs), held_(classes) {}

  // -1 allocation failed, 0 an op but not held (handle refused), 1 held.
  int allocate(uint32_t c, uint32_t bytes) noexcept {
    (void)c;
    auto h = pool_.alloc(bytes);
    if (!h) {
      ps().alloc_failures.fetch_add(1, std::memory_order_relaxed);
      return -1;
    }
    uint8_t* p = pool_.ptr(*h);
    if (!p) {
      ps().handle_errors.fetch_add(1, std::memory_order_relaxed);
      return 0;
    }
    write_payload(p, pool_.slot_size(*h), *h);
    held_[c].push_back(*h);
    add_live(pool_.slot_size(*h));
    return 1;
  }
  // Releases held slot k of class c: passes it to process `to` (when
  // `pass` and possible) or verifies and frees it. Returns ops done.
  uint32_t release(uint32_t c, size_t k, bool pass, uint32_t to) noexcept {
    auto& v = held_[c];
    const varslot::Handle h = v[k];
    v[k] = v.back();
    v.pop_back();
    sub_live(pool_.slot_size(h));
    if (pass && pass_to(h, to)) return 0;  // the receiver's free is its op
    free_verified(h);
    return 1;
  }
  // One alloc + free of the same slot, timed together (rdtsc).
  void timed_alloc_free(uint32_t bytes) noexcept {
    const uint64_t t0 = timer_start();
    auto h = pool_.alloc(bytes);
    if (!h) return;
    Status s = pool_.free(*h);
    const uint64_t t1 = timer_stop();
    if (!s) ps().handle_errors.fetch_add(1, std::memory_order_relaxed);
    hist_.record(std::max<uint64_t>(1, ticks_to_ns(t1 - t0)));
    ops_ += 2;
  }

  // ---- the runner's side of the loop (ProcessPlanOf) ----------------------
  bool running() const noexcept { return ops_ < share_ops_; }
  void add_ops(uint64_t n) noexcept { ops_ += n; }
  bool timed_due() noexcept { return ++steps_, timed_every_ && steps_ % timed_every_ == 0; }
  void after_step() noexcept {
    if ((steps_ & 3) == 0) ops_ += drain();
    if ((steps_ & 63) == 0) note_global_live();
    if ((steps_ & 1023) == 0) {
      ps().ops.store(ops_, std::memory_order_relaxed);
      if (tick_) tick_(tick_arg_);
    }
  }

  // Frees what other processes passed to this one. Returns frees done.
  uint32_t drain() noexcept;
  // Folds the sum of live and in-flight bytes over all processes into
  // ctl.live_peak (every 64 steps: P cache lines read).
  void note_global_live() noexcept;
  // End of the run: stop, wait for everyone, drain and free all; stores
  // ops and the histogram in the control block.
  void finish() noexcept;

  uint64_t share_ops_ = 0;
  uint32_t timed_every_ = 0;
  void (*tick_)(void*) = nullptr;  // every 1024 steps (host: kill_guest, reaping)
  void* tick_arg_ = nullptr;

 private:
  ProcShared& ps() noexcept { return ctl_.proc[me_]; }
  void add_live(uint64_t b) noexcept {
    live_ += b;
    ps().live_bytes.store(live_, std::memory_order_relaxed);
    if (live_ > peak_) ps().live_peak.store(peak_ = live_, std::memory_order_relaxed);
  }
  void sub_live(uint64_t b) noexcept {
    live_ -= b;
    ps().live_bytes.store(live_, std::memory_order_relaxed);
  }
  void free_verified(varslot::Handle h) noexcept;
  bool pass_to(varslot::Handle h, uint32_t to) noexcept;

  varslot::Pool& pool_;
  ProcControl& ctl_;
  uint32_t me_, nprocs_;
  std::vector<std::vector<varslot::Handle>> held_;
  uint64_t live_ = 0, peak_ = 0, ops_ = 0, steps_ = 0;
  LatencyHistogram hist_;
};

// What run_processes needs of a generator: one process's whole run.
class ProcessPlan {
 public:
  virtual ~ProcessPlan() = default;
  virtual void run_process(uint32_t me, ProcessExec& ex) const = 0;
};

template <class Gen, class Params>
class ProcessPlanOf final : public ProcessPlan {
 public:
  explicit ProcessPlanOf(const Params& p) : p_(p) {}
  void run_process(uint32_t me, ProcessExec& ex) const override {
    Gen g(p_, me);
    while (ex.running()) {
      ex.add_ops(g.step(ex));
      if (ex.timed_due()) g.timed_pair(ex);
      ex.after_step();
    }
    ex.finish();
  }

 private:
  const Params& p_;
};

struct ProcessRunOptions {
  uint32_t guests = 3;
  varslot::PoolOptions pool;   // path (or memfd name), mode, classes, extents, caps
  std::string growth;          // "remap" | "extent_files" | "fixed" (names)
  std::string segment;         // "file" | "memfd"
  uint64_t ops = 0;            // over all processes; each runs ops / (guests+1)
  uint64_t live_bytes = 0;     // for the fixed-sizing comparison
  std::vector<uint64_t> live_targets;  // per class per process (allocator options)
  bool kill_guest = false;     // kill -9 guest 1 midway while it holds slots
  uint32_t timed_every = 4;    // steps between timed alloc+free pairs (0 = none)
  uint32_t sample_ms = 100;
  int service_nice = 0;        // nice of the host's service thread
  int grow_rt_priority = 0;    // SCHED_FIFO priority of the service thread (0 = off)
};

// Runs host + guests over one pool and fills ctx.result. Throws RunError
// (pool creation, fork, a guest failing, corruptions or refused handles).
void run_processes(RunContext& ctx, const ProcessPlan& plan, const ProcessRunOptions& opt);

}  // namespace znslab::harness
