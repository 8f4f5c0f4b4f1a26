// Microbenchmark (not a test): pin + unpin cost of the windowed segment
// allocator's fast path, single-threaded and with 2 threads pinning either
// the same window (shared pin counter) or different windows.
// Usage: build/bench/segment_bench [pairs_per_thread (default 20000000)]
// Prints ns per pin+unpin pair (wall time / pairs), median of 5 repetitions.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

#include "src/segment/file_registry.h"
#include "src/segment/mapping_manager.h"
#include "src/segment/segment_allocator.h"

using namespace znslab::segment;

namespace {
double run(SegmentAllocator& a, const std::vector<SegmentRef>& refs, size_t threads, uint64_t pairs) {
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> ts;
  for (size_t t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      const SegmentRef& r = refs[t % refs.size()];
      for (uint64_t i = 0; i < pairs; ++i) {
        auto p = a.pin(r);
        asm volatile("" : : "r"(p->data()) : "memory");
      }
    });
  for (auto& t : ts) t.join();
  double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  return ns / double(pairs);
}
}  // namespace

int main(int argc, char** argv) {
  uint64_t pairs = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 20000000;
  char tmpl[] = "/tmp/znslab-segbench-XXXXXX";
  if (!::mkdtemp(tmpl)) { std::perror("mkdtemp"); return 1; }
  std::string dir = tmpl;
  int rc = 0;
  {
    FileRegistry files;
    MappingManager mm(files, MappingOptions{64u << 20, 0});
    SegmentAllocatorOptions o;
    o.dir = dir;
    o.class_bytes = {1u << 20};
    auto a = SegmentAllocator::create(files, mm, o);
    if (!a) { std::fprintf(stderr, "segment_bench: %s\n", a.status().to_string().c_str()); return 1; }
    // Segment 0 and 64 lie in different 64 MiB windows.
    std::vector<Allocation> keep;
    for (int i = 0; i < 65; ++i) {
      auto r = (*a)->allocate(1u << 20);
      if (!r) { std::fprintf(stderr, "segment_bench: %s\n", r.status().to_string().c_str()); return 1; }
      keep.push_back(std::move(*r));
    }
    std::vector<SegmentRef> same{keep[0].ref, keep[1].ref}, diff{keep[0].ref, keep[64].ref};
    struct Case { const char* name; size_t threads; const std::vector<SegmentRef>* refs; };
    Case cases[] = {{"1 thread", 1, &same}, {"2 threads, same window", 2, &same}, {"2 threads, different windows", 2, &diff}};
    std::printf("%-32s %s\n", "case", "ns per pin+unpin (median of 5)");
    for (const Case& c : cases) {
      std::vector<double> v;
      for (int rep = 0; rep < 5; ++rep) v.push_back(run(**a, *c.refs, c.threads, pairs));
      std::sort(v.begin(), v.end());
      std::printf("%-32s %.2f\n", c.name, v[2]);
    }
    for (auto& k : keep) if (!(*a)->free(std::move(k))) rc = 1;
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return rc;
}
