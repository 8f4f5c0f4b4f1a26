// slab_paths_bench: one microbenchmark per fast path of the temporal slab
// allocator (issue 14 "Also"): not a test, a measurement with JSON output.
//
//   build/bench/slab_paths_bench [--runs N] [--ops N] [--thp]
//
// Paths (ns per operation, median over --runs runs of --ops operations):
//   alloc_hit    allocate served by the thread's magazine: batches of 16
//                allocations, each batch right after 16 frees of one class
//                (so the magazine holds them);
//   free_hit     free pushing onto a magazine that is not full (the frees of
//                those batches);
//   deref        deref() of a random live handle out of 4096 (class 64..768);
//   alloc_stream allocations in a row with no frees into warm slabs
//                (reclaim off): one magazine refill (one CAS claiming 31
//                slots) per 31 allocations, bin refills per slab;
//   magazine_miss the refill itself, derived: 31 x alloc_stream - 30 x
//                alloc_hit;
//   free_stream  frees in a row: a magazine flush (half of it back to the
//                slabs) every 16 frees;
//   alloc_shared, free_shared  the same pairs with thread_cache = false
//                (every operation on the shared slab word: one CAS each way
//                plus the slot generation CAS on free).
// Each timed region is a batch between two steady_clock reads (the ~20 ns
// clock cost over >= 16 operations is included, not subtracted).
// Output: one JSON line on stdout; a summary on stderr.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "src/slab/slab.h"

using namespace znslab;
using namespace znslab::slab;

namespace {

using Clock = std::chrono::steady_clock;

double ns_since(Clock::time_point t0) {
  return double(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count());
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::unique_ptr<SlabAllocator> make(bool tc, ReclaimPolicy rp, bool thp) {
  Options o;
  o.thread_cache = tc;
  o.reclaim = rp;
  o.use_thp = thp;
  auto r = SlabAllocator::create(o);
  if (!r) {
    std::fprintf(stderr, "create: %s\n", r.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(*r);
}

Handle must(SlabAllocator& a, size_t bytes, uint32_t e) {
  auto r = a.allocate(bytes, e);
  if (!r) {
    std::fprintf(stderr, "allocate: %s\n", r.status().to_string().c_str());
    std::exit(1);
  }
  return r->handle;
}

void must_free(SlabAllocator& a, Handle h) {
  if (!a.free(h)) {
    std::fprintf(stderr, "free failed\n");
    std::exit(1);
  }
}

struct Pair {
  double alloc_ns, free_ns;
};

// Batches of 16 allocations then 16 frees; sizes cycle through the classes.
Pair pairs(SlabAllocator& a, uint64_t ops) {
  constexpr int K = 16;
  Handle h[K];
  double ta = 0, tf = 0;
  uint64_t n = 0;
  // Warm: one batch per class.
  for (uint32_t c = 0; c < kNumClasses; ++c) {
    for (auto& x : h) x = must(a, kSizeClasses[c], 1);
    for (auto& x : h) must_free(a, x);
  }
  for (uint32_t c = 0; n < ops; c = (c + 1) % kNumClasses, n += K) {
    const size_t sz = kSizeClasses[c];
    auto t0 = Clock::now();
    for (auto& x : h) x = must(a, sz, 1);
    ta += ns_since(t0);
    t0 = Clock::now();
    for (auto& x : h) must_free(a, x);
    tf += ns_since(t0);
  }
  return Pair{ta / double(n), tf / double(n)};
}

double deref_ns(SlabAllocator& a, uint64_t ops, std::mt19937_64& rng) {
  std::vector<Handle> live;
  std::uniform_int_distribution<uint32_t> sz(64, 768);
  for (int i = 0; i < 4096; ++i) live.push_back(must(a, sz(rng), 2));
  std::vector<uint32_t> order(1 << 16);
  for (auto& o : order) o = uint32_t(rng() & 4095);
  uintptr_t sink = 0;
  auto t0 = Clock::now();
  for (uint64_t i = 0; i < ops; ++i) {
    auto r = a.deref(live[order[i & 0xFFFF]]);
    sink += reinterpret_cast<uintptr_t>(r.is_ok() ? *r : nullptr);
  }
  const double t = ns_since(t0) / double(ops);
  if (sink == 1) std::fprintf(stderr, " ");
  for (auto h : live) must_free(a, h);
  return t;
}

Pair streams(SlabAllocator& a, uint64_t ops) {
  std::vector<Handle> v(ops);
  // Warm the slabs (reclaim off keeps them committed).
  for (auto& h : v) h = must(a, 128, 3);
  for (auto& h : v) must_free(a, h);
  auto t0 = Clock::now();
  for (auto& h : v) h = must(a, 128, 3);
  const double ta = ns_since(t0) / double(ops);
  t0 = Clock::now();
  for (auto& h : v) must_free(a, h);
  const double tf = ns_since(t0) / double(ops);
  return Pair{ta, tf};
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  uint64_t ops = 2000000;
  bool thp = false;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (k == "--thp") thp = true;
    else if (k == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
    else if (k == "--ops" && i + 1 < argc) ops = std::strtoull(argv[++i], nullptr, 0);
    else {
      std::fprintf(stderr, "usage: slab_paths_bench [--runs N] [--ops N] [--thp]\n");
      return 2;
    }
  }
  if (runs < 1 || ops < 4096) {
    std::fprintf(stderr, "slab_paths_bench: --runs >= 1, --ops >= 4096\n");
    return 2;
  }
  std::vector<double> ah, fh, dr, as, fs, ash, fsh;
  std::mt19937_64 rng(7);
  for (int r = 0; r < runs; ++r) {  // interleaved: every path once per run
    {
      auto a = make(true, ReclaimPolicy::kImmediate, thp);
      Pair p = pairs(*a, ops);
      ah.push_back(p.alloc_ns);
      fh.push_back(p.free_ns);
      dr.push_back(deref_ns(*a, ops, rng));
    }
    {
      auto a = make(true, ReclaimPolicy::kOff, thp);
      Pair p = streams(*a, std::min<uint64_t>(ops, 1000000));
      as.push_back(p.alloc_ns);
      fs.push_back(p.free_ns);
    }
    {
      auto a = make(false, ReclaimPolicy::kImmediate, thp);
      Pair p = pairs(*a, ops);
      ash.push_back(p.alloc_ns);
      fsh.push_back(p.free_ns);
    }
  }
  const double m_ah = median(ah), m_as = median(as);
  char js[1024];
  std::snprintf(js, sizeof js,
                "{\"bench\":\"slab_paths\",\"runs\":%d,\"ops\":%llu,\"thp\":%s,\"unit\":\"ns/op\","
                "\"alloc_hit\":%.2f,\"free_hit\":%.2f,\"deref\":%.2f,\"alloc_stream\":%.2f,"
                "\"magazine_miss\":%.1f,\"free_stream\":%.2f,\"alloc_shared\":%.2f,\"free_shared\":%.2f}",
                runs, (unsigned long long)ops, thp ? "true" : "false", m_ah, median(fh), median(dr),
                m_as, 31 * m_as - 30 * m_ah, median(fs), median(ash), median(fsh));
  std::printf("%s\n", js);
  std::fprintf(stderr,
               "alloc hit %.1f  free hit %.1f  deref %.1f  alloc stream %.1f (magazine miss ~%.0f)  "
               "free stream %.1f  shared alloc %.1f free %.1f  [ns/op, medians of %d]\n",
               m_ah, median(fh), median(dr), m_as, 31 * m_as - 30 * m_ah, median(fs), median(ash),
               median(fsh), runs);
  return 0;
}
