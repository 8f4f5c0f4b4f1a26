// The runner of step-shaped allocation workloads (alternating; DESIGN.md
// "The data path": one runner, generators apart). The generator
// (workloads/alternating_gen.h) yields operations; this runner owns the
// allocator, worker threads and the hand-off rings between them, the
// phases and their timing, samples, summary and result document:
//   fill (untimed) -> sample "filled"; warmup (untimed);
//   timed pass: every free and allocate timed alone -> latency_ns.alloc/free,
//     sample "timed_done";
//   batch pass: the same steps without per-op timers -> summary.ops_per_sec,
//     mean_ns; sample "batch_done";
//   drain, epoch_close -> sample "freed".
// A generator Gen gives workers(), slots_per_worker(), steps_per_worker(),
// warmup_per_worker(), kEpoch and the phases fill_phase(t, ex),
// steps(t, n, ex), drain_phase(t, ex); StepPlanOf<Gen> instantiates them
// with this runner's executors (one virtual call per phase).
// Thread-safety: run_steps is not reentrant.
#pragma once

#include <cstdint>
#include <string>

#include "harness/registry.h"

namespace znslab::harness {

class SlotExecTimed;
class SlotExecUntimed;
class HandoffExecTimed;
class HandoffExecUntimed;

// What run_steps needs of a generator, type-erased per phase.
class StepPlan {
 public:
  virtual ~StepPlan() = default;
  virtual uint32_t workers() const = 0;
  virtual uint64_t slots_per_worker() const = 0;
  virtual uint64_t steps_per_worker() const = 0;
  virtual uint64_t warmup_per_worker() const = 0;
  virtual uint32_t epoch() const = 0;
  // One worker (slot table).
  virtual void fill(SlotExecUntimed& ex) const = 0;
  virtual void steps(uint64_t n, SlotExecUntimed& ex) const = 0;
  virtual void steps(uint64_t n, SlotExecTimed& ex) const = 0;
  virtual void drain(SlotExecUntimed& ex) const = 0;
  // T >= 2 workers (hand-off to the next worker).
  virtual void fill(uint32_t t, HandoffExecUntimed& ex) const = 0;
  virtual void steps(uint32_t t, uint64_t n, HandoffExecUntimed& ex) const = 0;
  virtual void steps(uint32_t t, uint64_t n, HandoffExecTimed& ex) const = 0;
  virtual void drain(uint32_t t, HandoffExecUntimed& ex) const = 0;
};

struct StepRunOptions {
  std::string experiment;   // "alternating"
  std::string epoch_label;  // label of the one epoch
};

// Runs `plan` against ctx.allocator and fills ctx.result (allocator, timer,
// samples, latency_ns.alloc/free, summary: ops_per_sec, ops_per_sec_timed,
// mean_ns, steps, ops, batch_seconds, timed_seconds, free_errors;
// allocator_stats, timeline, perf). Throws RunError on a refused allocation
// or failed frees.
void run_steps(RunContext& ctx, const StepPlan& plan, const StepRunOptions& opt);

}  // namespace znslab::harness

// StepPlanOf<Gen> needs the executors' definitions.
#include "harness/step_exec.h"  // IWYU pragma: export

namespace znslab::harness {

template <class Gen>
class StepPlanOf final : public StepPlan {
 public:
  explicit StepPlanOf(const Gen& g) : g_(g) {}
  uint32_t workers() const override { return g_.workers(); }
  uint64_t slots_per_worker() const override { return g_.slots_per_worker(); }
  uint64_t steps_per_worker() const override { return g_.steps_per_worker(); }
  uint64_t warmup_per_worker() const override { return g_.warmup_per_worker(); }
  uint32_t epoch() const override { return Gen::kEpoch; }
  void fill(SlotExecUntimed& ex) const override { g_.fill_phase(0, ex); }
  void steps(uint64_t n, SlotExecUntimed& ex) const override { g_.steps(0, n, ex); }
  void steps(uint64_t n, SlotExecTimed& ex) const override { g_.steps(0, n, ex); }
  void drain(SlotExecUntimed& ex) const override { g_.drain_phase(0, ex); }
  void fill(uint32_t t, HandoffExecUntimed& ex) const override { g_.fill_phase(t, ex); }
  void steps(uint32_t t, uint64_t n, HandoffExecUntimed& ex) const override { g_.steps(t, n, ex); }
  void steps(uint32_t t, uint64_t n, HandoffExecTimed& ex) const override { g_.steps(t, n, ex); }
  void drain(uint32_t t, HandoffExecUntimed& ex) const override { g_.drain_phase(t, ex); }

 private:
  const Gen& g_;
};

}  // namespace znslab::harness
