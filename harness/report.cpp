// Tables of aggregated results; see report.h.
#include "harness/report.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "harness/aggregate.h"
#include "harness/table.h"

using nlohmann::json;

namespace znslab::harness {

namespace {

const std::vector<std::string>& headline_metrics() {
  static const std::vector<std::string> k{
      "ns_per_object",       "ops_per_sec",          "post_free_rss_bytes",  "peak_rss_bytes",
      "retention_pct",       "rss_stability_pct",    "committed_drift_pct",  "write_amplification",
      "throughput_mib_s",    "fio_ratio",            "latency_ns.alloc.p99", "latency_ns.free.p99",
      "latency_ns.write.p99", "latency_ns.read.p99"};
  return k;
}

bool is_bytes(const std::string& m) { return m.size() > 6 && m.compare(m.size() - 6, 6, "_bytes") == 0; }

std::string header_of(const std::string& m) {
  if (is_bytes(m)) return m.substr(0, m.size() - 6) + " (MiB)";
  if (m.rfind("latency_ns.", 0) == 0) return m.substr(11) + " (ns)";
  return m;
}

std::string num(double v) {
  char b[64];
  const double a = v < 0 ? -v : v;
  if (a != 0 && (a >= 1e7 || a < 1e-3)) std::snprintf(b, sizeof b, "%.3g", v);
  else if (a >= 100) std::snprintf(b, sizeof b, "%.0f", v);
  else std::snprintf(b, sizeof b, "%.3g", v);
  return b;
}

const json* interval_of(const json& agg, const std::string& metric) {
  if (metric.rfind("latency_ns.", 0) == 0) {
    const std::string rest = metric.substr(11);
    const size_t dot = rest.rfind('.');
    if (dot == std::string::npos) return nullptr;
    auto l = agg.find("latency_ns");
    if (l == agg.end()) return nullptr;
    auto o = l->find(rest.substr(0, dot));
    if (o == l->end()) return nullptr;
    auto p = o->find(rest.substr(dot + 1));
    return p == o->end() ? nullptr : &*p;
  }
  auto it = agg.find(metric);
  if (it == agg.end() || !it->is_object() || !it->contains("median")) return nullptr;
  return &*it;
}

std::vector<std::string> all_metrics(const std::vector<ReportRow>& rows) {
  std::set<std::string> s;
  for (const auto& r : rows) {
    for (const auto& kv : r.agg.items())
      if (kv.value().is_object() && kv.value().contains("median")) s.insert(kv.key());
    if (r.agg.contains("latency_ns"))
      for (const auto& op : r.agg["latency_ns"].items())
        for (const auto& p : op.value().items()) s.insert("latency_ns." + op.key() + "." + p.key());
  }
  return {s.begin(), s.end()};
}

std::vector<std::string> chosen_metrics(const std::vector<ReportRow>& rows, const ReportOptions& opt) {
  if (opt.metrics.size() == 1 && opt.metrics[0] == "all") return all_metrics(rows);
  const std::vector<std::string>& want = opt.metrics.empty() ? headline_metrics() : opt.metrics;
  std::vector<std::string> out;
  for (const auto& m : want) {
    bool present = false;
    for (const auto& r : rows) present = present || interval_of(r.agg, m) != nullptr;
    if (present || !opt.metrics.empty()) out.push_back(m);
  }
  if (out.empty()) return all_metrics(rows);
  return out;
}

std::string value_text(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

}  // namespace

std::string format_interval(const std::string& metric, const json& iv) {
  const double scale = is_bytes(metric) ? 1.0 / (1024.0 * 1024.0) : 1.0;
  MetricInterval m;
  m.median = iv.value("median", 0.0);
  m.ci95_low = iv.value("ci95_low", 0.0);
  m.ci95_high = iv.value("ci95_high", 0.0);
  std::string s = num(m.median * scale);
  const size_t n = iv.contains("values") ? iv["values"].size() : 0;
  if (n > 1) s += " [" + num(m.ci95_low * scale) + ".." + num(m.ci95_high * scale) + "]";
  if (n > 1 && is_noisy(m)) s += " ~";
  return s;
}

std::vector<ReportRow> group_results(const std::vector<std::pair<std::string, json>>& docs) {
  // label -> distinct documents (deduplicated by content)
  std::map<std::string, std::vector<const json*>> by_label;
  std::set<std::string> seen;
  for (const auto& [path, d] : docs) {
    if (!seen.insert(d.dump()).second) continue;
    std::string label;
    if (d.contains("label") && d["label"].is_string()) label = d["label"].get<std::string>();
    else if (d.contains("allocator") && d["allocator"].is_object() && d["allocator"].contains("name"))
      label = value_text(d["allocator"]["name"]);
    else label = d.value("experiment", "result");
    by_label[label].push_back(&d);
  }
  std::vector<ReportRow> rows;
  for (const auto& [label, list] : by_label) {
    // Config keys that differ within the label split it into groups.
    std::set<std::string> differ;
    for (const json* d : list) {
      const json& c = d->value("config", json::object());
      for (const auto& kv : c.items())
        for (const json* e : list) {
          const json& c2 = e->value("config", json::object());
          if (!c2.contains(kv.key()) || c2[kv.key()] != kv.value()) differ.insert(kv.key());
        }
    }
    std::map<std::string, std::vector<json>> groups;
    std::map<std::string, std::vector<std::pair<std::string, std::string>>> group_keys;
    for (const json* d : list) {
      std::string id;
      std::vector<std::pair<std::string, std::string>> keys{{"label", label}};
      for (const auto& k : differ) {
        const json c = d->value("config", json::object());
        const std::string v = c.contains(k) ? value_text(c[k]) : "-";
        id += k + "=" + v + " ";
        keys.emplace_back(k, v);
      }
      groups[id].push_back(*d);
      group_keys[id] = keys;
    }
    for (auto& [id, g] : groups) {
      ReportRow r;
      r.keys = group_keys[id];
      r.agg = aggregate_results(g);
      r.agg["n"] = g.size();
      rows.push_back(std::move(r));
    }
  }
  return rows;
}

std::vector<ReportRow> summary_rows(const json& summary) {
  std::vector<ReportRow> rows;
  if (summary.contains("points")) {
    for (const auto& p : summary["points"]) {
      for (const auto& a : p["allocators"].items()) {
        ReportRow r;
        for (const auto& kv : p["params"].items()) r.keys.emplace_back(kv.key(), value_text(kv.value()));
        r.keys.emplace_back("allocator", a.key());
        r.agg = a.value();
        r.agg["n"] = a.value().contains("runs") ? a.value()["runs"].size() : 0;
        rows.push_back(std::move(r));
      }
    }
  } else if (summary.contains("allocators") && summary["allocators"].is_object()) {
    for (const auto& a : summary["allocators"].items()) {
      ReportRow r;
      r.keys.emplace_back("allocator", a.key());
      r.agg = a.value();
      if (!r.agg.contains("n")) r.agg["n"] = summary.value("repeats", json(nullptr));
      rows.push_back(std::move(r));
    }
  }
  return rows;
}

std::string render_rows(const std::vector<ReportRow>& rows, const ReportOptions& opt) {
  if (opt.format == "json") {
    json out = json::array();
    for (const auto& r : rows) {
      json o = json::object();
      for (const auto& [k, v] : r.keys) o[k] = v;
      o["metrics"] = r.agg;
      out.push_back(o);
    }
    return json({{"rows", out}}).dump(2) + "\n";
  }
  const auto metrics = chosen_metrics(rows, opt);
  std::vector<std::string> key_names;
  for (const auto& r : rows)
    for (const auto& kv : r.keys)
      if (std::find(key_names.begin(), key_names.end(), kv.first) == key_names.end()) key_names.push_back(kv.first);
  std::vector<std::string> headers = key_names;
  headers.push_back("n");
  for (const auto& m : metrics) headers.push_back(header_of(m));
  std::vector<std::vector<std::string>> cells;
  for (const auto& r : rows) {
    std::vector<std::string> c;
    for (const auto& k : key_names) {
      std::string v = "-";
      for (const auto& kv : r.keys)
        if (kv.first == k) v = kv.second;
      c.push_back(v);
    }
    c.push_back(r.agg.contains("n") ? value_text(r.agg["n"]) : "-");
    for (const auto& m : metrics) {
      const json* iv = interval_of(r.agg, m);
      c.push_back(iv ? format_interval(m, *iv) : "-");
    }
    cells.push_back(std::move(c));
  }
  std::string out;
  if (opt.format == "csv") {
    auto line = [&](const std::vector<std::string>& v) {
      for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + csv_cell(v[i]);
      out += "\n";
    };
    // CSV carries the numbers apart: <metric>, <metric>_low, <metric>_high.
    std::vector<std::string> h = key_names;
    h.push_back("n");
    for (const auto& m : metrics) h.insert(h.end(), {m, m + "_ci95_low", m + "_ci95_high"});
    line(h);
    for (size_t i = 0; i < rows.size(); ++i) {
      std::vector<std::string> v(cells[i].begin(), cells[i].begin() + long(key_names.size() + 1));
      for (const auto& m : metrics) {
        const json* iv = interval_of(rows[i].agg, m);
        for (const char* f : {"median", "ci95_low", "ci95_high"})
          v.push_back(iv && iv->contains(f) ? (*iv)[f].dump() : "");
      }
      line(v);
    }
    return out;
  }
  if (opt.format == "md") {
    auto line = [&](const std::vector<std::string>& v) {
      out += "|";
      for (const auto& s : v) out += " " + s + " |";
      out += "\n";
    };
    line(headers);
    std::vector<std::string> rule;
    for (size_t i = 0; i < headers.size(); ++i) rule.push_back(i < key_names.size() ? "---" : "---:");
    line(rule);
    for (const auto& c : cells) line(c);
  } else {
    out = render_table(headers, cells);
  }
  out += std::string(opt.format == "md" ? "\n" : "") +
         "cells: median [interval of the median by order statistics: 95 % from n >= 6, [min..max] below]; "
         "~ = interval wider than +-10 % of the median\n";
  return out;
}

std::string render_sweep_summary(const json& summary, const ReportOptions& opt) {
  std::string out = render_rows(summary_rows(summary), opt);
  if (opt.format == "json") return out;
  const json& failed = summary.value("failed_runs", json::array());
  if (!failed.empty() && opt.format != "csv") {
    out += "\nfailed runs (" + std::to_string(failed.size()) + "):\n";
    for (const auto& f : failed) {
      out += "  " + f.value("name", std::string("?")) + " " + f.value("params", json::object()).dump() +
             " on " + value_text(f.value("host", json("?"))) + ": " + f.value("error", std::string("")) + "\n";
    }
  }
  return out;
}

}  // namespace znslab::harness
