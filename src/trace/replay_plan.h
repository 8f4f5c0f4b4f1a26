// What a trace replay does, decided before it runs (the `trace` workload;
// workloads/trace_replay_gen.h and harness/replay_runner.h execute it): the
// recorded operations split per recording thread in seq order, each
// allocation's placement on the temporal slab (fallback, the long-lived
// epoch, or the epoch of its time window) under an epoch policy, and how
// often that policy was wrong.
//
// Epoch policies (issue 12):
//   none      every object in the long-lived epoch (kLongEpoch; never closed)
//   time      every object in its window's epoch; window w = [w, w+1) x epoch_ns
//             of trace time, closed when the trace passes its end
//   callsite  per call site, a lifetime learned online (LLAMA-style, from
//             the frees seen so far in trace order: a decaying maximum,
//             raised to epoch_ns when an object of the site is found live
//             at its window's close); an object goes to its window's epoch
//             when alloc time + predicted lifetime < the window's end, else
//             to the long-lived epoch; unseen sites are predicted short
//   oracle    the trace's real lifetimes: the window's epoch exactly when the
//             object is freed inside its allocation window (0 mispredictions)
// A misprediction is an object still live when its window's epoch closes
// (computed in trace order: a multi-threaded replay closes a window when
// every thread has passed it, which can only be later).
// Objects above max_object_bytes (768 B, the slab's largest class) or with
// an alignment above 16 B go to the fallback allocator and take no epoch.
//
// Thread-safety: make_plan is reentrant; a plan is read-only afterwards.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "src/trace/trace_format.h"

namespace znslab::trace {

enum class EpochPolicy : uint8_t { kNone, kTime, kCallsite, kOracle };
const char* epoch_policy_name(EpochPolicy p) noexcept;  // "none", "time", "callsite", "oracle"
// false for an unknown name.
bool parse_epoch_policy(std::string_view s, EpochPolicy& out) noexcept;

enum class Placement : uint8_t { kFallback = 0, kLongEpoch = 1, kWindowEpoch = 2 };

// Ring slots on the temporal slab: the long-lived epoch and 15 window slots
// reused round-robin (window w uses slot 1 + w % 15), as in the churn workload.
inline constexpr uint32_t kLongEpoch = 0;
inline constexpr uint32_t kFirstWindowSlot = 1;
inline constexpr uint32_t kWindowSlots = 15;
inline uint32_t window_slot(uint64_t window) noexcept { return kFirstWindowSlot + uint32_t(window % kWindowSlots); }

struct PlanOptions {
  EpochPolicy policy = EpochPolicy::kTime;
  uint64_t epoch_ns = 10'000'000;   // window length, ns of trace time (> 0)
  uint64_t max_object_bytes = 768;  // larger: fallback
  uint64_t max_slab_align = 16;     // larger alignment: fallback
};

// One operation as replayed (32 bytes).
struct ReplayOp {
  uint64_t ts_ns;    // trace time
  uint64_t size;     // bytes (usable_size: ignored)
  uint32_t obj;      // object created (alloc ops) or concerned (free/usable_size); 0 none
  uint32_t old_obj;  // realloc: object ended; else 0
  uint32_t window;   // ts_ns / epoch_ns (0 with policy none)
  uint8_t op;        // trace::Op
  Placement placement;  // for the object created
  uint8_t align_log2;   // requested alignment, log2 bytes (0 = malloc's default)
  uint8_t pad;
};
static_assert(sizeof(ReplayOp) == 32);

struct ReplayPlan {
  std::vector<std::vector<ReplayOp>> threads;  // per recorded thread, seq order
  std::vector<uint32_t> tids;                  // recorded tid of each
  uint64_t ops = 0;                            // all operations (sum over threads)
  uint64_t max_obj = 0;                        // largest object id
  uint64_t windows = 0;                        // windows spanned (last window + 1)
  uint64_t duration_ns = 0;                    // last event's ts
  // Policy accounting over objects created by the trace:
  uint64_t fallback_objects = 0, fallback_bytes = 0;
  uint64_t long_objects = 0, window_objects = 0;
  uint64_t mispredicted = 0;  // window objects still live at their window's close
  uint64_t cross_thread_frees = 0;  // frees/reallocs of an object created by another thread
  // 100 x mispredicted / (long + window objects); 0 when none is placed.
  double mispredicted_pct() const noexcept {
    const uint64_t placed = long_objects + window_objects;
    return placed ? 100.0 * double(mispredicted) / double(placed) : 0.0;
  }
};

// Builds the plan. `t` must have passed read_trace's object check.
// Returns false (with `error`) when the trace has more than 2^32-1 objects.
bool make_plan(const Trace& t, const PlanOptions& o, ReplayPlan& out, std::string& error);

}  // namespace znslab::trace
