// Tables of aggregated results, for `znslab report` and `znslab sweep`.
//
// Three inputs, one table form (a row per configuration, a column per
// metric, each cell "median [ci95_low..ci95_high]", a trailing "~" when the
// interval is noisy, see is_noisy()):
//   - a sweep summary (schema znslab.sweep-summary/1): a row per point and
//     allocator, the swept parameters as leading columns, then the failed runs;
//   - a compare summary ({"allocators": {name: {metric: interval}}}): a row
//     per allocator;
//   - plain result documents: grouped by label (the result's "label", else
//     its allocator's name, else its experiment), split further by the config
//     keys that differ between documents of one label ("glibc threads=2");
//     each group aggregated with aggregate_results(). Identical documents
//     (a median copy beside its repeats) count once.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace znslab::harness {

struct ReportOptions {
  std::string format = "text";       // text | md | csv | json
  // Metrics to show: summary names or "latency_ns.<op>.<pct>"; empty = the
  // headline metrics present (else every aggregated metric); {"all"} = all.
  std::vector<std::string> metrics;
};

// One aggregated configuration: identifying columns and an aggregate_results() object.
struct ReportRow {
  std::vector<std::pair<std::string, std::string>> keys;  // ("threads","2"), ("allocator","glibc")
  nlohmann::json agg;
};

// Groups plain result documents (see above); `docs` pairs a path with its document.
std::vector<ReportRow> group_results(const std::vector<std::pair<std::string, nlohmann::json>>& docs);

// Rows of a sweep summary or of a compare summary.
std::vector<ReportRow> summary_rows(const nlohmann::json& summary);

// Renders rows in opt.format (json: {"rows": [{keys..., "metrics": agg}]}).
std::string render_rows(const std::vector<ReportRow>& rows, const ReportOptions& opt);

// A sweep summary: its rows, then "failed runs:" with each run's error.
std::string render_sweep_summary(const nlohmann::json& summary, const ReportOptions& opt);

// "123.4 [120.1..130.9]" (+ " ~" when noisy); byte metrics in MiB.
std::string format_interval(const std::string& metric, const nlohmann::json& interval);

}  // namespace znslab::harness
