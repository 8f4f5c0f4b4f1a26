// Tests of the slab's spill to zoned storage (issue 11; src/slab/spill.cpp),
// tag [spill]; the metadata cases are in tests/slab_spill_meta_test.cpp. Small emulated devices in a temp dir; seeded randomness; no
// timing assertions. Every object carries a pattern derived from its handle,
// so a slab read back from the wrong place or not at all is caught.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "src/slab/slab.h"
#include "tests/slab_spill_util.h"
#include "tests/temp_dir.h"
#include "zns/fault_device.h"
#include "zns/zoned_device.h"

using namespace znslab;
using namespace znslab::slab;
using znslab::testutil::TempDir;

using namespace znslab::testutil::spill;


TEST_CASE("spill: handles stay valid across spill and fault-back (patterned objects)", "[spill]") {
  TempDir d;
  const size_t budget = 512 << 10;
  auto a = make_uri(spill_opts(budget), emu_uri(d, 64, 256));
  std::mt19937_64 rng(1);
  std::vector<Obj> all;
  for (uint32_t r = 0; r < 8; ++r) {
    auto v = fill_epoch(*a, a->epoch_current(), 600, rng);
    all.insert(all.end(), v.begin(), v.end());
    a->epoch_advance();
  }
  SpillStats s = a->stats_spill();
  REQUIRE(s.spilled_bytes > 0);
  REQUIRE(s.spilled_now_bytes > 0);
  REQUIRE(s.dram_committed_bytes <= budget);
  check_all(*a, all);
  s = a->stats_spill();
  REQUIRE(s.faultbacks > 0);
  REQUIRE(s.faultback_bytes == s.faultbacks * kSlabBytes);
  REQUIRE(s.faultback_ns.count == s.faultbacks);
  REQUIRE(s.faultback_ns.p50 > 0);
  REQUIRE(s.faultback_ns.p99 >= s.faultback_ns.p50);
  REQUIRE(s.dram_committed_bytes <= budget);
  // A second round of derefs still sees every byte (slabs spilled again).
  check_all(*a, all);
  REQUIRE(a->verify().is_ok());
  // With no mispredicted lifetimes nothing is copied: WA is exactly 1.
  REQUIRE(s.gc_copied_bytes == 0);
  REQUIRE(s.write_amplification == Approx(1.0));
}

TEST_CASE("spill: free of a spilled object does no I/O", "[spill]") {
  TempDir d;
  zns::FaultDevice* fd = nullptr;
  auto a = make_faulty(spill_opts(256 << 10), emu_uri(d, 64, 256), &fd);
  std::mt19937_64 rng(2);
  std::vector<std::vector<Obj>> ep;
  for (uint32_t r = 0; r < 6; ++r) {
    ep.push_back(fill_epoch(*a, a->epoch_current(), 500, rng));
    a->epoch_advance();
  }
  const SpillStats before = a->stats_spill();
  REQUIRE(before.spilled_now_bytes > 0);
  const uint64_t ios = fd->io_count();
  // Epoch 0 is the coldest: spilled first. Free all of it and half of epoch 1.
  for (const Obj& o : ep[0]) REQUIRE(a->free(o.h).is_ok());
  for (size_t i = 0; i < ep[1].size(); i += 2) REQUIRE(a->free(ep[1][i].h).is_ok());
  REQUIRE(fd->io_count() == ios);
  const SpillStats after = a->stats_spill();
  REQUIRE(after.faultbacks == before.faultbacks);
  REQUIRE(after.spill_ios == before.spill_ios);
  // Freed handles are refused; the rest read back intact.
  for (const Obj& o : ep[0]) REQUIRE(a->deref(o.h).status().code() == Code::kStaleHandle);
  for (size_t i = 1; i < ep[1].size(); i += 2) {
    auto p = a->deref(ep[1][i].h);
    REQUIRE(p.is_ok());
    REQUIRE(intact(*p, ep[1][i]));
  }
  REQUIRE(a->verify().is_ok());
}

TEST_CASE("spill: a pinned slab stays resident while others spill", "[spill]") {
  TempDir d;
  zns::FaultDevice* fd = nullptr;
  auto a = make_faulty(spill_opts(256 << 10), emu_uri(d, 64, 256), &fd);
  std::mt19937_64 rng(3);
  auto first = fill_epoch(*a, a->epoch_current(), 200, rng);
  a->epoch_advance();
  auto g = a->pin(first[0].h);
  REQUIRE(g.is_ok());
  void* p = g->ptr();
  REQUIRE(intact(p, first[0]));
  for (uint32_t r = 0; r < 6; ++r) {
    (void)fill_epoch(*a, a->epoch_current(), 500, rng);
    a->epoch_advance();
  }
  SpillStats s = a->stats_spill();
  REQUIRE(s.spilled_now_bytes > 0);
  // The pinned object never moved: same address, same bytes, and reading it
  // through deref needs no device I/O.
  const uint64_t ios = fd->io_count();
  REQUIRE(intact(p, first[0]));
  auto q = a->deref(first[0].h);
  REQUIRE(q.is_ok());
  REQUIRE(*q == p);
  REQUIRE(fd->io_count() == ios);
  // Its epoch-mates were spilled (epoch 0 is the coldest).
  size_t moved = 0;
  for (size_t i = 1; i < first.size(); ++i) {
    const uint64_t before = a->stats_spill().faultbacks;
    auto r = a->deref(first[i].h);
    REQUIRE(r.is_ok());
    REQUIRE(intact(*r, first[i]));
    moved += a->stats_spill().faultbacks > before;
  }
  REQUIRE(moved > 0);
  // Move keeps the pin; reset releases it.
  SlabAllocator::PinGuard g2 = std::move(*g);
  REQUIRE(g2.ptr() == p);
  g2.reset();
  REQUIRE(!g2);
}

TEST_CASE("spill: zones of an epoch that dies are reset with no copy", "[spill]") {
  TempDir d;
  auto a = make_uri(spill_opts(256 << 10), emu_uri(d, 64, 256));
  std::mt19937_64 rng(4);
  std::vector<std::vector<Obj>> ep;
  for (uint32_t r = 0; r < 6; ++r) {
    ep.push_back(fill_epoch(*a, a->epoch_current(), 500, rng));
    a->epoch_advance();
  }
  const SpillStats before = a->stats_spill();
  REQUIRE(before.spilled_now_bytes > 0);
  for (auto& v : ep)
    for (const Obj& o : v) REQUIRE(a->free(o.h).is_ok());
  for (uint32_t e = 0; e < kEpochCount; ++e) REQUIRE(a->epoch_close(e).is_ok());
  a->reclaim();
  const SpillStats s = a->stats_spill();
  REQUIRE(s.spilled_now_bytes == 0);
  REQUIRE(s.zone_resets_no_copy > before.zone_resets_no_copy);
  REQUIRE(s.zone_resets == s.zone_resets_no_copy);
  REQUIRE(s.gc_copied_bytes == 0);
  REQUIRE(s.faultbacks == before.faultbacks);  // dying needs no read
  REQUIRE(s.zones_free == s.zones_total);
  REQUIRE(a->stats_global().live_objects == 0);
  REQUIRE(a->verify().is_ok());
}

TEST_CASE("spill: GC keeps mispredicted objects readable over many rounds", "[spill]") {
  for (SpillUnit unit : {SpillUnit::kEpoch, SpillUnit::kPage}) {
    DYNAMIC_SECTION("unit " << spill_unit_name(unit)) {
      TempDir d;
      // 20 zones x 16 slabs: 1.25 MiB of device for ~4x the budget in flight.
      auto a = make_uri(spill_opts(192 << 10, unit), emu_uri(d, 20, 64, 4));
      std::mt19937_64 rng(5);
      struct Survivor {
        Obj o;
        uint32_t dies;  // round
      };
      std::vector<Survivor> live;
      std::bernoulli_distribution mispredicted(0.05);
      std::uniform_int_distribution<uint32_t> extra(1, 3);
      for (uint32_t round = 0; round < 60; ++round) {
        const uint32_t e = a->epoch_current();
        auto v = fill_epoch(*a, e, 300, rng, 400, 768);
        a->epoch_advance();
        // Objects of the epoch two rounds back die, except mispredicted ones.
        for (const Obj& o : v)
          live.push_back(Survivor{o, round + 2 + (mispredicted(rng) ? extra(rng) : 0)});
        std::vector<Survivor> keep;
        for (const Survivor& s : live) {
          if (s.dies <= round) {
            auto p = a->deref(s.o.h);
            REQUIRE(p.is_ok());
            REQUIRE(intact(*p, s.o));
            REQUIRE(a->free(s.o.h).is_ok());
          } else {
            keep.push_back(s);
          }
        }
        live.swap(keep);
        // Reads of older survivors fault their slabs back with clean
        // copies kept on the device, which GC may drop instead of copying.
        for (size_t i = 0; i < live.size(); i += 7) {
          auto p = a->deref(live[i].o.h);
          REQUIRE(p.is_ok());
          REQUIRE(intact(*p, live[i].o));
        }
        (void)a->epoch_close((e + kEpochCount - 2) % kEpochCount);
      }
      const SpillStats s = a->stats_spill();
      INFO("spilled " << s.spilled_bytes << " gc " << s.gc_copied_bytes << " resets " << s.zone_resets
                      << " dropped clean " << s.gc_dropped_clean);
      REQUIRE(s.gc_runs > 0);
      REQUIRE(s.gc_copied_bytes > 0);
      REQUIRE(s.gc_dropped_clean > 0);
      // The budget's parts: SlabMeta pages and spill tables are in it.
      REQUIRE(s.dram_meta_bytes >= kSlabBytes);
      REQUIRE(s.dram_table_bytes > 0);
      REQUIRE(s.dram_meta_bytes + s.dram_table_bytes <= s.dram_committed_bytes);
      REQUIRE(s.device_bytes_written == s.spilled_bytes + s.gc_copied_bytes);
      for (const Survivor& sv : live) {
        auto p = a->deref(sv.o.h);
        REQUIRE(p.is_ok());
        REQUIRE(intact(*p, sv.o));
      }
      REQUIRE(a->verify().is_ok());
    }
  }
}

TEST_CASE("spill: the budget holds under two threads", "[spill]") {
  TempDir d;
  const size_t budget = 384 << 10;
  auto a = make_uri(spill_opts(budget), emu_uri(d, 128, 256, 6));
  std::atomic<uint64_t> peak{0};
  std::atomic<int> bad{0};
  auto worker = [&](uint32_t base, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::vector<Obj>> ring(8);
    for (uint32_t r = 0; r < 24; ++r) {
      const uint32_t e = base + r % 8;
      // Objects of this ring slot's previous incarnation die first.
      for (const Obj& o : ring[r % 8])
        if (!a->free(o.h)) bad++;
      ring[r % 8].clear();
      if (!a->epoch_reopen(e)) bad++;
      std::uniform_int_distribution<uint32_t> sz(64, 768);
      for (int i = 0; i < 300; ++i) {
        const uint32_t b = sz(rng);
        auto res = a->allocate(b, e);
        if (!res) {
          bad++;
          continue;
        }
        Obj o{res->handle, b};
        fill(res->ptr, o);
        ring[r % 8].push_back(o);
      }
      if (!a->epoch_close(e)) bad++;
      uint64_t used = a->stats_spill().dram_committed_bytes, p = peak.load();
      while (used > p && !peak.compare_exchange_weak(p, used)) {
      }
      // Check an older slot through pins (faults back what was spilled).
      for (const Obj& o : ring[(r + 4) % 8]) {
        auto g = a->pin(o.h);
        if (!g || !intact(g->ptr(), o)) bad++;
      }
    }
    for (auto& v : ring)
      for (const Obj& o : v) {
        auto g = a->pin(o.h);
        if (!g || !intact(g->ptr(), o)) bad++;
      }
  };
  std::thread t0(worker, 0, 61), t1(worker, 8, 62);
  t0.join();
  t1.join();
  const SpillStats s = a->stats_spill();
  INFO("peak " << peak.load() << " spilled " << s.spilled_bytes << " faultbacks " << s.faultbacks);
  REQUIRE(bad.load() == 0);
  REQUIRE(s.spilled_bytes > 0);
  REQUIRE(s.faultbacks > 0);
  REQUIRE(peak.load() <= budget);
  REQUIRE(s.over_budget_events == 0);
  REQUIRE(a->verify().is_ok());
}

TEST_CASE("spill: a failed spill write keeps the data in DRAM and reports", "[spill]") {
  TempDir d;
  zns::FaultDevice* fd = nullptr;
  auto a = make_faulty(spill_opts(256 << 10), emu_uri(d, 64, 256), &fd);
  fd->fail_nth_io(1, /*repeat=*/true);  // every data I/O fails
  std::mt19937_64 rng(7);
  std::vector<Obj> all;
  for (uint32_t r = 0; r < 4; ++r) {
    auto v = fill_epoch(*a, a->epoch_current(), 500, rng);
    all.insert(all.end(), v.begin(), v.end());
    a->epoch_advance();
  }
  const SpillStats s = a->stats_spill();
  REQUIRE(s.spill_write_errors > 0);
  REQUIRE(s.spilled_now_bytes == 0);
  REQUIRE(s.over_budget_events > 0);
  REQUIRE(!s.last_error.empty());
  REQUIRE(fd->injected_failures() > 0);
  check_all(*a, all);  // all in DRAM, no read needed
  REQUIRE(a->stats_spill().faultbacks == 0);
  // Once the device recovers, spilling resumes and the data survives it.
  fd->fail_nth_io(0);
  for (uint32_t r = 0; r < 2; ++r) {
    auto v = fill_epoch(*a, a->epoch_current(), 500, rng);
    all.insert(all.end(), v.begin(), v.end());
    a->epoch_advance();
  }
  REQUIRE(a->stats_spill().spilled_now_bytes > 0);
  check_all(*a, all);
  REQUIRE(a->verify().is_ok());
}

TEST_CASE("spill: a failed fault-back read is an error from deref, never garbage", "[spill]") {
  TempDir d;
  zns::FaultDevice* fd = nullptr;
  auto a = make_faulty(spill_opts(256 << 10), emu_uri(d, 64, 256), &fd);
  std::mt19937_64 rng(8);
  std::vector<Obj> all;
  for (uint32_t r = 0; r < 6; ++r) {
    auto v = fill_epoch(*a, a->epoch_current(), 500, rng);
    all.insert(all.end(), v.begin(), v.end());
    a->epoch_advance();
  }
  REQUIRE(a->stats_spill().spilled_now_bytes > 0);
  fd->fail_nth_io(1, /*repeat=*/true);
  size_t errors = 0, good = 0;
  for (size_t i = 0; i < 500; ++i) {  // epoch 0: spilled
    auto p = a->deref(all[i].h);
    if (!p) {
      REQUIRE(p.status().code() == Code::kIoError);
      ++errors;
      auto g = a->pin(all[i].h);
      REQUIRE(!g.is_ok());
    } else {
      REQUIRE(intact(*p, all[i]));  // resident ones: right bytes
      ++good;
    }
  }
  REQUIRE(errors > 0);
  REQUIRE(a->stats_spill().faultback_errors >= errors);
  fd->fail_nth_io(0);
  check_all(*a, all);  // the copies were intact all along
  REQUIRE(a->verify().is_ok());
}

TEST_CASE("spill: prefetch brings an epoch back asynchronously", "[spill]") {
  TempDir d;
  auto a = make_uri(spill_opts(512 << 10), emu_uri(d, 64, 256));
  std::mt19937_64 rng(9);
  std::vector<std::vector<Obj>> ep;
  for (uint32_t r = 0; r < 4; ++r) {
    ep.push_back(fill_epoch(*a, a->epoch_current(), 400, rng));
    a->epoch_advance();
  }
  REQUIRE(a->stats_spill().spilled_now_bytes > 0);
  REQUIRE(a->prefetch(16).code() == Code::kInvalidArgument);
  const uint64_t before = a->stats_spill().faultbacks;
  REQUIRE(a->prefetch(0).is_ok());
  // The worker reads epoch 0 back; wait for its reads (bounded).
  for (int i = 0; i < 2000 && a->stats_spill().faultbacks == before; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(a->stats_spill().faultbacks > before);
  check_all(*a, ep[0]);
}

TEST_CASE("spill: budget 0 or spill none leaves the allocator as before", "[spill]") {
  Options o;
  o.arena_bytes = size_t(64) << 20;
  o.spill = SpillTarget::kZns;  // no budget: no device opened, no spill
  o.spill_device = "emu:/nonexistent/dir/x.img?zones=4&zone_size=64K";
  auto a = SlabAllocator::create(o);
  REQUIRE(a.is_ok());
  auto r = (*a)->allocate(100, 0);
  REQUIRE(r.is_ok());
  auto g = (*a)->pin(r->handle);
  REQUIRE(g.is_ok());
  REQUIRE(g->ptr() == r->ptr);
  REQUIRE((*a)->prefetch(0).is_ok());
  const SpillStats s = (*a)->stats_spill();
  REQUIRE(s.spilled_bytes == 0);
  REQUIRE(s.dram_committed_bytes >= kSlabBytes);  // the gauge works without spill
  g->reset();
  REQUIRE((*a)->free(r->handle).is_ok());
  o.spill = SpillTarget::kOverflow;
  o.dram_budget_bytes = 1 << 20;
  // overflow is a target now (tests/slab_spill_overflow_test.cpp): a zns URI is not a region spec.
  REQUIRE(SlabAllocator::create(o).status().code() == Code::kInvalidArgument);
  REQUIRE(parse_spill_target("zns").is_ok());
  REQUIRE(!parse_spill_unit("slab").is_ok());
}

// ---- meshing (docs/spill.md "Meshing") -----------------------------------------------

namespace {

// An object whose pattern is keyed by `key` (the handle at first, a new key
// after each rewrite), with the round it dies in.
struct MeshObj {
  Handle h;
  uint32_t bytes;
  uint64_t key;
  uint32_t dies;
};

void fill_key(void* p, const MeshObj& o) {
  auto* b = static_cast<uint8_t*>(p);
  for (uint32_t i = 0; i < o.bytes; ++i) b[i] = pat(o.key, i);
}

bool intact_key(const void* p, const MeshObj& o) {
  auto* b = static_cast<const uint8_t*>(p);
  for (uint32_t i = 0; i < o.bytes; ++i)
    if (b[i] != pat(o.key, i)) return false;
  return true;
}

// Churn for meshing: each round allocates small objects (64-128 B, many per
// slab) in the current epoch; most die two rounds later, 15 % outlive their
// epoch by 1..6 rounds, so their slabs are left sparse on the device and
// GC meshes them. Every 5th live object is rewritten (its slab faults back
// and is written alone again), every 3rd read. Each deref'd object is
// checked. `tolerate_errors`: a deref may fail with an I/O error (never
// return wrong bytes); frees then wait.
struct MeshChurn {
  SlabAllocator& a;
  std::mt19937_64 rng;
  std::vector<MeshObj> live;
  uint64_t next_key = 1;
  size_t deref_errors = 0;

  MeshChurn(SlabAllocator& al, uint64_t seed) : a(al), rng(seed) {}

  bool check(const MeshObj& o, bool tolerate_errors) {
    auto p = a.deref(o.h);
    if (!p) {
      REQUIRE(tolerate_errors);
      REQUIRE(p.status().code() == Code::kIoError);
      ++deref_errors;
      return false;
    }
    REQUIRE(intact_key(*p, o));
    return true;
  }

  void rounds(uint32_t first, uint32_t n, bool rewrite, bool tolerate_errors = false) {
    std::bernoulli_distribution mispredicted(0.15);
    std::uniform_int_distribution<uint32_t> extra(1, 6), sz(64, 128);
    for (uint32_t round = first; round < first + n; ++round) {
      const uint32_t e = a.epoch_current();
      for (uint32_t i = 0; i < 700; ++i) {
        MeshObj o{Handle{}, sz(rng), 0, round + 2 + (mispredicted(rng) ? extra(rng) : 0)};
        auto r = a.allocate(o.bytes, e);
        REQUIRE(r.is_ok());
        o.h = r->handle;
        o.key = r->handle.raw;
        fill_key(r->ptr, o);
        live.push_back(o);
      }
      a.epoch_advance();
      std::vector<MeshObj> keep;
      for (MeshObj& o : live) {
        if (o.dies <= round) {
          if (!check(o, tolerate_errors)) {
            keep.push_back(o);
            continue;
          }
          REQUIRE(a.free(o.h).is_ok());
        } else {
          keep.push_back(o);
        }
      }
      live.swap(keep);
      for (size_t i = 0; i < live.size(); ++i) {
        if (rewrite && i % 5 == 0) {
          auto p = a.deref(live[i].h);
          if (!p) {
            REQUIRE(tolerate_errors);
            ++deref_errors;
            continue;
          }
          REQUIRE(intact_key(*p, live[i]));
          live[i].key = (next_key++ << 40) ^ live[i].h.raw;
          fill_key(*p, live[i]);
        } else if (i % 3 == 0) {
          (void)check(live[i], tolerate_errors);
        }
      }
      (void)a.epoch_close((e + kEpochCount - 2) % kEpochCount);
    }
  }

  void check_all_live() {
    for (const MeshObj& o : live) REQUIRE(check(o, false));
  }
};

}  // namespace

TEST_CASE("spill: meshed slabs keep every object's bytes over GC rounds, then free to empty zones", "[spill]") {
  for (SpillUnit unit : {SpillUnit::kEpoch, SpillUnit::kPage}) {
    DYNAMIC_SECTION("unit " << spill_unit_name(unit)) {
      TempDir d;
      auto a = make_uri(spill_opts(128 << 10, unit), emu_uri(d, 10, 64, 4));
      MeshChurn m(*a, 31);
      m.rounds(0, 50, false);
      const SpillStats s = a->stats_spill();
      INFO("spilled " << s.spilled_bytes << " gc " << s.gc_copied_bytes << " mesh blocks " << s.gc_mesh_blocks
                      << " meshed slabs " << s.gc_meshed_slabs << " wa " << s.write_amplification);
      REQUIRE(s.gc_runs > 0);
      REQUIRE(s.gc_mesh_blocks > 0);
      REQUIRE(s.gc_meshed_slabs >= 2 * s.gc_mesh_blocks);
      REQUIRE(s.device_bytes_written == s.spilled_bytes + s.gc_copied_bytes);
      m.check_all_live();
      REQUIRE(a->verify().is_ok());
      // Frees of meshed slabs: every copy is released, every zone dies and
      // is reset (the blocks' reference counts reach zero).
      for (const MeshObj& o : m.live) REQUIRE(a->free(o.h).is_ok());
      m.live.clear();
      for (uint32_t e = 0; e < kEpochCount; ++e) (void)a->epoch_close(e);
      (void)a->reclaim();
      const SpillStats t = a->stats_spill();
      REQUIRE(t.spilled_now_bytes == 0);
      REQUIRE(t.zones_free == t.zones_total);
      REQUIRE(a->verify().is_ok());
    }
  }
}

TEST_CASE("spill: a meshed slab faulted back, modified and re-spilled leaves its mesh partners intact", "[spill]") {
  TempDir d;
  auto a = make_uri(spill_opts(128 << 10), emu_uri(d, 10, 64, 4));
  MeshChurn m(*a, 32);
  m.rounds(0, 30, false);
  const SpillStats s0 = a->stats_spill();
  REQUIRE(s0.gc_mesh_blocks > 0);
  // Rewrites of every 5th live object: meshed slabs come back (the block's
  // other slabs' bytes land in free slots), change, are written alone and
  // release the block; their partners stay readable from it.
  m.rounds(30, 30, true);
  const SpillStats s1 = a->stats_spill();
  INFO("mesh blocks " << s0.gc_mesh_blocks << " -> " << s1.gc_mesh_blocks << " faultbacks " << s1.faultbacks);
  REQUIRE(s1.gc_mesh_blocks > s0.gc_mesh_blocks);
  REQUIRE(s1.faultbacks > s0.faultbacks);
  m.check_all_live();
  REQUIRE(a->verify().is_ok());
}

TEST_CASE("spill: device errors during mesh GC keep every object readable or reported", "[spill]") {
  TempDir d;
  zns::FaultDevice* fd = nullptr;
  Options o = spill_opts(128 << 10);
  auto a = make_faulty(o, emu_uri(d, 10, 64, 4), &fd);
  MeshChurn m(*a, 33);
  m.rounds(0, 20, false);
  REQUIRE(a->stats_spill().gc_mesh_blocks > 0);
  fd->fail_nth_io(7, /*repeat=*/true);  // every 7th data I/O fails from now on
  m.rounds(20, 25, true, /*tolerate_errors=*/true);
  const SpillStats s = a->stats_spill();
  INFO("errors " << m.deref_errors << " injected " << fd->injected_failures() << " last " << s.last_error);
  REQUIRE(fd->injected_failures() > 0);
  REQUIRE(!s.last_error.empty());
  fd->fail_nth_io(0);
  m.check_all_live();  // the device is healthy again: every object, right bytes
  REQUIRE(a->verify().is_ok());
}

// Epoch unit: a slab read back and then modified is a re-spill (and a hole
// in its old zone) each time it is evicted. A spill pass first makes room
// with first-time and clean slabs of the same kind of epoch (here CLOSING),
// even when the dirty slab's epoch is the coldest; the dirty slab is
// spilled only when that is not enough. Its CRC is computed once: later
// passes know it is dirty (crc_skips). Objects stay intact; freeing
// everything empties every zone.
TEST_CASE("spill: a dirty re-faulted slab stays resident while first-time slabs make room", "[spill]") {
  TempDir d;
  const size_t budget = 512 << 10;
  auto a = make_uri(spill_opts(budget), emu_uri(d, 64, 256));
  std::mt19937_64 rng(12);
  std::vector<Obj> all;
  for (uint32_t r = 0; r < 4; ++r) {
    auto v = fill_epoch(*a, a->epoch_current(), 600, rng);
    all.insert(all.end(), v.begin(), v.end());
    a->epoch_advance();
  }
  // all[0] is in epoch 0, spilled by now. Read it back and rewrite it with
  // another pattern (the slab's CRC no longer matches its device copy).
  SpillStats s = a->stats_spill();
  const uint64_t fb0 = s.faultbacks;
  const Handle h0 = all[0].h;
  Obj dirty = all[0];
  {
    auto p = a->deref(dirty.h);
    REQUIRE(p.is_ok());
    REQUIRE(intact(*p, dirty));
    dirty.h.raw ^= 0x5A5A;  // pattern key only: the handle itself is all[0].h
    fill(*p, dirty);
  }
  s = a->stats_spill();
  REQUIRE(s.faultbacks == fb0 + 1);
  const uint64_t crc0 = s.crc_checks, skip0 = s.crc_skips, runs0 = s.spill_runs;
  // Epochs 0 (the coldest) to 3 become CLOSING; new objects force spill
  // passes that find first-time slabs of epochs 1..3 enough to make room.
  for (uint32_t e = 0; e < 4; ++e) REQUIRE(a->epoch_close(e).is_ok());
  for (uint32_t r = 0; r < 2; ++r) {  // two spill passes (at least)
    const uint64_t runs = a->stats_spill().spill_runs;
    while (a->stats_spill().spill_runs == runs) all.push_back(fill_epoch(*a, a->epoch_current(), 1, rng)[0]);
  }
  s = a->stats_spill();
  INFO("spill_runs " << s.spill_runs - runs0 << " crc_checks " << s.crc_checks - crc0 << " crc_skips "
                     << s.crc_skips - skip0 << " spilled " << s.spilled_bytes);
  REQUIRE(s.spilled_bytes > 0);
  REQUIRE(s.dram_committed_bytes <= budget);
  // The only resident slab with a device copy is the dirty one: one CRC
  // found it changed; every later pass skipped it without one.
  REQUIRE(s.spill_runs >= runs0 + 2);
  REQUIRE(s.crc_checks == crc0 + 1);
  REQUIRE(s.crc_skips >= skip0 + 1);
  {
    const uint64_t fb = s.faultbacks;
    auto p = a->deref(h0);  // still resident: no read
    REQUIRE(p.is_ok());
    REQUIRE(a->stats_spill().faultbacks == fb);
    REQUIRE(intact(*p, dirty));
  }
  all.erase(all.begin());
  check_all(*a, all);
  REQUIRE(a->verify().is_ok());
  REQUIRE(a->free(h0).is_ok());
  for (const Obj& o : all) REQUIRE(a->free(o.h).is_ok());
  for (uint32_t e = 0; e < kEpochCount; ++e) REQUIRE(a->epoch_close(e).is_ok());
  a->reclaim();
  s = a->stats_spill();
  REQUIRE(s.spilled_now_bytes == 0);
  REQUIRE(s.zones_free == s.zones_total);
  REQUIRE(a->stats_global().live_objects == 0);
}

// Epoch unit: the dirty-slab hold stops at the kind of epoch. A dirty
// re-faulted slab of a CLOSING epoch is spilled (written again) before
// slabs of an ACTIVE epoch, which take most accesses: reading it again is a
// fault-back, and its bytes are the rewritten ones. A slab only read after
// its fault-back is evicted again without a write, after one CRC.
TEST_CASE("spill: a dirty slab of a CLOSING epoch is spilled before slabs of ACTIVE epochs", "[spill]") {
  TempDir d;
  const size_t budget = 512 << 10;
  auto a = make_uri(spill_opts(budget), emu_uri(d, 64, 256));
  std::mt19937_64 rng(13);
  std::vector<Obj> all;
  for (uint32_t r = 0; r < 4; ++r) {
    auto v = fill_epoch(*a, a->epoch_current(), 600, rng);
    all.insert(all.end(), v.begin(), v.end());
    a->epoch_advance();
  }
  const Handle h0 = all[0].h;
  Obj dirty = all[0];
  // An object of epoch 0 in another slab, only read back.
  size_t ri = 1;
  while (ri < all.size() && handle_unpack(all[ri].h.raw).slab_id == handle_unpack(h0.raw).slab_id) ++ri;
  const Obj& ro = all[ri];
  SpillStats s = a->stats_spill();
  const uint64_t fb0 = s.faultbacks, clean0 = s.clean_evictions;
  {
    auto p = a->deref(dirty.h);
    REQUIRE(p.is_ok());
    REQUIRE(intact(*p, dirty));
    dirty.h.raw ^= 0x5A5A;  // pattern key only
    fill(*p, dirty);
    auto q = a->deref(ro.h);
    REQUIRE(q.is_ok());
    REQUIRE(intact(*q, ro));
  }
  REQUIRE(a->stats_spill().faultbacks == fb0 + 2);
  // Epochs 0..3 CLOSING; two new epochs need more room than all their
  // resident slabs: the dirty one goes before any slab of the new ones.
  for (uint32_t e = 0; e < 4; ++e) REQUIRE(a->epoch_close(e).is_ok());
  for (uint32_t r = 0; r < 2; ++r) {
    auto v = fill_epoch(*a, a->epoch_current(), 600, rng);
    all.insert(all.end(), v.begin(), v.end());
    a->epoch_advance();
  }
  s = a->stats_spill();
  REQUIRE(s.dram_committed_bytes <= budget);
  REQUIRE(s.clean_evictions >= clean0 + 1);  // the read-only slab: no write
  {
    const uint64_t fb = s.faultbacks;
    auto p = a->deref(h0);  // spilled again: read back
    REQUIRE(p.is_ok());
    REQUIRE(a->stats_spill().faultbacks == fb + 1);
    REQUIRE(intact(*p, dirty));
  }
  all.erase(all.begin());
  check_all(*a, all);
  REQUIRE(a->verify().is_ok());
}

namespace {
// Records the length of every write at the write pointer the spill makes.
class WriteLog : public zns::ZonedDeviceWrapper {
 public:
  using ZonedDeviceWrapper::ZonedDeviceWrapper;
  Status write(uint32_t zone, uint64_t offset, const void* buf, size_t len) override {
    {
      std::lock_guard<std::mutex> g(mu);
      lens.push_back(len);
    }
    return ZonedDeviceWrapper::write(zone, offset, buf, len);
  }
  std::mutex mu;
  std::vector<size_t> lens;
};
}  // namespace

TEST_CASE("spill: one write carries the slabs of every size class of a spilled epoch", "[spill]") {
  // Budget 8 MiB: a 64-slab staging buffer; zones of 4 MiB (no zone end
  // inside the epoch's batch). Before 2026-12-04 each size class was its
  // own write (8 writes for this epoch).
  TempDir d;
  const size_t budget = size_t(8) << 20;
  auto dev = zns::open_device(emu_uri(d, 16, 4096, 8));
  REQUIRE(dev.is_ok());
  auto log = std::make_unique<WriteLog>(std::move(*dev));
  WriteLog* wl = log.get();
  auto ar = SlabAllocator::create(spill_opts(budget), nullptr, std::move(log));
  REQUIRE(ar.is_ok());
  SlabAllocator& a = **ar;
  // Epoch e0: 40 objects of every size class (1 to 8 slabs per class).
  const uint32_t e0 = a.epoch_current();
  std::vector<Obj> first;
  for (uint32_t size : kSizeClasses) {
    for (int i = 0; i < 40; ++i) {
      auto r = a.allocate(size, e0);
      REQUIRE(r.is_ok());
      Obj o{r->handle, size};
      fill(r->ptr, o);
      first.push_back(o);
    }
  }
  const uint64_t e0_slabs = a.stats_epoch(e0).committed_bytes / kSlabBytes;
  REQUIRE(e0_slabs >= kNumClasses);
  REQUIRE(e0_slabs <= 64);
  a.epoch_advance();
  REQUIRE(a.epoch_close(e0).is_ok());  // CLOSING with live objects: spilled first
  // New epochs until the budget forces a spill.
  std::mt19937_64 rng(21);
  std::vector<Obj> rest;
  for (uint32_t r = 0; r < 16 && a.stats_spill().spilled_bytes == 0; ++r) {
    auto v = fill_epoch(a, a.epoch_current(), 4000, rng);
    rest.insert(rest.end(), v.begin(), v.end());
    a.epoch_advance();
  }
  REQUIRE(a.stats_spill().spilled_bytes > 0);
  {
    std::lock_guard<std::mutex> g(wl->mu);
    REQUIRE(!wl->lens.empty());
    // The first write is the whole of e0: all its classes in one I/O.
    REQUIRE(wl->lens[0] == e0_slabs * kSlabBytes);
  }
  check_all(a, first);
  check_all(a, rest);
  REQUIRE(a.verify().is_ok());
}
