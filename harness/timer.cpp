#include "harness/timer.h"

#include <algorithm>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

namespace znslab::harness {
namespace detail {
bool g_use_tsc = false;
double g_ns_per_tick = 1.0;
}  // namespace detail

namespace {

bool invariant_tsc() {
#if defined(__x86_64__)
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("flags", 0) == 0)
      return line.find(" constant_tsc") != std::string::npos &&
             line.find(" nonstop_tsc") != std::string::npos;
  }
#endif
  return false;
}

TimerCalibration calibrate() {
  TimerCalibration c;
#if defined(__x86_64__)
  if (invariant_tsc()) {
    // Two windows of ~25 ms; keep the second (warm caches, settled clock).
    double ratio = 0;
    for (int round = 0; round < 2; ++round) {
      uint64_t m0 = detail::mono_ns(), t0 = __rdtsc();
      uint64_t m1;
      do { m1 = detail::mono_ns(); } while (m1 - m0 < 25'000'000ull);
      uint64_t t1 = __rdtsc();
      ratio = double(m1 - m0) / double(t1 - t0);
    }
    if (ratio > 0) {
      c.use_tsc = true;
      c.ns_per_tick = ratio;
      c.tsc_ghz = 1.0 / ratio;
      c.source = "rdtsc (lfence-ordered; rdtscp at stop)";
    }
  }
#endif
  detail::g_use_tsc = c.use_tsc;
  detail::g_ns_per_tick = c.use_tsc ? c.ns_per_tick : 1.0;
  // Overhead of an empty timed region.
  std::vector<double> v(20000);
  for (auto& x : v) {
    uint64_t a = timer_start();
    uint64_t b = timer_stop();
    x = double(b - a) * detail::g_ns_per_tick;
  }
  std::sort(v.begin(), v.end());
  c.overhead_ns_min = v.front();
  c.overhead_ns_p50 = v[v.size() / 2];
  c.overhead_ns_p99 = v[v.size() * 99 / 100];
  return c;
}

}  // namespace

const TimerCalibration& timer_calibration() {
  static std::once_flag once;
  static TimerCalibration cal;
  std::call_once(once, [] { cal = calibrate(); });
  return cal;
}

nlohmann::json timer_json() {
  const auto& c = timer_calibration();
  return nlohmann::json{{"source", c.source},
                        {"ns_per_tick", c.ns_per_tick},
                        {"tsc_ghz", c.use_tsc ? nlohmann::json(c.tsc_ghz) : nlohmann::json(nullptr)},
                        {"overhead_ns_p50", c.overhead_ns_p50},
                        {"overhead_ns_min", c.overhead_ns_min},
                        {"overhead_ns_p99", c.overhead_ns_p99},
                        {"subtracted", false}};
}

}  // namespace znslab::harness
