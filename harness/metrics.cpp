#include "harness/metrics.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace znslab::harness::metrics {

uint64_t steady_state_first_cycle(uint64_t cycles) {
  if (cycles < 2) throw std::invalid_argument("steady state needs at least 2 cycles, got " + std::to_string(cycles));
  uint64_t s0 = cycles / 10;
  if (cycles - s0 < 2) s0 = cycles - 2;
  return s0;
}

static void need(std::span<const uint64_t> v, uint64_t first, const char* what) {
  if (first >= v.size())
    throw std::invalid_argument(std::string(what) + ": first steady-state cycle " + std::to_string(first) +
                                " is past the series (" + std::to_string(v.size()) + " cycles)");
}

std::optional<double> rss_stability_pct(std::span<const uint64_t> rss, uint64_t first) {
  need(rss, first, "rss_stability_pct");
  auto [lo, hi] = std::minmax_element(rss.begin() + long(first), rss.end());
  if (*lo == 0) return std::nullopt;
  return 100.0 * double(*hi - *lo) / double(*lo);
}

std::optional<double> retention_pct(uint64_t post_free_rss, uint64_t peak_rss) {
  if (peak_rss == 0) return std::nullopt;
  return 100.0 * double(post_free_rss) / double(peak_rss);
}

std::optional<double> committed_drift_pct(std::span<const uint64_t> committed, uint64_t first) {
  if (committed.empty()) return std::nullopt;
  need(committed, first, "committed_drift_pct");
  const double f = double(committed[first]), l = double(committed.back());
  if (f == 0) return l == 0 ? std::optional<double>(0.0) : std::nullopt;
  return 100.0 * (l - f) / f;
}

uint64_t worst_post_free_cycle(std::span<const uint64_t> rss, uint64_t first) {
  need(rss, first, "worst_post_free_cycle");
  uint64_t worst = first;
  for (uint64_t c = first; c < rss.size(); ++c)
    if (rss[c] > rss[worst]) worst = c;
  return worst;
}

std::optional<double> ns_per_object(uint64_t phase_ns, uint64_t objects) {
  if (objects == 0) return std::nullopt;
  return double(phase_ns) / double(objects);
}

std::optional<double> ops_per_sec(uint64_t ops, uint64_t ns) {
  if (ns == 0) return std::nullopt;
  return double(ops) * 1e9 / double(ns);
}

std::optional<double> write_amplification(uint64_t device_bytes, uint64_t host_bytes) {
  if (host_bytes == 0) return std::nullopt;
  return double(device_bytes) / double(host_bytes);
}

}  // namespace znslab::harness::metrics
