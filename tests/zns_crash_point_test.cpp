// Crash-point testing of the emulator ([zns][crash]): every zone command is
// run in a forked child that is killed (SIGKILL) at its Nth boundary —
// before/after each data I/O, each zone table store and each hole punch
// (zns/emu_hooks.h) — for every N the command has. After each kill the
// device is reopened and must hold the state from before the command or
// the state after it, for every zone, with every byte below each write
// pointer intact (the data pattern depends on the device offset only, so
// old and new data verify alike) and zeros above it.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "tests/zns_test_util.h"
#include "zns/emu_device.h"
#include "zns/emu_hooks.h"

using namespace znslab;
using namespace znslab::zns;
using namespace znslab::zns::test;

namespace {

// Small zones, a tiny MDTS so a write spans several ring submissions
// (8K pieces, 32 per submission: 256K), open limit 2 for the auto-close.
constexpr const char* kCrashParams =
    "zones=4&zone_size=1M&zone_cap=768K&lba=4096&max_io=8K&zasl=64K&max_open=2&max_active=3";
constexpr uint64_t kSeed = 77;

struct Counter {
  uint64_t n = 0;
  uint64_t kill_at = 0;  // 0: count only
};

EmuFault count_hook(EmuStep, uint64_t, void* ctx) {
  auto* c = static_cast<Counter*>(ctx);
  if (++c->n == c->kill_at) ::kill(::getpid(), SIGKILL);
  return EmuFault{};
}

std::unique_ptr<ZonedDevice> open_emu(const std::string& uri) {
  std::string err;
  auto d = open_device(uri);
  err = d ? std::string() : std::string(d.status().context());
  INFO(err);
  REQUIRE(d.is_ok());
  return std::move(*d);
}

Status write_at_wp(ZonedDevice& dev, uint32_t z, uint64_t len) {
  auto zr = dev.report_zones(z, 1);
  if (!zr) return zr.status();
  const uint64_t off = zr->front().written();
  auto b = pattern_buf(len, kSeed, zr->front().start + off);
  return dev.write(z, off, b.data(), len);
}

Status append_n(ZonedDevice& dev, uint32_t z, uint64_t len) {
  auto zr = dev.report_zones(z, 1);
  if (!zr) return zr.status();
  auto b = pattern_buf(len, kSeed, zr->front().write_pointer);
  auto r = dev.append(z, b.data(), len);
  return r ? Status::ok() : r.status();
}

struct Scenario {
  const char* name;
  std::function<void(ZonedDevice&)> setup;       // builds the old state (acknowledged writes)
  std::function<Status(ZonedDevice&)> command;   // the command under test
};

bool all_zero(const uint8_t* p, uint64_t n) {
  return std::all_of(p, p + n, [](uint8_t b) { return b == 0; });
}

// State of every zone plus a check that its data is intact.
std::vector<Zone> check_and_report(ZonedDevice& dev) {
  auto zr = dev.report_zones(0, UINT32_MAX);
  REQUIRE(zr.is_ok());
  const auto& i = dev.info();
  auto buf = zero_buf(i.zone_size);
  for (const Zone& z : *zr) {
    if (z.state == ZoneState::kOffline) continue;
    REQUIRE(dev.read(z.index, 0, buf.data(), i.zone_size).is_ok());
    // Full zones report start + capacity; the data is the written extent,
    // which the invariant lets be anything up to capacity: check the
    // pattern up to the first zero block instead.
    uint64_t w = z.written();
    uint64_t ok = io::verify_pattern(buf.data(), w, kSeed, z.start);
    INFO("zone " << z.index << " written " << w << ", pattern up to " << ok);
    if (z.state == ZoneState::kFull) {
      // A finished zone may be partly written: bytes after the extent are zeros.
      REQUIRE(ok % i.lba_bytes == 0);
      REQUIRE(all_zero(buf.data() + ok, w - ok));
    } else {
      REQUIRE(ok == w);
    }
    REQUIRE(all_zero(buf.data() + w, i.zone_size - w));
  }
  return *zr;
}

bool same(const Zone& a, const Zone& b) { return a.state == b.state && a.write_pointer == b.write_pointer; }

// Runs one scenario exhaustively; returns the number of crash points.
uint64_t run_scenario(const Scenario& sc) {
  // Reference run: the old state, the new state and the boundary count.
  std::vector<Zone> old_state, new_state;
  uint64_t boundaries = 0;
  {
    TempDir dir;
    const std::string uri = "emu:" + dir.file("ref.img") + "?" + kCrashParams;
    {
      auto dev = open_emu(uri);
      sc.setup(*dev);
      old_state = check_and_report(*dev);
    }
    auto dev = open_emu(uri);
    Counter c;
    set_emu_hook(count_hook, &c);
    Status s = sc.command(*dev);
    set_emu_hook(nullptr, nullptr);
    INFO(sc.name << ": " << s.to_string());
    REQUIRE(s.is_ok());
    boundaries = c.n;
    dev.reset();
    auto re = open_emu(uri);
    new_state = check_and_report(*re);
  }
  INFO(sc.name);
  REQUIRE(boundaries > 0);
  for (uint64_t k = 1; k <= boundaries; ++k) {
    TempDir dir;
    const std::string uri = "emu:" + dir.file("dev.img") + "?" + kCrashParams;
    {
      auto dev = open_emu(uri);
      sc.setup(*dev);
    }
    std::fflush(nullptr);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      std::string err;
      auto d = open_device(uri);
      err = d ? std::string() : std::string(d.status().context());
      if (!d) ::_exit(10);
      Counter c;
      c.kill_at = k;
      set_emu_hook(count_hook, &c);
      (void)sc.command(**d);
      ::_exit(11);  // not reached: boundary k exists
    }
    int ws = 0;
    REQUIRE(::waitpid(pid, &ws, 0) == pid);
    INFO("crash point " << k << " of " << boundaries);
    REQUIRE(WIFSIGNALED(ws));
    REQUIRE(WTERMSIG(ws) == SIGKILL);
    auto dev = open_emu(uri);
    auto now = check_and_report(*dev);
    REQUIRE(now.size() == old_state.size());
    for (size_t z = 0; z < now.size(); ++z) {
      INFO("zone " << z << ": " << zone_state_name(now[z].state) << " wp " << now[z].write_pointer << "; old "
                   << zone_state_name(old_state[z].state) << " " << old_state[z].write_pointer << ", new "
                   << zone_state_name(new_state[z].state) << " " << new_state[z].write_pointer);
      CHECK((same(now[z], old_state[z]) || same(now[z], new_state[z])));
    }
  }
  return boundaries;
}

std::vector<Scenario> scenarios() {
  auto nothing = [](ZonedDevice&) {};
  auto z0_64k = [](ZonedDevice& d) { REQUIRE(write_at_wp(d, 0, 64 << 10).is_ok()); };
  auto z0_full = [](ZonedDevice& d) { REQUIRE(write_at_wp(d, 0, 768 << 10).is_ok()); };
  auto two_open = [](ZonedDevice& d) {
    REQUIRE(write_at_wp(d, 1, 16 << 10).is_ok());
    REQUIRE(write_at_wp(d, 2, 16 << 10).is_ok());
  };
  return {
      {"write to an Empty zone (implicit open)", nothing, [](ZonedDevice& d) { return write_at_wp(d, 0, 16 << 10); }},
      {"write at the write pointer (several pieces)", z0_64k, [](ZonedDevice& d) { return write_at_wp(d, 0, 64 << 10); }},
      {"write over several ring submissions", z0_64k, [](ZonedDevice& d) { return write_at_wp(d, 0, 576 << 10); }},
      {"write that fills the zone (-> Full)", z0_64k, [](ZonedDevice& d) { return write_at_wp(d, 0, 704 << 10); }},
      {"write that auto-closes the oldest implicitly open zone", two_open,
       [](ZonedDevice& d) { return write_at_wp(d, 3, 16 << 10); }},
      {"append to a zone with data", z0_64k, [](ZonedDevice& d) { return append_n(d, 0, 64 << 10); }},
      {"append to an Empty zone", nothing, [](ZonedDevice& d) { return append_n(d, 1, 32 << 10); }},
      {"append that fills the zone", [](ZonedDevice& d) { REQUIRE(write_at_wp(d, 0, 704 << 10).is_ok()); },
       [](ZonedDevice& d) { return append_n(d, 0, 64 << 10); }},
      {"reset of a Full zone", z0_full, [](ZonedDevice& d) { return d.reset(0); }},
      {"reset of an open zone with data", z0_64k, [](ZonedDevice& d) { return d.reset(0); }},
      {"finish of an open zone", z0_64k, [](ZonedDevice& d) { return d.finish(0); }},
      {"finish of an Empty zone", nothing, [](ZonedDevice& d) { return d.finish(2); }},
      {"open of an Empty zone", nothing, [](ZonedDevice& d) { return d.open(1); }},
      {"close of an open zone", z0_64k, [](ZonedDevice& d) { return d.close(0); }},
  };
}

}  // namespace

TEST_CASE("emu crash points: a kill at any boundary of write, append, reset, finish, open, close leaves the old or the new state",
          "[zns][crash]") {
  uint64_t total = 0;
  for (const auto& sc : scenarios()) {
    uint64_t n = run_scenario(sc);
    std::printf("crash points: %-58s %3llu\n", sc.name, (unsigned long long)n);
    total += n;
  }
  std::printf("crash points tested: %llu\n", (unsigned long long)total);
  CHECK(total >= 50);
}

TEST_CASE("H2 regression: a reset killed between its table store and its hole punch never leaves a Full zone of zeros",
          "[zns][regression]") {
  // The reproduction: zone 0 written full, reset killed right after the
  // data was released. The zone must be Empty (store first) or still Full
  // with its data (killed before the store).
  for (EmuStep at : {EmuStep::kTableStore, EmuStep::kTableStored, EmuStep::kPunch, EmuStep::kPunched}) {
    TempDir dir;
    const std::string uri = "emu:" + dir.file("h2.img") + "?zones=2&zone_size=1M";
    {
      auto dev = open_emu(uri);
      REQUIRE(write_at_wp(*dev, 0, 1 << 20).is_ok());
    }
    std::fflush(nullptr);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      std::string err;
      auto d = open_device(uri);
      err = d ? std::string() : std::string(d.status().context());
      if (!d) ::_exit(10);
      static EmuStep target;
      target = at;
      set_emu_hook([](EmuStep s, uint64_t, void*) {
        if (s == target) ::kill(::getpid(), SIGKILL);
        return EmuFault{};
      }, nullptr);
      (void)(*d)->reset(0);
      ::_exit(11);
    }
    int ws = 0;
    REQUIRE(::waitpid(pid, &ws, 0) == pid);
    REQUIRE(WIFSIGNALED(ws));
    auto dev = open_emu(uri);
    Zone z = dev->report_zones(0, 1)->front();
    INFO("killed at step " << int(at) << ": " << zone_state_name(z.state));
    CHECK((z.state == ZoneState::kEmpty || z.state == ZoneState::kFull));
    check_and_report(*dev);  // Full: the pattern is there; Empty: zeros
    if (at == EmuStep::kPunch || at == EmuStep::kPunched) CHECK(z.state == ZoneState::kEmpty);
  }
}
