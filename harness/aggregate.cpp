// Median intervals and aggregation of repeated runs; method in aggregate.h.
#include "harness/aggregate.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <stdexcept>

namespace znslab::harness {

namespace {

// P(B = i) for B ~ Binomial(n, 1/2), through lgamma so that any n works.
double binom_half_pmf(size_t n, size_t i) {
  const double ln = std::lgamma(double(n) + 1) - std::lgamma(double(i) + 1) -
                    std::lgamma(double(n - i) + 1) - double(n) * std::log(2.0);
  return std::exp(ln);
}

bool is_number(const nlohmann::json& v) { return v.is_number(); }  // bools are not numbers in nlohmann

}  // namespace

MetricInterval median_interval(std::vector<double> values) {
  if (values.empty()) throw std::invalid_argument("median_interval: no values");
  for (double v : values)
    if (std::isnan(v)) throw std::invalid_argument("median_interval: NaN value");
  MetricInterval m;
  m.values = values;
  std::vector<double>& x = values;
  std::sort(x.begin(), x.end());
  const size_t n = x.size();
  m.median = (n % 2) ? x[n / 2] : (x[n / 2 - 1] + x[n / 2]) / 2;

  // j is 1-based: the interval is [x(j), x(n+1-j)]; coverage(j) = 1 - 2 P(B <= j-1).
  constexpr double kLevel = 0.95;
  constexpr double kEps = 1e-12;
  size_t j = 1;
  double below = binom_half_pmf(n, 0);  // P(B <= j-1)
  double coverage = 1 - 2 * below;
  while (j + 1 <= (n + 1) / 2) {
    const double next_below = below + binom_half_pmf(n, j);
    const double next_cov = 1 - 2 * next_below;
    if (next_cov < kLevel - kEps) break;
    ++j;
    below = next_below;
    coverage = next_cov;
  }
  m.ci95_low = x[j - 1];
  m.ci95_high = x[n - j];
  m.ci_coverage = std::max(0.0, coverage);
  return m;
}

nlohmann::json to_json(const MetricInterval& m) {
  return {{"median", m.median},
          {"ci95_low", m.ci95_low},
          {"ci95_high", m.ci95_high},
          {"ci_coverage", m.ci_coverage},
          {"values", m.values}};
}

bool is_noisy(const MetricInterval& m) {
  const double reach = std::max(m.median - m.ci95_low, m.ci95_high - m.median);
  return reach > 0.10 * std::fabs(m.median);
}

nlohmann::json aggregate_results(const std::vector<nlohmann::json>& results) {
  nlohmann::json out = nlohmann::json::object();
  std::set<std::string> skipped;
  if (results.empty()) {
    out["skipped_metrics"] = nlohmann::json::array();
    return out;
  }
  // Summary metrics: the union of names, aggregated only when numeric everywhere.
  std::set<std::string> names;
  for (const auto& r : results) {
    auto it = r.find("summary");
    if (it == r.end() || !it->is_object()) continue;
    for (const auto& kv : it->items()) names.insert(kv.key());
  }
  for (const auto& name : names) {
    std::vector<double> vals;
    bool ok = true;
    for (const auto& r : results) {
      auto s = r.find("summary");
      if (s == r.end() || !s->is_object() || !s->contains(name) || !is_number((*s)[name])) {
        ok = false;
        break;
      }
      vals.push_back((*s)[name].get<double>());
    }
    if (ok && name != "latency_ns" && name != "skipped_metrics")
      out[name] = to_json(median_interval(std::move(vals)));
    else
      skipped.insert(name);
  }
  // Latency percentiles per op.
  std::set<std::string> ops;
  for (const auto& r : results) {
    auto it = r.find("latency_ns");
    if (it == r.end() || !it->is_object()) continue;
    for (const auto& kv : it->items()) ops.insert(kv.key());
  }
  nlohmann::json lat = nlohmann::json::object();
  for (const auto& op : ops) {
    for (const auto& p : latency_percentiles()) {
      std::vector<double> vals;
      for (const auto& r : results) {
        double v;
        if (!metric_value(r, "latency_ns." + op + "." + p, &v)) break;
        vals.push_back(v);
      }
      if (vals.size() == results.size())
        lat[op][p] = to_json(median_interval(std::move(vals)));
      else
        skipped.insert("latency_ns." + op + "." + p);
    }
  }
  if (!lat.empty()) out["latency_ns"] = lat;
  out["skipped_metrics"] = nlohmann::json(std::vector<std::string>(skipped.begin(), skipped.end()));
  return out;
}

bool metric_value(const nlohmann::json& result, const std::string& metric, double* out) {
  const nlohmann::json* node = nullptr;
  if (metric.rfind("latency_ns.", 0) == 0) {
    const std::string rest = metric.substr(11);
    const size_t dot = rest.rfind('.');
    if (dot == std::string::npos) return false;
    const std::string op = rest.substr(0, dot), pct = rest.substr(dot + 1);
    auto l = result.find("latency_ns");
    if (l == result.end() || !l->is_object()) return false;
    auto o = l->find(op);
    if (o == l->end() || !o->is_object()) return false;
    auto p = o->find(pct);
    if (p == o->end()) return false;
    node = &*p;
  } else {
    auto s = result.find("summary");
    if (s == result.end() || !s->is_object()) return false;
    auto v = s->find(metric);
    if (v == s->end()) return false;
    node = &*v;
  }
  if (!is_number(*node)) return false;
  *out = node->get<double>();
  return true;
}

int nearest_to_median(const std::vector<nlohmann::json>& results, const std::string& metric) {
  std::vector<std::pair<int, double>> have;
  for (size_t i = 0; i < results.size(); ++i) {
    double v;
    if (metric_value(results[i], metric, &v) && !std::isnan(v)) have.emplace_back(int(i), v);
  }
  if (have.empty()) return -1;
  std::vector<double> vals;
  for (const auto& h : have) vals.push_back(h.second);
  const double med = median_interval(vals).median;
  int best = -1;
  double best_d = 0;
  for (const auto& [i, v] : have) {
    const double d = std::fabs(v - med);
    if (best < 0 || d < best_d) {
      best = i;
      best_d = d;
    }
  }
  return best;
}

}  // namespace znslab::harness
