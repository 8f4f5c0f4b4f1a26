#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <catch2/catch.hpp>

#include "src/common/crc32c.h"
#include "src/pages/pages.h"
#include "tests/skip.h"

using namespace znslab;

TEST_CASE("reservation is aligned and decommit returns resident pages", "[pages]") {
  const size_t huge = pages::huge_page_size();
  auto r = pages::Reservation::reserve(8 * huge, huge);
  REQUIRE(r.is_ok());
  REQUIRE(reinterpret_cast<uintptr_t>(r->base()) % huge == 0);
  REQUIRE(r->size() == 8 * huge);
  const uint64_t before = pages::rss_bytes();
  std::memset(r->base(), 0xAB, 4 * huge);
  const uint64_t touched = pages::rss_bytes();
  CHECK(touched >= before + 3 * huge);
  REQUIRE(pages::decommit(r->base(), 4 * huge).is_ok());
  const uint64_t after = pages::rss_bytes();
  CHECK(after + 3 * huge <= touched);
  // The range stays mapped and reads back as zeros.
  CHECK(r->base()[12345] == 0);
}

TEST_CASE("advise_cold keeps a range's contents", "[pages]") {
  auto r = pages::Reservation::reserve(size_t(4) << 20, size_t(2) << 20);
  REQUIRE(r.is_ok());
  std::memset(r->base(), 0x5C, size_t(4) << 20);
  const Status s = pages::advise_cold(r->base(), 4096);
  if (s.code() == Code::kNotSupported) ZNSLAB_SKIP("kernel without MADV_COLD");
  REQUIRE(s.is_ok());
  // Deactivated, not discarded: every byte still reads back.
  for (size_t i = 0; i < (size_t(4) << 20); i += 4093) REQUIRE(uint8_t(r->base()[i]) == 0x5C);
}

// Decommits every other page of an n-page pattern and checks the bytes
// (a decommitted private page reads back as zeros; RSS is not checked: the
// kernel's per-CPU RSS counters are off by more than a few hundred pages).
static void check_decommit_ranges(char* base, size_t n_pages, char fill) {
  const size_t pg = pages::page_size();
  std::memset(base, fill, n_pages * pg);
  std::vector<pages::Range> rs;
  for (size_t p = 0; p < n_pages; p += 2) rs.push_back(pages::Range{base + p * pg, pg});
  uint64_t calls = 0;
  REQUIRE(pages::decommit_ranges(rs.data(), rs.size(), &calls).is_ok());
  CHECK(calls >= 1);
  for (size_t p = 0; p < n_pages; ++p)
    for (size_t i = 0; i < pg; i += 511) REQUIRE(base[p * pg + i] == (p % 2 ? fill : 0));
}

TEST_CASE("decommit_ranges returns the pages of every range and only those, also in a forked child",
          "[pages]") {
  const size_t pg = pages::page_size(), n = 300;  // 150 ranges: more than one batch of 64
  auto r = pages::Reservation::reserve(n * pg, pg);
  REQUIRE(r.is_ok());
  char* base = reinterpret_cast<char*>(r->base());
  check_decommit_ranges(base, n, 0x3C);
  // A forked child decommits its own copy (the process_madvise pidfd is
  // the child's): the parent's bytes stay.
  std::memset(base, 0x7E, n * pg);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::vector<pages::Range> rs;
    for (size_t p = 0; p < n; p += 2) rs.push_back(pages::Range{base + p * pg, pg});
    bool ok = pages::decommit_ranges(rs.data(), rs.size()).is_ok();
    for (size_t p = 0; p < n && ok; ++p) ok = base[p * pg + 7] == (p % 2 ? 0x7E : 0);
    _exit(ok ? 0 : 1);
  }
  int st = 0;
  REQUIRE(waitpid(pid, &st, 0) == pid);
  CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0));
  for (size_t p = 0; p < n; ++p) REQUIRE(base[p * pg + 7] == 0x7E);
  // After the fork the parent's pidfd still works for the parent.
  check_decommit_ranges(base, n, 0x11);
  // An unaligned range refuses the whole call: nothing is decommitted.
  std::memset(base, 0x22, 4 * pg);
  pages::Range bad[2] = {{base, pg}, {base + 2 * pg + 1, pg}};
  CHECK(pages::decommit_ranges(bad, 2).code() == Code::kInvalidArgument);
  CHECK(base[0] == 0x22);
}

TEST_CASE("pages calls reject bad ranges with kInvalidArgument", "[pages]") {
  CHECK(pages::Reservation::reserve(0, 4096).status().code() == Code::kInvalidArgument);
  CHECK(pages::Reservation::reserve(4096, 3000).status().code() == Code::kInvalidArgument);
  alignas(4096) static char buf[8192];
  CHECK(pages::decommit(buf + 1, 4096).code() == Code::kInvalidArgument);
  CHECK(pages::advise_cold(buf + 1, 4096).code() == Code::kInvalidArgument);
  CHECK(pages::map_file(-1, 0, 4096, false).status().code() == Code::kInvalidArgument);
  CHECK(pages::truncate_file(-1, 0).code() == Code::kInvalidArgument);
}

TEST_CASE("Status carries errno and the NVMe status name", "[common]") {
  Status s = Status::from_errno(ENOMEM, "test");
  CHECK(s.code() == Code::kOutOfMemory);
  CHECK(s.sys_errno() == ENOMEM);
  CHECK(s.to_string().find("errno 12") != std::string::npos);
  CHECK(std::string(code_name(Code::kZoneIsFull)) == "Zone Is Full");
  CHECK(Status().is_ok());
}

TEST_CASE("Status::with_message keeps a run-time message valid and the Status trivially copyable", "[common]") {
  static_assert(std::is_trivially_copyable_v<Status>);
  Status a;
  {
    std::string text = "emu: /tmp/x.img: zone_size 3M is not a multiple of the 4096-byte LBA";
    a = Status::with_message(Code::kInvalidArgument, text);
    text.assign(text.size(), 'x');  // the caller's buffer is gone; the status is not
  }
  CHECK(a.code() == Code::kInvalidArgument);
  CHECK(std::string(a.context()) == "emu: /tmp/x.img: zone_size 3M is not a multiple of the 4096-byte LBA");
  CHECK(a.to_string() == "Invalid argument (emu: /tmp/x.img: zone_size 3M is not a multiple of the 4096-byte LBA)");
  // The same text is interned once.
  Status b = Status::with_message(Code::kCorrupt, std::string("emu: /tmp/x.img: zone_size 3M is not a multiple of the 4096-byte LBA"));
  CHECK(b.context() == a.context());
  Status e = Status::from_errno_message(ENOENT, "nvme: /dev/ng9n9: No such file or directory");
  CHECK(e.code() == Code::kNotFound);
  CHECK(e.sys_errno() == ENOENT);
  CHECK(e.to_string().find("nvme: /dev/ng9n9") != std::string::npos);
  // Concurrent interning from two threads: every message stays intact.
  std::vector<Status> got[2];
  auto worker = [&](int t) {
    for (int i = 0; i < 2000; ++i)
      got[t].push_back(Status::with_message(Code::kIoError, "message " + std::to_string(i % 300)));
  };
  std::thread t0(worker, 0), t1(worker, 1);
  t0.join();
  t1.join();
  for (int t = 0; t < 2; ++t)
    for (int i = 0; i < 2000; ++i) REQUIRE(std::string(got[t][i].context()) == "message " + std::to_string(i % 300));
}

TEST_CASE("crc32c gives the standard check value and extends across buffers", "[common]") {
  const char text[] = "123456789";
  CHECK(crc32c(text, 9) == 0xE3069283u);
  CHECK(crc32c(text, 0) == 0u);
  CHECK(crc32c_extend(crc32c(text, 4), text + 4, 5) == 0xE3069283u);
  char flipped[9];
  std::memcpy(flipped, text, 9);
  flipped[3] ^= 0x10;
  CHECK(crc32c(flipped, 9) != 0xE3069283u);
}

TEST_CASE("map_file_at grows a file view in place inside a reservation; map_shared_anonymous is shared across fork",
          "[pages]") {
  char path[] = "/dev/shm/znslab-pages-test-XXXXXX";
  int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  ::unlink(path);
  const size_t ps = pages::page_size();
  auto r = pages::Reservation::reserve(16 * ps, ps);
  REQUIRE(r.is_ok());
  REQUIRE(pages::truncate_file(fd, ps).is_ok());
  REQUIRE(pages::map_file_at(r->base(), fd, 0, ps).is_ok());
  r->base()[0] = 42;
  REQUIRE(pages::truncate_file(fd, 2 * ps).is_ok());
  REQUIRE(pages::map_file_at(r->base() + ps, fd, ps, ps).is_ok());  // the tail, same base
  r->base()[ps] = 43;
  CHECK(r->base()[0] == 42);
  char b[2];
  REQUIRE(::pread(fd, &b[0], 1, 0) == 1);
  REQUIRE(::pread(fd, &b[1], 1, off_t(ps)) == 1);
  CHECK(b[0] == 42);
  CHECK(b[1] == 43);
  CHECK(pages::map_file_at(r->base() + 1, fd, 0, ps).code() == Code::kInvalidArgument);
  ::close(fd);

  auto s = pages::map_shared_anonymous(ps);
  REQUIRE(s.is_ok());
  auto* word = static_cast<volatile int*>(*s);
  std::fflush(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    *word = 7;
    _exit(0);
  }
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  CHECK(*word == 7);
  CHECK(pages::unmap(*s, ps).is_ok());
  CHECK(pages::map_shared_anonymous(0).status().code() == Code::kInvalidArgument);
}
