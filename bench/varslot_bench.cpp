// Microbenchmark (not a test): the cost of growing a src/varslot pool by one
// 16 MiB extent (issue 13 target: p99 <= 1 ms), per growth mode and size
// class, measured in the host with no other load: ftruncate or extent-file
// creation, mapping, metadata initialisation (16 B per slot: 256 KiB of
// fresh tmpfs pages for the 1 KiB class), publication. Also a guest's first
// touch of a grown extent (its remap) and, for reference, one alloc + free
// pair in a single process.
// Usage: build/bench/varslot_bench [pools (default 20)] [dir (default /dev/shm)]
// Each pool grows one class from 0 to 16 extents; prints p50/p99/max in us
// over pools x 16 growths.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "src/varslot/pool.h"

using namespace znslab;
using namespace znslab::varslot;

namespace {

uint64_t now_ns() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}

double pct(std::vector<uint64_t> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5));
  return double(v[i]) / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  const int pools = argc > 1 ? std::atoi(argv[1]) : 20;
  const std::string dir = argc > 2 ? argv[2] : "/dev/shm";
  std::printf("%-13s %-9s %8s %8s %8s %8s   %s\n", "growth", "class", "p50_us", "p99_us", "max_us", "n",
              "guest first-touch remap p50/p99 us");
  for (GrowthMode m : {GrowthMode::kRemap, GrowthMode::kExtentFiles}) {
    for (uint32_t cls : {1024u, 4194304u}) {
      std::vector<uint64_t> grow, remap;
      for (int p = 0; p < pools; ++p) {
        PoolOptions o;
        o.path = dir + "/znslab-varslot-bench-" + std::to_string(::getpid());
        o.mode = m;
        o.class_sizes = {cls};
        o.initial_bytes = 0;
        auto h = Pool::create(o);
        if (!h) {
          std::fprintf(stderr, "create: %s\n", h.status().to_string().c_str());
          return 1;
        }
        auto g = Pool::attach(o.path);
        if (!g) return 1;
        for (uint32_t e = 0; e < kMaxExtents; ++e) {
          if (!(*h)->grow(0)) return 1;
          // The guest maps the new extent on its first use of a slot in it.
          const uint64_t t0 = now_ns();
          Handle x = Handle::make(0, e, 0, 1);
          (void)(*g)->ptr(x);
          remap.push_back(now_ns() - t0);
        }
        for (uint64_t ns : (*h)->grow_durations_ns()) grow.push_back(ns);
        g->reset();
        (void)(*h)->unlink_files();
      }
      std::printf("%-13s %-9u %8.0f %8.0f %8.0f %8zu   %.1f / %.1f\n", growth_mode_name(m), cls, pct(grow, 0.5),
                  pct(grow, 0.99), pct(grow, 1.0), grow.size(), pct(remap, 0.5), pct(remap, 0.99));
    }
  }
  // Single-process alloc + free pairs (no contention), ns per pair.
  PoolOptions o;
  o.path = dir + "/znslab-varslot-bench-" + std::to_string(::getpid());
  auto h = Pool::create(o);
  if (!h) return 1;
  const int n = 2000000;
  std::vector<double> reps;
  for (int r = 0; r < 5; ++r) {
    const uint64_t t0 = now_ns();
    for (int i = 0; i < n; ++i) {
      auto x = (*h)->alloc(1000);
      if (!x || !(*h)->free(*x)) return 1;
    }
    reps.push_back(double(now_ns() - t0) / n);
  }
  std::sort(reps.begin(), reps.end());
  std::printf("alloc+free pair, one process, 1 KiB class: %.1f ns (median of 5 x %d)\n", reps[2], n);
  (void)(*h)->unlink_files();
  return 0;
}
