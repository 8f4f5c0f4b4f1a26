// The ublk request handler (zns/ublk_server.h) on the emulator: what the
// kernel's ublk driver asks (sector-based reads, writes, zone appends, zone
// management, zone reports as struct blk_zone) and the errno each device
// error becomes. The kernel side runs in the 7.x guest (make vm-test); the
// server's start/stop needs /dev/ublk-control and is skipped without it.
#include <fcntl.h>
#include <linux/blkzoned.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/skip.h"
#include "tests/temp_dir.h"
#include "zns/ublk_server.h"
#include "zns/ublk_uapi.h"
#include "zns/zoned_device.h"

namespace znslab::zns {
namespace {

using testutil::TempDir;

// 8 zones of 1 MiB (2048 sectors), capacity 768 KiB, 4 KiB blocks, max open 3, max active 4.
constexpr uint64_t kZoneSectors = 2048;

struct Fixture {
  TempDir dir;
  std::unique_ptr<ZonedDevice> dev;
  std::vector<uint8_t> data;  // the "request" buffer the kernel would copy
  Fixture() {
    auto d = open_device("emu:" + dir.file("u.img") +
                         "?zones=8&zone_size=1M&zone_cap=768K&max_open=3&max_active=4&lba=4096");
    REQUIRE(d);
    dev = std::move(*d);
  }
  UblkRequestHandler::CopyFn in() {
    return [this](void* b, size_t len, uint64_t off) -> ssize_t {
      if (off + len > data.size()) return -EINVAL;
      std::memcpy(b, data.data() + off, len);
      return ssize_t(len);
    };
  }
  UblkRequestHandler::CopyFn out() {
    return [this](void* b, size_t len, uint64_t off) -> ssize_t {
      if (data.size() < off + len) data.resize(off + len);
      std::memcpy(data.data() + off, b, len);
      return ssize_t(len);
    };
  }
};

std::vector<blk_zone> zones_of(const std::vector<uint8_t>& bytes) {
  std::vector<blk_zone> z(bytes.size() / sizeof(blk_zone));
  std::memcpy(z.data(), bytes.data(), z.size() * sizeof(blk_zone));
  return z;
}

TEST_CASE("ublk handler: a write at the write pointer lands, reads back, and a report shows it", "[ublk]") {
  Fixture f;
  UblkRequestHandler h(*f.dev, 512 * 1024);
  f.data.assign(8192, 0);
  for (size_t i = 0; i < f.data.size(); ++i) f.data[i] = uint8_t(i * 7 + 3);
  const std::vector<uint8_t> written = f.data;
  auto w = h.handle(ublk::kOpWrite, kZoneSectors * 2, 16, f.in(), f.out());
  CHECK(w.result == 8192);
  f.data.clear();
  auto r = h.handle(ublk::kOpRead, kZoneSectors * 2, 16, f.in(), f.out());
  REQUIRE(r.result == 8192);
  CHECK(f.data == written);
  f.data.clear();
  auto rep = h.handle(ublk::kOpReportZones, 0, 8, f.in(), f.out());
  REQUIRE(rep.result == int32_t(8 * sizeof(blk_zone)));
  auto z = zones_of(f.data);
  REQUIRE(z.size() == 8);
  CHECK(z[2].start == 2 * kZoneSectors);
  CHECK(z[2].len == kZoneSectors);
  CHECK(z[2].capacity == 1536);  // 768 KiB
  CHECK(z[2].wp == 2 * kZoneSectors + 16);
  CHECK(z[2].cond == BLK_ZONE_COND_IMP_OPEN);
  CHECK(z[2].type == BLK_ZONE_TYPE_SEQWRITE_REQ);
  CHECK(z[0].cond == BLK_ZONE_COND_EMPTY);
}

TEST_CASE("ublk handler: a write off the write pointer fails with EIO and changes nothing", "[ublk]") {
  Fixture f;
  UblkRequestHandler h(*f.dev, 512 * 1024);
  f.data.assign(4096, 1);
  auto w = h.handle(ublk::kOpWrite, 8, 8, f.in(), f.out());
  CHECK(w.result == -EIO);
  auto z = f.dev->report_zones(0, 1);
  REQUIRE(z);
  CHECK((*z)[0].state == ZoneState::kEmpty);
}

TEST_CASE("ublk handler: zone append returns the sector it wrote", "[ublk]") {
  Fixture f;
  UblkRequestHandler h(*f.dev, 512 * 1024);
  f.data.assign(4096, 9);
  auto a1 = h.handle(ublk::kOpZoneAppend, kZoneSectors * 3, 8, f.in(), f.out());
  auto a2 = h.handle(ublk::kOpZoneAppend, kZoneSectors * 3, 8, f.in(), f.out());
  CHECK(a1.result == 4096);
  CHECK(a1.append_lba == kZoneSectors * 3);
  CHECK(a2.append_lba == kZoneSectors * 3 + 8);
}

TEST_CASE("ublk handler: zone management, reset all, and the open-limit errno", "[ublk]") {
  Fixture f;
  UblkRequestHandler h(*f.dev, 512 * 1024);
  for (uint64_t z = 0; z < 3; ++z) CHECK(h.handle(ublk::kOpZoneOpen, z * kZoneSectors, 0, f.in(), f.out()).result == 0);
  // A fourth explicit open exceeds max open (3): Too Many Open Zones ->
  // BLK_STS_ZONE_OPEN_RESOURCE, i.e. -ETOOMANYREFS.
  CHECK(h.handle(ublk::kOpZoneOpen, 3 * kZoneSectors, 0, f.in(), f.out()).result == -ETOOMANYREFS);
  CHECK(h.handle(ublk::kOpZoneClose, 0, 0, f.in(), f.out()).result == 0);
  CHECK(h.handle(ublk::kOpZoneFinish, kZoneSectors, 0, f.in(), f.out()).result == 0);
  auto z = f.dev->report_zones(0, 8);
  REQUIRE(z);
  CHECK((*z)[0].state == ZoneState::kClosed);
  CHECK((*z)[1].state == ZoneState::kFull);
  f.data.clear();
  REQUIRE(h.handle(ublk::kOpReportZones, 0, 8, f.in(), f.out()).result > 0);
  auto bz = zones_of(f.data);
  CHECK(bz[1].cond == BLK_ZONE_COND_FULL);
  CHECK(bz[1].wp == bz[1].start + bz[1].len);  // a full zone's wp as the NVMe driver reports it
  CHECK(h.handle(ublk::kOpZoneResetAll, 0, 0, f.in(), f.out()).result == 0);
  z = f.dev->report_zones(0, 8);
  REQUIRE(z);
  for (const Zone& zz : *z) CHECK(zz.state == ZoneState::kEmpty);
  // Reset of a zone start only: a sector inside a zone is refused.
  CHECK(h.handle(ublk::kOpZoneReset, 8, 0, f.in(), f.out()).result == -EINVAL);
}

TEST_CASE("ublk handler: a report from a middle zone is clamped to the device end", "[ublk]") {
  Fixture f;
  UblkRequestHandler h(*f.dev, 512 * 1024);
  f.data.clear();
  auto rep = h.handle(ublk::kOpReportZones, 6 * kZoneSectors, 100, f.in(), f.out());
  REQUIRE(rep.result == int32_t(2 * sizeof(blk_zone)));
  auto z = zones_of(f.data);
  CHECK(z[0].start == 6 * kZoneSectors);
  CHECK(z[1].start == 7 * kZoneSectors);
}

TEST_CASE("ublk handler: unsupported operations and device errors map to block-layer errnos", "[ublk]") {
  Fixture f;
  UblkRequestHandler h(*f.dev, 512 * 1024);
  CHECK(h.handle(ublk::kOpDiscard, 0, 8, f.in(), f.out()).result == -EOPNOTSUPP);
  CHECK(h.handle(ublk::kOpFlush, 0, 0, f.in(), f.out()).result == 0);
  CHECK(ublk_errno(Status(Code::kTooManyActiveZones, "x")) == -EOVERFLOW);
  CHECK(ublk_errno(Status(Code::kZoneIsFull, "x")) == -EIO);
  CHECK(ublk_errno(Status(Code::kIoError, "x", ENOSPC)) == -ENOSPC);
  // Past the device end.
  f.data.assign(4096, 0);
  CHECK(h.handle(ublk::kOpRead, 8 * kZoneSectors, 8, f.in(), f.out()).result == -EIO);
}

TEST_CASE("ublk server: refuses a zone size that is not a power of two", "[ublk]") {
  TempDir dir;
  auto d = open_device("emu:" + dir.file("p.img") + "?zones=4&zone_size=3M&zone_cap=2M&lba=4096");
  REQUIRE(d);
  auto s = UblkServer::create(**d, UblkOptions{});
  REQUIRE(!s);
  CHECK(s.status().code() == Code::kNotSupported);
}

}  // namespace
}  // namespace znslab::zns
