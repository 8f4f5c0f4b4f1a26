// Multi-thread stress test of the temporal slab allocator, tags [slab][stress].
// Not a benchmark: it checks that concurrent allocate/free (with cross-thread
// frees), stale and double frees, and epoch close/reopen racing with the
// lock-free fast path never corrupt a live object or a counter. It is sized
// to finish in well under a second in a plain build and a few seconds under
// TSan. Deterministic seeds per thread (interleavings are not).
#include <atomic>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "src/slab/slab.h"

using namespace znslab;
using namespace znslab::slab;

namespace {

#ifdef ZNSLAB_SANITIZE
constexpr int kOpsPerThread = 40000;
#else
constexpr int kOpsPerThread = 200000;
#endif

// Every object carries its own handle in its first 8 bytes and a fill byte
// derived from it in the rest: any cross-talk between objects shows up.
uint8_t tag_byte(uint64_t raw) { return uint8_t((raw * 0x9E3779B97F4A7C15ull) >> 56) | 1; }

void stamp(const Allocation& a) {
  std::memcpy(a.ptr, &a.handle.raw, 8);
  std::memset(static_cast<uint8_t*>(a.ptr) + 8, tag_byte(a.handle.raw), a.usable - 8);
}

bool intact(SlabAllocator& al, Handle h) {
  auto p = al.deref(h);
  if (!p) return false;
  const auto* b = static_cast<const uint8_t*>(*p);
  uint64_t raw;
  std::memcpy(&raw, b, 8);
  if (raw != h.raw) return false;
  const uint32_t usable = kSizeClasses[handle_unpack(h.raw).size_class];
  const uint8_t t = tag_byte(h.raw);
  for (uint32_t i = 8; i < usable; ++i)
    if (b[i] != t) return false;
  return true;
}

}  // namespace

TEST_CASE("concurrent allocate/free with cross-thread frees and epoch churn stays consistent",
          "[slab][stress]") {
  for (ReclaimPolicy policy : {ReclaimPolicy::kImmediate, ReclaimPolicy::kOnClose}) {
    Options o;
    o.reclaim = policy;
    o.arena_bytes = size_t(512) << 20;
    o.reclaim_batch_slabs = 16;  // reclaim often: races with the fast path
    auto r = SlabAllocator::create(o);
    REQUIRE(r.is_ok());
    SlabAllocator& al = **r;

    constexpr int kThreads = 4;
    constexpr size_t kExchange = 1024;
    // Handles parked for another thread to free (cross-thread frees).
    std::vector<std::atomic<uint64_t>> exchange(kExchange);
    for (auto& x : exchange) x.store(0);
    std::atomic<uint64_t> corrupt{0}, unexpected{0}, refused{0};
    std::atomic<bool> stop{false};

    // A closer thread: closes and reopens epochs 1..3 while workers allocate
    // in them (allocation into a CLOSING epoch is refused; its objects stay
    // valid). Epoch 0 is never closed.
    std::thread closer([&] {
      uint32_t e = 1;
      while (!stop.load(std::memory_order_relaxed)) {
        if (!al.epoch_close(e)) unexpected.fetch_add(1);
        std::this_thread::yield();
        if (!al.epoch_reopen(e)) unexpected.fetch_add(1);
        al.reclaim();
        e = e % 3 + 1;
      }
    });

    std::vector<std::thread> workers;
    for (int t = 0; t < kThreads; ++t) {
      workers.emplace_back([&, t] {
        std::mt19937_64 rng(1000 + t);
        std::vector<Handle> mine;
        std::vector<Handle> freed;  // for stale/double-free probes
        for (int i = 0; i < kOpsPerThread; ++i) {
          const uint32_t op = rng() % 100;
          if (op < 50 || mine.empty()) {
            const uint32_t epoch = rng() % 4;
            auto a = al.allocate(1 + rng() % kMaxObjectBytes, epoch);
            if (!a) {
              if (a.status().code() != Code::kEpochClosed) unexpected.fetch_add(1);
              else refused.fetch_add(1);
              continue;
            }
            stamp(*a);
            if (rng() % 4 == 0) {  // park it for another thread
              const uint64_t old = exchange[rng() % kExchange].exchange(a->handle.raw);
              if (old) {
                if (!intact(al, Handle{old})) corrupt.fetch_add(1);
                if (!al.free(Handle{old})) unexpected.fetch_add(1);
              }
            } else {
              mine.push_back(a->handle);
            }
          } else if (op < 95) {
            const size_t k = rng() % mine.size();
            const Handle h = mine[k];
            mine[k] = mine.back();
            mine.pop_back();
            if (!intact(al, h)) corrupt.fetch_add(1);
            if (!al.free(h)) unexpected.fetch_add(1);
            if (freed.size() < 64) freed.push_back(h);
          } else if (!freed.empty()) {
            // A stale or double free must be refused, never succeed.
            const Handle h = freed[rng() % freed.size()];
            const Status s = al.free(h);
            if (s.is_ok() || (s.code() != Code::kDoubleFree && s.code() != Code::kStaleHandle))
              unexpected.fetch_add(1);
          }
        }
        for (Handle h : mine) {
          if (!intact(al, h)) corrupt.fetch_add(1);
          if (!al.free(h)) unexpected.fetch_add(1);
        }
      });
    }
    for (auto& w : workers) w.join();
    stop.store(true);
    closer.join();
    for (auto& x : exchange) {
      const uint64_t h = x.exchange(0);
      if (!h) continue;
      if (!intact(al, Handle{h})) corrupt.fetch_add(1);
      if (!al.free(Handle{h})) unexpected.fetch_add(1);
    }
    INFO("policy " << reclaim_policy_name(policy));
    CHECK(corrupt.load() == 0);
    CHECK(unexpected.load() == 0);
    REQUIRE(al.verify().is_ok());
    const GlobalStats g = al.stats_global();
    CHECK(g.live_objects == 0);
    CHECK(g.live_bytes == 0);
    CHECK(g.requested_bytes == 0);
    CHECK(g.allocs == g.frees);
    CHECK(g.slow_path_epoch_closed == refused.load());
    for (uint32_t e = 0; e < kEpochCount; ++e) CHECK(al.epoch_close(e).is_ok());
    CHECK(al.stats_global().committed_bytes == 0);
  }
}

TEST_CASE("claims racing with detach, decommit and chunk return never hand out a returned slot",
          "[slab][stress]") {
  // Tiny chunks (16 slabs) and a batch of 1: slabs empty, detach, decommit
  // and whole chunks return to the pool constantly while two threads claim
  // from the current slab of the same bin and a third closes/reopens it.
  Options o;
  o.arena_bytes = size_t(64) << 20;
  o.chunk_bytes = size_t(64) << 10;
  o.reclaim_batch_slabs = 1;
  auto r = SlabAllocator::create(o);
  REQUIRE(r.is_ok());
  SlabAllocator& al = **r;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> corrupt{0}, unexpected{0}, done{0};
  std::thread closer([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      if (!al.epoch_close(1) || !al.epoch_reopen(1)) unexpected.fetch_add(1);
      al.reclaim();
      // Let the workers allocate a little between closes.
      const uint64_t seen = done.load();
      while (done.load() < seen + 64 && !stop.load(std::memory_order_relaxed)) std::this_thread::yield();
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < 2; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937 rng(77 + t);
      Handle ring[8] = {};
      // Counts successful allocations only: a worker that raced through
      // its whole loop while the epoch was closed would test nothing (seen
      // under ASan: every allocation refused, no chunk ever returned).
      for (int ok = 0; ok < kOpsPerThread / 2;) {
        Handle& slot = ring[rng() % 8];
        if (slot.raw) {
          if (!intact(al, slot)) corrupt.fetch_add(1);
          if (!al.free(slot)) unexpected.fetch_add(1);
          slot = Handle{};
        }
        auto a = al.allocate(700, 1);
        if (!a) {
          if (a.status().code() != Code::kEpochClosed) unexpected.fetch_add(1);
          std::this_thread::yield();  // the closer reopens the epoch
          continue;
        }
        stamp(*a);
        slot = a->handle;
        ++ok;
        done.fetch_add(1, std::memory_order_relaxed);
      }
      for (Handle h : ring)
        if (h.raw) {
          if (!intact(al, h)) corrupt.fetch_add(1);
          if (!al.free(h)) unexpected.fetch_add(1);
        }
    });
  }
  for (auto& w : workers) w.join();
  stop.store(true);
  closer.join();
  CHECK(corrupt.load() == 0);
  CHECK(unexpected.load() == 0);
  REQUIRE(al.verify().is_ok());
  CHECK(al.stats_global().live_objects == 0);
  REQUIRE(al.epoch_close(1).is_ok());
  CHECK(al.stats_global().committed_bytes == 0);
  CHECK(al.stats_global().chunks_returned > 0);
}

// Solo free mode (Options::solo_free, issue 14): the only freer takes slots
// with plain stores. A second thread's first free ends the mode while the
// first thread may be inside a solo free; both then free the same handles
// (racing double frees). Each handle must be freed exactly once, every
// second free refused and counted, the other objects untouched. Run over
// many fresh allocators so the switch lands at different points.
TEST_CASE("solo free mode: the switch to a second freer loses no double free", "[slab][stress]") {
#ifdef ZNSLAB_SANITIZE
  constexpr int kRounds = 6, kN = 2000;
#else
  constexpr int kRounds = 40, kN = 6000;
#endif
  for (int round = 0; round < kRounds; ++round) {
    Options o;
    o.handle_key = 0x5eed + uint64_t(round);
    auto r = SlabAllocator::create(o);
    REQUIRE(r);
    SlabAllocator& a = **r;
    std::vector<Allocation> keep, twice;
    std::mt19937 rng{uint32_t(round)};
    for (int i = 0; i < 2 * kN; ++i) {
      auto x = a.allocate(64 + rng() % 705, 1);
      REQUIRE(x);
      stamp(*x);
      (i % 2 ? keep : twice).push_back(*x);
    }
    // The main thread frees first: it becomes the solo freer.
    auto first = a.allocate(100, 1);
    REQUIRE(first);
    REQUIRE(a.free(first->handle).is_ok());
    const GlobalStats g0 = a.stats_global();
    std::atomic<int> ready{0};
    std::atomic<int64_t> ok{0}, dbl{0}, other{0};
    auto freer = [&](bool reverse) {
      ready.fetch_add(1);
      while (ready.load() < 2) {
      }
      for (int i = 0; i < kN; ++i) {
        const Handle h = twice[size_t(reverse ? kN - 1 - i : i)].handle;
        const Status s = a.free(h);
        if (s.is_ok()) ok.fetch_add(1);
        else if (s.code() == Code::kDoubleFree || s.code() == Code::kStaleHandle) dbl.fetch_add(1);
        else other.fetch_add(1);
      }
    };
    std::thread b(freer, round % 2 == 1);
    freer(false);
    b.join();
    REQUIRE(other.load() == 0);
    REQUIRE(ok.load() == kN);       // each handle freed exactly once
    REQUIRE(dbl.load() == kN);      // and refused exactly once
    const GlobalStats g1 = a.stats_global();
    // A second free of a slot is a double free, or stale once the slot was
    // reused; here nothing allocates, so it is a double free every time.
    REQUIRE(g1.double_frees - g0.double_frees == uint64_t(kN));
    REQUIRE(g1.frees - g0.frees == uint64_t(kN));
    REQUIRE(g1.live_objects == uint64_t(kN));
    for (const Allocation& x : keep) REQUIRE(intact(a, x.handle));
    // Reallocating after the switch hands out each freed slot once.
    std::vector<Allocation> again;
    for (int i = 0; i < kN; ++i) {
      auto x = a.allocate(64 + rng() % 705, 1);
      REQUIRE(x);
      stamp(*x);
      again.push_back(*x);
    }
    for (const Allocation& x : keep) REQUIRE(intact(a, x.handle));
    for (const Allocation& x : again) REQUIRE(intact(a, x.handle));
    REQUIRE(a.verify().is_ok());
  }
}
