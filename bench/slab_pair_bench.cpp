// slab_pair_bench: the allocator's own cost per free+allocate pair, without
// the harness (not a test, a measurement with JSON output; issue 14).
//
//   build/bench/slab_pair_bench [--mode slab|malloc] [--live N] [--pairs N]
//                               [--runs N] [--solo-free 0|1] [--seed N]
//
// A table of --live objects (default 4096) is filled with random sizes
// 64..768 B; each pair frees a random slot and allocates a random size into
// it (the `alternating` workload's operation stream, one thread). The slot
// and size sequences are drawn before the timed loop (a 2^20-entry table,
// cycled), so the loop holds only the allocator's calls: no RNG, no timer
// per operation. --mode slab runs src/slab (epoch 1; --solo-free sets
// Options::solo_free); --mode malloc runs malloc/free: run it under
// LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2 (or jemalloc) to
// measure a peer. Reports ns per pair, median and min..max over --runs runs
// of --pairs pairs. Output: one JSON line on stdout, a summary on stderr.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "src/slab/slab.h"

using namespace znslab;
using namespace znslab::slab;

namespace {

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "slab_pair_bench: %s\nusage: slab_pair_bench [--mode slab|malloc] [--live N] [--pairs N] "
               "[--runs N] [--solo-free 0|1] [--seed N]\n",
               why);
  std::exit(2);
}

uint64_t arg_u64(int argc, char** argv, int& i) {
  if (i + 1 >= argc) usage((std::string(argv[i]) + " needs a value").c_str());
  char* end = nullptr;
  const unsigned long long v = std::strtoull(argv[++i], &end, 10);
  if (!end || *end || v == 0) usage((std::string(argv[i - 1]) + ": expected a positive integer").c_str());
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = "slab";
  uint64_t live = 4096, pairs = 20000000, runs = 5, seed = 42;
  bool solo = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--mode" && i + 1 < argc) mode = argv[++i];
    else if (a == "--live") live = arg_u64(argc, argv, i);
    else if (a == "--pairs") pairs = arg_u64(argc, argv, i);
    else if (a == "--runs") runs = arg_u64(argc, argv, i);
    else if (a == "--seed") seed = arg_u64(argc, argv, i);
    else if (a == "--solo-free" && i + 1 < argc) solo = std::string(argv[++i]) != "0";
    else if (a == "-h" || a == "--help") usage("help");
    else usage(("unknown argument " + a).c_str());
  }
  if (mode != "slab" && mode != "malloc") usage("--mode must be slab or malloc");
  if (live > (uint64_t(1) << 24)) usage("--live must be <= 2^24");

  constexpr size_t kSeq = size_t(1) << 20;
  std::mt19937_64 rng(seed);
  std::vector<uint32_t> slot(kSeq), size(kSeq);
  for (size_t i = 0; i < kSeq; ++i) {
    slot[i] = uint32_t(rng() % live);
    size[i] = uint32_t(64 + rng() % 705);
  }

  const bool mal = mode == "malloc";
  std::unique_ptr<SlabAllocator> a;
  if (!mal) {
    Options o;
    o.solo_free = solo;
    auto r = SlabAllocator::create(o);
    if (!r) {
      std::fprintf(stderr, "slab_pair_bench: create: %s\n", r.status().to_string().c_str());
      return 1;
    }
    a = std::move(*r);
  }
  std::vector<Handle> hs(live);
  std::vector<void*> ps(live);
  for (size_t i = 0; i < live; ++i) {
    const uint32_t z = uint32_t(64 + rng() % 705);
    if (mal) {
      ps[i] = std::malloc(z);
      if (!ps[i]) return 1;
    } else {
      auto r = a->allocate(z, 1);
      if (!r) {
        std::fprintf(stderr, "slab_pair_bench: allocate: %s\n", r.status().to_string().c_str());
        return 1;
      }
      hs[i] = r->handle;
    }
  }
  uint64_t errors = 0;
  std::vector<double> ns;
  for (uint64_t run = 0; run < runs; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < pairs; ++i) {
      const uint32_t s = slot[i & (kSeq - 1)], z = size[i & (kSeq - 1)];
      if (mal) {
        std::free(ps[s]);
        ps[s] = std::malloc(z);
      } else {
        errors += !a->free(hs[s]).is_ok();
        auto r = a->allocate(z, 1);
        if (!r) {
          std::fprintf(stderr, "slab_pair_bench: allocate: %s\n", r.status().to_string().c_str());
          return 1;
        }
        hs[s] = r->handle;
      }
    }
    const auto t1 = std::chrono::steady_clock::now();
    ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / double(pairs));
  }
  for (size_t i = 0; i < live; ++i) {
    if (mal) std::free(ps[i]);
    else errors += !a->free(hs[i]).is_ok();
  }
  if (errors) {
    std::fprintf(stderr, "slab_pair_bench: %llu frees failed\n", (unsigned long long)errors);
    return 1;
  }
  std::vector<double> sorted = ns;
  std::sort(sorted.begin(), sorted.end());
  const double med = sorted[sorted.size() / 2];
  std::fprintf(stderr, "%s%s live %llu: %.2f ns/pair median of %llu runs [%.2f..%.2f]\n", mode.c_str(),
               mal ? "" : (solo ? " (solo_free on)" : " (solo_free off)"), (unsigned long long)live, med,
               (unsigned long long)runs, sorted.front(), sorted.back());
  std::printf(
      "{\"bench\":\"slab_pair\",\"mode\":\"%s\",\"solo_free\":%s,\"live\":%llu,\"pairs\":%llu,\"runs\":%llu,"
      "\"unit\":\"ns/pair\",\"median\":%.3f,\"min\":%.3f,\"max\":%.3f}\n",
      mode.c_str(), mal ? "null" : (solo ? "true" : "false"), (unsigned long long)live,
      (unsigned long long)pairs, (unsigned long long)runs, med, sorted.front(), sorted.back());
  return 0;
}
