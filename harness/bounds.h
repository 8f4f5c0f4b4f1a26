// Bound evaluation for `znslab check RESULT.json --bounds FILE` (issue 2,
// section 5: the RSS bounds CI gates on).
//
// A bounds file (schema "znslab.bounds/1", e.g. ci/rss_bounds.json):
//   {"schema": "znslab.bounds/1",
//    "bounds": [
//      {"name": "committed_drift", "metric": "summary.committed_drift_pct", "max": 1.0,
//       "unit": "%", "experiments": ["churn"], "allocators": ["temporal-slab"]},
//      {"name": "post_free_rss", "over": "steady_post_free", "metric": "rss_bytes",
//       "max": {"scale": 1.10, "metric": "objects_live_bytes", "plus": 16777216},
//       "unit": "bytes"}],
//    "runs": [ ... read by tests/run_tests.py ... ]}
// Per bound: "metric" is a dotted path into the result document, or, with
// "over": "steady_post_free", a field of every post_free sample of a
// steady-state cycle (cycle >= summary.steady_state_first_cycle); "max"
// and/or "min" are a number or {"scale": a, "metric": path, "plus": b}
// (= a x value + b, path in the same context). Optional filters
// "experiments" and "allocators" (by allocator.name) make a bound not
// applicable elsewhere. A null metric is a violation unless "allow_null":
// true; a metric path that does not exist in an applicable result is a
// ConfigError naming it (a typo must not pass as a figure).
//
// Thread-safety: pure functions. Errors: ConfigError for a malformed bounds
// file (naming the bound and key).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace znslab::harness {

struct BoundOutcome {
  std::string name;
  enum class State { kPass, kFail, kNotApplicable } state = State::kPass;
  std::string message;  // figures: "summary.rss_stability_pct = 3.20 % <= 10.00 %"
};

// Evaluates every bound of `bounds` on `result`. Throws ConfigError when the
// bounds document is malformed.
std::vector<BoundOutcome> evaluate_bounds(const nlohmann::json& result, const nlohmann::json& bounds);

}  // namespace znslab::harness
