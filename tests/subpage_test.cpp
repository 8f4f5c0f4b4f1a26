// [subpage]: the sub-page allocator over a Pager (src/pages/subpage.h,
// seed 004): geometry checks, parents taken and returned, errors, bulk
// all-or-nothing, persistence across a clean reopen and across kill -9.
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "src/pages/subpage.h"
#include "tests/crash_util.h"
#include "tests/temp_dir.h"

using namespace znslab;
using namespace znslab::pages;
using znslab::testutil::TempDir;

namespace {

PagerOptions sub_opts(uint64_t parents = 1024) {
  PagerOptions o;
  o.page_size = 4096;
  o.max_pages = 1u << 14;
  o.initial_pages = 64;
  o.aux_bytes = SubPageAllocator::aux_bytes_for(parents);
  return o;
}

}  // namespace

TEST_CASE("subpage: geometry is checked at construction", "[subpage]") {
  TempDir d;
  auto p = Pager::open(d.file("g.pages"), sub_opts());
  REQUIRE(p);
  CHECK(SubPageAllocator::attach(**p, 48).status().code() == Code::kInvalidArgument);    // not a power of two
  CHECK(SubPageAllocator::attach(**p, 32).status().code() == Code::kInvalidArgument);    // 128 per parent > 64
  CHECK(SubPageAllocator::attach(**p, 4096).status().code() == Code::kInvalidArgument);  // 1 per parent < 2
  CHECK(SubPageAllocator::attach(**p, 64));                                              // 64 per parent
  auto q = Pager::open(d.file("noaux.pages"), PagerOptions{});
  REQUIRE(q);
  CHECK(SubPageAllocator::attach(**q, 512).status().code() == Code::kInvalidArgument);  // no aux area
}

TEST_CASE("subpage: a parent is taken when needed and returned on its last free", "[subpage]") {
  TempDir d;
  auto p = Pager::open(d.file("s.pages"), sub_opts());
  REQUIRE(p);
  auto a = SubPageAllocator::attach(**p, 1024);  // 4 per parent
  REQUIRE(a);
  SubPageAllocator& s = **a;
  std::vector<SubPageId> ids;
  for (int i = 0; i < 5; ++i) {
    auto id = s.alloc();
    REQUIRE(id);
    ids.push_back(*id);
  }
  CHECK(s.parents() == 2);
  CHECK((*p)->allocated() == 2);
  // Sub-pages of one parent are adjacent sub_size slices of its page.
  CHECK(s.get(ids[1]) == s.get(ids[0]) + 1024);
  std::memset(s.get(ids[4]), 7, 1024);
  REQUIRE(s.free(ids[4]));
  CHECK(s.parents() == 1);
  CHECK((*p)->allocated() == 1);
  CHECK(s.get(ids[4]) == nullptr);
  for (int i = 0; i < 4; ++i) REQUIRE(s.free(ids[i]));
  CHECK((*p)->allocated() == 0);
  CHECK(s.live() == 0);
}

TEST_CASE("subpage: double free and out-of-range ids are refused", "[subpage]") {
  TempDir d;
  auto p = Pager::open(d.file("e.pages"), sub_opts());
  REQUIRE(p);
  auto a = SubPageAllocator::attach(**p, 512);
  REQUIRE(a);
  auto x = (*a)->alloc();
  auto y = (*a)->alloc();
  REQUIRE(x);
  REQUIRE(y);
  REQUIRE((*a)->free(*x));
  CHECK((*a)->free(*x).code() == Code::kDoubleFree);
  CHECK((*a)->free((SubPageId(0) << 6) | 8).code() == Code::kOutOfBounds);  // sub index 8 of 8
  CHECK((*a)->free(SubPageId(999) << 6).code() == Code::kOutOfBounds);
  CHECK((*a)->live() == 1);
}

TEST_CASE("subpage: bulk alloc and free are all or nothing", "[subpage]") {
  TempDir d;
  PagerOptions o = sub_opts();
  o.max_pages = 3;  // room for 3 parents
  o.initial_pages = 3;
  auto p = Pager::open(d.file("b.pages"), o);
  REQUIRE(p);
  auto a = SubPageAllocator::attach(**p, 1024);
  REQUIRE(a);
  SubPageAllocator& s = **a;
  auto ids = s.alloc_bulk(10);
  REQUIRE(ids);
  auto before = s.live_ids();
  auto too_many = s.alloc_bulk(3);  // 12 slots in 3 parents, 10 used
  REQUIRE_FALSE(too_many);
  CHECK(too_many.status().code() == Code::kOutOfSpace);
  CHECK(s.live_ids() == before);
  CHECK((*p)->allocated() == 3);
  std::vector<SubPageId> dup = {(*ids)[0], (*ids)[5], (*ids)[0]};
  CHECK(s.free_bulk(dup).code() == Code::kDoubleFree);
  std::vector<SubPageId> oob = {(*ids)[1], SubPageId(77) << 6};
  CHECK(s.free_bulk(oob).code() == Code::kOutOfBounds);
  CHECK(s.live_ids() == before);
  REQUIRE(s.free_bulk(*ids));
  CHECK(s.live() == 0);
  CHECK((*p)->allocated() == 0);
}

TEST_CASE("subpage: committed sub-allocations and their bytes survive a clean reopen", "[subpage]") {
  TempDir d;
  const std::string f = d.file("r.pages");
  std::vector<SubPageId> live;
  {
    auto p = Pager::open(f, sub_opts());
    REQUIRE(p);
    auto a = SubPageAllocator::attach(**p, 256);
    REQUIRE(a);
    std::mt19937_64 rng(3);
    std::vector<SubPageId> ids;
    for (int i = 0; i < 3000; ++i) {
      if (ids.empty() || rng() % 4 != 0) {
        auto id = (*a)->alloc();
        REQUIRE(id);
        std::memset((*a)->get(*id), int(*id % 251), 256);
        ids.push_back(*id);
      } else {
        size_t k = rng() % ids.size();
        REQUIRE((*a)->free(ids[k]));
        ids[k] = ids.back();
        ids.pop_back();
      }
    }
    REQUIRE((*p)->commit());
    live = (*a)->live_ids();
    auto extra = (*a)->alloc();  // not committed
    REQUIRE(extra);
  }
  auto p = Pager::open(f, sub_opts());
  REQUIRE(p);
  auto a = SubPageAllocator::attach(**p, 256);
  REQUIRE(a);
  CHECK((*a)->live_ids() == live);
  bool bytes_ok = true;
  for (SubPageId id : live) bytes_ok = bytes_ok && (*a)->get(id)[255] == uint8_t(id % 251);
  CHECK(bytes_ok);
  CHECK((*p)->allocated() == (*a)->parents());
  CHECK(SubPageAllocator::attach(**p, 512).status().code() == Code::kInvalidArgument);
}

namespace {

// The crash child's deterministic sub-page ops; a commit every `every` ops.
template <typename OnCommit>
void sub_ops(SubPageAllocator& s, uint64_t seed, int ops, int every, OnCommit on_commit) {
  std::mt19937_64 rng(seed);
  std::vector<SubPageId> live;
  for (int i = 1; i <= ops; ++i) {
    if (live.empty() || rng() % 3 != 0) {
      auto id = s.alloc();
      if (!id) ::_exit(20);
      live.push_back(*id);
    } else {
      size_t k = rng() % live.size();
      if (!s.free(live[k])) ::_exit(21);
      live[k] = live.back();
      live.pop_back();
    }
    if (i % every == 0) {
      if (!s.pager().commit()) ::_exit(22);
      on_commit(s.pager().stats().generation);
    }
  }
}

// Order-independent digest of a set of ids.
uint64_t digest(const std::vector<SubPageId>& ids) {
  uint64_t d = 0;
  for (SubPageId id : ids) {
    uint64_t x = (id + 1) * 0x9E3779B97F4A7C15ull;
    x ^= x >> 29;
    d += x * 0xBF58476D1CE4E5B9ull;
  }
  return d;
}

}  // namespace

TEST_CASE("subpage: kill -9 at random points loses no committed sub-allocation", "[subpage]") {
  TempDir d;
  const int trials = testutil::crash_trials(200);
  const int ops = 60000, every = 16;  // a run long against the parent's reaction time
  PagerOptions o = sub_opts(4096);
  o.sync = SyncMode::kNone;
  // The model: the same sequence, uninterrupted, with a digest of each
  // generation's set.
  std::vector<uint64_t> by_gen(3, 0);
  {
    auto p = Pager::open(d.file("model.pages"), o);
    REQUIRE(p);
    auto a = SubPageAllocator::attach(**p, 512);
    REQUIRE(a);
    sub_ops(**a, 5, ops, every, [&](uint64_t gen) {
      by_gen.resize(gen + 1);
      by_gen[gen] = digest((*a)->live_ids());
    });
  }
  std::mt19937_64 rng(11);
  int lost = 0, checked = 0, mid_run = 0;
  for (int t = 0; t < trials; ++t) {
    const std::string f = d.file("c" + std::to_string(t) + ".pages");
    testutil::Channel ch;
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      auto p = Pager::open(f, o);
      if (!p) ::_exit(30);
      auto a = SubPageAllocator::attach(**p, 512);
      if (!a) ::_exit(31);
      sub_ops(**a, 5, ops, every, [&](uint64_t gen) { ch.send(gen); });
      ::_exit(0);
    }
    ch.wait_for(3 + rng() % (by_gen.size() - 3));  // a random point of the run
    ::kill(pid, SIGKILL);
    testutil::wait_exit(pid);
    const uint64_t acked = ch.drain_last();
    auto p = Pager::open(f, o);
    if (!p && acked == 0) continue;  // killed before the file's first commit
    REQUIRE(p);
    auto a = SubPageAllocator::attach(**p, 512);
    REQUIRE(a);
    const uint64_t gen = (*p)->stats().generation;
    ++checked;
    REQUIRE(gen < by_gen.size());
    CHECK(gen >= acked);
    if (gen + 1 < by_gen.size()) ++mid_run;
    if (digest((*a)->live_ids()) != by_gen[gen]) ++lost;
    // No parent leaked or lost: exactly the table's parents are allocated.
    CHECK((*p)->allocated() == (*a)->parents());
    std::remove(f.c_str());
  }
  INFO("trials with a recovered state " << checked << ", killed before the last commit " << mid_run);
  CHECK(lost == 0);
  CHECK(checked > trials / 2);
  CHECK(mid_run > trials / 4);
}

namespace {
int g_step = -1, g_nth = 0, g_seen = 0;
void sub_kill_hook(CommitStep s, void*) {
  if (s == CommitStep::kBegin) ++g_seen;
  if (g_seen == g_nth && int(s) == g_step) ::kill(::getpid(), SIGKILL);
}
}  // namespace

TEST_CASE("subpage: kill -9 at every system-call boundary of commit", "[subpage]") {
  TempDir d;
  const int ops = 120, every = 10;
  PagerOptions o = sub_opts(512);
  std::vector<std::vector<SubPageId>> by_gen(3);
  {
    auto p = Pager::open(d.file("model.pages"), o);
    REQUIRE(p);
    auto a = SubPageAllocator::attach(**p, 512);
    REQUIRE(a);
    sub_ops(**a, 8, ops, every, [&](uint64_t gen) {
      by_gen.resize(gen + 1);
      by_gen[gen] = (*a)->live_ids();
    });
  }
  const int nth = 7;  // the 7th commit of the file: the 5th of the op sequence
  for (int step = 0; step < kCommitSteps; ++step) {
    const std::string f = d.file("s" + std::to_string(step));
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      g_step = step;
      g_nth = nth;
      g_seen = 0;
      PagerOptions co = o;
      co.commit_hook = sub_kill_hook;
      auto p = Pager::open(f, co);
      if (!p) ::_exit(30);
      auto a = SubPageAllocator::attach(**p, 512);
      if (!a) ::_exit(31);
      sub_ops(**a, 8, ops, every, [](uint64_t) {});
      ::_exit(0);
    }
    CHECK(testutil::wait_exit(pid) == -SIGKILL);
    auto p = Pager::open(f, o);
    REQUIRE(p);
    auto a = SubPageAllocator::attach(**p, 512);
    REQUIRE(a);
    const uint64_t want = step >= int(CommitStep::kSuperAWritten) ? nth : nth - 1;
    INFO("step " << step);
    CHECK((*p)->stats().generation == want);
    CHECK((*a)->live_ids() == by_gen[want]);
    CHECK((*p)->allocated() == (*a)->parents());
  }
}
