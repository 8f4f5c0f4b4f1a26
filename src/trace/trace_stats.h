// Summary statistics of a trace (`znslab trace info`): pure functions over
// a validated Trace (trace_format.h). Thread-safety: reentrant.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/trace/trace_format.h"

namespace znslab::trace {

// Per object, derived from a trace in one pass (index = object id).
struct ObjectLife {
  uint64_t alloc_index = UINT64_MAX;  // event index (in seq order) that created it
  uint64_t free_index = UINT64_MAX;   // event index that ended it (free, realloc, realloc(p,0)); MAX: never
  uint64_t size = 0;                  // bytes requested
  uint32_t callsite = 0;
};
// Lives of every object id (ids are dense from 1; entry 0 unused).
std::vector<ObjectLife> object_lives(const Trace& t);

// {"program","args","pid","start_unix_ns","duration_ns","events","frames",
//  "ops":{"malloc":n,...}, "threads":[{"tid","events"}...],
//  "peak_live_bytes","peak_live_objects","end_live_bytes","end_live_objects",
//  "size_histogram":[{"le_bytes","count","bytes"}...] (powers of two),
//  "small_allocs_pct" (size <= 768 B, the temporal slab's classes),
//  "lifetime_ops_histogram":[{"le","count"}...] (events between alloc and end),
//  "lifetime_ns_histogram":[{"le","count"}...], "never_freed",
//  "top_callsites":[{"callsite","allocs","bytes","mean_lifetime_ns"}...] (by bytes)}
nlohmann::json trace_info(const Trace& t, size_t top_n = 10);

}  // namespace znslab::trace
