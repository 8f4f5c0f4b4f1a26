#include "harness/table.h"

#include <algorithm>
#include <cstdio>
#include <functional>

#include "harness/aggregate.h"

namespace znslab::harness {

using nlohmann::json;

const json* json_at_path(const json& doc, const std::string& path) {
  const json* cur = &doc;
  size_t start = 0;
  while (start <= path.size()) {
    size_t dot = path.find('.', start);
    std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(key);
    if (it == cur->end()) return nullptr;
    cur = &*it;
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return cur;
}

std::string render_table(const std::vector<std::string>& headers,
                         const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> w(headers.size());
  for (size_t i = 0; i < headers.size(); ++i) w[i] = headers[i].size();
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size() && i < w.size(); ++i) w[i] = std::max(w[i], r[i].size());
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < w.size(); ++i) {
      std::string c = i < cells.size() ? cells[i] : "";
      std::string pad(w[i] - std::min(w[i], c.size()), ' ');
      out += i == 0 ? c + pad : "  " + pad + c;
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += "\n";
  };
  line(headers);
  std::vector<std::string> rule;
  for (size_t x : w) rule.push_back(std::string(x, '-'));
  line(rule);
  for (const auto& r : rows) line(r);
  return out;
}

namespace {

struct Column {
  const char* header;
  const char* path;
  std::function<std::string(const json&)> fmt;
};

std::string fmt_num(double v, int prec) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", prec, v);
  return b;
}

auto mib = [](const json& v) { return fmt_num(v.get<double>() / 1048576.0, 1); };
auto pct = [](const json& v) { return fmt_num(v.get<double>(), 1); };
auto pct2 = [](const json& v) { return fmt_num(v.get<double>(), 2); };
auto num0 = [](const json& v) { return fmt_num(v.get<double>(), 0); };
auto num1 = [](const json& v) { return fmt_num(v.get<double>(), 1); };
auto mops = [](const json& v) { return fmt_num(v.get<double>() / 1e6, 2); };
auto str = [](const json& v) {
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  auto g = s.find("-0-g");  // jemalloc: "5.3.0-0-g54eaed1d..." -> "5.3.0"
  if (g != std::string::npos) s.resize(g);
  if (s.size() > 24) s = s.substr(0, 21) + "...";
  return s;
};

const std::vector<Column>& columns() {
  static const std::vector<Column> cols = {
      {"version", "allocator.version", str},
      {"MiB/s", "summary.throughput_mib_s", num1},
      {"fio ratio", "summary.fio_ratio", pct2},
      {"WA", "summary.write_amplification", pct2},
      {"pin+unpin ns", "summary.pin_unpin_ns", num1},
      {"peak RSS MiB", "summary.peak_rss_bytes", mib},
      {"post-free RSS MiB", "summary.post_free_rss_bytes", mib},
      {"live MiB", "summary.live_bytes_post_free", mib},
      {"retention %", "summary.retention_pct", pct},
      {"RSS stab. %", "summary.rss_stability_pct", pct},
      {"commit drift %", "summary.committed_drift_pct", pct2},
      {"ns/object", "summary.ns_per_object", num1},
      {"Mops/s", "summary.ops_per_sec", mops},
      {"alloc p50", "latency_ns.alloc.p50", num0},
      {"alloc p99", "latency_ns.alloc.p99", num0},
      {"alloc p99.9", "latency_ns.alloc.p999", num0},
      {"free p50", "latency_ns.free.p50", num0},
      {"free p99", "latency_ns.free.p99", num0},
      {"free p99.9", "latency_ns.free.p999", num0},
  };
  return cols;
}

}  // namespace

TableData comparison_table(const std::vector<std::pair<std::string, json>>& results) {
  TableData t;
  t.headers.push_back("allocator");
  std::vector<const Column*> shown;
  for (const auto& c : columns()) {
    bool any = false;
    for (const auto& [_, doc] : results) any |= !doc.is_null() && json_at_path(doc, c.path) != nullptr;
    if (any) {
      shown.push_back(&c);
      t.headers.push_back(c.header);
    }
  }
  for (const auto& [name, doc] : results) {
    std::vector<std::string> row{name};
    for (const Column* c : shown) {
      if (doc.is_null()) {
        row.push_back(c == shown.front() ? "FAILED" : "");
        continue;
      }
      const json* v = json_at_path(doc, c->path);
      row.push_back(!v || v->is_null() ? "-" : c->fmt(*v));
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

namespace {

// The aggregate entry of a column path: "summary.X" -> agg["X"],
// "latency_ns.op.pNN" -> agg["latency_ns"]["op"]["pNN"], others as is.
const json* agg_at(const json& agg, const std::string& path) {
  if (path.rfind("summary.", 0) == 0) {
    auto it = agg.find(path.substr(8));
    return it == agg.end() ? nullptr : &*it;
  }
  return json_at_path(agg, path);
}

MetricInterval interval_of(const json& j) {
  MetricInterval m;
  m.median = j.at("median").get<double>();
  m.ci95_low = j.at("ci95_low").get<double>();
  m.ci95_high = j.at("ci95_high").get<double>();
  return m;
}

std::string csv_cell(const std::string& c) {
  if (c.find_first_of(",\"\n") == std::string::npos) return c;
  std::string o = "\"";
  for (char ch : c) o += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return o + "\"";
}

}  // namespace

TableData interval_table(const std::vector<std::pair<std::string, json>>& aggregates) {
  TableData t;
  t.headers.push_back("label");
  std::vector<const Column*> shown;
  for (const auto& c : columns()) {
    bool any = false;
    for (const auto& [_, agg] : aggregates) any |= !agg.is_null() && agg_at(agg, c.path) != nullptr;
    if (any) {
      shown.push_back(&c);
      t.headers.push_back(c.header);
    }
  }
  for (const auto& [label, agg] : aggregates) {
    std::vector<std::string> row{label};
    for (const Column* c : shown) {
      if (agg.is_null()) {
        row.push_back(c == shown.front() ? "FAILED" : "");
        continue;
      }
      const json* v = agg_at(agg, c->path);
      if (!v || v->is_null()) {
        row.push_back("-");
      } else if (v->is_object() && v->contains("median")) {
        MetricInterval m = interval_of(*v);
        std::string cell = c->fmt(json(m.median));
        const std::string lo = c->fmt(json(m.ci95_low)), hi = c->fmt(json(m.ci95_high));
        if (lo != cell || hi != cell) cell += " [" + lo + "-" + hi + "]";
        if (is_noisy(m)) cell += "!";
        row.push_back(cell);
      } else {
        row.push_back(c->fmt(*v));
      }
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

std::string render_table_md(const std::vector<std::string>& headers,
                            const std::vector<std::vector<std::string>>& rows) {
  auto esc = [](std::string c) {
    std::string o;
    for (char ch : c) o += ch == '|' ? std::string("\\|") : std::string(1, ch);
    return o;
  };
  std::string out = "|";
  for (const auto& h : headers) out += " " + esc(h) + " |";
  out += "\n|";
  for (size_t i = 0; i < headers.size(); ++i) out += i == 0 ? " --- |" : " ---: |";
  out += "\n";
  for (const auto& r : rows) {
    out += "|";
    for (size_t i = 0; i < headers.size(); ++i) out += " " + esc(i < r.size() ? r[i] : "") + " |";
    out += "\n";
  }
  return out;
}

std::string render_table_csv(const std::vector<std::string>& headers,
                             const std::vector<std::vector<std::string>>& rows) {
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < headers.size(); ++i)
      out += (i ? "," : "") + csv_cell(i < cells.size() ? cells[i] : "");
    out += "\n";
  };
  line(headers);
  for (const auto& r : rows) line(r);
  return out;
}

std::string render_table_as(const std::string& format, const TableData& t) {
  if (format == "md") return render_table_md(t.headers, t.rows);
  if (format == "csv") return render_table_csv(t.headers, t.rows);
  return render_table(t.headers, t.rows);
}

}  // namespace znslab::harness
