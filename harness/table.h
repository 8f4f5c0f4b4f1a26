// The comparison table `znslab compare` prints (and summary.json carries).
//
// One row per allocator, columns chosen from what the results hold: a
// column is shown when at least one result has its field. Units are in the
// headers (MiB = 2^20 bytes, ns, %, Mops/s = 10^6 operations per second).
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace znslab::harness {

// Plain-text table with right-aligned columns (left-aligned first column).
std::string render_table(const std::vector<std::string>& headers,
                         const std::vector<std::vector<std::string>>& rows);

struct TableData {
  std::vector<std::string> headers;
  std::vector<std::vector<std::string>> rows;
};
// Rows for (allocator name, result document or null when the run failed).
TableData comparison_table(const std::vector<std::pair<std::string, nlohmann::json>>& results);

// Rows for (label, aggregate or null when every run failed), where an
// aggregate is aggregate_results() of the label's runs plus "allocator"
// (the median run's allocator object). A cell is "median [low-high]", or
// the value alone when the interval is a point; a trailing "!" flags a
// noisy metric (interval wider than +-10 % of the median, is_noisy()).
TableData interval_table(const std::vector<std::pair<std::string, nlohmann::json>>& aggregates);

// The same table as Markdown (GitHub pipes) or CSV (RFC 4180 quoting).
std::string render_table_md(const std::vector<std::string>& headers,
                            const std::vector<std::vector<std::string>>& rows);
std::string render_table_csv(const std::vector<std::string>& headers,
                             const std::vector<std::vector<std::string>>& rows);
// Dispatches on format "text" | "md" | "csv".
std::string render_table_as(const std::string& format, const TableData& t);

// Value at a dotted path ("summary.peak_rss_bytes", "latency_ns.alloc.p99"),
// or nullptr when absent.
const nlohmann::json* json_at_path(const nlohmann::json& doc, const std::string& path);

}  // namespace znslab::harness
