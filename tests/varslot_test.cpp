// [varslot]: shared-memory slot pools that grow across processes (issue 13,
// seed 000). Multi-process cases fork guests that attach by path; a child
// reports through its exit status (0 = every check held) and never runs
// Catch2 assertions.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "harness/config.h"
#include "harness/runner.h"
#include "harness/schema.h"
#include "src/varslot/pool.h"
#include "workloads/varslot_growth_gen.h"

using namespace znslab;
using namespace znslab::varslot;

namespace {

std::string shm_path(const char* tag) {
  static std::atomic<int> n{0};
  return "/dev/shm/znslab-varslot-test-" + std::to_string(::getpid()) + "-" + tag + "-" +
         std::to_string(n.fetch_add(1));
}

// Removes the segment's files when the test ends.
struct Unlinker {
  std::string path;
  ~Unlinker() {
    ::unlink(path.c_str());
    for (int c = 0; c < 8; ++c)
      for (int e = 0; e < 16; ++e) ::unlink((path + ".c" + std::to_string(c) + ".e" + std::to_string(e)).c_str());
  }
};

// Small geometry: 4 classes (64 B .. 4 KiB), 16 KiB extents.
PoolOptions small_opts(const std::string& path, GrowthMode m) {
  PoolOptions o;
  o.path = path;
  o.mode = m;
  o.class_sizes = {64, 256, 1024, 4096};
  o.extent_bytes = 16384;
  o.initial_bytes = 16384;  // one extent, class 0
  o.fixed_extents = 4;
  o.max_bytes = 64ull << 20;
  return o;
}

// Pattern: every 8-byte word at a stride of 64 bytes carries (raw, i).
uint64_t pat(uint64_t raw, uint64_t i) { return raw * 0x9E3779B97F4A7C15ull ^ (i + 1); }
void fill(uint8_t* p, uint32_t bytes, Handle h) {
  for (uint32_t o = 0; o + 8 <= bytes; o += 64) {
    uint64_t v = pat(h.raw, o);
    std::memcpy(p + o, &v, 8);
  }
}
bool check(const uint8_t* p, uint32_t bytes, Handle h) {
  for (uint32_t o = 0; o + 8 <= bytes; o += 64) {
    uint64_t v;
    std::memcpy(&v, p + o, 8);
    if (v != pat(h.raw, o)) return false;
  }
  return true;
}

// Guest body: attach, then `iters` rounds of alloc/fill/verify/free over a
// window of held slots. Exit status: 0 ok, 2 attach, 3 alloc, 4 corruption,
// 5 free refused.
// fd >= 0: attach through that (inherited) descriptor instead of the path.
[[noreturn]] void guest_churn(const std::string& path, uint32_t iters, uint32_t seed, uint32_t max_size,
                              int fd = -1) {
  auto g = fd >= 0 ? Pool::attach_fd(fd) : Pool::attach(path);
  if (!g) _exit(2);
  Pool& pool = **g;
  std::mt19937 rng(seed);
  std::vector<Handle> held;
  for (uint32_t i = 0; i < iters; ++i) {
    if (held.size() < 48 && (held.empty() || rng() % 3 != 0)) {
      uint32_t sz = 1 + rng() % max_size;
      auto h = pool.alloc(sz);
      if (!h) _exit(3);
      uint8_t* p = pool.ptr(*h);
      if (!p) _exit(4);
      fill(p, pool.slot_size(*h), *h);
      held.push_back(*h);
    } else {
      size_t k = rng() % held.size();
      Handle h = held[k];
      held[k] = held.back();
      held.pop_back();
      uint8_t* p = pool.ptr(h);
      if (!p || !check(p, pool.slot_size(h), h)) _exit(4);
      if (!pool.free(h)) _exit(5);
    }
  }
  for (Handle h : held) {
    uint8_t* p = pool.ptr(h);
    if (!p || !check(p, pool.slot_size(h), h)) _exit(4);
    if (!pool.free(h)) _exit(5);
  }
  _exit(0);
}

// fork() with stdio flushed, so a child never repeats the parent's output.
pid_t fork_child() {
  std::fflush(nullptr);
  return ::fork();
}

int wait_status(pid_t pid) {
  int st = 0;
  if (::waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

// SCM_RIGHTS over a unix socket: how a process that did not fork the host
// receives a memfd segment's descriptor. true when sent / the fd received.
bool send_fd(int sock, int fd) {
  char byte = 'f';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char buf[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = buf;
  msg.msg_controllen = sizeof buf;
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cm), &fd, sizeof(int));
  return ::sendmsg(sock, &msg, 0) == 1;
}
int recv_fd(int sock) {
  char byte;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char buf[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = buf;
  msg.msg_controllen = sizeof buf;
  if (::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != 1) return -1;
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  if (!cm || cm->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  std::memcpy(&fd, CMSG_DATA(cm), sizeof(int));
  return fd;
}

uint64_t total_alloc(Pool& p) {
  uint64_t sum = 0;
  for (uint32_t c = 0; c < p.class_count(); ++c) {
    uint64_t f = 0, a = 0;
    p.count_slots(c, &f, &a);
    sum += a;
  }
  return sum;
}

}  // namespace

TEST_CASE("varslot: alloc picks the smallest class, payloads stay put, frees recycle", "[varslot]") {
  std::string path = shm_path("basic");
  Unlinker u{path};
  auto r = Pool::create(small_opts(path, GrowthMode::kRemap));
  REQUIRE(r.is_ok());
  Pool& pool = **r;
  CHECK(pool.is_host());
  REQUIRE(pool.verify().is_ok());
  auto a = pool.alloc(10), b = pool.alloc(64), c = pool.alloc(65), d = pool.alloc(4096);
  REQUIRE((a.is_ok() && b.is_ok() && c.is_ok() && d.is_ok()));
  CHECK(a->class_idx() == 0);
  CHECK(b->class_idx() == 0);
  CHECK(c->class_idx() == 1);
  CHECK(d->class_idx() == 3);
  CHECK(pool.owner(*a) == 0);
  for (Handle h : {*a, *b, *c, *d}) fill(pool.ptr(h), pool.slot_size(h), h);
  for (Handle h : {*a, *b, *c, *d}) CHECK(check(pool.ptr(h), pool.slot_size(h), h));
  CHECK(pool.alloc(4097).status().code() == Code::kInvalidArgument);
  CHECK(pool.alloc(0).status().code() == Code::kInvalidArgument);
  for (Handle h : {*d, *c, *b, *a}) CHECK(pool.free(h).is_ok());
  CHECK(total_alloc(pool) == 0);
  // A slot comes back with the next generation (the last freed first).
  auto a2 = pool.alloc(10);
  REQUIRE(a2.is_ok());
  CHECK(a2->slot() == a->slot());
  CHECK(a2->generation() == a->generation() + 1);
  CHECK(pool.ptr(*a) == nullptr);  // the old handle no longer reaches it
}

TEST_CASE("varslot: double free and stale handles are refused and counted", "[varslot]") {
  std::string path = shm_path("dfree");
  Unlinker u{path};
  auto r = Pool::create(small_opts(path, GrowthMode::kRemap));
  REQUIRE(r.is_ok());
  Pool& pool = **r;
  auto h = pool.alloc(32);
  REQUIRE(h.is_ok());
  REQUIRE(pool.free(*h).is_ok());
  CHECK(pool.free(*h).code() == Code::kDoubleFree);
  auto h2 = pool.alloc(32);  // same slot, next generation
  REQUIRE(h2.is_ok());
  REQUIRE(h2->slot() == h->slot());
  CHECK(pool.free(*h).code() == Code::kStaleHandle);  // old handle, slot reused
  CHECK(pool.ptr(*h2) != nullptr);                     // the refusal changed nothing
  CHECK(pool.free(Handle::make(0, 9, 0, 1)).code() == Code::kInvalidHandle);
  CHECK(pool.free(Handle::make(7, 0, 0, 1)).code() == Code::kInvalidHandle);
  CHECK(pool.free(Handle{}).code() == Code::kInvalidHandle);
  PoolStats s = pool.stats();
  CHECK(s.double_frees == 1);
  CHECK(s.stale_handles == 1);
  CHECK(s.invalid_handles == 3);
  CHECK(pool.free(*h2).is_ok());
}

TEST_CASE("varslot: narrow generations wrap and still refuse double and stale frees", "[varslot]") {
  std::string path = shm_path("wrap");
  Unlinker u{path};
  PoolOptions o = small_opts(path, GrowthMode::kFixed);
  o.class_sizes = {4096};
  o.extent_bytes = 4096;  // one slot per extent
  o.max_extents = 1;
  o.fixed_extents = 1;
  o.generation_bits = 2;  // generations 1, 2, 3, 1, ...
  auto r = Pool::create(o);
  REQUIRE(r.is_ok());
  Pool& pool = **r;
  std::vector<uint32_t> gens;
  Handle prev{};
  for (int i = 0; i < 7; ++i) {
    auto h = pool.alloc(100);
    REQUIRE(h.is_ok());
    gens.push_back(h->generation());
    if (i > 0) CHECK(pool.free(prev).code() == Code::kStaleHandle);  // one generation behind
    REQUIRE(pool.free(*h).is_ok());
    CHECK(pool.free(*h).code() == Code::kDoubleFree);  // also across the wrap (3 -> 1)
    prev = *h;
  }
  CHECK(gens == std::vector<uint32_t>{1, 2, 3, 1, 2, 3, 1});
  PoolStats s = pool.stats();
  CHECK(s.double_frees == 7);
  CHECK(s.stale_handles == 6);
}

TEST_CASE("varslot: the host grows a full class, each growth mode", "[varslot]") {
  for (GrowthMode m : {GrowthMode::kRemap, GrowthMode::kExtentFiles}) {
    DYNAMIC_SECTION(growth_mode_name(m)) {
      std::string path = shm_path("grow");
      Unlinker u{path};
      auto r = Pool::create(small_opts(path, m));
      REQUIRE(r.is_ok());
      Pool& pool = **r;
      const uint64_t size0 = pool.stats().segment_bytes;
      std::vector<Handle> hs;
      for (int i = 0; i < 256 * 3 + 5; ++i) {  // 256 slots of 64 B per extent
        auto h = pool.alloc(64);
        REQUIRE(h.is_ok());
        CHECK(h->class_idx() == 0);
        fill(pool.ptr(*h), 64, *h);
        hs.push_back(*h);
      }
      PoolStats s = pool.stats();
      CHECK(s.extents[0] == 4);
      CHECK(s.growth_events == 3);
      CHECK(s.segment_bytes > size0);
      CHECK(s.fallback_allocs == 0);
      REQUIRE(pool.verify().is_ok());
      // Pointers taken before later growths still reach the same bytes.
      for (Handle h : hs) REQUIRE(check(pool.ptr(h), 64, h));
      CHECK(pool.grow_durations_ns().size() == 3);
    }
  }
}

TEST_CASE("varslot: refused growth falls back to the next larger class; fixed never grows", "[varslot]") {
  for (GrowthMode m : {GrowthMode::kRemap, GrowthMode::kFixed}) {
    DYNAMIC_SECTION(growth_mode_name(m)) {
      std::string path = shm_path("fallback");
      Unlinker u{path};
      PoolOptions o = small_opts(path, m);
      o.max_extents = 1;
      o.fixed_extents = 1;
      o.initial_bytes = 4 * 16384;  // one extent per class
      auto r = Pool::create(o);
      REQUIRE(r.is_ok());
      Pool& pool = **r;
      for (int i = 0; i < 256; ++i) REQUIRE(pool.alloc(64).is_ok());
      auto h = pool.alloc(64);
      REQUIRE(h.is_ok());
      CHECK(h->class_idx() == 1);
      PoolStats s = pool.stats();
      CHECK(s.fallback_allocs == 1);
      CHECK(s.growth_events == 0);
      CHECK(s.extents[0] == 1);
      if (m == GrowthMode::kRemap) CHECK(s.growth_refused == 1);
      CHECK(pool.grow(0).code() == (m == GrowthMode::kFixed ? Code::kNotSupported : Code::kOutOfMemory));
    }
  }
}

TEST_CASE("varslot: a guest that missed the doorbell sees growth on its next allocation and never maps beyond what it knows",
          "[varslot]") {
  std::string path = shm_path("doorbell");
  Unlinker u{path};
  PoolOptions o = small_opts(path, GrowthMode::kRemap);
  auto r = Pool::create(o);
  REQUIRE(r.is_ok());
  Pool& host = **r;
  auto g = Pool::attach(path);
  REQUIRE(g.is_ok());
  Pool& guest = **g;
  CHECK(guest.peer_id() != 0);
  auto first = guest.alloc(64);  // maps extent 0 of class 0
  REQUIRE(first.is_ok());
  const uint64_t known = guest.mapped_size();
  // The host grows class 0 twice while the guest does nothing.
  REQUIRE(host.grow(0).is_ok());
  REQUIRE(host.grow(0).is_ok());
  CHECK(host.stats().segment_bytes > known);
  CHECK(guest.mapped_size() == known);  // nothing mapped behind its back
  // Fill the guest's known extent: the next allocation lands in extent 1
  // with no doorbell rung (the guest reads extent_count, then maps).
  std::vector<Handle> hs{*first};
  for (int i = 0; i < 255; ++i) {
    auto h = guest.alloc(64);
    REQUIRE(h.is_ok());
    CHECK(h->extent() == 0);
    hs.push_back(*h);
  }
  CHECK(guest.mapped_size() == known);
  auto h = guest.alloc(64);
  REQUIRE(h.is_ok());
  CHECK(h->extent() == 1);
  CHECK(guest.stats().doorbells == 0);
  CHECK(guest.mapped_size() > known);
  CHECK(guest.mapped_size() <= host.stats().segment_bytes);
  fill(guest.ptr(*h), 64, *h);
  CHECK(check(host.ptr(*h), 64, *h));  // the host sees the guest's bytes
  CHECK(host.owner(*h) == int(guest.peer_id()));
}

TEST_CASE("varslot: a guest rings the doorbell and the host's service grows the class", "[varslot]") {
  for (GrowthMode m : {GrowthMode::kRemap, GrowthMode::kExtentFiles}) {
    DYNAMIC_SECTION(growth_mode_name(m)) {
      std::string path = shm_path("ring");
      Unlinker u{path};
      auto r = Pool::create(small_opts(path, m));
      REQUIRE(r.is_ok());
      Pool& host = **r;
      host.start_service(1);
      auto g = Pool::attach(path);
      REQUIRE(g.is_ok());
      for (int i = 0; i < 600; ++i) REQUIRE((*g)->alloc(64).is_ok());
      CHECK((*g)->stats().doorbells >= 2);
      CHECK(host.stats().extents[0] == 3);
      CHECK(host.stats().fallback_allocs == 0);
      host.stop_service();
    }
  }
}

TEST_CASE("varslot: concurrent alloc/free from several processes while the pool grows, each growth mode",
          "[varslot]") {
  for (GrowthMode m : {GrowthMode::kRemap, GrowthMode::kExtentFiles, GrowthMode::kFixed}) {
    DYNAMIC_SECTION(growth_mode_name(m)) {
      std::string path = shm_path("procs");
      Unlinker u{path};
      PoolOptions o = small_opts(path, m);
      o.fixed_extents = 16;
      auto r = Pool::create(o);
      REQUIRE(r.is_ok());
      Pool& host = **r;
      std::vector<pid_t> kids;
      for (uint32_t k = 0; k < 3; ++k) {
        pid_t pid = fork_child();
        REQUIRE(pid >= 0);
        if (pid == 0) guest_churn(path, 20000, 7 + k, 1024);
        kids.push_back(pid);
      }
      host.start_service(1);
      for (pid_t pid : kids) CHECK(wait_status(pid) == 0);
      host.stop_service();
      PoolStats s = host.stats();
      if (m != GrowthMode::kFixed) CHECK(s.growth_events >= 1);
      CHECK(s.double_frees == 0);
      CHECK(s.stale_handles == 0);
      CHECK(total_alloc(host) == 0);
      CHECK(host.verify().is_ok());
    }
  }
}

TEST_CASE("varslot: guests keep their payloads while the host grows under them", "[varslot]") {
  std::string path = shm_path("midaccess");
  Unlinker u{path};
  auto r = Pool::create(small_opts(path, GrowthMode::kRemap));
  REQUIRE(r.is_ok());
  Pool& host = **r;
  int go[2];
  REQUIRE(::pipe(go) == 0);
  pid_t pid = fork_child();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(go[1]);
    auto g = Pool::attach(path);
    if (!g) _exit(2);
    Pool& guest = **g;
    std::vector<Handle> hs;
    for (int i = 0; i < 200; ++i) {
      auto h = guest.alloc(64);
      if (!h) _exit(3);
      fill(guest.ptr(*h), 64, *h);
      hs.push_back(*h);
    }
    // Re-verify continuously until the host says it is done growing.
    char c;
    ::fcntl(go[0], F_SETFL, O_NONBLOCK);
    uint64_t rounds = 0;
    while (::read(go[0], &c, 1) != 1) {
      for (Handle h : hs)
        if (!check(guest.ptr(h), 64, h)) _exit(4);
      ++rounds;
    }
    // Then allocate in the extents grown meanwhile.
    for (int i = 0; i < 2000; ++i) {
      auto h = guest.alloc(64);
      if (!h) _exit(3);
      fill(guest.ptr(*h), 64, *h);
      hs.push_back(*h);
    }
    for (Handle h : hs)
      if (!check(guest.ptr(h), 64, h)) _exit(4);
    _exit(rounds > 0 ? 0 : 6);
  }
  ::close(go[0]);
  ::usleep(20000);
  for (int i = 0; i < 10; ++i) {
    REQUIRE(host.grow(0).is_ok());
    ::usleep(2000);
  }
  REQUIRE(::write(go[1], "x", 1) == 1);
  ::close(go[1]);
  CHECK(wait_status(pid) == 0);
  CHECK(host.stats().extents[0] == 11);
}

TEST_CASE("varslot: a guest killed with live slots has them reclaimed by the host", "[varslot]") {
  std::string path = shm_path("guestcrash");
  Unlinker u{path};
  auto r = Pool::create(small_opts(path, GrowthMode::kRemap));
  REQUIRE(r.is_ok());
  Pool& host = **r;
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t pid = fork_child();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(ready[0]);
    auto g = Pool::attach(path);
    if (!g) _exit(2);
    for (int i = 0; i < 100; ++i)
      if (!(*g)->alloc(64 + 100 * (i % 4))) _exit(3);
    if (::write(ready[1], "x", 1) != 1) _exit(5);
    for (;;) pause();
  }
  ::close(ready[1]);
  host.start_service(1);  // classes 1 and 2 grow on the guest's request
  char c;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ::close(ready[0]);
  host.stop_service();
  CHECK(total_alloc(host) == 100);
  ::kill(pid, SIGKILL);
  CHECK(wait_status(pid) == 100 + SIGKILL);
  host.serve(0);
  PoolStats s = host.stats();
  CHECK(s.recovered_slots == 100);
  CHECK(s.dead_peers == 1);
  CHECK(total_alloc(host) == 0);
  // The peer id is free again.
  auto g = Pool::attach(path);
  REQUIRE(g.is_ok());
}

TEST_CASE("varslot: guests killed mid-operation lose no slot (repeated kill -9 during alloc/free)", "[varslot]") {
  std::string path = shm_path("midop");
  Unlinker u{path};
  PoolOptions o = small_opts(path, GrowthMode::kFixed);
  o.class_sizes = {64};
  o.fixed_extents = 2;  // 512 slots
  auto r = Pool::create(o);
  REQUIRE(r.is_ok());
  Pool& host = **r;
  std::mt19937 rng(42);
  for (int round = 0; round < 12; ++round) {
    pid_t pid = fork_child();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      auto g = Pool::attach(path);
      if (!g) _exit(2);
      std::vector<Handle> hs;
      std::mt19937 lr(round);
      for (;;) {
        if (hs.size() < 100 && lr() % 2) {
          auto h = (*g)->alloc(64);
          if (h) hs.push_back(*h);
        } else if (!hs.empty()) {
          (void)(*g)->free(hs.back());
          hs.pop_back();
        }
      }
    }
    ::usleep(2000 + rng() % 8000);
    ::kill(pid, SIGKILL);
    REQUIRE(wait_status(pid) == 100 + SIGKILL);
    host.serve(0);
  }
  CHECK(total_alloc(host) == 0);
  // Every slot is reachable from a free list again: all 512 can be allocated.
  int got = 0;
  while (host.alloc(64).is_ok()) ++got;
  CHECK(got == 512);
  CHECK(host.verify().is_ok());
}

TEST_CASE("varslot: a host killed mid-growth leaves a segment a new host opens consistently", "[varslot]") {
  for (CrashPoint cp : {CrashPoint::kAfterTruncate, CrashPoint::kAfterInit, CrashPoint::kAfterOffset,
                        CrashPoint::kAfterSize}) {
    for (GrowthMode m : {GrowthMode::kRemap, GrowthMode::kExtentFiles}) {
      DYNAMIC_SECTION("crash point " << int(cp) << " " << growth_mode_name(m)) {
        std::string path = shm_path("hostcrash");
        Unlinker u{path};
        pid_t pid = fork_child();
        REQUIRE(pid >= 0);
        if (pid == 0) {
          PoolOptions o = small_opts(path, m);
          o.crash_at = cp;
          auto hr = Pool::create(o);
          if (!hr) _exit(2);
          for (int i = 0; i < 300; ++i) (void)(*hr)->alloc(64);  // 256 fit: growth kills it
          _exit(3);
        }
        REQUIRE(wait_status(pid) == 100 + SIGKILL);
        auto g = Pool::attach(path);  // a guest can attach to the orphaned segment
        REQUIRE(g.is_ok());
        auto nh = Pool::take_over(path);
        REQUIRE(nh.is_ok());
        Pool& host = **nh;
        REQUIRE(host.verify().is_ok());
        CHECK(host.stats().extents[0] == 1);       // never points at the half-made extent
        // Header + the one initial extent (64 B x 256 slots: 8 KiB metadata page-rounded + 16 KiB).
        CHECK(host.stats().segment_bytes == kHeaderBytes + 8192 + 16384);
        CHECK(host.stats().host_recoveries == 1);
        CHECK(total_alloc(host) == 0);             // the dead host's slots reclaimed
        // Growth works again and the guest reaches the new extent.
        for (int i = 0; i < 300; ++i) REQUIRE(host.alloc(64).is_ok());
        CHECK(host.stats().extents[0] == 2);
        REQUIRE(host.verify().is_ok());
        auto h = (*g)->alloc(64);
        REQUIRE(h.is_ok());
        CHECK(h->extent() == 1);
      }
    }
  }
}

TEST_CASE("varslot: take_over refuses while the host is alive", "[varslot]") {
  std::string path = shm_path("busy");
  Unlinker u{path};
  auto r = Pool::create(small_opts(path, GrowthMode::kRemap));
  REQUIRE(r.is_ok());
  pid_t pid = fork_child();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto t = Pool::take_over(path);
    _exit(!t && t.status().code() == Code::kBusy ? 0 : 1);
  }
  CHECK(wait_status(pid) == 0);
}

TEST_CASE("varslot: threads of one process share a pool while the host grows (TSan)", "[varslot]") {
  std::string path = shm_path("threads");
  Unlinker u{path};
  auto r = Pool::create(small_opts(path, GrowthMode::kRemap));
  REQUIRE(r.is_ok());
  Pool& host = **r;
  host.start_service(1);
  auto g = Pool::attach(path);
  REQUIRE(g.is_ok());
  Pool& shared = **g;
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      // Threads 0-1 share one guest Pool; 2-3 use their own (own peer id).
      std::unique_ptr<Pool> own;
      Pool* p = &shared;
      if (t >= 2) {
        auto a = Pool::attach(path);
        if (!a) {
          bad.fetch_add(1);
          return;
        }
        own = std::move(*a);
        p = own.get();
      }
      std::mt19937 rng(t);
      std::vector<Handle> hs;
      for (int i = 0; i < 4000; ++i) {
        if (hs.size() < 64 && rng() % 3) {
          auto h = p->alloc(1 + rng() % 1024);
          if (!h) {
            bad.fetch_add(1);
            continue;
          }
          fill(p->ptr(*h), p->slot_size(*h), *h);
          hs.push_back(*h);
        } else if (!hs.empty()) {
          Handle h = hs.back();
          hs.pop_back();
          if (!check(p->ptr(h), p->slot_size(h), h) || !p->free(h)) bad.fetch_add(1);
        }
      }
      for (Handle h : hs)
        if (!p->free(h)) bad.fetch_add(1);
    });
  }
  for (int i = 0; i < 3; ++i) {
    (void)host.grow(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (auto& t : ts) t.join();
  host.stop_service();
  CHECK(bad.load() == 0);
  CHECK(total_alloc(host) == 0);
  CHECK(host.verify().is_ok());
}

TEST_CASE("varslot: a transferred slot follows its new owner through a dead-peer reclaim", "[varslot]") {
  std::string path = shm_path("transfer");
  Unlinker u{path};
  auto r = Pool::create(small_opts(path, GrowthMode::kRemap));
  REQUIRE(r.is_ok());
  Pool& host = **r;
  auto g = Pool::attach(path);
  REQUIRE(g.is_ok());
  Pool& guest = **g;
  auto a = guest.alloc(64), b = guest.alloc(64);
  REQUIRE((a.is_ok() && b.is_ok()));
  CHECK(host.owner(*b) == int(guest.peer_id()));
  REQUIRE(guest.transfer(*b, host.peer_id()).is_ok());
  CHECK(host.owner(*b) == 0);
  CHECK(guest.transfer(Handle::make(0, 0, 200, 1), 0).code() == Code::kStaleHandle);  // never allocated
  CHECK(host.reclaim_peer(guest.peer_id()) == 1);  // only the slot it still owns
  CHECK(host.ptr(*a) == nullptr);
  CHECK(host.ptr(*b) != nullptr);
  CHECK(host.free(*b).is_ok());
  CHECK(total_alloc(host) == 0);
}

TEST_CASE("varslot-growth workload: forked guests, growth, a killed guest reclaimed, schema-valid result", "[varslot]") {
  for (const char* mode : {"remap", "extent_files"}) {
    DYNAMIC_SECTION(mode) {
      // Small geometry so the test stays short: 1 MiB extents, 8 MiB live.
      std::string text = std::string(R"({"workload": "varslot-growth", "guests": 2, "ops": 60000,
          "initial_bytes": 1048576, "live_bytes": 8388608, "extent_bytes": 1048576,
          "class_sizes": [1024, 16384, 262144], "op_weights": [0.8, 0.17, 0.03],
          "kill_guest": true, "growth": ")") + mode + "\"}";
      auto wc = harness::load_workload_text(text, "test.json", {});
      nlohmann::json doc = harness::run_workload(wc, "", "", false);
      CHECK(harness::result_schema_errors(doc).empty());
      const auto& s = doc["summary"];
      CHECK(s["corruptions"] == 0);
      CHECK(s["handle_errors"] == 0);
      CHECK(s["leaked_slots"] == 0);
      CHECK(s["growth_events"].get<uint64_t>() >= 3);
      CHECK(s["killed_guests"] == 1);
      CHECK(s["recovered_slots"].get<uint64_t>() > 0);
      CHECK(s["alloc_free_ns"]["count"].get<uint64_t>() > 0);
      CHECK(s["segment_bytes_final"].get<uint64_t>() > s["segment_bytes_initial"].get<uint64_t>());
    }
  }
}

// ---- memfd segments (issue 13: "a memfd handed to guests") ---------------------

TEST_CASE("varslot: a memfd segment: forked guests attach by descriptor and churn while it grows (remap, fixed)",
          "[varslot]") {
  for (GrowthMode m : {GrowthMode::kRemap, GrowthMode::kFixed}) {
    DYNAMIC_SECTION(growth_mode_name(m)) {
      PoolOptions o = small_opts("varslot-test", m);
      o.memfd = true;
      o.fixed_extents = 16;
      auto r = Pool::create(o);
      REQUIRE(r.is_ok());
      Pool& host = **r;
      CHECK(host.by_fd());
      CHECK(host.segment_fd() >= 0);
      std::vector<pid_t> kids;
      for (uint32_t k = 0; k < 3; ++k) {
        pid_t pid = fork_child();
        REQUIRE(pid >= 0);
        if (pid == 0) guest_churn("", 20000, 11 + k, 1024, host.segment_fd());
        kids.push_back(pid);
      }
      host.start_service(1);
      for (pid_t pid : kids) CHECK(wait_status(pid) == 0);
      host.stop_service();
      PoolStats s = host.stats();
      if (m == GrowthMode::kRemap) CHECK(s.growth_events >= 1);
      if (m == GrowthMode::kFixed) CHECK(s.growth_events == 0);
      CHECK(s.double_frees == 0);
      CHECK(s.stale_handles == 0);
      CHECK(total_alloc(host) == 0);
      CHECK(host.verify().is_ok());
      CHECK(host.unlink_files().is_ok());  // nothing to unlink
    }
  }
}

TEST_CASE("varslot: a memfd guest keeps its payloads while the host grows and then allocates in the new extents",
          "[varslot]") {
  PoolOptions o = small_opts("varslot-test-grow", GrowthMode::kRemap);
  o.memfd = true;
  auto r = Pool::create(o);
  REQUIRE(r.is_ok());
  Pool& host = **r;
  int go[2];
  REQUIRE(::pipe(go) == 0);
  pid_t pid = fork_child();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(go[1]);
    auto g = Pool::attach_fd(host.segment_fd());
    if (!g) _exit(2);
    Pool& guest = **g;
    std::vector<Handle> hs;
    for (int i = 0; i < 200; ++i) {
      auto h = guest.alloc(64);
      if (!h || h->extent() != 0) _exit(3);
      fill(guest.ptr(*h), 64, *h);
      hs.push_back(*h);
    }
    const uint64_t known = guest.mapped_size();
    char c;
    ::fcntl(go[0], F_SETFL, O_NONBLOCK);
    while (::read(go[0], &c, 1) != 1)
      for (Handle h : hs)
        if (!check(guest.ptr(h), 64, h)) _exit(4);
    if (guest.mapped_size() != known) _exit(5);  // nothing mapped behind its back
    uint32_t max_extent = 0;
    for (int i = 0; i < 2000; ++i) {
      auto h = guest.alloc(64);
      if (!h) _exit(3);
      max_extent = std::max(max_extent, h->extent());
      fill(guest.ptr(*h), 64, *h);
      hs.push_back(*h);
    }
    for (Handle h : hs)
      if (!check(guest.ptr(h), 64, h)) _exit(4);
    // The growth is seen: new extents reached, the view grew, and never past the segment.
    if (max_extent < 7 || guest.stats().remaps == 0) _exit(6);
    if (guest.mapped_size() > guest.header().current_size.load()) _exit(7);
    _exit(0);
  }
  ::close(go[0]);
  ::usleep(20000);
  for (int i = 0; i < 10; ++i) {
    REQUIRE(host.grow(0).is_ok());
    ::usleep(2000);
  }
  REQUIRE(::write(go[1], "x", 1) == 1);
  ::close(go[1]);
  CHECK(wait_status(pid) == 0);
  CHECK(host.stats().extents[0] == 11);
  CHECK(host.verify().is_ok());
}

TEST_CASE("varslot: memfd with extent_files is refused, and an extent_files segment cannot be attached by descriptor",
          "[varslot]") {
  PoolOptions o = small_opts("varslot-test-ef", GrowthMode::kExtentFiles);
  o.memfd = true;
  auto r = Pool::create(o);
  REQUIRE(!r.is_ok());
  CHECK(r.status().code() == Code::kNotSupported);
  std::string path = shm_path("eff");
  Unlinker u{path};
  auto f = Pool::create(small_opts(path, GrowthMode::kExtentFiles));
  REQUIRE(f.is_ok());
  auto g = Pool::attach_fd((*f)->segment_fd());
  REQUIRE(!g.is_ok());
  CHECK(g.status().code() == Code::kNotSupported);
}

TEST_CASE("varslot: a memfd host killed mid-growth: a process holding the descriptor (SCM_RIGHTS) takes over",
          "[varslot]") {
  for (CrashPoint cp : {CrashPoint::kAfterTruncate, CrashPoint::kAfterSize}) {
    DYNAMIC_SECTION("crash point " << int(cp)) {
      int sv[2];
      REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
      pid_t pid = fork_child();
      REQUIRE(pid >= 0);
      if (pid == 0) {
        ::close(sv[0]);
        PoolOptions o = small_opts("varslot-test-crash", GrowthMode::kRemap);
        o.memfd = true;
        o.crash_at = cp;
        auto hr = Pool::create(o);
        if (!hr || !send_fd(sv[1], (*hr)->segment_fd())) _exit(2);
        for (int i = 0; i < 300; ++i) (void)(*hr)->alloc(64);  // 256 fit: growth kills it
        _exit(3);
      }
      ::close(sv[1]);
      const int fd = recv_fd(sv[0]);
      ::close(sv[0]);
      REQUIRE(fd >= 0);
      CHECK(wait_status(pid) == 100 + SIGKILL);
      auto nh = Pool::take_over_fd(fd);
      ::close(fd);  // the Pool holds its own descriptor
      REQUIRE(nh.is_ok());
      Pool& host = **nh;
      REQUIRE(host.verify().is_ok());
      CHECK(host.stats().extents[0] == 1);
      CHECK(host.stats().segment_bytes == kHeaderBytes + 8192 + 16384);
      CHECK(total_alloc(host) == 0);
      for (int i = 0; i < 300; ++i) REQUIRE(host.alloc(64).is_ok());
      CHECK(host.stats().extents[0] == 2);
      REQUIRE(host.verify().is_ok());
    }
  }
}

TEST_CASE("varslot-growth workload: segment=memfd (remap, a killed guest), schema-valid result", "[varslot]") {
  std::string text = R"({"workload": "varslot-growth", "guests": 2, "ops": 60000, "segment": "memfd",
      "initial_bytes": 1048576, "live_bytes": 8388608, "extent_bytes": 1048576,
      "class_sizes": [1024, 16384, 262144], "op_weights": [0.8, 0.17, 0.03],
      "kill_guest": true, "growth": "remap"})";
  auto wc = harness::load_workload_text(text, "test.json", {});
  nlohmann::json doc = harness::run_workload(wc, "", "", false);
  CHECK(harness::result_schema_errors(doc).empty());
  const auto& s = doc["summary"];
  CHECK(doc["allocator"]["options"]["segment"] == "memfd");
  CHECK(s["corruptions"] == 0);
  CHECK(s["handle_errors"] == 0);
  CHECK(s["leaked_slots"] == 0);
  CHECK(s["growth_events"].get<uint64_t>() >= 3);
  CHECK(s["killed_guests"] == 1);
  CHECK(s["remaps"].get<uint64_t>() > 0);
  CHECK(s["segment_allocated_bytes"].get<uint64_t>() > 0);
  CHECK_THROWS(harness::load_workload_text(R"({"workload": "varslot-growth", "segment": "memfd",
      "growth": "extent_files"})", "test.json", {}));
}

TEST_CASE("varslot: remap growth staged one extent ahead: the file leads current_size, nobody maps past it, take_over trims it",
          "[varslot]") {
  for (bool staged : {true, false}) {
    DYNAMIC_SECTION("stage_growth " << staged) {
      std::string path = shm_path("stage");
      Unlinker u{path};
      PoolOptions o = small_opts(path, GrowthMode::kRemap);
      o.stage_growth = staged;
      auto r = Pool::create(o);
      REQUIRE(r.is_ok());
      Pool& host = **r;
      auto g = Pool::attach(path);
      REQUIRE(g.is_ok());
      REQUIRE(host.grow(1).is_ok());
      REQUIRE((*g)->alloc(200).is_ok());  // maps the new class-1 extent
      const uint64_t cur = host.stats().segment_bytes;
      const uint64_t file = *pages::file_size(host.segment_fd());
      uint64_t biggest = 0, d = 0;
      for (uint32_t c = 0; c < host.class_count(); ++c)
        biggest = std::max(biggest, extent_layout_bytes(host.class_size(c), uint32_t(o.extent_bytes / host.class_size(c)), &d));
      CHECK(file == (staged ? cur + biggest : cur));
      CHECK((*g)->mapped_size() <= cur);
      // The staged tail is not published: a new host trims it.
      g->reset();
      r->reset();
      auto nh = Pool::take_over(path);
      REQUIRE(nh.is_ok());
      CHECK(*pages::file_size((*nh)->segment_fd()) == cur);
      CHECK((*nh)->verify().is_ok());
    }
  }
}

// The varslot-growth generator (workloads/varslot_growth_gen.h) on a fake
// executor: the stream stays at the live targets, passes every pass_every-th
// release to another process, and is the same for the same seed.
namespace {
struct FakeExec {
  std::vector<uint64_t> held = std::vector<uint64_t>(3, 0);
  uint64_t allocs = 0, releases = 0, passes = 0, timed = 0, bad = 0;
  std::vector<uint32_t> sizes{1024, 16384, 262144};
  std::string trace;
  int allocate(uint32_t c, uint32_t bytes) {
    if (bytes == 0 || bytes > sizes[c] || (c && bytes <= sizes[c - 1])) ++bad;
    ++held[c];
    ++allocs;
    trace += 'a' + char(c);
    return 1;
  }
  uint32_t release(uint32_t c, size_t k, bool pass, uint32_t to) {
    if (k >= held[c] || (pass && to == 0) || to >= 4) ++bad;
    --held[c];
    ++releases;
    passes += pass;
    trace += pass ? 'P' : 'r';
    return pass ? 0 : 1;
  }
  void timed_alloc_free(uint32_t bytes) {
    timed += bytes > 0;
  }
};
}  // namespace

TEST_CASE("varslot-growth generator: live targets, pass cadence, same stream for the same seed", "[varslot]") {
  workloads::VarslotGrowthParams p;
  p.nprocs = 4;
  p.class_sizes = {1024, 16384, 262144};
  p.target = workloads::VarslotGrowthGenerator::live_targets(3u << 20, p.class_sizes, p.nprocs);
  CHECK(p.target == std::vector<uint64_t>{256, 16, 1});
  p.weights = {0.8, 0.17, 0.03};
  p.pass_every = 8;
  p.seed = 5;
  std::string first;
  for (int run = 0; run < 2; ++run) {
    workloads::VarslotGrowthGenerator g(p, 0);
    FakeExec ex;
    for (int i = 0; i < 20000; ++i) {
      g.step(ex);
      if (i % 4 == 3) g.timed_pair(ex);
      for (uint32_t c = 0; c < 3; ++c) REQUIRE(ex.held[c] <= p.target[c]);
    }
    CHECK(ex.bad == 0);
    CHECK(ex.held[0] + 1 >= p.target[0]);  // the busiest class sits at its target (or one below)
    CHECK(ex.passes == ex.releases / 8);
    CHECK(ex.timed == 5000);
    if (run == 0) first = ex.trace;
    else CHECK(ex.trace == first);
  }
}
