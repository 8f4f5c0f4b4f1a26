// Tests of the differential zone-command trace (zns/zone_trace.h), the
// real-device status mapping (zbd:, nvme:) and, with ZNS_TEST_DEV naming a
// zbd: or nvme: device, the real backends' splitting and per-zone ordering.
#include <algorithm>
#include <cstdlib>
#include <map>
#include <string>

#include <catch2/catch.hpp>

#include "tests/skip.h"
#include "tests/zns_test_util.h"
#include "zns/io/pattern.h"
#include "zns/io/uring_engine.h"
#include "zns/nvme_device.h"
#include "zns/zbd_device.h"
#include "zns/zone_trace.h"

namespace znslab::zns {
namespace {

// The geometry of the guest's QEMU namespace, small enough for a test.
const char* kGeom = "zones=20&zone_size=1M&zone_cap=768K&max_open=4&max_active=6&lba=4096";

std::unique_ptr<ZonedDevice> open_emu(const test::TempDir& dir, const char* name, const char* geom = kGeom) {
  std::string err;
  auto d = open_device("emu:" + dir.file(name) + "?" + geom);
  err = d ? std::string() : std::string(d.status().context());
  INFO(err);
  REQUIRE(d.is_ok());
  return std::move(*d);
}

// Forwards every call; optionally answers the Nth data/management call
// itself, or behaves like null_blk on close (ZBC: EMPTY when nothing was
// written), and can pretend to be a zbd: null_blk device.
class Twister final : public ZonedDeviceWrapper {
 public:
  explicit Twister(std::unique_ptr<ZonedDevice> inner) : ZonedDeviceWrapper(std::move(inner)), info_(this->inner().info()) {}
  long fail_call = -1;       // this call (0-based) returns Zone Is Full without reaching the device
  bool zbc_close = false;    // close of a zone with WP at start -> EMPTY
  void pretend_null_blk() { info_.backend = "zbd"; info_.model = "null_blk"; }

  const DeviceInfo& info() const noexcept override { return info_; }
  Status open(uint32_t z) override { return hit() ? bad() : in().open(z); }
  Status close(uint32_t z) override {
    if (hit()) return bad();
    Status s = in().close(z);
    if (s.is_ok() && zbc_close) {
      auto r = in().report_zones(z, 1);
      if (r && (*r)[0].written() == 0) return in().reset(z);
    }
    return s;
  }
  Status finish(uint32_t z) override { return hit() ? bad() : in().finish(z); }
  Status reset(uint32_t z) override { return hit() ? bad() : in().reset(z); }
  Status write(uint32_t z, uint64_t o, const void* b, size_t l) override { return hit() ? bad() : in().write(z, o, b, l); }
  Result<uint64_t> append(uint32_t z, const void* b, size_t l) override {
    if (hit()) return bad();
    return in().append(z, b, l);
  }
  Status read(uint32_t z, uint64_t o, void* b, size_t l) override { return hit() ? bad() : in().read(z, o, b, l); }

 private:
  bool hit() { return calls_++ == fail_call; }
  static Status bad() { return Status(Code::kZoneIsFull, "twister"); }
  ZonedDevice& in() { return inner(); }
  DeviceInfo info_;
  long calls_ = 0;
};

TEST_CASE("trace generator: same seed and zone state give the same commands", "[zns-trace]") {
  test::TempDir dir;
  auto dev = open_emu(dir, "a.img");
  auto zones = dev->report_zones(0, UINT32_MAX);
  REQUIRE(zones.is_ok());
  trace::TraceGenerator g1(42, dev->info()), g2(42, dev->info()), g3(43, dev->info());
  std::vector<std::string> s1, s2, s3;
  for (int i = 0; i < 200; ++i) {
    s1.push_back(trace::format_op(g1.next(*zones)));
    s2.push_back(trace::format_op(g2.next(*zones)));
    s3.push_back(trace::format_op(g3.next(*zones)));
  }
  CHECK(s1 == s2);
  CHECK(s1 != s3);
}

TEST_CASE("trace: commands that must fail and the open/active limits are exercised", "[zns-trace]") {
  test::TempDir dir;
  auto dev = open_emu(dir, "a.img");
  auto buf = io::AlignedBuffer::allocate(trace::kTraceBufferBytes);
  REQUIRE(buf.is_ok());
  trace::TraceGenerator gen(7, dev->info());
  std::map<Code, int> codes;
  for (int i = 0; i < 3000; ++i) {
    auto zones = dev->report_zones(0, UINT32_MAX);
    REQUIRE(zones.is_ok());
    auto oc = trace::apply(*dev, gen.next(*zones), buf->data());
    ++codes[oc.status.code()];
  }
  CHECK(codes[Code::kOk] > 0);
  CHECK(codes[Code::kZoneInvalidWrite] > 0);
  CHECK(codes[Code::kInvalidZoneStateTransition] > 0);
  CHECK(codes[Code::kTooManyActiveZones] + codes[Code::kTooManyOpenZones] > 0);
  CHECK(codes[Code::kZoneBoundaryError] > 0);  // writes across the capacity after a fill
}

TEST_CASE("zone-diff: two emulators agree on a long trace", "[zns-trace]") {
  test::TempDir dir;
  auto a = open_emu(dir, "a.img");
  auto b = open_emu(dir, "b.img");
  trace::DiffOptions o;
  o.seed = 3;
  o.ops = 1500;
  auto r = trace::run_diff(*a, *b, o);
  INFO(r.setup_error);
  CHECK(r.setup_error.empty());
  CHECK(r.mode == trace::CompareMode::kExact);
  CHECK(r.ops_run == 1500);
  CHECK(r.mismatches == 0);
  CHECK(r.documented_differences == 0);
  CHECK(r.failures_expected > 0);
}

TEST_CASE("zone-diff: a wrong answer is reported with the shortest prefix", "[zns-trace]") {
  test::TempDir dir;
  auto a = open_emu(dir, "a.img");
  auto tw = std::make_unique<Twister>(open_emu(dir, "b.img"));
  tw->fail_call = 37;  // every trace op is exactly one call on a fresh (all EMPTY) device
  trace::DiffOptions o;
  o.seed = 11;
  o.ops = 60;
  auto r = trace::run_diff(*a, *tw, o);
  INFO(r.setup_error);
  REQUIRE(r.setup_error.empty());
  // The 38th op (index 37) answered wrongly. A reset of all zones follows,
  // which may touch the twister again, so only the first mismatch is pinned.
  REQUIRE(r.mismatches >= 1);
  const auto& m = r.recorded.at(0);
  CHECK(m.op_index == 37);
  CHECK(m.prefix.size() == 38);
  CHECK(m.got.find("Zone Is Full") != std::string::npos);
}

TEST_CASE("zone-diff: null_blk's ZBC close is a documented difference only for null_blk", "[zns-trace]") {
  test::TempDir dir;
  trace::DiffOptions o;
  o.seed = 8;
  o.ops = 1500;
  {
    auto a = open_emu(dir, "a.img");
    auto tw = std::make_unique<Twister>(open_emu(dir, "b.img"));
    tw->zbc_close = true;
    tw->pretend_null_blk();
    auto r = trace::run_diff(*a, *tw, o);
    INFO(r.setup_error);
    CHECK(r.mode == trace::CompareMode::kOutcome);
    CHECK(r.mismatches == 0);
    bool found = false;
    for (auto& [rule, n] : r.documented_by_rule)
      if (rule.find("ZBC") != std::string::npos && n > 0) found = true;
    CHECK(found);
  }
  {
    auto a = open_emu(dir, "c.img");
    auto tw = std::make_unique<Twister>(open_emu(dir, "d.img"));
    tw->zbc_close = true;  // same behaviour, but not declared as null_blk
    auto r = trace::run_diff(*a, *tw, o);
    CHECK(r.mismatches > 0);
  }
}

TEST_CASE("zone-diff: devices with different geometry are refused", "[zns-trace]") {
  test::TempDir dir;
  auto a = open_emu(dir, "a.img");
  auto b = open_emu(dir, "b.img", "zones=20&zone_size=1M&zone_cap=768K&max_open=4&max_active=5&lba=4096");
  auto r = trace::run_diff(*a, *b, trace::DiffOptions{});
  CHECK(r.ops_run == 0);
  CHECK(r.setup_error.find("max active zones differs: 6 vs 5") != std::string::npos);
}

TEST_CASE("nvme: NVMe status values map exactly to zone error codes", "[zns-trace]") {
  const std::pair<int, Code> table[] = {
      {0x1b8, Code::kZoneBoundaryError},   {0x1b9, Code::kZoneIsFull},
      {0x1ba, Code::kZoneIsReadOnly},      {0x1bb, Code::kZoneIsOffline},
      {0x1bc, Code::kZoneInvalidWrite},    {0x1bd, Code::kTooManyActiveZones},
      {0x1be, Code::kTooManyOpenZones},    {0x1bf, Code::kInvalidZoneStateTransition},
      {0x080, Code::kLbaOutOfRange},       {0x002, Code::kInvalidArgument},
      {0x4000 | 0x1bc, Code::kZoneInvalidWrite},  // DNR bit set
      {0x0b9, Code::kIoError},             // SC 0xb9 with generic SCT is not Zone Is Full
  };
  for (auto [st, code] : table) {
    INFO("status 0x" << std::hex << st);
    CHECK(nvme_status_to_status(st, "t").code() == code);
  }
  CHECK(nvme_status_to_status(0, "t").is_ok());
  CHECK(nvme_status_to_status(-ENODEV, "t").code() == Code::kDeviceGone);
}

TEST_CASE("zbd: errno maps to a zone class only where the block layer gives one", "[zns-trace]") {
  CHECK(zbd_errno_status(ETOOMANYREFS, "t").code() == Code::kTooManyOpenZones);
  CHECK(zbd_errno_status(EOVERFLOW, "t").code() == Code::kTooManyActiveZones);
  Status eio = zbd_errno_status(EIO, "t");
  CHECK(eio.code() == Code::kIoError);  // never a guessed zone class
  CHECK(eio.sys_errno() == EIO);
  CHECK(zbd_errno_status(EINVAL, "t").code() == Code::kInvalidArgument);
}

TEST_CASE("real device (ZNS_TEST_DEV): I/O above the device limit is split; one write per zone in flight",
          "[zns-trace][zns-real]") {
  const char* uri = std::getenv("ZNS_TEST_DEV");
  if (!uri || !*uri) ZNSLAB_SKIP("ZNS_TEST_DEV is not set (e.g. zbd:/dev/nvme0n1 or nvme:/dev/ng0n1)");
  if (std::string(uri).rfind("emu:", 0) == 0) ZNSLAB_SKIP("ZNS_TEST_DEV is an emulator; this test is for zbd:/nvme:");
  std::string err;
  auto d = open_device(uri);
  err = d ? std::string() : std::string(d.status().context());
  INFO(err);
  REQUIRE(d.is_ok());
  ZonedDevice& dev = **d;
  const DeviceInfo& in = dev.info();
  REQUIRE(in.max_io_bytes >= in.lba_bytes);
  CHECK(in.zone_append_max_bytes <= in.max_io_bytes);
  REQUIRE(in.zone_count >= 4);
  REQUIRE(trace::reset_all(dev).is_ok());
  const uint64_t lba = in.lba_bytes;
  // Synchronous: one write of 2.5 x the limit at the write pointer.
  const size_t big = size_t(in.max_io_bytes * 2 + in.max_io_bytes / 2) / lba * lba;
  REQUIRE(big <= in.zone_capacity);
  auto w = io::AlignedBuffer::allocate(big, lba);
  auto r = io::AlignedBuffer::allocate(big, lba);
  REQUIRE((w.is_ok() && r.is_ok()));
  io::fill_pattern(w->data(), big, 1, 0);
  REQUIRE(dev.write(0, 0, w->data(), big).is_ok());
  REQUIRE(dev.read(0, 0, r->data(), big).is_ok());
  CHECK(io::verify_pattern(r->data(), big, 1, 0) == big);
  // An append larger than the limit is refused before reaching the device.
  auto huge = io::AlignedBuffer::allocate(in.zone_append_max_bytes + lba, lba);
  REQUIRE(huge.is_ok());
  CHECK(dev.append(1, huge->data(), huge->size()).status().code() == Code::kInvalidArgument);
  // Asynchronous: three zones written at once, each with one write of 2.5 x
  // the limit (pieces issued one after another), then two appends per zone
  // submitted together (nvme: Zone Append in flight together; zbd: queued
  // behind each other at the tracked write pointer).
  std::vector<io::AlignedBuffer> bufs;
  auto run_batch = [&](std::vector<IoRequest>& reqs) {
    REQUIRE(dev.submit(reqs).is_ok());
    std::vector<IoCompletion> done(reqs.size());
    size_t got = 0;
    while (got < reqs.size()) {
      auto n = dev.reap(std::span<IoCompletion>(done.data() + got, done.size() - got), 1);
      REQUIRE(n.is_ok());
      REQUIRE(*n > 0);
      got += *n;
    }
    return done;
  };
  const size_t small = size_t(lba) * 4;
  std::vector<IoRequest> writes, appends;
  for (uint32_t z = 1; z <= 3; ++z) {
    auto b = io::AlignedBuffer::allocate(big + 2 * small, lba);
    REQUIRE(b.is_ok());
    io::fill_pattern(b->data(), big + 2 * small, 2, uint64_t(z) * in.zone_size);
    writes.push_back({IoOp::kWrite, z, 0, b->data(), big, z * 10});
    appends.push_back({IoOp::kAppend, z, 0, b->data() + big, small, z * 10 + 1});
    appends.push_back({IoOp::kAppend, z, 0, b->data() + big + small, small, z * 10 + 2});
    bufs.push_back(std::move(*b));
  }
  for (const auto& c : run_batch(writes)) {
    INFO("write " << c.user_data << ": " << c.status.to_string());
    CHECK(c.status.is_ok());
    CHECK(c.bytes == big);
  }
  std::map<uint32_t, std::vector<uint64_t>> landed;
  for (const auto& c : run_batch(appends)) {
    INFO("append " << c.user_data << ": " << c.status.to_string());
    CHECK(c.status.is_ok());
    landed[uint32_t(c.user_data / 10)].push_back(c.offset);
  }
  for (uint32_t z = 1; z <= 3; ++z) {
    std::sort(landed[z].begin(), landed[z].end());
    CHECK(landed[z] == std::vector<uint64_t>{big, big + small});  // distinct LBAs after the write
    auto zs = dev.report_zones(z, 1);
    REQUIRE(zs.is_ok());
    CHECK((*zs)[0].written() == big + 2 * small);
    REQUIRE(dev.read(z, 0, r->data(), big).is_ok());
    CHECK(io::verify_pattern(r->data(), big, 2, uint64_t(z) * in.zone_size) == big);
  }
  REQUIRE(trace::reset_all(dev).is_ok());
}

}  // namespace
}  // namespace znslab::zns
