// [pager]: the file-backed page provider (src/pages/pager.h, seed 004):
// layout and checksums with fallback, growth with live pointers, 2^24
// pages, bulk all-or-nothing, errors, a read-only opener in another
// process, crash recovery (kill -9 at random points and at every commit
// boundary).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include <catch2/catch.hpp>

#include "src/pages/pager.h"
#include "tests/crash_util.h"
#include "tests/temp_dir.h"

using namespace znslab;
using namespace znslab::pages;
using znslab::testutil::TempDir;

namespace {

std::vector<PageId> allocated_set(const Pager& p) {
  std::vector<PageId> v;
  for (PageId i = 0; i < p.page_count(); ++i)
    if (p.is_allocated(i)) v.push_back(i);
  return v;
}

void poke(const std::string& path, uint64_t off, const void* bytes, size_t n) {
  int fd = ::open(path.c_str(), O_WRONLY);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, bytes, n, off_t(off)) == ssize_t(n));
  ::close(fd);
}

PagerOptions small_opts() {
  PagerOptions o;
  o.page_size = 4096;
  o.max_pages = 4096;
  o.initial_pages = 64;
  return o;
}

}  // namespace

TEST_CASE("pager: allocations and page bytes survive a clean reopen", "[pager]") {
  TempDir d;
  const std::string f = d.file("p.pages");
  std::vector<PageId> ids;
  {
    auto p = Pager::open(f, small_opts());
    REQUIRE(p);
    for (int i = 0; i < 100; ++i) {
      auto id = (*p)->alloc();
      REQUIRE(id);
      std::memset((*p)->get(*id), 0x40 + i % 50, 4096);
      ids.push_back(*id);
    }
    REQUIRE((*p)->free(ids[10]));
    ids.erase(ids.begin() + 10);
    REQUIRE((*p)->commit());
  }
  auto p = Pager::open(f, small_opts());
  REQUIRE(p);
  CHECK(allocated_set(**p) == ids);
  CHECK((*p)->allocated() == 99);
  CHECK((*p)->get(ids[20])[4095] == uint8_t(0x40 + 21 % 50));
  // The freed page is the lowest free one: reused first.
  auto again = (*p)->alloc();
  REQUIRE(again);
  CHECK(*again == 10);
}

TEST_CASE("pager: uncommitted allocations are not in the reopened state", "[pager]") {
  TempDir d;
  const std::string f = d.file("p.pages");
  {
    auto p = Pager::open(f, small_opts());
    REQUIRE(p);
    REQUIRE((*p)->alloc_bulk(5));
    REQUIRE((*p)->commit());
    REQUIRE((*p)->alloc_bulk(7));  // never committed
  }
  auto p = Pager::open(f, small_opts());
  REQUIRE(p);
  CHECK((*p)->allocated() == 5);
}

TEST_CASE("pager: sync=each commits every call", "[pager]") {
  TempDir d;
  const std::string f = d.file("p.pages");
  PagerOptions o = small_opts();
  o.sync = SyncMode::kEach;
  {
    auto p = Pager::open(f, o);
    REQUIRE(p);
    REQUIRE((*p)->alloc());
    REQUIRE((*p)->alloc());
    REQUIRE((*p)->free(0));
  }
  auto p = Pager::open(f, small_opts());
  REQUIRE(p);
  CHECK(allocated_set(**p) == std::vector<PageId>{1});
}

TEST_CASE("pager: a corrupted superblock copy falls back to the other, both corrupted is refused", "[pager]") {
  TempDir d;
  const std::string f = d.file("p.pages");
  {
    auto p = Pager::open(f, small_opts());
    REQUIRE(p);
    REQUIRE((*p)->alloc_bulk(3));
    REQUIRE((*p)->commit());
  }
  char magic[9] = {};
  int fd = ::open(f.c_str(), O_RDONLY);
  REQUIRE(::pread(fd, magic, 8, 0) == 8);
  ::close(fd);
  CHECK(std::string(magic) == "ZNSPAGER");
  const uint32_t junk = 0xdeadbeef;
  poke(f, 40, &junk, 4);  // inside superblock A
  {
    auto p = Pager::open(f, small_opts());
    REQUIRE(p);
    CHECK((*p)->allocated() == 3);
  }
  // The reopen did not rewrite A (no commit); break B as well.
  poke(f, 4096 + 40, &junk, 4);
  auto p = Pager::open(f, small_opts());
  REQUIRE_FALSE(p);
  CHECK(p.status().code() == Code::kCorrupt);
  CHECK_THAT(p.status().to_string(), Catch::Contains("superblock"));
}

TEST_CASE("pager: a corrupted meta copy falls back to the previous commit, both corrupted is refused", "[pager]") {
  TempDir d;
  const std::string f = d.file("p.pages");
  uint64_t meta1_body = 0;
  {
    auto p = Pager::open(f, small_opts());
    REQUIRE(p);
    REQUIRE((*p)->alloc_bulk(3));
    REQUIRE((*p)->commit());  // generation 3 -> copy 0 (fresh file commits gens 1, 2)
    REQUIRE((*p)->alloc_bulk(2));
    REQUIRE((*p)->commit());  // generation 4 -> copy 1: 5 pages
    CHECK((*p)->stats().generation == 4);
    (void)meta1_body;
  }
  // Meta copy 1 starts after copy 0: 8192 + meta_bytes. For 4096 max pages
  // the body is one 4 KiB chunk and the header one 4 KiB page.
  const uint64_t meta_bytes = 8192;
  const uint64_t copy1 = 8192 + meta_bytes;
  const uint8_t bad = 0xff;
  poke(f, copy1 + 4096 + 100, &bad, 1);  // a body byte of copy 1
  {
    auto p = Pager::open(f, small_opts());
    REQUIRE(p);
    CHECK((*p)->allocated() == 3);  // the previous commit
    CHECK((*p)->stats().generation == 3);
  }
  poke(f, 8192 + 4096 + 100, &bad, 1);  // copy 0 too
  auto p = Pager::open(f, small_opts());
  REQUIRE_FALSE(p);
  CHECK(p.status().code() == Code::kCorrupt);
  CHECK_THAT(p.status().to_string(), Catch::Contains("meta"));
}

TEST_CASE("pager: growth keeps earlier page pointers valid and stops at max_pages", "[pager]") {
  TempDir d;
  PagerOptions o = small_opts();
  o.max_pages = 1000;
  o.initial_pages = 16;
  o.grow_pages = 100;
  auto p = Pager::open(d.file("g.pages"), o);
  REQUIRE(p);
  auto first = (*p)->alloc();
  REQUIRE(first);
  uint8_t* ptr = (*p)->get(*first);
  std::memset(ptr, 0x5a, 4096);
  std::vector<PageId> ids;
  for (int i = 1; i < 1000; ++i) {
    auto id = (*p)->alloc();
    REQUIRE(id);
    (*p)->get(*id)[0] = uint8_t(i);
    ids.push_back(*id);
  }
  CHECK((*p)->page_count() == 1000);
  CHECK((*p)->stats().grows >= 9);
  CHECK((*p)->get(*first) == ptr);
  CHECK(ptr[0] == 0x5a);
  CHECK(ptr[4095] == 0x5a);
  auto over = (*p)->alloc();
  REQUIRE_FALSE(over);
  CHECK(over.status().code() == Code::kOutOfSpace);
}

TEST_CASE("pager: preallocate gives every grown page disk blocks, sparse otherwise", "[pager]") {
  TempDir d;
  for (bool pre : {false, true}) {
    PagerOptions o = small_opts();
    o.initial_pages = 16;
    o.grow_pages = 256;
    o.preallocate = pre;
    const std::string f = d.file(pre ? "pre.pages" : "sparse.pages");
    auto p = Pager::open(f, o);
    REQUIRE(p);
    REQUIRE((*p)->alloc_bulk(100));  // grows to 272 pages
    struct stat st;
    REQUIRE(::stat(f.c_str(), &st) == 0);
    INFO("preallocate " << pre << " blocks " << st.st_blocks << " size " << st.st_size);
    if (pre) CHECK(uint64_t(st.st_blocks) * 512 >= uint64_t(st.st_size));
    else CHECK(uint64_t(st.st_blocks) * 512 < uint64_t(st.st_size) / 2);
  }
}

TEST_CASE("pager: 2^24 pages with metadata under 0.1 % of the file", "[pager]") {
  TempDir d;
  PagerOptions o;
  o.page_size = 4096;
  o.max_pages = 1u << 24;
  o.initial_pages = 1u << 12;
  o.sync = SyncMode::kNone;
  const std::string f = d.file("big.pages");
  {
    auto p = Pager::open(f, o);
    REQUIRE(p);
    for (uint32_t i = 0; i < (1u << 24); ++i) {
      auto id = (*p)->alloc();
      if (!id) FAIL("alloc " << i << ": " << id.status().to_string());
      if (*id != i) FAIL("alloc " << i << " returned " << *id);
    }
    CHECK((*p)->page_count() == (1u << 24));
    CHECK((*p)->alloc().status().code() == Code::kOutOfSpace);
    REQUIRE((*p)->free(12345678));
    REQUIRE((*p)->free(77));
    auto a = (*p)->alloc();
    REQUIRE(a);
    CHECK(*a == 77);
    REQUIRE((*p)->commit());
    PagerStats s = (*p)->stats();
    CHECK(s.file_bytes == s.metadata_file_bytes + (uint64_t(1) << 36));
    CHECK(double(s.metadata_file_bytes + s.metadata_mem_bytes) < 0.001 * double(s.file_bytes));
    (*p)->get((1u << 24) - 1)[0] = 1;  // the last page is mapped
  }
  auto p = Pager::open(f, o);
  REQUIRE(p);
  CHECK((*p)->allocated() == (1u << 24) - 1);
  CHECK_FALSE((*p)->is_allocated(12345678));
  CHECK((*p)->get((1u << 24) - 1)[0] == 1);
}

TEST_CASE("pager: bulk alloc and free are all or nothing", "[pager]") {
  TempDir d;
  PagerOptions o = small_opts();
  o.max_pages = 256;
  auto p = Pager::open(d.file("b.pages"), o);
  REQUIRE(p);
  auto ids = (*p)->alloc_bulk(10);
  REQUIRE(ids);
  REQUIRE(ids->size() == 10);
  const auto before = allocated_set(**p);

  std::vector<PageId> dup = {(*ids)[0], (*ids)[1], (*ids)[0]};
  CHECK((*p)->free_bulk(dup).code() == Code::kDoubleFree);
  std::vector<PageId> oob = {(*ids)[2], 100000};
  CHECK((*p)->free_bulk(oob).code() == Code::kOutOfBounds);
  std::vector<PageId> unalloc = {(*ids)[3], 50};
  CHECK((*p)->free_bulk(unalloc).code() == Code::kDoubleFree);
  CHECK(allocated_set(**p) == before);

  auto too_many = (*p)->alloc_bulk(247);
  REQUIRE_FALSE(too_many);
  CHECK(too_many.status().code() == Code::kOutOfSpace);
  CHECK(allocated_set(**p) == before);
  auto rest = (*p)->alloc_bulk(246);
  REQUIRE(rest);
  CHECK((*p)->allocated() == 256);
  REQUIRE((*p)->free_bulk(*ids));
  CHECK((*p)->allocated() == 246);
}

TEST_CASE("pager: double free and out-of-range ids are refused", "[pager]") {
  TempDir d;
  auto p = Pager::open(d.file("e.pages"), small_opts());
  REQUIRE(p);
  auto id = (*p)->alloc();
  REQUIRE(id);
  REQUIRE((*p)->free(*id));
  CHECK((*p)->free(*id).code() == Code::kDoubleFree);
  CHECK((*p)->free(5).code() == Code::kDoubleFree);
  CHECK((*p)->free(1u << 30).code() == Code::kOutOfBounds);
  CHECK((*p)->get(1u << 30) == nullptr);
  CHECK((*p)->allocated() == 0);
}

TEST_CASE("pager: bad options are refused", "[pager]") {
  TempDir d;
  PagerOptions o = small_opts();
  o.page_size = 3000;
  CHECK(Pager::open(d.file("x"), o).status().code() == Code::kInvalidArgument);
  o.page_size = 512;
  CHECK(Pager::open(d.file("y"), o).status().code() == Code::kInvalidArgument);
}

TEST_CASE("pager: 1 KiB pages map and persist", "[pager]") {
  TempDir d;
  PagerOptions o = small_opts();
  o.page_size = 1024;
  o.initial_pages = 5;  // rounded to whole OS pages (4)
  const std::string f = d.file("k.pages");
  {
    auto p = Pager::open(f, o);
    REQUIRE(p);
    CHECK((*p)->page_count() == 8);
    for (int i = 0; i < 20; ++i) {
      auto id = (*p)->alloc();
      REQUIRE(id);
      std::memset((*p)->get(*id), i, 1024);
    }
    REQUIRE((*p)->commit());
  }
  auto p = Pager::open(f, PagerOptions{});
  REQUIRE(p);
  CHECK((*p)->page_size() == 1024);
  CHECK((*p)->allocated() == 20);
  CHECK((*p)->get(19)[1023] == 19);
}

TEST_CASE("pager: a read-only opener in another process sees growth and commits", "[pager]") {
  TempDir d;
  const std::string f = d.file("ro.pages");
  PagerOptions o = small_opts();
  o.initial_pages = 16;
  o.grow_pages = 64;
  auto p = Pager::open(f, o);
  REQUIRE(p);
  auto a = (*p)->alloc_bulk(10);
  REQUIRE(a);
  std::memcpy((*p)->get(9), "page nine", 10);
  REQUIRE((*p)->commit());

  testutil::Channel to_child, to_parent;
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int rc = 0;
    auto r = ReadOnlyPager::open(f);
    if (!r) ::_exit(10);
    if ((*r)->allocated() != 10 || !(*r)->is_allocated(9) || std::strcmp((const char*)(*r)->get(9), "page nine")) rc = 11;
    const uint64_t mapped0 = (*r)->mapped_bytes();
    to_parent.send(1);
    to_child.recv();
    if (!(*r)->refresh()) ::_exit(12);
    if ((*r)->allocated() != 100 || (*r)->page_count() < 100) rc = 13;
    if ((*r)->mapped_bytes() <= mapped0) rc = 14;
    const uint8_t* pg = (*r)->get(99);
    if (!pg || std::strcmp((const char*)pg, "page 99") != 0) rc = 15;
    if ((*r)->generation() != 4) rc = 16;
    ::_exit(rc);
  }
  REQUIRE(to_parent.recv() == 1);
  auto b = (*p)->alloc_bulk(90);  // grows the file past 16 pages
  REQUIRE(b);
  std::memcpy((*p)->get(99), "page 99", 8);
  REQUIRE((*p)->commit());
  to_child.send(2);
  CHECK(testutil::wait_exit(pid) == 0);
}

// ---- crash recovery -------------------------------------------------------------

namespace {

// The deterministic operation sequence of the crash child: allocs (2/3) and
// frees of random live pages, a commit every `commit_every` ops. Calls
// on_commit(generation) after each commit returns, on_op(id, +1|-1) after
// each alloc/free.
template <typename OnCommit, typename OnOp>
void crash_ops(Pager& p, uint64_t seed, int ops, int commit_every, OnCommit on_commit, OnOp on_op) {
  std::mt19937_64 rng(seed);
  std::vector<PageId> live;
  for (int i = 1; i <= ops; ++i) {
    if (live.empty() || rng() % 3 != 0) {
      auto id = p.alloc();
      if (!id) ::_exit(20);
      live.push_back(*id);
      on_op(*id, 1);
    } else {
      size_t k = rng() % live.size();
      if (!p.free(live[k])) ::_exit(21);
      on_op(live[k], -1);
      live[k] = live.back();
      live.pop_back();
    }
    if (i % commit_every == 0) {
      if (!p.commit()) ::_exit(22);
      on_commit(p.stats().generation);
    }
  }
}

struct Expected {
  std::vector<std::vector<PageId>> by_gen;  // sorted allocated set per generation
};

Expected replay(const std::string& path, uint64_t seed, int ops, int commit_every, const PagerOptions& o) {
  Expected e;
  auto p = Pager::open(path, o);
  REQUIRE(p);
  Pager& pg = **p;
  e.by_gen.resize(3);  // generations 1, 2: the empty fresh file
  crash_ops(
      pg, seed, ops, commit_every,
      [&](uint64_t gen) {
        e.by_gen.resize(gen + 1);
        e.by_gen[gen] = allocated_set(pg);
      },
      [](PageId, int) {});
  return e;
}

uint64_t mix(uint64_t x) {
  x = (x + 1) * 0x9E3779B97F4A7C15ull;
  x ^= x >> 29;
  return x * 0xBF58476D1CE4E5B9ull;
}

// Order-independent digest of the allocated set after each commit (index =
// generation): long op sequences without storing every set.
std::vector<uint64_t> replay_digests(const std::string& path, uint64_t seed, int ops, int commit_every,
                                     const PagerOptions& o) {
  std::vector<uint64_t> by_gen(3, 0);
  auto p = Pager::open(path, o);
  REQUIRE(p);
  uint64_t dg = 0;
  crash_ops(
      **p, seed, ops, commit_every,
      [&](uint64_t gen) {
        by_gen.resize(gen + 1);
        by_gen[gen] = dg;
      },
      [&](PageId id, int sign) { dg += sign > 0 ? mix(id) : -mix(id); });
  return by_gen;
}

uint64_t digest_of(const Pager& p) {
  uint64_t dg = 0;
  for (PageId id : allocated_set(p)) dg += mix(id);
  return dg;
}

int g_kill_step = -1, g_kill_commit = 0, g_commit_seen = 0;
void kill_hook(CommitStep s, void*) {
  if (s == CommitStep::kBegin) ++g_commit_seen;
  if (g_commit_seen == g_kill_commit && int(s) == g_kill_step) ::kill(::getpid(), SIGKILL);
}

}  // namespace

TEST_CASE("pager: kill -9 at random points loses no committed allocation", "[pager]") {
  TempDir d;
  const int trials = testutil::crash_trials(200);
  const int ops = 200000, every = 16;  // a run long against the parent's reaction time
  PagerOptions o = small_opts();
  o.max_pages = 1u << 18;
  o.initial_pages = 32;
  o.sync = SyncMode::kNone;  // kill -9 keeps the page cache; msync adds nothing here
  const std::vector<uint64_t> by_gen = replay_digests(d.file("model.pages"), 42, ops, every, o);
  std::mt19937_64 rng(7);
  int lost = 0, checked = 0, mid_run = 0;
  for (int t = 0; t < trials; ++t) {
    const std::string f = d.file("c" + std::to_string(t) + ".pages");
    testutil::Channel ch;
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      auto p = Pager::open(f, o);
      if (!p) ::_exit(30);
      crash_ops(**p, 42, ops, every, [&](uint64_t gen) { ch.send(gen); }, [](PageId, int) {});
      ::_exit(0);
    }
    // Kill at a random point: after the child reports a random generation,
    // while it runs on (the parent's wake-up time varies).
    ch.wait_for(3 + rng() % (by_gen.size() - 3));
    ::kill(pid, SIGKILL);
    testutil::wait_exit(pid);
    const uint64_t acked = ch.drain_last();
    auto p = Pager::open(f, o);
    if (!p && acked == 0) continue;  // killed while creating the file (no commit yet)
    REQUIRE(p);
    const uint64_t gen = (*p)->stats().generation;
    ++checked;
    REQUIRE(gen < by_gen.size());
    CHECK(gen >= acked);
    if (gen + 1 < by_gen.size()) ++mid_run;
    if (digest_of(**p) != by_gen[gen]) ++lost;
    std::remove(f.c_str());
  }
  INFO("trials with a recovered state " << checked << ", killed before the last commit " << mid_run);
  CHECK(lost == 0);
  CHECK(checked > trials / 2);
  CHECK(mid_run > trials / 4);
}

TEST_CASE("pager: kill -9 at every system-call boundary of commit", "[pager]") {
  TempDir d;
  const int ops = 200, every = 10;
  PagerOptions o = small_opts();
  o.initial_pages = 32;
  o.sync = SyncMode::kCommit;
  const Expected e = replay(d.file("model.pages"), 9, ops, every, o);
  for (int step = 0; step < kCommitSteps; ++step) {
    for (int nth : {3, 9, 15}) {  // the 3rd/9th/15th commit of the op sequence (fresh-file commits count too)
      const std::string f = d.file("s" + std::to_string(step) + "_" + std::to_string(nth));
      pid_t pid = ::fork();
      REQUIRE(pid >= 0);
      if (pid == 0) {
        g_kill_step = step;
        g_kill_commit = nth;
        g_commit_seen = 0;
        PagerOptions co = o;
        co.commit_hook = kill_hook;
        auto p = Pager::open(f, co);
        if (!p) ::_exit(30);
        crash_ops(**p, 9, ops, every, [](uint64_t) {}, [](PageId, int) {});
        ::_exit(0);
      }
      CHECK(testutil::wait_exit(pid) == -SIGKILL);
      auto p = Pager::open(f, o);
      REQUIRE(p);
      const uint64_t gen = (*p)->stats().generation;
      // Commit number nth writes generation nth: before superblock A names
      // it, the previous generation is the state; from then on, the new one.
      const uint64_t want = step >= int(CommitStep::kSuperAWritten) ? uint64_t(nth) : uint64_t(nth - 1);
      INFO("step " << step << " commit " << nth);
      CHECK(gen == want);
      CHECK(allocated_set(**p) == e.by_gen[gen]);
    }
  }
}
