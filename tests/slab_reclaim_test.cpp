// Reclaim tuning of the temporal slab allocator (issue 14, churn): the THP
// chunk tail trim (SlabAllocator::Impl::trim_thp_tails, Options::use_thp)
// and the proportional batch trigger (Options::reclaim_batch_pct).
#include <cstring>
#include <vector>

#include <catch2/catch.hpp>

#include "src/slab/slab.h"

using namespace znslab;
using namespace znslab::slab;

namespace {

Allocation must_alloc(SlabAllocator& a, size_t bytes, uint32_t epoch) {
  auto r = a.allocate(bytes, epoch);
  REQUIRE(r.is_ok());
  return *r;
}

bool holds(const Allocation& x, uint8_t v) {
  auto* p = static_cast<const uint8_t*>(x.ptr);
  for (size_t i = 0; i < x.usable; ++i)
    if (p[i] != v) return false;
  return true;
}

}  // namespace

TEST_CASE("THP: a partly used chunk returns its unused tail after one idle full pass, once", "[slab]") {
  for (bool thp : {true, false}) {
    INFO("use_thp " << thp);
    Options o;
    o.arena_bytes = size_t(64) << 20;
    o.use_thp = thp;  // MADV_HUGEPAGE failing (THP off) is counted, not fatal
    o.populate_slabs = 0;  // (ignored with THP) no slab backed ahead of use
    auto r = SlabAllocator::create(o);
    REQUIRE(r.is_ok());
    SlabAllocator& a = **r;
    // 50 slabs of class 64 (56 slots each) in epoch 1: one chunk, 462 slabs unused.
    std::vector<Allocation> v;
    for (int i = 0; i < 50 * 56; ++i) {
      v.push_back(must_alloc(a, 64, 1));
      std::memset(v.back().ptr, uint8_t(i), v.back().usable);
    }
    const GlobalStats g0 = a.stats_global();
    REQUIRE(g0.committed_bytes == 50 * kSlabBytes);
    const uint64_t tail = o.chunk_bytes - g0.committed_bytes;
    const uint64_t calls0 = g0.madvise_calls;  // MADV_HUGEPAGE counts as a call
    // First full pass: the chunk gave out slabs since the last one (grace).
    a.reclaim();
    CHECK(a.stats_global().madvise_bytes == 0);
    // Second: idle since the first, so its unused slabs go back (THP only).
    a.reclaim();
    GlobalStats g = a.stats_global();
    CHECK(g.madvise_bytes == (thp ? tail : 0));
    CHECK(g.madvise_calls == calls0 + (thp ? 1 : 0));
    CHECK(g.committed_bytes == 50 * kSlabBytes);  // live slabs stay committed
    // Once per chunk incarnation.
    a.reclaim();
    CHECK(a.stats_global().madvise_bytes == (thp ? tail : 0));
    CHECK(a.verify().is_ok());
    for (size_t i = 0; i < v.size(); ++i) REQUIRE(holds(v[i], uint8_t(i)));
    // The trimmed slabs are usable again (faulted 4 KiB at a time).
    for (int i = 0; i < 20 * 56; ++i) v.push_back(must_alloc(a, 64, 1));
    CHECK(a.stats_global().committed_bytes == 70 * kSlabBytes);
    CHECK(a.verify().is_ok());
    for (auto& x : v) REQUIRE(a.free(x.handle).is_ok());
    REQUIRE(a.epoch_close(1).is_ok());
    g = a.stats_global();
    CHECK(g.committed_bytes == 0);
    CHECK(g.chunks_returned == 1);
    CHECK(a.verify().is_ok());
  }
}

TEST_CASE("THP: a chunk that keeps growing between full passes is not trimmed", "[slab]") {
  Options o;
  o.arena_bytes = size_t(64) << 20;
  o.use_thp = true;
  auto r = SlabAllocator::create(o);
  REQUIRE(r.is_ok());
  SlabAllocator& a = **r;
  std::vector<Allocation> v;
  for (int pass = 0; pass < 4; ++pass) {
    for (int i = 0; i < 10 * 56; ++i) v.push_back(must_alloc(a, 64, 2));
    a.reclaim();
    CHECK(a.stats_global().madvise_bytes == 0);
  }
  for (auto& x : v) REQUIRE(a.free(x.handle).is_ok());
  REQUIRE(a.epoch_close(2).is_ok());
  CHECK(a.stats_global().committed_bytes == 0);
}

TEST_CASE("reclaim_batch_pct: a large free phase runs fewer passes and still returns its memory before close",
          "[slab]") {
  // 2048 slabs of class 512 (8 slots each), freed in allocation order
  // (each slab empties in turn), epoch 3 stays ACTIVE.
  constexpr size_t kObjs = 2048 * 8;
  uint64_t calls[2] = {}, left[2] = {};
  for (uint32_t pct : {0u, 25u}) {
    INFO("reclaim_batch_pct " << pct);
    Options o;
    o.arena_bytes = size_t(64) << 20;
    o.populate_slabs = 0;
    o.reclaim_batch_pct = pct;
    auto r = SlabAllocator::create(o);
    REQUIRE(r.is_ok());
    SlabAllocator& a = **r;
    std::vector<Allocation> v;
    for (size_t i = 0; i < kObjs; ++i) v.push_back(must_alloc(a, 512, 3));
    REQUIRE(a.stats_global().committed_bytes == 2048 * kSlabBytes);
    uint64_t worst_pending = 0;
    for (size_t i = 0; i < kObjs; ++i) {
      REQUIRE(a.free(v[i].handle).is_ok());
      if (i % 64 == 63) {
        const GlobalStats g = a.stats_global();
        const uint64_t committed = g.committed_bytes / kSlabBytes;
        const uint64_t live_slabs = (g.live_objects + 7) / 8;
        worst_pending = std::max(worst_pending, committed - live_slabs);
      }
    }
    const GlobalStats g = a.stats_global();
    calls[pct != 0] = g.madvise_calls;
    left[pct != 0] = g.committed_bytes / kSlabBytes;
    // Before close: what stays committed is bounded by the trigger
    // (max(batch, pct of 2048)), the warm reserve (64 slabs) and the bin's
    // kept slabs.
    const uint64_t trigger = std::max<uint64_t>(64, 2048 * pct / 100);
    CHECK(left[pct != 0] <= trigger + 64 + 3);
    CHECK(worst_pending <= trigger + 64 + 3 + 64);  // + the events between two checks
    REQUIRE(a.epoch_close(3).is_ok());
    CHECK(a.stats_global().committed_bytes == 0);
    CHECK(a.verify().is_ok());
  }
  CHECK(calls[1] < calls[0]);  // fewer, larger passes
}

TEST_CASE("Options::reclaim_batch_pct above 100 is refused", "[slab]") {
  Options o;
  o.arena_bytes = size_t(64) << 20;
  o.reclaim_batch_pct = 101;
  auto r = SlabAllocator::create(o);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == Code::kInvalidArgument);
}
