// The runner of cycle-shaped allocation workloads (churn; DESIGN.md "The
// data path": one runner, generators apart). A generator (workloads/*_gen.h)
// yields operations; this runner owns everything else: allocator
// construction, worker threads and their barriers, latency timing (one
// operation in latency_every), sampling (peak / post_free per round,
// periodic from a background thread, start / end), the summary metrics
// (harness/metrics.h) and the result document.
//
// A generator Gen gives: rounds(), workers(), slots(), objects_per_round(),
// pinned_objects(), pinned_capacity(t), round_epoch(c), and the phases
//   begin_round(c, ex)    on the main thread (epoch_open)
//   alloc_phase(c, t, ex) on worker t        (allocate)
//   free_phase(c, t, ex)  on worker t        (release)
//   end_round(c, ex)      on the main thread (epoch_close; timed with the frees)
// calling the executors below; CyclePlanOf<Gen> instantiates them, so the
// per-operation calls inline (one virtual call per phase, none per operation).
// Thread-safety: run_cycles is not reentrant; a WorkerExec belongs to one thread.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "harness/allocators.h"
#include "harness/registry.h"
#include "harness/result.h"
#include "harness/timer.h"

namespace znslab::harness {

// A worker thread's executor: allocate/release with 1-in-latency_every
// timing, into the shared slot table (each slot written by one worker per
// phase). Failures are counted, never thrown (fast path).
class WorkerExec {
 public:
  AllocatorAdapter* alloc = nullptr;
  Obj* slots = nullptr;            // the round's objects (ptr null: empty or pinned)
  std::vector<Obj>* pinned = nullptr;  // this worker's pinned objects (reserved up front)
  uint64_t latency_every = 1;
  uint64_t op = 0;
  LatencyHistogram h_alloc, h_free;
  uint64_t alloc_failures = 0, free_failures = 0;

  void allocate(uint64_t slot, uint32_t size, uint32_t epoch, int fill_byte, bool pin) noexcept {
    Obj o;
    bool ok;
    if (++op % latency_every == 0) {
      uint64_t a = timer_start();
      ok = alloc->allocate(size, epoch, o);
      uint64_t b = timer_stop();
      h_alloc.record(ticks_to_ns(b - a));
    } else {
      ok = alloc->allocate(size, epoch, o);
    }
    if (!ok) {
      ++alloc_failures;
      slots[slot] = Obj{};
      return;
    }
    if (fill_byte >= 0) std::memset(o.ptr, fill_byte, size);
    if (pin) {
      pinned->push_back(o);
      slots[slot] = Obj{};
    } else {
      slots[slot] = o;
    }
  }
  void release(uint64_t slot) noexcept {
    Obj& o = slots[slot];
    if (!o.ptr) return;
    bool ok;
    if (++op % latency_every == 0) {
      uint64_t a = timer_start();
      ok = alloc->release(o);
      uint64_t b = timer_stop();
      h_free.record(ticks_to_ns(b - a));
    } else {
      ok = alloc->release(o);
    }
    if (!ok) ++free_failures;
    o = Obj{};
  }
};

// The main thread's executor: epoch events. Throws RunError (cold path).
class RoundExec {
 public:
  AllocatorAdapter* alloc = nullptr;
  void epoch_open(uint32_t epoch, uint64_t round) { alloc->epoch_open(epoch, "cycle " + std::to_string(round)); }
  void epoch_close(uint32_t epoch) { alloc->epoch_close(epoch); }
};

// What run_cycles needs of a generator, type-erased per phase.
class CyclePlan {
 public:
  virtual ~CyclePlan() = default;
  virtual uint64_t rounds() const = 0;
  virtual uint32_t workers() const = 0;
  virtual uint64_t slots() const = 0;
  virtual uint64_t objects_per_round() const = 0;
  virtual uint64_t pinned_objects() const = 0;
  virtual uint64_t pinned_capacity(uint32_t t) const = 0;
  virtual uint32_t round_epoch(uint64_t c) const = 0;
  virtual void begin_round(uint64_t c, RoundExec& ex) const = 0;
  virtual void alloc_phase(uint64_t c, uint32_t t, WorkerExec& ex) const = 0;
  virtual void free_phase(uint64_t c, uint32_t t, WorkerExec& ex) const = 0;
  virtual void end_round(uint64_t c, RoundExec& ex) const = 0;
};

template <class Gen>
class CyclePlanOf final : public CyclePlan {
 public:
  explicit CyclePlanOf(const Gen& g) : g_(g) {}
  uint64_t rounds() const override { return g_.rounds(); }
  uint32_t workers() const override { return g_.workers(); }
  uint64_t slots() const override { return g_.slots(); }
  uint64_t objects_per_round() const override { return g_.objects_per_round(); }
  uint64_t pinned_objects() const override { return g_.pinned_objects(); }
  uint64_t pinned_capacity(uint32_t t) const override { return g_.pinned_capacity(t); }
  uint32_t round_epoch(uint64_t c) const override { return g_.round_epoch(c); }
  void begin_round(uint64_t c, RoundExec& ex) const override { g_.begin_round(c, ex); }
  void alloc_phase(uint64_t c, uint32_t t, WorkerExec& ex) const override { g_.alloc_phase(c, t, ex); }
  void free_phase(uint64_t c, uint32_t t, WorkerExec& ex) const override { g_.free_phase(c, t, ex); }
  void end_round(uint64_t c, RoundExec& ex) const override { g_.end_round(c, ex); }

 private:
  const Gen& g_;
};

// Measurement settings (workload keys the runner reads).
struct CycleRunOptions {
  std::string experiment;        // for messages: "churn"
  std::string epoch_plan;        // the result's "epoch_plan" with epochs (text)
  uint64_t latency_every = 16;   // time one operation in this many
  uint32_t idle_ms = 5;          // pause after the frees before the post_free sample
  uint32_t sample_ms = 100;      // periodic samples (0 = none)
  uint32_t progress_pct = 5;     // progress line period on stderr
};

// Runs `plan` against ctx.allocator (constructed here from ctx.config) and
// fills ctx.result: allocator, timer, epoch_plan, samples, latency_ns
// (alloc, free), summary (docs/harness.md "churn"), allocator_stats,
// timeline, perf. Throws RunError when the allocator refuses or fails.
void run_cycles(RunContext& ctx, const CyclePlan& plan, const CycleRunOptions& opt);

// Memory the runner needs for `rounds` x `slots` (bytes): samples and the
// slot tables, for the workload's validate() (refusing what cannot fit).
struct CycleRunnerMemory {
  uint64_t samples_bytes = 0, books_bytes = 0;
};
CycleRunnerMemory cycle_runner_memory(uint64_t rounds, uint64_t slots);

}  // namespace znslab::harness
