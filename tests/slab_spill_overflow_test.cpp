// Tests of the slab's overflow spill target (issue 11, Options::spill =
// kOverflow; src/slab/spill_overflow.cpp), tag [spill], and of the region's
// fd path it uses (OverflowRegion::write_fd/read_fd), tag [overflow]. A small overflow
// region file in a temp dir; seeded randomness; no timing assertions.
// Every object carries a pattern derived from its handle, so a slab read
// back from the wrong blob or not at all is caught.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "src/overflow/overflow.h"
#include "src/slab/slab.h"
#include "tests/slab_spill_util.h"
#include "tests/temp_dir.h"

using namespace znslab;
using namespace znslab::slab;
using znslab::testutil::TempDir;
using znslab::testutil::spill::Obj;
using znslab::testutil::spill::fill;
using znslab::testutil::spill::intact;
using znslab::testutil::spill::check_all;
using znslab::testutil::spill::fill_epoch;

namespace {

// The zns tests' options (slab_spill_util.h) with the overflow target.
Options ovfl_opts(size_t budget, const std::string& device) {
  Options o = znslab::testutil::spill::spill_opts(budget);
  o.handle_key = 13;
  o.spill = SpillTarget::kOverflow;
  o.spill_device = device;
  return o;
}

std::unique_ptr<SlabAllocator> make(const Options& o) {
  auto a = SlabAllocator::create(o);
  INFO(a.status().to_string());
  REQUIRE(a.is_ok());
  return std::move(*a);
}

// Resident bytes of this process's mappings of `path` (/proc/self/smaps Rss).
uint64_t mapped_rss(const std::string& path) {
  std::ifstream f("/proc/self/smaps");
  std::string line;
  bool in = false;
  uint64_t kib = 0;
  while (std::getline(f, line)) {
    // A VMA header: "start-end perms offset dev inode [path]"; first token hex and '-'.
    const std::string tok = line.substr(0, line.find(' '));
    const bool header = tok.find('-') != std::string::npos &&
                        tok.find_first_not_of("0123456789abcdef-") == std::string::npos;
    if (header) {
      in = line.size() >= path.size() && line.compare(line.size() - path.size(), path.size(), path) == 0;
    } else if (in && line.compare(0, 4, "Rss:") == 0) {
      kib += std::stoull(line.substr(4));
    }
  }
  return kib << 10;
}

}  // namespace

TEST_CASE("spill overflow: handles stay valid across spill and fault-back; region pages never mapped in", "[spill]") {
  TempDir d;
  const size_t budget = 512 << 10;
  const std::string path = d.file("spill.ovfl");
  auto a = make(ovfl_opts(budget, path + "?initial_bytes=1M&max_bytes=64M"));
  std::mt19937_64 rng(21);
  std::vector<Obj> all;
  for (uint32_t r = 0; r < 8; ++r) {
    auto v = fill_epoch(*a, a->epoch_current(), 600, rng);
    all.insert(all.end(), v.begin(), v.end());
    a->epoch_advance();
  }
  SpillStats s = a->stats_spill();
  REQUIRE(s.spilled_bytes > 0);
  REQUIRE(s.spilled_now_bytes > 0);
  REQUIRE(s.spill_ios == s.spilled_bytes / kSlabBytes);  // one blob write per slab
  REQUIRE(s.dram_committed_bytes <= budget);
  check_all(*a, all);
  s = a->stats_spill();
  REQUIRE(s.faultbacks > 0);
  REQUIRE(s.faultback_bytes == s.faultbacks * kSlabBytes);
  REQUIRE(s.faultback_ns.count == s.faultbacks);
  REQUIRE(s.dram_committed_bytes <= budget);
  check_all(*a, all);  // again: slabs were spilled again (clean or rewritten)
  s = a->stats_spill();
  REQUIRE(s.clean_evictions > 0);  // read-only derefs: re-evicted without a write
  // No GC, no zones: WA is exactly 1 and the zone counters stay 0.
  REQUIRE(s.write_amplification == Approx(1.0));
  REQUIRE(s.gc_copied_bytes == 0);
  REQUIRE(s.zone_resets == 0);
  REQUIRE(s.zones_total == 0);
  REQUIRE(s.spill_write_errors == 0);
  REQUIRE(s.faultback_errors == 0);
  // Blobs go through pwrite/pread: at most the header page of the region is
  // resident in this process's mapping, whatever was spilled.
  REQUIRE(s.spilled_bytes > (1u << 20));
  REQUIRE(mapped_rss(path) <= 8192);
  REQUIRE(a->verify().is_ok());
}

TEST_CASE("spill overflow: free of a spilled object does no I/O", "[spill]") {
  TempDir d;
  auto a = make(ovfl_opts(256 << 10, d.file("r.ovfl") + "?initial_bytes=1M"));
  std::mt19937_64 rng(22);
  std::vector<std::vector<Obj>> ep;
  for (uint32_t r = 0; r < 6; ++r) {
    ep.push_back(fill_epoch(*a, a->epoch_current(), 500, rng));
    a->epoch_advance();
  }
  const SpillStats before = a->stats_spill();
  REQUIRE(before.spilled_now_bytes > 0);
  for (const Obj& o : ep[0]) REQUIRE(a->free(o.h).is_ok());
  for (size_t i = 0; i < ep[1].size(); i += 2) REQUIRE(a->free(ep[1][i].h).is_ok());
  const SpillStats after = a->stats_spill();
  REQUIRE(after.faultbacks == before.faultbacks);
  REQUIRE(after.spill_ios == before.spill_ios);
  for (const Obj& o : ep[0]) REQUIRE(a->deref(o.h).status().code() == Code::kStaleHandle);
  for (size_t i = 1; i < ep[1].size(); i += 2) {
    auto p = a->deref(ep[1][i].h);
    REQUIRE(p.is_ok());
    REQUIRE(intact(*p, ep[1][i]));
  }
  REQUIRE(a->verify().is_ok());
}

TEST_CASE("spill overflow: a dead slab frees its blob and the region reuses it", "[spill]") {
  TempDir d;
  // 2 MiB region that cannot grow: header + 511 blobs. Each round spills
  // about 1 MiB; without freed blobs the third round's writes would fail
  // (spill_write_errors).
  auto a = make(ovfl_opts(256 << 10, d.file("r.ovfl") + "?initial_bytes=2M&max_bytes=2M"));
  std::mt19937_64 rng(23);
  uint64_t prev_spilled = 0;
  for (int round = 0; round < 3; ++round) {
    std::vector<std::vector<Obj>> ep;
    for (uint32_t e = 0; e < 5; ++e) {
      REQUIRE(a->epoch_reopen(e).is_ok());
      ep.push_back(fill_epoch(*a, e, 450, rng));
      REQUIRE(a->epoch_close(e).is_ok());
    }
    const SpillStats s = a->stats_spill();
    INFO("round " << round << " spilled " << s.spilled_bytes << " errors " << s.spill_write_errors << " "
                  << s.last_error);
    REQUIRE(s.spilled_now_bytes > 0);
    REQUIRE(s.spill_write_errors == 0);
    for (auto& v : ep) check_all(*a, v);
    for (auto& v : ep)
      for (const Obj& o : v) REQUIRE(a->free(o.h).is_ok());
    for (uint32_t e = 0; e < kEpochCount; ++e) REQUIRE(a->epoch_close(e).is_ok());
    a->reclaim();
    const SpillStats t = a->stats_spill();
    REQUIRE(t.spilled_now_bytes == 0);  // every blob freed with its slab
    REQUIRE(t.spill_write_errors == 0);
    REQUIRE(t.spilled_bytes > prev_spilled);
    prev_spilled = t.spilled_bytes;
    REQUIRE(a->stats_global().live_objects == 0);
  }
  // Three rounds wrote more than the region holds: extents were reused.
  REQUIRE(prev_spilled > (2u << 20));
  REQUIRE(a->verify().is_ok());
}

TEST_CASE("spill overflow: a region that cannot grow fails the spill write; data stays in DRAM", "[spill]") {
  TempDir d;
  // Header + 15 blobs: far less than the cold data.
  auto a = make(ovfl_opts(256 << 10, d.file("r.ovfl") + "?initial_bytes=64K&max_bytes=64K"));
  std::mt19937_64 rng(24);
  std::vector<Obj> all;
  for (uint32_t r = 0; r < 5; ++r) {
    auto v = fill_epoch(*a, a->epoch_current(), 500, rng);
    all.insert(all.end(), v.begin(), v.end());
    a->epoch_advance();
  }
  const SpillStats s = a->stats_spill();
  REQUIRE(s.spill_write_errors > 0);
  REQUIRE(s.spilled_now_bytes <= 15 * kSlabBytes);
  REQUIRE(s.over_budget_events > 0);
  REQUIRE(s.last_error.find("overflow region") != std::string::npos);
  REQUIRE(s.last_error.find("r.ovfl") != std::string::npos);
  check_all(*a, all);  // every byte readable: in DRAM or in one of the 15 blobs
  REQUIRE(a->verify().is_ok());
}

TEST_CASE("spill overflow: a damaged blob is an error from deref, never garbage", "[spill]") {
  TempDir d;
  const std::string path = d.file("r.ovfl");
  auto a = make(ovfl_opts(256 << 10, path + "?initial_bytes=1M&max_bytes=1M"));
  std::mt19937_64 rng(25);
  std::vector<Obj> all;
  for (uint32_t r = 0; r < 6; ++r) {
    auto v = fill_epoch(*a, a->epoch_current(), 500, rng);
    all.insert(all.end(), v.begin(), v.end());
    a->epoch_advance();
  }
  REQUIRE(a->stats_spill().spilled_now_bytes > 0);
  // Damage every blob: overwrite the data area (after the 4 KiB header).
  {
    const int fd = ::open(path.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    std::vector<uint8_t> junk((1u << 20) - 4096, 0x5A);
    REQUIRE(::pwrite(fd, junk.data(), junk.size(), 4096) == ssize_t(junk.size()));
    ::close(fd);
  }
  size_t errors = 0, good = 0;
  for (size_t i = 0; i < 500; ++i) {  // epoch 0: the coldest, spilled
    auto p = a->deref(all[i].h);
    if (!p) {
      REQUIRE(p.status().code() == Code::kCorrupt);
      ++errors;
      REQUIRE(a->pin(all[i].h).status().code() == Code::kCorrupt);
    } else {
      REQUIRE(intact(*p, all[i]));  // resident ones: right bytes
      ++good;
    }
  }
  REQUIRE(errors > 0);
  const SpillStats s = a->stats_spill();
  REQUIRE(s.faultback_errors >= errors);
  REQUIRE(s.last_error.find("CRC32C") != std::string::npos);
  // Freeing objects of a damaged, spilled slab still works (metadata only).
  for (size_t i = 0; i < 500; ++i) REQUIRE(a->free(all[i].h).is_ok());
  REQUIRE(a->verify().is_ok());
}

TEST_CASE("spill overflow: bad specs and missing paths are refused with the path in the error", "[spill]") {
  TempDir d;
  Options o = ovfl_opts(256 << 10, "");
  auto a = SlabAllocator::create(o);
  REQUIRE(a.status().code() == Code::kInvalidArgument);
  o.spill_device = d.file("x.ovfl") + "?max=3";
  a = SlabAllocator::create(o);
  REQUIRE(a.status().code() == Code::kInvalidArgument);
  REQUIRE(a.status().to_string().find("max=3") != std::string::npos);
  o.spill_device = d.file("no/such/dir/x.ovfl");
  a = SlabAllocator::create(o);
  REQUIRE(!a.is_ok());
  REQUIRE(a.status().to_string().find("no/such/dir/x.ovfl") != std::string::npos);
}

TEST_CASE("spill overflow: the budget holds under two threads", "[spill]") {
  TempDir d;
  const size_t budget = 384 << 10;
  auto a = make(ovfl_opts(budget, d.file("r.ovfl") + "?initial_bytes=1M"));
  std::atomic<uint64_t> peak{0};
  std::atomic<int> bad{0};
  auto worker = [&](uint32_t base, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::vector<Obj>> ring(8);
    for (uint32_t r = 0; r < 16; ++r) {
      const uint32_t e = base + r % 8;
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
      for (const Obj& o : ring[(r + 4) % 8]) {
        auto g = a->pin(o.h);
        if (!g || !intact(g->ptr(), o)) bad++;
      }
    }
  };
  std::thread t0(worker, 0, 71), t1(worker, 8, 72);
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

TEST_CASE("overflow: write_fd/read_fd move blobs through the fd without mapping the region in", "[overflow]") {
  TempDir d;
  const std::string path = d.file("fd.ovfl");
  overflow::OverflowOptions oo;
  oo.initial_bytes = 64 << 10;
  oo.max_bytes = 4 << 20;
  auto r = overflow::OverflowRegion::open(path, oo);
  REQUIRE(r.is_ok());
  overflow::OverflowRegion& reg = **r;
  std::mt19937_64 rng(31);
  std::vector<std::pair<overflow::SlotId, std::vector<uint8_t>>> live;
  for (int i = 0; i < 600; ++i) {  // 600 x 4 KiB: grows the region past 2 MiB
    std::vector<uint8_t> b(4096);
    for (auto& x : b) x = uint8_t(rng());
    auto id = reg.write_fd(b.data(), b.size());
    REQUIRE(id.is_ok());
    live.emplace_back(*id, std::move(b));
    if (i % 3 == 2) {  // free one: later writes reuse its extent (best fit)
      REQUIRE(reg.free(live[live.size() - 2].first).is_ok());
      live.erase(live.end() - 2);
    }
  }
  REQUIRE(reg.stats().grow_count > 0);
  REQUIRE(reg.stats().reuse_writes > 0);
  std::vector<uint8_t> got(4096);
  for (auto& [id, b] : live) {
    size_t len = 0;
    REQUIRE(reg.read_fd(id, got.data(), got.size(), &len).is_ok());
    REQUIRE(len == b.size());
    REQUIRE(got == b);
  }
  // Only the header page was touched through the mapping.
  REQUIRE(mapped_rss(path) <= 4096);
  // The mapping and the fd agree (read() goes through the mapping).
  auto v = reg.read(live[0].first);
  REQUIRE(v.is_ok());
  REQUIRE(std::memcmp(v->data, live[0].second.data(), 4096) == 0);
  REQUIRE(reg.read_fd(live[0].first, got.data(), 100).code() == Code::kInvalidArgument);
  const overflow::SlotId gone = live[1].first;
  REQUIRE(reg.free(gone).is_ok());
  REQUIRE(reg.read_fd(gone, got.data(), got.size()).code() == Code::kNotFound);
  REQUIRE(reg.table_bytes() > 0);
}

TEST_CASE("spill overflow: prefetch reads an epoch's blobs back on the worker", "[spill]") {
  TempDir d;
  auto a = make(ovfl_opts(256 << 10, d.file("r.ovfl") + "?initial_bytes=1M"));
  std::mt19937_64 rng(26);
  std::vector<std::vector<Obj>> ep;
  for (uint32_t r = 0; r < 4; ++r) {
    ep.push_back(fill_epoch(*a, a->epoch_current(), 400, rng));
    a->epoch_advance();
  }
  REQUIRE(a->stats_spill().spilled_now_bytes > 0);
  const uint64_t before = a->stats_spill().faultbacks;
  REQUIRE(a->prefetch(0).is_ok());
  // The worker reads epoch 0 back; wait for its reads (bounded, not a speed check).
  for (int i = 0; i < 2000 && a->stats_spill().faultbacks == before; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(a->stats_spill().faultbacks > before);
  check_all(*a, ep[0]);
  REQUIRE(a->verify().is_ok());
}
