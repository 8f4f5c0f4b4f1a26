// ZNS conformance suite, part 2: persistence across reopen, crash (kill -9
// of a writer child) and recovery, fault injection; then emulator-only
// checks (geometry validation, power-cycle, locking, backing file).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <vector>

#include "src/common/status.h"
#include "tests/zns_test_util.h"
#include "zns/emu_device.h"
#include "zns/fault_device.h"

using namespace znslab;
using namespace znslab::zns;
using namespace znslab::zns::test;

namespace {

void persistence(Dut& d) {
  const size_t chunk = 64 * 1024;
  uint32_t lba;
  {
    auto dev = d.open();
    lba = dev->info().lba_bytes;
    const uint64_t zs = dev->info().zone_size;
    auto b = pattern_buf(chunk, 5, 0);
    REQUIRE_OK(dev->write(0, 0, b.data(), chunk));
    REQUIRE_OK(dev->open(1));
    auto b2 = pattern_buf(2 * lba, 5, 2 * zs);
    REQUIRE_OK(dev->write(2, 0, b2.data(), 2 * lba));
    REQUIRE_OK(dev->close(2));
    REQUIRE_OK(dev->finish(3));
  }
  auto dev = d.open();
  const uint64_t zs = dev->info().zone_size;
  Zone z0 = zone_of(*dev, 0), z1 = zone_of(*dev, 1), z2 = zone_of(*dev, 2), z3 = zone_of(*dev, 3);
  CHECK(z0.state == ZoneState::kImplicitOpen);
  CHECK(z0.written() == chunk);
  CHECK(z1.state == ZoneState::kExplicitOpen);
  CHECK(z2.state == ZoneState::kClosed);
  CHECK(z2.written() == 2 * lba);
  CHECK(z3.state == ZoneState::kFull);
  auto r = zero_buf(chunk);
  REQUIRE_OK(dev->read(0, 0, r.data(), chunk));
  CHECK(io::verify_pattern(r.data(), chunk, 5, 0) == chunk);
  REQUIRE_OK(dev->read(2, 0, r.data(), 2 * lba));
  CHECK(io::verify_pattern(r.data(), 2 * lba, 5, 2 * zs) == 2 * lba);
  // The write pointer carries on where the previous process left it.
  auto b = pattern_buf(lba, 5, chunk);
  CHECK(zone_err_is(*dev, dev->write(0, 0, b.data(), lba), Code::kZoneInvalidWrite));
  REQUIRE_OK(dev->write(0, chunk, b.data(), lba));
  // Resource accounting survives too: the zone implicitly opened before the
  // reopen is still the oldest one (emulator limits: max_open 3).
  const auto& i = dev->info();
  if (d.emulated && i.max_open == 3) {
    auto c = pattern_buf(lba, 5, 4 * zs);
    REQUIRE_OK(dev->write(4, 0, c.data(), lba));  // open: 0 (imp), 1 (exp), 4 (imp)
    REQUIRE_OK(dev->reset(2));  // frees an active resource (Closed -> Empty)
    auto e = pattern_buf(lba, 5, 5 * zs);
    REQUIRE_OK(dev->write(5, 0, e.data(), lba));  // closes zone 0
    CHECK(zone_of(*dev, 0).state == ZoneState::kClosed);
    CHECK(zone_of(*dev, 4).state == ZoneState::kImplicitOpen);
  }
  for (uint32_t z = 0; z < 6; ++z) REQUIRE_OK(dev->reset(z));
}

struct Ack {
  uint32_t zone;
  uint32_t append;  // 1: zone append (data seeded with `seed` at base 0)
  uint64_t offset;
  uint64_t len;
  uint64_t seed;
};

// The child: writes to zones 0..2 at their write pointers and appends to
// zone 3, reporting each acknowledged I/O through the pipe, until killed.
[[noreturn]] void crash_child(const std::string& uri, int wfd) {
  std::string err;
  auto d = open_device(uri);
  err = d ? std::string() : std::string(d.status().context());
  if (!d) _exit(2);
  ZonedDevice& dev = **d;
  const auto& i = dev.info();
  const size_t len = 16 * 1024;
  uint64_t wp[3] = {0, 0, 0}, k = 0;
  auto buf = io::AlignedBuffer::allocate(len, 4096);
  if (!buf) _exit(3);
  for (;;) {
    bool progress = false;
    for (uint32_t z = 0; z < 3; ++z) {
      if (wp[z] + len > i.zone_capacity) continue;
      io::fill_pattern(buf->data(), len, 77, uint64_t(z) * i.zone_size + wp[z]);
      if (!dev.write(z, wp[z], buf->data(), len)) _exit(4);
      Ack a{z, 0, wp[z], len, 77};
      if (::write(wfd, &a, sizeof a) != ssize_t(sizeof a)) _exit(5);
      wp[z] += len;
      progress = true;
    }
    if (i.zone_append_max_bytes >= len && (k + 1) * len <= i.zone_capacity) {
      uint64_t seed = 10000 + k++;
      io::fill_pattern(buf->data(), len, seed, 0);
      auto off = dev.append(3, buf->data(), len);
      if (!off) _exit(6);
      Ack a{3, 1, *off, len, seed};
      if (::write(wfd, &a, sizeof a) != ssize_t(sizeof a)) _exit(5);
      progress = true;
    }
    if (!progress) pause();
  }
}

void crash_recovery(Dut& d) {
  int p[2];
  REQUIRE(::pipe(p) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(p[0]);
    crash_child(d.uri, p[1]);
  }
  ::close(p[1]);
  std::vector<Ack> acks;
  Ack a;
  // Let it get going, then kill -9 in the middle of the stream.
  while (acks.size() < 40 && ::read(p[0], &a, sizeof a) == ssize_t(sizeof a)) acks.push_back(a);
  ::kill(pid, SIGKILL);
  while (::read(p[0], &a, sizeof a) == ssize_t(sizeof a)) acks.push_back(a);
  ::close(p[0]);
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  INFO("child status " << st);
  REQUIRE(WIFSIGNALED(st));  // killed, not failed
  REQUIRE(acks.size() >= 40);
  auto dev = d.open();
  const auto& i = dev->info();
  for (const Ack& k : acks) {
    Zone z = zone_of(*dev, k.zone);
    INFO("zone " << k.zone << " offset " << k.offset << " append " << k.append);
    CHECK(z.write_pointer >= z.start + k.offset + k.len);
    auto r = zero_buf(k.len);
    REQUIRE_OK(dev->read(k.zone, k.offset, r.data(), k.len));
    uint64_t base = k.append ? 0 : uint64_t(k.zone) * i.zone_size + k.offset;
    CHECK(io::verify_pattern(r.data(), k.len, k.seed, base) == k.len);
  }
  // The device is usable: keep writing at the recovered write pointer.
  Zone z0 = zone_of(*dev, 0);
  if (z0.state != ZoneState::kFull) {
    auto b = pattern_buf(i.lba_bytes, 1, z0.write_pointer);
    CHECK(dev->write(0, z0.written(), b.data(), i.lba_bytes).is_ok());
  }
  for (uint32_t z = 0; z < 4; ++z) REQUIRE_OK(dev->reset(z));
}

void fault_injection(Dut& d) {
  FaultDevice dev(d.open());
  const auto& i = dev.info();
  const size_t lba = i.lba_bytes;
  // The 2nd I/O from now fails with EIO and is not forwarded.
  dev.fail_nth_io(2);
  auto b0 = pattern_buf(lba, 9, 0), b1 = pattern_buf(lba, 9, lba);
  REQUIRE(dev.write(0, 0, b0.data(), lba).is_ok());
  Status s = dev.write(0, lba, b1.data(), lba);
  CHECK(s.code() == Code::kIoError);
  CHECK(s.sys_errno() == EIO);
  CHECK(zone_of(dev, 0).written() == lba);
  REQUIRE(dev.write(0, lba, b1.data(), lba).is_ok());
  CHECK(dev.injected_failures() == 1);
  // Asynchronous: the first request of the batch fails, the second completes.
  dev.fail_nth_io(1);
  auto c0 = pattern_buf(lba, 9, 1 * i.zone_size), c1 = pattern_buf(lba, 9, 2 * i.zone_size);
  IoRequest two[] = {{IoOp::kWrite, 1, 0, c0.data(), lba, 1}, {IoOp::kWrite, 2, 0, c1.data(), lba, 2}};
  REQUIRE(dev.submit(two).is_ok());
  IoCompletion cs[2];
  size_t got = 0;
  while (got < 2) {
    auto r = dev.reap(std::span<IoCompletion>(cs + got, 2 - got), 1);
    REQUIRE(r.is_ok());
    REQUIRE(*r > 0);
    got += *r;
  }
  for (auto& c : cs) {
    if (c.user_data == 1) CHECK(c.status.code() == Code::kIoError);
    else CHECK(c.status.is_ok());
  }
  // Repeating: every 3rd I/O fails.
  dev.fail_nth_io(3, true);
  int fails = 0;
  for (int k = 0; k < 9; ++k) {
    auto r = zero_buf(lba);
    if (!dev.read(0, 0, r.data(), lba)) ++fails;
  }
  CHECK(fails == 3);
  dev.fail_nth_io(0);
  // Read Only: reads work, writes and management fail.
  REQUIRE(dev.set_zone_condition(0, ZoneState::kReadOnly).is_ok());
  CHECK(zone_of(dev, 0).state == ZoneState::kReadOnly);
  auto w = pattern_buf(lba, 9, 2 * lba);
  CHECK(dev.write(0, 2 * lba, w.data(), lba).code() == Code::kZoneIsReadOnly);
  CHECK(dev.append(0, w.data(), lba).status().code() == Code::kZoneIsReadOnly);
  auto r = zero_buf(2 * lba);
  REQUIRE(dev.read(0, 0, r.data(), 2 * lba).is_ok());
  CHECK(io::verify_pattern(r.data(), 2 * lba, 9, 0) == 2 * lba);
  CHECK(dev.reset(0).code() == Code::kInvalidZoneStateTransition);
  CHECK(dev.open(0).code() == Code::kInvalidZoneStateTransition);
  CHECK(dev.finish(0).code() == Code::kInvalidZoneStateTransition);
  // Offline: no I/O at all.
  REQUIRE(dev.set_zone_condition(1, ZoneState::kOffline).is_ok());
  CHECK(zone_of(dev, 1).state == ZoneState::kOffline);
  CHECK(dev.write(1, lba, w.data(), lba).code() == Code::kZoneIsOffline);
  CHECK(dev.read(1, 0, r.data(), lba).code() == Code::kZoneIsOffline);
  CHECK(dev.close(1).code() == Code::kInvalidZoneStateTransition);
  CHECK(dev.set_zone_condition(2, ZoneState::kFull).code() == Code::kInvalidArgument);
  // The failed zones released their resources: other zones still open.
  // (Only where the device itself failed them; a real device under the
  // wrapper's overlay still counts them.)
  if (d.emulated && i.max_active != 0) {
    for (uint32_t z = 3; z < std::min<uint32_t>(i.zone_count, 3 + i.max_active - 1); ++z) {
      auto b = pattern_buf(lba, 9, uint64_t(z) * i.zone_size);
      CHECK(dev.write(z, 0, b.data(), lba).is_ok());
    }
  }
}

}  // namespace

ZNS_CONFORMANCE("persistence across reopen", persistence)
ZNS_CONFORMANCE("kill -9 of a writer child: acknowledged writes survive", crash_recovery)
ZNS_CONFORMANCE("fault injection through the wrapper", fault_injection)

// ---- emulator only ------------------------------------------------------------------

namespace {

// The status of opening `uri`; `message` receives its text ("" when it opened).
Status open_err(const std::string& uri, std::string& message) {
  auto d = open_device(uri);
  message = d ? std::string() : std::string(d.status().context());
  return d.status();
}

}  // namespace

TEST_CASE("emu: geometry is validated as QEMU validates it", "[zns]") {
  TempDir dir;
  const std::string f = dir.file("g.img");
  struct Case {
    const char* params;
    const char* msg;
  } cases[] = {
      {"zone_size=1M&zone_cap=2M", "zone capacity 2097152B exceeds zone size 1048576B"},
      {"max_open=5&max_active=4", "max_open (5) exceeds max_active (4)"},
      {"zone_size=1001K", "not a multiple of lba"},
      {"zone_size=1M&zone_cap=1022K", "not a multiple of lba"},
      {"lba=1000", "must be 512 or 4096"},
      {"zones=0", "zones=0"},
      {"zone_size=2K", "too small"},
      {"zones=abc", "not a number"},
      {"zonez=4", "unknown parameter 'zonez'"},
      {"zones=4&zones=5", "given twice"},
      {"direct=maybe", "expected auto, 0 or 1"},
  };
  for (const Case& c : cases) {
    std::string err;
    Status s = open_err("emu:" + f + "?" + c.params, err);
    INFO(c.params << " -> " << err);
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK(err.find(c.msg) != std::string::npos);
    CHECK(::access(f.c_str(), F_OK) != 0);  // nothing left behind
  }
  std::string err;
  CHECK(open_err("nope:/x", err).code() == Code::kInvalidArgument);
  CHECK(err.find("unknown scheme") != std::string::npos);
  CHECK(open_err("/dev/nvme0n1", err).code() == Code::kInvalidArgument);
  CHECK(err.find("no scheme") != std::string::npos);
  CHECK(open_err("emu:", err).code() == Code::kInvalidArgument);
}

TEST_CASE("emu: reopening with another geometry is refused; the file's is kept", "[zns]") {
  TempDir dir;
  const std::string base = "emu:" + dir.file("r.img");
  {
    std::string err;
    auto d = open_device(base + "?zones=4&zone_size=1M&zone_cap=512K&max_open=2&max_active=3");
    err = d ? std::string() : std::string(d.status().context());
    REQUIRE(d.is_ok());
  }
  std::string err;
  CHECK(open_err(base + "?zones=8", err).code() == Code::kInvalidArgument);
  CHECK(err.find("zones=4 (URI asks 8)") != std::string::npos);
  CHECK(open_err(base + "?zone_cap=1M&max_open=3", err).code() == Code::kInvalidArgument);
  CHECK(err.find("zone_cap=512K (URI asks 1M)") != std::string::npos);
  CHECK(err.find("max_open=2 (URI asks 3)") != std::string::npos);
  auto d = open_device(base);  // no parameters: the file's geometry
  REQUIRE(d.is_ok());
  const auto& i = (*d)->info();
  CHECK(i.zone_count == 4);
  CHECK(i.zone_size == 1 << 20);
  CHECK(i.zone_capacity == 512 << 10);
  CHECK(i.max_open == 2);
  CHECK(i.max_active == 3);
  CHECK(i.lba_bytes == 4096);
  // A second handle on the same file while this one is open: kBusy.
  CHECK(open_err(base, err).code() == Code::kBusy);
  CHECK(err.find("in use") != std::string::npos);
}

TEST_CASE("emu: a file that is not an emulated device is refused", "[zns]") {
  TempDir dir;
  const std::string f = dir.file("junk.img");
  {
    std::ofstream o(f);
    o << "this is not a zoned device\n";
  }
  std::string err;
  CHECK(open_err("emu:" + f, err).code() == Code::kCorrupt);
  CHECK(err.find("bad magic") != std::string::npos);
  std::ifstream in(f);
  std::string line;
  std::getline(in, line);
  CHECK(line == "this is not a zoned device");  // untouched
}

TEST_CASE("emu: power-cycle closes open zones as QEMU does at shutdown", "[zns]") {
  auto dut = emu_dut();
  const size_t lba = 4096;
  {
    auto dev = dut.open();
    auto b = pattern_buf(lba, 1, 0);
    REQUIRE_OK(dev->write(0, 0, b.data(), lba));  // implicitly open, data
    REQUIRE_OK(dev->open(1));                     // explicitly open, empty
    auto b2 = pattern_buf(lba, 1, 2 << 20);
    REQUIRE_OK(dev->write(2, 0, b2.data(), lba));
    REQUIRE_OK(dev->open(2));                     // explicitly open, data
    REQUIRE_OK(dev->finish(3));
    REQUIRE_OK(dev->open(4));
    REQUIRE_OK(dev->close(4));                    // closed, empty
  }
  {
    auto dev = dut.open();
    REQUIRE_OK(dev->power_cycle());
  }
  auto dev = dut.open();
  CHECK(zone_of(*dev, 0).state == ZoneState::kClosed);
  CHECK(zone_of(*dev, 0).written() == lba);
  CHECK(zone_of(*dev, 1).state == ZoneState::kEmpty);
  CHECK(zone_of(*dev, 2).state == ZoneState::kClosed);
  CHECK(zone_of(*dev, 3).state == ZoneState::kFull);
  CHECK(zone_of(*dev, 4).state == ZoneState::kEmpty);
  auto r = zero_buf(lba);
  REQUIRE_OK(dev->read(0, 0, r.data(), lba));
  CHECK(io::verify_pattern(r.data(), lba, 1, 0) == lba);
  // After the cycle the open resources are free again: 3 explicit opens fit.
  for (uint32_t z : {5u, 6u}) REQUIRE_OK(dev->open(z));
  REQUIRE_OK(dev->open(0));  // closed -> explicitly open, no new active resource
}

TEST_CASE("emu: fault conditions persist and free resources", "[zns]") {
  auto dut = emu_dut();
  {
    FaultDevice dev(dut.open());
    REQUIRE(dev.open(0).is_ok());
    REQUIRE(dev.set_zone_condition(0, ZoneState::kOffline).is_ok());
    REQUIRE(dev.set_zone_condition(1, ZoneState::kReadOnly).is_ok());
  }
  auto dev = dut.open();
  CHECK(zone_of(*dev, 0).state == ZoneState::kOffline);
  CHECK(zone_of(*dev, 1).state == ZoneState::kReadOnly);
  for (uint32_t z : {2u, 3u, 4u}) REQUIRE_OK(dev->open(z));  // max_open 3 all free
}

TEST_CASE("emu: backing file exposes the data at data_offset; O_DIRECT where allowed", "[zns]") {
  auto dut = emu_dut();
  auto dev = dut.open();
  auto bf = dev->backing_file();
  REQUIRE(bf.has_value());
  CHECK(bf->fd >= 0);
  CHECK(bf->data_offset % 4096 == 0);
  const size_t len = 8192;
  auto b = pattern_buf(len, 42, 3 << 20);
  REQUIRE_OK(dev->write(3, 0, b.data(), len));
  std::vector<uint8_t> got(len);
  REQUIRE(::pread(bf->fd, got.data(), len, off_t(bf->data_offset + 3 * (1 << 20))) == ssize_t(len));
  CHECK(std::memcmp(got.data(), b.data(), len) == 0);
  auto* emu = dynamic_cast<EmuDevice*>(dev.get());
  REQUIRE(emu != nullptr);
  if (!emu->direct_io()) WARN("O_DIRECT not available on " << dut.dir->path() << " (buffered I/O used)");
  // direct=0 forces buffered I/O and still works.
  TempDir d2;
  std::string err;
  auto buffered = open_device("emu:" + d2.file("b.img") + "?zones=2&zone_size=1M&direct=0");
  err = buffered ? std::string() : std::string(buffered.status().context());
  REQUIRE(buffered.is_ok());
  CHECK(!dynamic_cast<EmuDevice*>(buffered->get())->direct_io());
  REQUIRE((*buffered)->write(0, 0, b.data(), len).is_ok());
}

TEST_CASE("emu: defaults when creating", "[zns]") {
  TempDir dir;
  std::string err;
  auto d = open_device("emu:" + dir.file("def.img"));
  err = d ? std::string() : std::string(d.status().context());
  REQUIRE(d.is_ok());
  const auto& i = (*d)->info();
  CHECK(i.backend == "emu");
  CHECK(i.zone_count == 16);
  CHECK(i.zone_size == 64 << 20);
  CHECK(i.zone_capacity == 64 << 20);
  CHECK(i.lba_bytes == 4096);
  CHECK(i.max_open == 0);
  CHECK(i.max_active == 0);
  CHECK(i.max_io_bytes == 512 << 10);
  CHECK(i.zone_append_max_bytes == 512 << 10);
}
