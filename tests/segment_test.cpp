// [segment]: file-handle registry, mapping manager windows and pins, and the
// segment allocator (seed 001; issue 5).
#include <dirent.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/temp_dir.h"

#include "src/segment/file_registry.h"
#include "src/segment/mapping_manager.h"
#include "src/segment/segment_allocator.h"

using namespace znslab;
using namespace znslab::segment;

namespace {

using znslab::testutil::TempDir;

// Open fds of this process whose target lies under `dir`.
size_t fds_under(const std::string& dir) {
  size_t n = 0;
  for (auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(e.path(), ec);
    if (!ec && target.string().rfind(dir, 0) == 0) ++n;
  }
  return n;
}

std::string file_path(const TempDir& d, int i) { return d.path() + "/f" + std::to_string(i); }

}  // namespace

TEST_CASE("FileRegistry reuses one fd per file and evicts the least recently used unpinned file", "[segment]") {
  TempDir d;
  FileRegistry reg(2);
  for (int i = 0; i < 3; ++i) REQUIRE(reg.add_file(i, file_path(d, i)).is_ok());
  CHECK(reg.add_file(0, file_path(d, 9)).code() == Code::kInvalidArgument);

  int fd0;
  {
    auto a = reg.acquire(0);
    REQUIRE(a.is_ok());
    fd0 = a->fd();
    auto b = reg.acquire(0);  // same file again: same fd, no new open
    REQUIRE(b.is_ok());
    CHECK(b->fd() == fd0);
  }
  CHECK(reg.stats().opens == 1);
  { auto b = reg.acquire(1); REQUIRE(b.is_ok()); }
  { auto a = reg.acquire(0); REQUIRE(a.is_ok()); CHECK(a->fd() == fd0); }  // 0 is now most recent
  CHECK(reg.stats().open_fds == 2);
  CHECK(fds_under(d.path()) == 2);
  { auto c = reg.acquire(2); REQUIRE(c.is_ok()); }  // evicts 1 (LRU), keeps 0
  auto st = reg.stats();
  CHECK(st.open_fds == 2);
  CHECK(st.evictions == 1);
  CHECK(fds_under(d.path()) == 2);
  { auto a = reg.acquire(0); REQUIRE(a.is_ok()); CHECK(a->fd() == fd0); }
  CHECK(reg.stats().opens == 3);  // 0 was not reopened

  // Pinned files are never closed: with both open files pinned, a third is refused.
  auto p0 = reg.acquire(0);
  auto p2 = reg.acquire(2);
  REQUIRE(p0.is_ok());
  REQUIRE(p2.is_ok());
  auto p1 = reg.acquire(1);
  CHECK(p1.status().code() == Code::kBusy);
  CHECK(reg.acquire(7).status().code() == Code::kNotFound);
  p2->reset();
  auto p1b = reg.acquire(1);
  CHECK(p1b.is_ok());
  CHECK(p0->fd() == fd0);
}

TEST_CASE("FileRegistry grows files with ftruncate and its limit leaves RLIMIT_NOFILE headroom", "[segment]") {
  TempDir d;
  FileRegistry reg(4);
  REQUIRE(reg.add_file(1, file_path(d, 1)).is_ok());
  REQUIRE(reg.ensure_size(1, 1 << 20).is_ok());
  CHECK(std::filesystem::file_size(file_path(d, 1)) == (1u << 20));
  REQUIRE(reg.ensure_size(1, 4096).is_ok());  // never shrinks
  CHECK(std::filesystem::file_size(file_path(d, 1)) == (1u << 20));
  CHECK(reg.file_size(1) == (1u << 20));
  CHECK(derive_max_open_files(1u << 30) <= size_t(sysconf(_SC_OPEN_MAX)));
  CHECK(derive_max_open_files(8) == 8);
}

TEST_CASE("Idle windows are evicted LRU under the mapping cap and data survives remapping", "[segment]") {
  TempDir d;
  FileRegistry reg(2);
  REQUIRE(reg.add_file(0, file_path(d, 0)).is_ok());
  MappingManager mm(reg, MappingOptions{1 << 20, 2});
  REQUIRE(mm.add_file(0).is_ok());
  for (uint32_t i = 0; i < 6; ++i) {
    auto p = mm.pin(0, uint64_t(i) << 20, 4096);
    REQUIRE(p.is_ok());
    std::memset(p->data(), int('a' + i), 4096);
    CHECK(mm.stats().mappings <= 2);
  }
  auto st = mm.stats();
  CHECK(st.mappings == 2);
  CHECK(st.evictions == 4);
  CHECK(st.pins_active == 0);
  // Window 0 was evicted; pinning it again maps it and shows what was written.
  auto p = mm.pin(0, 100, 10);
  REQUIRE(p.is_ok());
  CHECK(p->data()[0] == 'a');
  CHECK(mm.evict_idle(0) == 1);  // the pinned one stays
  CHECK(mm.stats().mappings == 1);
  // A range spanning two windows is refused.
  CHECK(mm.pin(0, (1 << 20) - 8, 16).status().code() == Code::kInvalidArgument);
  CHECK(mm.pin(5, 0, 16).status().code() == Code::kNotFound);
}

TEST_CASE("A pinned window is never unmapped; all pinned at the cap is kBusy", "[segment]") {
  TempDir d;
  FileRegistry reg(1);
  REQUIRE(reg.add_file(0, file_path(d, 0)).is_ok());
  MappingManager mm(reg, MappingOptions{1 << 20, 2});
  REQUIRE(mm.add_file(0).is_ok());
  auto keep = mm.pin(0, 0, 4096);
  REQUIRE(keep.is_ok());
  uint8_t* base = keep->data();
  std::memcpy(base, "pinned", 7);
  for (uint32_t i = 1; i < 8; ++i) {
    auto p = mm.pin(0, uint64_t(i) << 20, 64);  // cycles through the second slot
    REQUIRE(p.is_ok());
  }
  CHECK(mm.stats().evictions == 6);
  CHECK(keep->data() == base);
  CHECK(std::memcmp(base, "pinned", 7) == 0);  // still mapped (ASan/segfault otherwise)
  auto second = mm.pin(0, 1 << 20, 64);
  REQUIRE(second.is_ok());
  auto third = mm.pin(0, 3 << 20, 64);
  CHECK(third.status().code() == Code::kBusy);
  Pin clone = keep->clone();
  keep->reset();
  CHECK(clone.data() == base);  // the clone keeps the window
  CHECK(mm.evict_idle(0) == 0);
  second->reset();
  CHECK(mm.evict_idle(0) == 1);
  clone.reset();
  CHECK(mm.evict_idle(0) == 1);
  CHECK(mm.stats().mappings == 0);
}

TEST_CASE("Many segments share one window and one fd", "[segment]") {
  TempDir d;
  FileRegistry reg(4);
  MappingManager mm(reg, MappingOptions{1 << 20, 16});
  SegmentAllocatorOptions o;
  o.dir = d.path();
  o.class_bytes = {4096, 65536};
  auto a = SegmentAllocator::create(reg, mm, o);
  REQUIRE(a.is_ok());
  std::vector<Allocation> v;
  for (int i = 0; i < 256; ++i) {  // 256 x 4 KiB = exactly one 1 MiB window
    auto r = (*a)->allocate(1000 + i);
    REQUIRE(r.is_ok());
    CHECK(r->ref.class_id == 0);
    CHECK(r->ref.length == 4096);
    CHECK(r->ref.offset == uint64_t(i) * 4096);
    std::memset(r->ptr(), i & 0xff, 4096);
    v.push_back(std::move(*r));
  }
  for (auto& x : v) CHECK(x.ref.window == v[0].ref.window);
  CHECK(mm.stats().mappings == 1);
  CHECK(mm.stats().pins_active == 256);
  CHECK(reg.stats().opens == 1);
  CHECK(fds_under(d.path()) <= 1);
  for (int i = 0; i < 256; ++i) CHECK(v[i].ptr()[4095] == uint8_t(i & 0xff));
  CHECK((*a)->allocate(70000).status().code() == Code::kInvalidArgument);
  CHECK((*a)->allocate(0).status().code() == Code::kInvalidArgument);
  for (auto& x : v) REQUIRE((*a)->free(std::move(x)).is_ok());
  CHECK(mm.stats().pins_active == 0);
  CHECK((*a)->stats().segments_live == 0);
}

TEST_CASE("Segment references: stale, double free and forged are errors, never corruption", "[segment]") {
  TempDir d;
  FileRegistry reg(4);
  MappingManager mm(reg, MappingOptions{1 << 20, 16});
  SegmentAllocatorOptions o;
  o.dir = d.path();
  o.class_bytes = {4096};
  auto a = SegmentAllocator::create(reg, mm, o);
  REQUIRE(a.is_ok());
  auto x = (*a)->allocate(10);
  REQUIRE(x.is_ok());
  SegmentRef r = x->ref;
  std::memcpy(x->ptr(), "hello", 6);
  {
    auto p = (*a)->pin(r);  // re-pin through the window hint
    REQUIRE(p.is_ok());
    CHECK(std::memcmp(p->data(), "hello", 6) == 0);
  }
  REQUIRE((*a)->free(std::move(*x)).is_ok());
  CHECK((*a)->free(r).code() == Code::kDoubleFree);
  CHECK((*a)->pin(r).status().code() == Code::kDoubleFree);
  auto y = (*a)->allocate(10);  // reuses the segment (LIFO)
  REQUIRE(y.is_ok());
  CHECK(y->ref.segment_id == r.segment_id);
  CHECK((*a)->free(r).code() == Code::kStaleHandle);
  SegmentRef forged = y->ref;
  forged.segment_id = 12345;
  CHECK((*a)->free(forged).code() == Code::kInvalidHandle);
  forged = y->ref;
  forged.class_id = 9;
  CHECK((*a)->pin(forged).status().code() == Code::kInvalidHandle);
  CHECK((*a)->stats().segments_live == 1);
  REQUIRE((*a)->free(std::move(*y)).is_ok());
  // Bad class layouts are refused at creation.
  SegmentAllocatorOptions bad = o;
  bad.first_file_id = 10;
  bad.class_bytes = {3000};
  CHECK(SegmentAllocator::create(reg, mm, bad).status().code() == Code::kInvalidArgument);
  bad.class_bytes = {2u << 20};  // larger than the 1 MiB window
  CHECK(SegmentAllocator::create(reg, mm, bad).status().code() == Code::kInvalidArgument);
}

TEST_CASE("One million segments stay within bounded fds and mappings", "[segment]") {
  TempDir d;
  FileRegistry reg(4);
  MappingManager mm(reg, MappingOptions{64u << 20, 8});
  SegmentAllocatorOptions o;
  o.dir = d.path();
  o.class_bytes = {4096, 1u << 20};
  auto a = SegmentAllocator::create(reg, mm, o);
  REQUIRE(a.is_ok());
  constexpr uint32_t kN = 1u << 20;
  std::vector<SegmentRef> refs;
  refs.reserve(kN);
  size_t max_fds = 0;
  for (uint32_t i = 0; i < kN; ++i) {
    auto r = (*a)->allocate(i % 7 == 0 ? 300000 : 4000);
    REQUIRE(r.is_ok());
    if (i % 4099 == 0) {  // touch a sample (touching all would write 4 GiB)
      std::memcpy(r->ptr(), &i, sizeof i);
      max_fds = std::max(max_fds, fds_under(d.path()));
    }
    refs.push_back(r->ref);  // keep the reference, drop the pin
  }
  auto ms = mm.stats();
  CHECK(ms.peak_mappings <= 8);
  CHECK(reg.stats().peak_open_fds <= 4);
  CHECK(max_fds <= 4);
  CHECK((*a)->stats().segments_live == kN);
  for (uint32_t i = 0; i < kN; i += 4099) {  // re-pin: windows were evicted and come back
    auto p = (*a)->pin(refs[i]);
    REQUIRE(p.is_ok());
    uint32_t v;
    std::memcpy(&v, p->data(), sizeof v);
    CHECK(v == i);
  }
  CHECK(mm.stats().peak_mappings <= 8);
  CHECK(mm.stats().evictions > 0);
  // Metadata stays far below 1% of the 1 GiB+ of segments handed out.
  auto s = (*a)->stats();
  CHECK(s.metadata_bytes * 100 < s.live_bytes);
}

TEST_CASE("Concurrent pins and evictions never unmap a pinned window", "[segment]") {
  TempDir d;
  FileRegistry reg(2);
  REQUIRE(reg.add_file(0, file_path(d, 0)).is_ok());
  MappingManager mm(reg, MappingOptions{1 << 20, 3});
  REQUIRE(mm.add_file(0).is_ok());
  std::vector<Window*> ws;
  for (uint32_t i = 0; i < 6; ++i) {
    auto w = mm.window_for(0, uint64_t(i) << 20, 8);
    REQUIRE(w.is_ok());
    ws.push_back(*w);
  }
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> errors{0}, busy{0};
  auto worker = [&](uint32_t seed) {
    std::mt19937 rng(seed);
    for (int it = 0; it < 20000; ++it) {
      uint32_t i = rng() % ws.size();
      auto p = mm.pin_window(ws[i], (uint64_t(i) << 20) + 8 * (seed % 4), 8);
      if (!p) { if (p.status().code() == Code::kBusy) ++busy; else ++errors; continue; }
      uint64_t v = uint64_t(i) << 32 | it;
      std::memcpy(p->data(), &v, 8);  // would fault if unmapped under us
      uint64_t back;
      std::memcpy(&back, p->data(), 8);
      if (back != v) ++errors;
    }
  };
  std::thread evictor([&] { while (!stop.load()) mm.evict_idle(0); });
  std::thread t1(worker, 1), t2(worker, 2);
  t1.join();
  t2.join();
  stop = true;
  evictor.join();
  CHECK(errors.load() == 0);
  CHECK(mm.stats().pins_active == 0);
  CHECK(mm.stats().peak_mappings <= 3);
}
