// [segment-store]: the zoned segment store over the emulator (zns emu:) and
// its garbage collection: every live segment stays readable with its data
// after any number of GC rounds; injected faults are reported and lose no
// acknowledged segment (issue 5). Seeded, deterministic.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "src/segment/zoned_store.h"
#include "tests/skip.h"
#include "tests/temp_dir.h"
#include "zns/fault_device.h"
#include "zns/zoned_device.h"

using namespace znslab;
using namespace znslab::segment;

namespace {

using znslab::testutil::TempDir;

std::unique_ptr<zns::ZonedDevice> open_emu(const TempDir& d, const std::string& params) {
  std::string err;
  auto r = zns::open_device("emu:" + d.path() + "/dev.zns?" + params);
  err = r ? std::string() : std::string(r.status().context());
  INFO(err);
  REQUIRE(r.is_ok());
  return std::move(*r);
}

// Deterministic contents of segment number n (not its key).
void fill(std::vector<uint8_t>& b, uint64_t n, size_t len) {
  b.resize(len);
  uint64_t x = n * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < len; ++i) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    b[i] = uint8_t(x);
  }
}

struct Live { SegmentKey key; uint64_t n; size_t len; uint32_t death; };

// Every live segment reads back byte for byte.
void verify_all(ZonedSegmentStore& st, const std::vector<Live>& live) {
  std::vector<uint8_t> want, got(1 << 20);
  size_t bad = 0;
  for (const Live& l : live) {
    fill(want, l.n, l.len);
    auto r = st.read(l.key, got.data(), got.size());
    if (!r || *r != l.len || std::memcmp(got.data(), want.data(), l.len) != 0) ++bad;
  }
  CHECK(bad == 0);
}

// Lifetime churn: each put gets a lifetime class c (dies after 1 << c rounds).
void churn(ZonedSegmentStore& st, std::vector<Live>& live, uint64_t& n, std::mt19937_64& rng, uint32_t rounds,
           uint32_t puts_per_round, size_t max_len) {
  std::vector<uint8_t> buf;
  for (uint32_t round = 0; round < rounds; ++round) {
    for (size_t i = 0; i < live.size();) {  // deaths of this round
      if (live[i].death <= round) {
        REQUIRE(st.remove(live[i].key).is_ok());
        live[i] = live.back();
        live.pop_back();
      } else {
        ++i;
      }
    }
    for (uint32_t k = 0; k < puts_per_round; ++k) {
      uint32_t cls = uint32_t(rng() % 4);
      size_t len = 1 + rng() % max_len;
      fill(buf, n, len);
      auto key = st.put(buf.data(), len, cls);
      REQUIRE(key.is_ok());
      live.push_back(Live{*key, n, len, round + (1u << cls)});
      ++n;
    }
    if (round % 8 == 7) verify_all(st, live);
  }
}

}  // namespace

TEST_CASE("GC keeps every live segment readable across many rounds", "[segment-store]") {
  auto placement = GENERATE(Placement::kSingle, Placement::kEpoch);
  auto gc = GENERATE(GcPolicy::kGreedy, GcPolicy::kCostBenefit);
  auto path = GENERATE(ReadPath::kMmap, ReadPath::kDevice);
  TempDir d;
  auto dev = open_emu(d, "zones=16&zone_size=1M&zone_cap=960K&max_open=6&max_active=6");
  ZonedStoreOptions o;
  o.placement = placement;
  o.gc = gc;
  o.read_path = path;
  o.cache_bytes = 256 << 10;
  auto st = ZonedSegmentStore::open(*dev, o);
  REQUIRE(st.is_ok());
  CHECK((*st)->reads_via_mmap() == (path == ReadPath::kMmap));
  std::vector<Live> live;
  uint64_t n = 0;
  std::mt19937_64 rng(42);
  // ~48 KiB x 48 puts per round, lifetimes 1..8 rounds: ~8.6 MiB live of 15 MiB; 40 rounds write ~6 device capacities.
  churn(**st, live, n, rng, 40, 48, 96 << 10);
  verify_all(**st, live);
  const auto& c = (*st)->counters();
  INFO("placement " << placement_name(placement) << " gc " << gc_policy_name(gc));
  CHECK(c.host_bytes_written > 2 * dev->info().capacity_bytes());
  CHECK(c.gc_runs > 0);
  CHECK(c.zone_resets > 10);
  CHECK(c.device_bytes_written == c.host_bytes_written + c.gc_copied_bytes);
  CHECK(c.segments_live == live.size());
  CHECK(c.device_errors == 0);
  if (placement == Placement::kSingle) CHECK(c.gc_copies > 0);
  // Removing everything empties every zone through resets.
  for (auto& l : live) REQUIRE((*st)->remove(l.key).is_ok());
  CHECK((*st)->counters().live_bytes == 0);
}

TEST_CASE("A zone whose data is all removed is reset without copying", "[segment-store]") {
  TempDir d;
  auto dev = open_emu(d, "zones=8&zone_size=1M");
  auto st = ZonedSegmentStore::open(*dev, ZonedStoreOptions{});
  REQUIRE(st.is_ok());
  std::vector<uint8_t> buf(256 << 10, 7);
  std::vector<SegmentKey> keys;
  for (int i = 0; i < 8; ++i) {  // 2 zones' worth: the first fills and becomes Full
    auto k = (*st)->put(buf.data(), buf.size(), 0);
    REQUIRE(k.is_ok());
    keys.push_back(*k);
  }
  uint32_t free_before = (*st)->free_zones();
  for (int i = 0; i < 4; ++i) REQUIRE((*st)->remove(keys[i]).is_ok());
  CHECK((*st)->counters().zone_resets == 1);
  CHECK((*st)->counters().gc_copies == 0);
  CHECK((*st)->free_zones() == free_before + 1);
  CHECK((*st)->counters().utilisation_at_reset() == 0.0);
  auto z = dev->report_zones(0, 1);
  REQUIRE(z.is_ok());
  CHECK(z->front().state == zns::ZoneState::kEmpty);
}

TEST_CASE("Store errors: bad keys, removed keys, oversized segments, small buffers", "[segment-store]") {
  TempDir d;
  auto dev = open_emu(d, "zones=8&zone_size=1M");
  auto st = ZonedSegmentStore::open(*dev, ZonedStoreOptions{});
  REQUIRE(st.is_ok());
  std::vector<uint8_t> buf(5000, 1), out(5000);
  auto k = (*st)->put(buf.data(), buf.size(), 0);
  REQUIRE(k.is_ok());
  CHECK((*st)->read(*k, out.data(), 100).status().code() == Code::kInvalidArgument);
  CHECK((*st)->read(*k + 1, out.data(), out.size()).status().code() == Code::kInvalidHandle);
  REQUIRE((*st)->remove(*k).is_ok());
  CHECK((*st)->remove(*k).code() == Code::kStaleHandle);
  CHECK((*st)->read(*k, out.data(), out.size()).status().code() == Code::kStaleHandle);
  std::vector<uint8_t> big((1 << 20) + 1);
  CHECK((*st)->put(big.data(), big.size(), 0).status().code() == Code::kInvalidArgument);
  CHECK((*st)->put(buf.data(), 0, 0).status().code() == Code::kInvalidArgument);
}

TEST_CASE("Streams stay within the device's max open/active zones, with write or zone append", "[segment-store]") {
  TempDir d;
  auto dev = open_emu(d, "zones=16&zone_size=1M&max_open=3&max_active=3");
  ZonedStoreOptions o;
  o.placement = Placement::kEpoch;
  o.streams = 8;
  o.use_append = GENERATE(false, true);
  auto st = ZonedSegmentStore::open(*dev, o);
  REQUIRE(st.is_ok());
  CHECK((*st)->counters().host_streams == 2);  // 3 - 1 for GC
  std::vector<Live> live;
  uint64_t n = 0;
  std::mt19937_64 rng(7);
  churn(**st, live, n, rng, 40, 64, 64 << 10);
  CHECK((*st)->counters().device_errors == 0);
  CHECK((*st)->counters().gc_runs > 0);
  if (o.use_append) CHECK((*st)->counters().appends == (*st)->counters().puts + (*st)->counters().gc_copies);
  else CHECK((*st)->counters().appends == 0);
  verify_all(**st, live);
}

TEST_CASE("A zone turning read-only mid-run is reported and loses no acknowledged segment", "[segment-store]") {
  TempDir d;
  auto dev = open_emu(d, "zones=16&zone_size=1M");
  auto st = ZonedSegmentStore::open(*dev, ZonedStoreOptions{});
  REQUIRE(st.is_ok());
  std::vector<Live> live;
  uint64_t n = 0;
  std::vector<uint8_t> buf;
  for (int i = 0; i < 6; ++i) {
    fill(buf, n, 100000);
    auto k = (*st)->put(buf.data(), buf.size(), 0);
    REQUIRE(k.is_ok());
    live.push_back(Live{*k, n++, 100000, 0});
  }
  // Find the zone being written and make it read-only (media failure).
  auto zs = dev->report_zones(0, UINT32_MAX);
  REQUIRE(zs.is_ok());
  int open_zone = -1;
  for (auto& z : *zs)
    if (zns::is_open(z.state)) open_zone = int(z.index);
  REQUIRE(open_zone >= 0);
  Status inj = dev->inject_zone_condition(uint32_t(open_zone), zns::ZoneState::kReadOnly);
  if (inj.code() == Code::kNotSupported) ZNSLAB_SKIP("emulator cannot inject zone conditions");
  REQUIRE(inj.is_ok());
  fill(buf, n, 100000);
  auto failed = (*st)->put(buf.data(), buf.size(), 0);
  CHECK_FALSE(failed.is_ok());
  CHECK(failed.status().code() == Code::kZoneIsReadOnly);
  CHECK((*st)->counters().device_errors == 1);
  CHECK((*st)->counters().unusable_zones == 1);
  // The store moves on to another zone; everything acknowledged is intact.
  auto ok = (*st)->put(buf.data(), buf.size(), 0);
  REQUIRE(ok.is_ok());
  live.push_back(Live{*ok, n++, 100000, 0});
  verify_all(**st, live);
}

TEST_CASE("Reopening formats the device: the store does not claim durability", "[segment-store]") {
  TempDir d;
  std::string uri = "emu:" + d.path() + "/dev.zns?zones=8&zone_size=1M";
  {
    auto dev = zns::open_device(uri);
    REQUIRE(dev.is_ok());
    auto st = ZonedSegmentStore::open(**dev, ZonedStoreOptions{});
    REQUIRE(st.is_ok());
    std::vector<uint8_t> buf(300000, 3);
    for (int i = 0; i < 5; ++i) REQUIRE((*st)->put(buf.data(), buf.size(), 0).is_ok());
  }
  auto dev = zns::open_device(uri);
  REQUIRE(dev.is_ok());
  auto before = (*dev)->report_zones(0, UINT32_MAX);
  REQUIRE(before.is_ok());
  CHECK(before->front().write_pointer > before->front().start);  // the device kept the data...
  auto st = ZonedSegmentStore::open(**dev, ZonedStoreOptions{});
  REQUIRE(st.is_ok());
  CHECK((*st)->counters().segments_live == 0);  // ...the store starts empty and formats
  CHECK((*st)->free_zones() == 8);
  auto after = (*dev)->report_zones(0, UINT32_MAX);
  REQUIRE(after.is_ok());
  for (auto& z : *after) CHECK(z.state == zns::ZoneState::kEmpty);
}

TEST_CASE("Injected I/O errors are reported and lose no acknowledged segment", "[segment-store]") {
  auto path = GENERATE(ReadPath::kMmap, ReadPath::kDevice);
  TempDir d;
  zns::FaultDevice dev(open_emu(d, "zones=16&zone_size=1M&max_open=6&max_active=6"));
  ZonedStoreOptions o;
  o.read_path = path;  // kDevice: GC reads go through the faulty device too
  o.cache_bytes = 0;
  auto st = ZonedSegmentStore::open(dev, o);
  REQUIRE(st.is_ok());
  std::mt19937_64 rng(99);
  std::vector<Live> live;
  std::vector<uint8_t> buf;
  uint64_t n = 0, put_errors = 0;
  dev.fail_nth_io(23, /*repeat=*/true);
  for (uint32_t round = 0; round < 40; ++round) {
    for (size_t i = 0; i < live.size();) {
      if (live[i].death <= round) {
        REQUIRE((*st)->remove(live[i].key).is_ok());
        live[i] = live.back();
        live.pop_back();
      } else {
        ++i;
      }
    }
    for (int k = 0; k < 48; ++k) {
      uint32_t cls = uint32_t(rng() % 4);
      size_t len = 1 + rng() % (96 << 10);
      fill(buf, n, len);
      auto key = (*st)->put(buf.data(), len, cls);
      if (!key) {
        ++put_errors;
        CHECK(key.status().code() == Code::kIoError);  // reported, with the device's code
      } else {
        live.push_back(Live{*key, n, len, round + (1u << cls)});
      }
      ++n;
    }
    if (round % 8 == 7) {
      dev.fail_nth_io(0);
      verify_all(**st, live);
      dev.fail_nth_io(23, true);
    }
  }
  dev.fail_nth_io(0);
  verify_all(**st, live);
  CHECK(dev.injected_failures() > 0);
  CHECK(put_errors > 0);
  CHECK((*st)->counters().device_errors == dev.injected_failures());
  CHECK((*st)->counters().segments_live == live.size());
  CHECK((*st)->counters().gc_runs > 0);
}
