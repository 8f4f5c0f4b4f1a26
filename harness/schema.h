// Structural checker of the result document, schema "znslab.result/1"
// (DESIGN.md "Metrics (the result JSON contract)"; every field is listed in
// the README). Used by `znslab check` before evaluating bounds and by the
// [harness] tests on real runs.
//
// Checked: top-level keys and types (schema, experiment, started_at,
// git_rev, host{kernel,cpus,memory_bytes,thp_mode,page_size}, config with
// "workload", allocator (object or null), device (object or null),
// samples[] each with t_ns and phase, latency_ns.<op> with
// p50 <= p90 <= p99 <= p999 <= max in ns, summary with ops_per_sec);
// for experiments "churn" and "alternating" also latency_ns.alloc/free and,
// for churn, every summary metric of issue 2 section 4 with its type
// (committed_drift_pct may be null only for allocators without counters).
//
// Thread-safety: pure function.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace znslab::harness {

// Returns one message per violation ("summary.peak_rss_bytes: expected an
// unsigned integer, got null"); empty when the document conforms.
std::vector<std::string> result_schema_errors(const nlohmann::json& doc);

}  // namespace znslab::harness
