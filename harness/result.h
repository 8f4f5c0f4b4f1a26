// The result document (schema "znslab.result/1", DESIGN.md "Metrics") and
// the latency histogram every workload reports percentiles from.
//
// Thread-safety: ResultDoc is single-threaded (the runner thread owns it).
// LatencyHistogram: one per thread while recording; merge() afterwards.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace znslab::harness {

inline constexpr const char* kResultSchema = "znslab.result/1";

// Log-linear histogram of nanosecond values: exact below 128 ns, then 64
// sub-buckets per power of two (relative error <= 1/64, about 1.6 %), like
// HdrHistogram with 2 significant digits. Fixed size (~30 KiB), no
// allocation while recording; min, max, count and sum are exact.
class LatencyHistogram {
 public:
  void record(uint64_t ns) noexcept {
    ++counts_[index_of(ns)];
    ++count_;
    sum_ += ns;
    if (ns > max_) max_ = ns;
    if (ns < min_) min_ = ns;
  }
  void merge(const LatencyHistogram& o) noexcept;
  void clear() noexcept;
  uint64_t count() const noexcept { return count_; }
  uint64_t max() const noexcept { return max_; }
  uint64_t min() const noexcept { return count_ ? min_ : 0; }
  double mean() const noexcept { return count_ ? double(sum_) / double(count_) : 0.0; }
  // Value at quantile q in [0,1] (bucket midpoint, clamped to [min,max]); 0 if empty.
  uint64_t percentile(double q) const noexcept;
  // {"p50","p90","p99","p999","max","min","mean","count"} in ns.
  nlohmann::json to_json() const;

 private:
  static constexpr unsigned kSubBits = 6;                       // 64 sub-buckets
  static constexpr unsigned kLinear = 2u << kSubBits;           // 128 exact values
  static constexpr unsigned kBuckets = kLinear + 58 * (1u << kSubBits);
  static unsigned index_of(uint64_t v) noexcept {
    if (v < kLinear) return unsigned(v);
    unsigned msb = 63u - unsigned(__builtin_clzll(v));          // >= 7
    unsigned shift = msb - kSubBits;                             // >= 1
    unsigned sub = unsigned(v >> shift) - (1u << kSubBits);      // [0,64)
    return kLinear + (shift - 1) * (1u << kSubBits) + sub;
  }
  static uint64_t bucket_low(unsigned i) noexcept;
  static uint64_t bucket_high(unsigned i) noexcept;  // inclusive

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0, sum_ = 0, max_ = 0, min_ = UINT64_MAX;
};

// host: kernel, cpus, memory_bytes, thp_mode, page_size, hostname.
nlohmann::json host_info();
// The commit the binary was built from (embedded at build time; see
// harness/provenance.h), "-dirty" when tracked files differed from HEAD.
std::string git_rev();
// Current UTC time as ISO 8601 ("2026-11-21T14:05:00Z").
std::string utc_now_iso8601();

class ResultDoc {
 public:
  // Sets schema, experiment, started_at, git_rev, host; samples = [],
  // latency_ns = {}, summary = {}.
  explicit ResultDoc(std::string experiment);

  nlohmann::json& doc() noexcept { return doc_; }
  const nlohmann::json& doc() const noexcept { return doc_; }
  void set_config(const nlohmann::json& resolved) { doc_["config"] = resolved; }
  // {"name","version","options",...}
  void set_allocator(const nlohmann::json& a) { doc_["allocator"] = a; }
  // {"backend","uri","zone_count","zone_size","zone_capacity",...}
  void set_device(const nlohmann::json& d) { doc_["device"] = d; }
  // Appends a sample; adds "t_ns" (ns since the document was created) if absent.
  void add_sample(nlohmann::json sample);
  void set_latency(const std::string& op, const LatencyHistogram& h) {
    doc_["latency_ns"][op] = h.to_json();
  }
  nlohmann::json& summary() { return doc_["summary"]; }
  // ns since the document was created (the time base of samples' t_ns).
  uint64_t elapsed_ns() const noexcept;
  // CLOCK_MONOTONIC ns at creation (t_ns = monotonic_ns() - t0_ns()).
  uint64_t t0_ns() const noexcept { return t0_ns_; }
  // Writes pretty JSON (2-space indent) to `path` ("-" = stdout). The parent
  // folder must exist (callers create default folders; an explicit --out is
  // checked before the run). Throws RunError naming the path and errno.
  void write(const std::string& path) const;

 private:
  nlohmann::json doc_;
  uint64_t t0_ns_;
};

// CLOCK_MONOTONIC in ns.
uint64_t monotonic_ns() noexcept;

}  // namespace znslab::harness
