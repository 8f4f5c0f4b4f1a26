// Tests of the slab's DRAM metadata under spill (issue 11, target "RSS
// held"; src/slab/arena.cpp dead-id SlabMeta pages, src/slab/compact.cpp
// compact records of spilled slabs), tag [spill]. Helpers shared with
// tests/slab_spill_test.cpp in tests/slab_spill_util.h.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "src/slab/slab.h"
#include "tests/slab_spill_util.h"
#include "tests/temp_dir.h"

using namespace znslab;
using namespace znslab::slab;
using namespace znslab::testutil::spill;
using znslab::testutil::TempDir;

// ---- SlabMeta pages of dead slab ids (spill mode; src/slab/arena.cpp) ---------

namespace {
// 64 slabs per chunk = four 16-id SlabMeta pages; no spill (large budget):
// the page release depends only on the budget being set.
Options meta_opts() {
  Options o = spill_opts(size_t(64) << 20);
  o.chunk_bytes = size_t(256) << 10;
  return o;
}
}  // namespace

TEST_CASE("spill: SlabMeta pages of dead slab ids go back while the chunk stays; no generation restart",
          "[spill]") {
  TempDir d;
  auto a = make_uri(meta_opts(), emu_uri(d, 16, 1024));
  // One chunk of class-768 slabs (5 objects each): 320 objects, 64 slabs.
  std::vector<Obj> objs;
  for (int i = 0; i < 320; ++i) {
    auto r = a->allocate(768, 0);
    REQUIRE(r.is_ok());
    objs.push_back(Obj{r->handle, 768});
    fill(r->ptr, objs.back());
  }
  uint32_t lo = ~0u, hi = 0;
  for (const Obj& o : objs) {
    lo = std::min(lo, handle_unpack(o.h.raw).slab_id);
    hi = std::max(hi, handle_unpack(o.h.raw).slab_id);
  }
  REQUIRE(hi - lo == 63);
  REQUIRE(lo % 64 == 0);
  REQUIRE(a->stats_spill().dram_meta_bytes == 4 * 4096);
  // Keep the objects of the last 16-id page (ids lo+48..lo+63); free the rest.
  std::vector<Obj> kept, freed;
  for (const Obj& o : objs) (handle_unpack(o.h.raw).slab_id >= lo + 48 ? kept : freed).push_back(o);
  for (const Obj& o : freed) REQUIRE(a->free(o.h).is_ok());
  // A double free before the release is a double free.
  const GlobalStats g0 = a->stats_global();
  REQUIRE(a->free(freed[0].h).code() == Code::kDoubleFree);
  a->reclaim();
  const SpillStats s1 = a->stats_spill();
  CHECK(s1.meta_pages_released == 3);
  CHECK(s1.dram_meta_bytes == 4096);
  REQUIRE(a->verify().is_ok());
  // Freed handles are refused (stale: their slab is not attached), the kept
  // objects are intact.
  for (const Obj& o : freed) {
    REQUIRE(a->free(o.h).code() == Code::kStaleHandle);
    REQUIRE(a->deref(o.h).status().code() == Code::kStaleHandle);
  }
  const GlobalStats g1 = a->stats_global();
  REQUIRE(g1.double_frees == g0.double_frees + 1);
  REQUIRE(g1.stale_handle_frees == g0.stale_handle_frees + freed.size());
  REQUIRE(g1.invalid_handle_frees == g0.invalid_handle_frees);
  check_all(*a, kept);
  // Re-attach the released ids: their slot counters continue above every
  // earlier value, so the old handles (same slab id and slot) stay refused.
  std::vector<Obj> again;
  size_t same_place = 0;
  for (size_t i = 0; i < freed.size(); ++i) {
    auto r = a->allocate(768, 0);
    REQUIRE(r.is_ok());
    again.push_back(Obj{r->handle, 768});
    fill(r->ptr, again.back());
  }
  for (const Obj& o : freed) {
    const HandleFields f = handle_unpack(o.h.raw);
    for (const Obj& n : again) {
      const HandleFields g = handle_unpack(n.h.raw);
      if (g.slab_id == f.slab_id && g.slot == f.slot) {
        ++same_place;
        CHECK(g.generation != f.generation);
      }
    }
    REQUIRE(a->free(o.h).code() == Code::kStaleHandle);
    REQUIRE(a->deref(o.h).status().code() == Code::kStaleHandle);
  }
  REQUIRE(same_place > freed.size() / 2);  // the ids were reused
  CHECK(a->stats_spill().dram_meta_bytes == 4 * 4096);
  check_all(*a, again);
  check_all(*a, kept);
  REQUIRE(a->verify().is_ok());
  for (const Obj& o : again) REQUIRE(a->free(o.h).is_ok());
  for (const Obj& o : kept) REQUIRE(a->free(o.h).is_ok());
  REQUIRE(a->epoch_close(0).is_ok());
  CHECK(a->stats_spill().dram_meta_bytes == 0);
  REQUIRE(a->verify().is_ok());
}

TEST_CASE("spill: stale and double frees racing SlabMeta page releases fail cleanly (two threads)",
          "[spill]") {
  TempDir d;
  auto a = make_uri(meta_opts(), emu_uri(d, 16, 1024));
  // Thread A: rounds of allocate, keep one survivor per 64 objects, free the
  // rest, reclaim (releasing pages). Thread B frees A's already-freed
  // handles over and over: every one must fail, counted exactly.
  constexpr int kRounds = 60;
  std::vector<std::vector<Handle>> dead(kRounds);
  std::atomic<int> published{0};
  std::atomic<uint64_t> b_tries{0}, b_ok{0};
  const GlobalStats g0 = a->stats_global();
  std::thread tb([&] {
    std::mt19937_64 rng(7);
    for (;;) {
      const int n = published.load(std::memory_order_acquire);
      if (n == kRounds) break;
      if (n == 0) {
        std::this_thread::yield();
        continue;
      }
      const auto& v = dead[rng() % uint64_t(n)];
      for (int k = 0; k < 32; ++k) {
        b_tries.fetch_add(1, std::memory_order_relaxed);
        if (a->free(v[rng() % v.size()]).is_ok()) b_ok.fetch_add(1, std::memory_order_relaxed);
      }
    }
  });
  std::mt19937_64 rng(8);
  std::vector<Obj> survivors;
  for (int r = 0; r < kRounds; ++r) {
    std::vector<Obj> v = fill_epoch(*a, 0, 640, rng, 512, 768);
    for (size_t i = 0; i < v.size(); ++i) {
      if (i % 64 == 0 && r % 4 == 0) {
        survivors.push_back(v[i]);
      } else {
        REQUIRE(a->free(v[i].h).is_ok());
        dead[size_t(r)].push_back(v[i].h);
      }
    }
    a->reclaim();
    published.store(r + 1, std::memory_order_release);
  }
  tb.join();
  REQUIRE(b_ok.load() == 0);
  const GlobalStats g1 = a->stats_global();
  REQUIRE((g1.stale_handle_frees - g0.stale_handle_frees) + (g1.double_frees - g0.double_frees) ==
          b_tries.load());
  REQUIRE(g1.invalid_handle_frees == g0.invalid_handle_frees);
  CHECK(a->stats_spill().meta_pages_released > 0);
  check_all(*a, survivors);
  REQUIRE(a->verify().is_ok());
}

// ---- compact records of spilled slabs (src/slab/compact.cpp) -------------------

namespace {
// Handle with its generation field XORed with `bits` (bit 0: the unmasked
// counter turns even, a forged handle; bit 1: an older odd counter, stale).
Handle tweak(Handle h, uint32_t bits) {
  HandleFields f = handle_unpack(h.raw);
  f.generation ^= bits;
  return Handle{handle_pack(f)};
}

// Epochs of objects, most freed at once: the survivors (1 in `keep`) leave
// sparse slabs that spill and whose SlabMeta pages get compacted.
struct Sparse {
  std::vector<Obj> live, dead;
};
Sparse sparse_epochs(SlabAllocator& a, uint32_t rounds, size_t n, size_t keep, std::mt19937_64& rng) {
  Sparse s;
  for (uint32_t r = 0; r < rounds; ++r) {
    std::vector<Obj> v = fill_epoch(a, a.epoch_current(), n, rng);
    for (size_t i = 0; i < v.size(); ++i) {
      if (i % keep == 0) {
        s.live.push_back(v[i]);
      } else {
        REQUIRE(a.free(v[i].h).is_ok());
        s.dead.push_back(v[i]);
      }
    }
    a.epoch_advance();
  }
  return s;
}
}  // namespace

TEST_CASE("spill: frees of compacted slabs (valid, double, stale, forged) count exactly as resident",
          "[spill]") {
  TempDir d;
  auto a = make_uri(spill_opts(1 << 20), emu_uri(d, 128, 256));
  std::mt19937_64 rng(21);
  Sparse s = sparse_epochs(*a, 10, 2000, 9, rng);
  const SpillStats s0 = a->stats_spill();
  REQUIRE(s0.spilled_now_bytes > 0);
  REQUIRE(s0.meta_pages_compacted > 0);
  // The compact records hold less than the pages they replaced.
  const GlobalStats g0 = a->stats_global();
  uint64_t n_ok = 0, n_double = 0, n_stale = 0, n_forged = 0;
  // Objects freed before their slab was compacted, in slabs a survivor
  // still holds (same attachment): double frees, exactly.
  {
    std::vector<uint32_t> held;
    for (const Obj& o : s.live) held.push_back(handle_unpack(o.h.raw).slab_id);
    std::sort(held.begin(), held.end());
    size_t tried = 0;
    for (const Obj& o : s.dead) {
      if (!std::binary_search(held.begin(), held.end(), handle_unpack(o.h.raw).slab_id)) continue;
      if (++tried % 7) continue;
      REQUIRE(a->free(o.h).code() == Code::kDoubleFree);
      ++n_double;
    }
    REQUIRE(n_double > 0);
  }
  std::vector<Obj> keep;
  for (size_t i = 0; i < s.live.size(); ++i) {
    const Obj& o = s.live[i];
    switch (i % 5) {
      case 0: {  // valid free, then a double free (or stale once the slab was detached)
        REQUIRE(a->free(o.h).is_ok());
        ++n_ok;
        const Code c2 = a->free(o.h).code();
        REQUIRE((c2 == Code::kDoubleFree || c2 == Code::kStaleHandle));
        ++(c2 == Code::kDoubleFree ? n_double : n_stale);
        break;
      }
      case 1:
        REQUIRE(a->free(tweak(o.h, 2)).code() == Code::kStaleHandle);
        ++n_stale;
        keep.push_back(o);
        break;
      case 2:
        REQUIRE(a->free(tweak(o.h, 1)).code() == Code::kInvalidHandle);
        ++n_forged;
        keep.push_back(o);
        break;
      default: keep.push_back(o); break;
    }
    if (i % 64 == 63) (void)fill_epoch(*a, a->epoch_current(), 200, rng);  // spill + compact again
  }
  const GlobalStats g1 = a->stats_global();
  REQUIRE(g1.double_frees - g0.double_frees == n_double);
  REQUIRE(g1.stale_handle_frees - g0.stale_handle_frees == n_stale);
  REQUIRE(g1.invalid_handle_frees - g0.invalid_handle_frees == n_forged);
  const SpillStats s1 = a->stats_spill();
  CHECK(s1.meta_pages_expanded > s0.meta_pages_expanded);
  CHECK(s1.faultbacks == s0.faultbacks);  // frees needed no I/O
  // Derefs expand and fault back: every survivor reads its bytes.
  check_all(*a, keep);
  REQUIRE(a->verify().is_ok());
  for (const Obj& o : keep) REQUIRE(a->free(o.h).is_ok());
  REQUIRE(a->verify().is_ok());
}

TEST_CASE("spill: compaction lowers SlabMeta DRAM of sparse spilled slabs and handles survive it",
          "[spill]") {
  TempDir d;
  Options with = spill_opts(1 << 20);
  Options without = with;
  without.thread_cache = false;  // compaction needs thread caches: off
  auto a = make_uri(with, emu_uri(d, 128, 256));
  TempDir d2;
  auto b = make_uri(without, emu_uri(d2, 128, 256));
  std::mt19937_64 ra(22), rb(22);
  Sparse sa = sparse_epochs(*a, 10, 2000, 9, ra);
  Sparse sb = sparse_epochs(*b, 10, 2000, 9, rb);
  const SpillStats xa = a->stats_spill(), xb = b->stats_spill();
  REQUIRE(xa.meta_pages_compacted > 0);
  REQUIRE(xb.meta_pages_compacted == 0);
  CHECK(xa.dram_meta_bytes < xb.dram_meta_bytes);
  // Freed handles stay refused, survivors intact (after expansion).
  for (const Obj& o : sa.dead) REQUIRE(a->deref(o.h).status().code() == Code::kStaleHandle);
  check_all(*a, sa.live);
  REQUIRE(a->verify().is_ok());
  REQUIRE(b->verify().is_ok());
}

TEST_CASE("spill: two threads freeing while SlabMeta pages are compacted", "[spill]") {
  TempDir d;
  auto a = make_uri(spill_opts(256 << 10), emu_uri(d, 256, 256));
  std::mt19937_64 rng(23);
  Sparse s = sparse_epochs(*a, 8, 2000, 5, rng);
  const SpillStats x0 = a->stats_spill();
  REQUIRE(x0.meta_pages_compacted > 0);
  const GlobalStats g0 = a->stats_global();
  // Thread B frees the survivors (each also double-freed) and pins some,
  // while thread A keeps allocating (spill passes compact pages again).
  std::atomic<bool> done{false};
  std::atomic<uint64_t> bad{0}, bad_deref{0}, bad_free{0}, n_double{0}, n_stale{0};
  std::vector<Obj> kept;
  for (size_t i = 0; i < s.live.size(); i += 3) kept.push_back(s.live[i]);
  std::thread tb([&] {
    for (size_t i = 0; i < s.live.size(); ++i) {
      if (i % 3 == 0) {
        // pin, not deref: thread A's spill passes may spill the slab while
        // its bytes are read (a deref pointer is only good until then).
        auto p = a->pin(s.live[i].h);
        if (!p || !intact(p->ptr(), s.live[i])) bad_deref.fetch_add(1);
        continue;
      }
      if (!a->free(s.live[i].h).is_ok()) bad_free.fetch_add(1);
      // Double free: kDoubleFree, or kStaleHandle once the slab emptied and
      // was detached (as for a resident slab).
      const Code c2 = a->free(s.live[i].h).code();
      if (c2 == Code::kDoubleFree) n_double.fetch_add(1);
      else if (c2 == Code::kStaleHandle) n_stale.fetch_add(1);
      else bad.fetch_add(1);
    }
    done.store(true);
  });
  // (A stays in one epoch: advancing would wrap the 16-epoch ring onto
  // the survivors' epochs.)
  std::mt19937_64 rng2(24);
  std::vector<Obj> mine;
  const uint32_t ea = a->epoch_current();
  while (!done.load()) {
    std::vector<Obj> v = fill_epoch(*a, ea, 300, rng2);
    for (size_t i = 0; i < v.size(); ++i) {
      if (i % 11 == 0 && mine.size() < 20000) mine.push_back(v[i]);
      else REQUIRE(a->free(v[i].h).is_ok());
    }
  }
  tb.join();
  REQUIRE(bad_deref.load() == 0);
  REQUIRE(bad_free.load() == 0);
  REQUIRE(bad.load() == 0);
  const SpillStats x1 = a->stats_spill();
  CHECK(x1.meta_pages_expanded > x0.meta_pages_expanded);  // B met compact pages
  CHECK(x1.meta_pages_compacted > x0.meta_pages_compacted);  // A's passes compacted more
  const size_t freed_b = s.live.size() - kept.size();
  const GlobalStats g1 = a->stats_global();
  REQUIRE(n_double.load() + n_stale.load() == freed_b);
  REQUIRE(n_double.load() > 0);
  REQUIRE(g1.double_frees - g0.double_frees == n_double.load());
  REQUIRE(g1.stale_handle_frees - g0.stale_handle_frees == n_stale.load());
  check_all(*a, kept);
  check_all(*a, mine);
  REQUIRE(a->verify().is_ok());
}

TEST_CASE("spill: a compacted slab with far-apart counters (escapes) restores every counter exactly",
          "[spill]") {
  TempDir d;
  auto a = make_uri(spill_opts(1 << 20), emu_uri(d, 128, 256));
  const uint32_t e0 = a->epoch_current();
  // One class-768 slab (5 slots): slot A churns 300 times (its counter runs
  // 600 steps ahead of its neighbours'), the others stay allocated.
  std::vector<Obj> first;
  for (int i = 0; i < 5; ++i) {
    auto r = a->allocate(700, e0);
    REQUIRE(r.is_ok());
    first.push_back(Obj{r->handle, 700});
    fill(r->ptr, first.back());
  }
  const uint32_t sid = handle_unpack(first[0].h.raw).slab_id;
  for (const Obj& o : first) REQUIRE(handle_unpack(o.h.raw).slab_id == sid);
  std::vector<Handle> old;
  Handle h = first[0].h;
  for (int i = 0; i < 300; ++i) {
    REQUIRE(a->free(h).is_ok());
    old.push_back(h);
    auto r = a->allocate(700, e0);
    REQUIRE(r.is_ok());
    REQUIRE(handle_unpack(r->handle.raw).slab_id == sid);
    h = r->handle;
  }
  REQUIRE(a->free(h).is_ok());  // slot A free, counter far ahead
  a->reclaim();                 // (the calling thread's cached slot goes back)
  REQUIRE(a->epoch_close(e0).is_ok());
  a->epoch_advance();
  std::mt19937_64 rng(31);
  Sparse s = sparse_epochs(*a, 8, 2000, 9, rng);
  const SpillStats x0 = a->stats_spill();
  REQUIRE(x0.meta_pages_compacted > 0);
  // The double free meets the compact record first (expansion), then the
  // exact counter: kDoubleFree, not stale.
  REQUIRE(a->free(h).code() == Code::kDoubleFree);
  CHECK(a->stats_spill().meta_pages_expanded > x0.meta_pages_expanded);
  for (const Handle& o : old) REQUIRE(a->free(o).code() == Code::kStaleHandle);
  REQUIRE(a->free(tweak(first[1].h, 2)).code() == Code::kStaleHandle);
  for (size_t i = 1; i < first.size(); ++i) {
    auto p = a->deref(first[i].h);
    REQUIRE(p.is_ok());
    REQUIRE(intact(*p, first[i]));
  }
  check_all(*a, s.live);
  REQUIRE(a->verify().is_ok());
  for (size_t i = 1; i < first.size(); ++i) REQUIRE(a->free(first[i].h).is_ok());
  REQUIRE(a->verify().is_ok());
}
