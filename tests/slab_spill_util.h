// Shared helpers of the slab spill tests (tests/slab_spill_test.cpp,
// tests/slab_spill_meta_test.cpp; tag [spill]): patterned objects (a
// pattern derived from the handle, so a slab read back from the wrong
// place or not at all is caught), small emulated devices in a temp dir,
// allocator construction. Test-only; not thread-safe unless noted.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "src/slab/slab.h"
#include "tests/temp_dir.h"
#include "zns/fault_device.h"
#include "zns/zoned_device.h"

namespace znslab::testutil::spill {

using namespace znslab::slab;


struct Obj {
  Handle h;
  uint32_t bytes;
};

inline uint8_t pat(uint64_t raw, uint32_t i) {
  uint64_t x = raw * 0x9E3779B97F4A7C15ull + i;
  x ^= x >> 29;
  return uint8_t(x * 0xBF58476D1CE4E5B9ull >> 56);
}

inline void fill(void* p, const Obj& o) {
  auto* b = static_cast<uint8_t*>(p);
  for (uint32_t i = 0; i < o.bytes; ++i) b[i] = pat(o.h.raw, i);
}

inline bool intact(const void* p, const Obj& o) {
  auto* b = static_cast<const uint8_t*>(p);
  for (uint32_t i = 0; i < o.bytes; ++i)
    if (b[i] != pat(o.h.raw, i)) return false;
  return true;
}

// emu device: `zones` zones of zone_kib KiB; 4 open/active.
inline std::string emu_uri(const TempDir& d, uint32_t zones, uint32_t zone_kib, uint32_t max_open = 4) {
  return "emu:" + d.file("spill.img") + "?zones=" + std::to_string(zones) +
         "&zone_size=" + std::to_string(zone_kib) + "K&zone_cap=" + std::to_string(zone_kib) +
         "K&max_open=" + std::to_string(max_open) + "&max_active=" + std::to_string(max_open) + "&direct=0";
}

inline Options spill_opts(size_t budget, SpillUnit unit = SpillUnit::kEpoch) {
  Options o;
  o.arena_bytes = size_t(64) << 20;
  o.chunk_bytes = size_t(64) << 10;
  o.populate_slabs = 0;
  o.handle_key = 11;
  o.dram_budget_bytes = budget;
  o.spill = SpillTarget::kZns;
  o.spill_unit = unit;
  return o;
}

// Creates an allocator over a FaultDevice wrapping an emu device; *fd
// receives the wrapper (owned by the allocator).
inline std::unique_ptr<SlabAllocator> make_faulty(const Options& o, const std::string& uri, zns::FaultDevice** fd) {
  auto dev = zns::open_device(uri);
  REQUIRE(dev.is_ok());
  auto f = std::make_unique<zns::FaultDevice>(std::move(*dev));
  *fd = f.get();
  auto a = SlabAllocator::create(o, nullptr, std::move(f));
  REQUIRE(a.is_ok());
  return std::move(*a);
}

inline std::unique_ptr<SlabAllocator> make_uri(Options o, const std::string& uri) {
  o.spill_device = uri;
  auto a = SlabAllocator::create(o);
  REQUIRE(a.is_ok());
  return std::move(*a);
}

// Allocates n objects of 64..768 bytes in `epoch`, patterned.
inline std::vector<Obj> fill_epoch(SlabAllocator& a, uint32_t epoch, size_t n, std::mt19937_64& rng,
                            uint32_t lo = 64, uint32_t hi = 768) {
  std::vector<Obj> v;
  std::uniform_int_distribution<uint32_t> sz(lo, hi);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t b = sz(rng);
    auto r = a.allocate(b, epoch);
    REQUIRE(r.is_ok());
    Obj o{r->handle, b};
    fill(r->ptr, o);
    v.push_back(o);
  }
  return v;
}

inline void check_all(SlabAllocator& a, const std::vector<Obj>& objs) {
  size_t bad = 0;
  for (const Obj& o : objs) {
    auto p = a.deref(o.h);
    REQUIRE(p.is_ok());
    if (!intact(*p, o)) ++bad;
  }
  REQUIRE(bad == 0);
}


}  // namespace znslab::testutil::spill
