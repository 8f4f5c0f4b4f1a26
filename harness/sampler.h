// Process samplers (DESIGN.md "Metrics"): RSS from /proc/self/statm,
// anonymous RSS and PSS from /proc/self/smaps_rollup, minor/major faults
// from getrusage(RUSAGE_SELF) and, when the kernel allows, from
// perf_event_open software counters (PERF_COUNT_SW_PAGE_FAULTS_MIN/_MAJ),
// one pair per attached thread, summed. Both fault sources are recorded
// because containers can under-report either; perf fields are null when
// perf_event_open is refused (the reason is in perf_info()).
//
// A sample is a JSON object:
//   rss_bytes        statm resident pages x page size            (bytes)
//   anon_rss_bytes   smaps_rollup "Anonymous"                    (bytes, null if unreadable)
//   anon_huge_bytes  smaps_rollup "AnonHugePages"                (bytes, null if unreadable)
//   pss_bytes        smaps_rollup "Pss"                          (bytes, null if unreadable)
//   minor_faults, major_faults             getrusage, since process start (count)
//   perf_minor_faults, perf_major_faults   perf counters of attached threads since attach (count | null)
//
// Thread-safety: sample() and attach_thread() may be called from any
// thread concurrently (a mutex guards the perf fd list). Not a fast path:
// sample() costs a few syscalls (~20-100 us with smaps_rollup).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace znslab::harness {

// One process sample as plain values (no heap allocation to take one):
// -1 marks a field that could not be read (null in JSON).
struct ProcSample {
  uint64_t rss_bytes = 0;
  int64_t anon_rss_bytes = -1, anon_huge_bytes = -1, pss_bytes = -1;
  uint64_t minor_faults = 0, major_faults = 0;
  int64_t perf_minor_faults = -1, perf_major_faults = -1;
  // Adds the fields above to `j` (names as listed in the file comment).
  void to_json(nlohmann::json& j) const;
};

class Sampler {
 public:
  Sampler();  // attaches the calling thread
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // Opens perf counters for the calling thread (call first thing in each
  // workload thread; counts only while the thread lives).
  void attach_thread();
  // One sample of the process (fields above).
  nlohmann::json sample() const;
  // The same without touching the heap (a stack buffer for smaps_rollup).
  void sample_into(ProcSample& out) const;
  // statm only (bytes): cheap enough for progress lines.
  uint64_t rss_bytes() const;
  // {"available": bool, "reason": str|null, "threads": n, "counters": [...]}
  nlohmann::json perf_info() const;

 private:
  int statm_fd_ = -1;
  mutable std::mutex mu_;
  std::vector<int> perf_fds_;  // pairs: minor, major
  bool perf_ok_ = true;
  std::string perf_reason_;
};

// A background thread taking a sample every `interval_ms` and handing it to
// `sink` (which must be thread-safe with respect to the caller). Used for the
// "periodic" phase of the time series.
class PeriodicSampler {
 public:
  PeriodicSampler() = default;
  ~PeriodicSampler() { stop(); }
  void start(uint32_t interval_ms, std::function<void()> tick);
  void stop();

 private:
  std::thread th_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

}  // namespace znslab::harness
