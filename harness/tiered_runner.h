// The runner of tiered workloads (tiered-churn, issue 11; docs/tiered.md):
// the temporal slab over a DRAM budget, spilling to a zoned device. The
// generator (workloads/tiered_churn_gen.h) yields operations; this runner
// owns
//   - the device: slab_spill_device, else --device, else a default
//     emulator file (sized from the schedule's peak live slab bytes,
//     removed after the run unless kept);
//   - the allocator (slab::Options from the workload keys; no budget when
//     the spill target is none);
//   - the executor: allocations (object bytes written), frees, epoch
//     advance/close, accesses through pin() or deref() with every byte
//     checked or rewritten, each call timed alone (latency_ns alloc, free,
//     pin|deref);
//   - samples (one "baseline" before the first slab allocation, after the
//     generator's tables; samples_per_epoch per epoch; one "end");
//   - the summary (rss_over_budget_pct, spill counters, fault-back
//     latency, ops_per_sec, corrupt_objects, counters, schedule) and the
//     result document.
// One virtual call per workload epoch (TieredPlan::epoch); the executor's
// calls inline into the generator. Thread-safety: run_tiered is not
// reentrant; one thread.
#pragma once

#include <cstdint>
#include <string>

#include "harness/registry.h"
#include "src/slab/slab.h"

namespace znslab::harness {

class TieredExec;

// What run_tiered needs of a generator.
class TieredPlan {
 public:
  virtual ~TieredPlan() = default;
  virtual void epoch(uint32_t n, TieredExec& ex) = 0;  // workload epoch n
  virtual void drain(TieredExec& ex) = 0;              // free every live object
  virtual uint64_t live_bytes() const = 0;             // requested bytes live
};

// The measurement keys run_tiered reads (mapped by the workload).
struct TieredRunOptions {
  slab::Options slab;            // slab_* keys (spill_device is set by the runner)
  std::string target = "zns";    // slab_spill: none, zns, overflow
  std::string spill_device;      // slab_spill_device ("" = --device or the default emulator)
  uint32_t epochs = 0;           // workload epochs
  uint32_t samples_per_epoch = 16;
  uint64_t epoch_objects = 0;    // allocations per epoch (sample step)
  bool use_pin = true;           // access_call: pin (true) or deref
  // The default emulator: device_factor x peak_slab_bytes of zones.
  double device_factor = 1.5;
  uint64_t device_zone_bytes = 0;  // 0: a power of two >= 1 MiB giving ~48 zones
  bool device_direct = false;
  std::string device_dir;          // "" = the working directory
  bool keep_device = false;
  bool device_prealloc = true;     // prealloc=1: zone resets keep the file's blocks
  // The schedule (summary.schedule; device sizing).
  double mean_lifetime = 0, peak_live_bytes = 0, peak_slab_bytes = 0;
};

// Runs `plan` (the generator must already exist: its tables count in the
// baseline) and fills ctx.result: allocator, device, timer, samples,
// latency_ns, summary, slab_stats. Throws RunError when the allocator
// cannot be created, an operation is refused, or objects read back wrong
// (after the result is filled).
void run_tiered(RunContext& ctx, TieredPlan& plan, const TieredRunOptions& opt);

}  // namespace znslab::harness

#include "harness/tiered_exec.h"  // IWYU pragma: export

namespace znslab::harness {

template <class Gen>
class TieredPlanOf final : public TieredPlan {
 public:
  explicit TieredPlanOf(Gen& g) : g_(g) {}
  void epoch(uint32_t n, TieredExec& ex) override { g_.epoch(n, ex); }
  void drain(TieredExec& ex) override { g_.drain(ex); }
  uint64_t live_bytes() const override { return g_.live_bytes(); }

 private:
  Gen& g_;
};

}  // namespace znslab::harness
