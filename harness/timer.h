// Cycle-counter timing for individually timed operations.
//
// On x86-64 with an invariant TSC (cpuinfo flags constant_tsc and
// nonstop_tsc) a timed region is `lfence; rdtsc` ... `rdtscp; lfence`, and
// ticks are converted to ns with a factor calibrated once against
// CLOCK_MONOTONIC (~50 ms). Elsewhere clock_gettime(CLOCK_MONOTONIC) is used
// for both ends (source "clock_gettime"). The timer's own overhead (an empty
// timed region) is measured and reported in the result JSON under
// "timer" -- it is NOT subtracted from the recorded latencies.
//
// Thread-safety: calibrate() runs once (std::call_once); the rest is
// reentrant and fast-path (no syscalls on the TSC path).
#pragma once

#include <cstdint>
#include <time.h>

#include <nlohmann/json.hpp>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace znslab::harness {

struct TimerCalibration {
  bool use_tsc = false;        // false: clock_gettime for both ends
  double ns_per_tick = 1.0;    // tick -> ns
  double tsc_ghz = 0;          // ticks per ns (GHz), TSC only
  // An empty timed region (start then stop), ns: median / minimum / p99.
  double overhead_ns_p50 = 0, overhead_ns_min = 0, overhead_ns_p99 = 0;
  const char* source = "clock_gettime";
};

// Calibrates on the first call (~50 ms) and returns the cached result.
const TimerCalibration& timer_calibration();
// {"source","ns_per_tick","tsc_ghz","overhead_ns_p50","overhead_ns_min","overhead_ns_p99","subtracted":false}
nlohmann::json timer_json();

namespace detail {
inline uint64_t mono_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}
extern bool g_use_tsc;
extern double g_ns_per_tick;
}  // namespace detail

// Start of a timed region, in ticks.
inline uint64_t timer_start() noexcept {
#if defined(__x86_64__)
  if (detail::g_use_tsc) {
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
  }
#endif
  return detail::mono_ns();
}
// End of a timed region, in ticks.
inline uint64_t timer_stop() noexcept {
#if defined(__x86_64__)
  if (detail::g_use_tsc) {
    unsigned aux;
    uint64_t t = __rdtscp(&aux);
    _mm_lfence();
    return t;
  }
#endif
  return detail::mono_ns();
}
// Ticks -> ns (call timer_calibration() once before).
inline uint64_t ticks_to_ns(uint64_t ticks) noexcept {
  return uint64_t(double(ticks) * detail::g_ns_per_tick + 0.5);
}

}  // namespace znslab::harness
