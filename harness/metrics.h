// The summary metrics of DESIGN.md "Metrics" as pure functions over sample
// series (issue 8, section 1), so each definition lives in one place and is
// tested on hand-made series (tests/harness_metrics_test.cpp).
//
// Per-cycle series are indexed by cycle (0 .. cycles-1); bytes are bytes.
// Thread-safety: pure functions. Errors: std::invalid_argument (a config
// boundary error) for series shorter than the metric needs; a metric that
// cannot be defined on the data (no counter, a zero denominator) is
// std::nullopt, reported as null in JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace znslab::harness::metrics {

// First steady-state cycle: every cycle after the first 10 % (floor), and at
// least 2 steady-state cycles. cycles >= 2 (else invalid_argument).
//   cycles 2 -> 0; 20 -> 2; 150 -> 15.
uint64_t steady_state_first_cycle(uint64_t cycles);

// RSS stability: (max - min) / min of `post_free_rss` over cycles
// [first, end), in %. < 10 bounded, > 100 unbounded (DESIGN.md).
// nullopt when the minimum is 0 (undefined). Needs first < size.
std::optional<double> rss_stability_pct(std::span<const uint64_t> post_free_rss, uint64_t first);

// Retention of one cycle: post-free RSS / peak RSS, in %; nullopt when the
// peak is 0.
std::optional<double> retention_pct(uint64_t post_free_rss, uint64_t peak_rss);

// Committed drift: committed bytes after the last cycle vs after the first
// steady-state cycle, in %: 100 x (last - first) / first. When first is 0:
// 0 if last is 0 too, else nullopt (growth from nothing has no ratio). An
// empty series (an allocator without the counter) is nullopt.
std::optional<double> committed_drift_pct(std::span<const uint64_t> post_free_committed, uint64_t first);

// The cycle in [first, end) with the largest post-free RSS (the first such).
uint64_t worst_post_free_cycle(std::span<const uint64_t> post_free_rss, uint64_t first);

// ns per object: wall time of the timed phases / objects allocated;
// nullopt for 0 objects.
std::optional<double> ns_per_object(uint64_t phase_ns, uint64_t objects);

// Operations per second; nullopt for a zero duration.
std::optional<double> ops_per_sec(uint64_t ops, uint64_t ns);

// Write amplification: device bytes written (host + GC copies) / host bytes
// written; nullopt when nothing was written by the host.
std::optional<double> write_amplification(uint64_t device_bytes, uint64_t host_bytes);

}  // namespace znslab::harness::metrics
