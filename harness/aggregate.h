// Aggregation of repeated runs (issue 8 section 2, issue 15 "Aggregation"):
// the median of each metric with a 95 % confidence interval of the median,
// over znslab.result/1 documents of one configuration.
//
// Interval method: distribution-free, by order statistics. With x(1) <= ...
// <= x(N) the sorted values, the number of values below the true median is
// Binomial(N, 1/2), so [x(j), x(N+1-j)] covers the median with probability
//   C(j) = P(j <= B <= N-j) = sum_{i=j}^{N-j} binom(N,i) / 2^N.
// We take the largest j (the narrowest symmetric interval) with C(j) >= 0.95
// and record C(j) as ci_coverage (exact, not the nominal 0.95). For N < 6 no
// j reaches 0.95; the interval is then [min, max] with its real coverage
// 1 - 2 * 0.5^N (N=5: 0.9375, N=3: 0.75, N=1: 0). Example: N=10 gives
// [x(2), x(9)] with coverage 1 - 22/1024 = 0.978515625.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace znslab::harness {

struct MetricInterval {
  double median = 0;       // the sample median (mean of the two middle values when N is even)
  double ci95_low = 0;     // x(j), see the method above; always a number
  double ci95_high = 0;    // x(N+1-j)
  double ci_coverage = 0;  // exact binomial coverage of [ci95_low, ci95_high], in [0,1]
  std::vector<double> values;  // the input values, in input (run) order
};

// Median and interval of `values` (any order). Throws std::invalid_argument
// when `values` is empty or holds a NaN.
MetricInterval median_interval(std::vector<double> values);

// {"median","ci95_low","ci95_high","ci_coverage","values"}.
nlohmann::json to_json(const MetricInterval& m);

// True when the interval reaches further than 10 % of |median| on either
// side (the "noisy" flag of issue 8 section 2). A zero median is noisy when
// the interval has any width.
bool is_noisy(const MetricInterval& m);

// The latency percentiles aggregated (result names kept, issue 8 section 2).
inline const std::vector<std::string>& latency_percentiles() {
  static const std::vector<std::string> k{"p50", "p90", "p99", "p999", "max"};
  return k;
}

// Aggregates result documents (schema znslab.result/1) of one configuration:
//   {"<metric>": {median, ci95_low, ci95_high, ci_coverage, values}, ...,
//    "latency_ns": {"<op>": {"p50": {...}, "p90", "p99", "p999", "max"}},
//    "skipped_metrics": ["<metric>", ...]}
// A summary metric is aggregated when it is a number (not a bool) in every
// result; otherwise (null, string, bool, object, or missing from some
// result) its name is listed in skipped_metrics (sorted). A latency op or
// percentile is aggregated when it is numeric in every result. "values"
// follow the order of `results`. An empty `results` gives {"skipped_metrics": []}.
nlohmann::json aggregate_results(const std::vector<nlohmann::json>& results);

// The value of `metric` in one result: a summary key ("ns_per_object") or a
// latency path ("latency_ns.alloc.p99"). Returns false when absent or not a number.
bool metric_value(const nlohmann::json& result, const std::string& metric, double* out);

// Index of the result whose `metric` is nearest the median of that metric
// over all results having it (ties: the lowest index); -1 when no result
// has it as a number. Used to keep DIR/<label>.json as the median run.
int nearest_to_median(const std::vector<nlohmann::json>& results, const std::string& metric);

}  // namespace znslab::harness
