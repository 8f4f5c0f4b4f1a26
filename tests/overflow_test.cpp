// [overflow]: the overflow region (src/overflow, seed 003): exact reads
// (no stale tail), errors, doubling growth with a cap, best fit with split
// and coalesce against a reference model, readers across growth in another
// process, madvise advice across mremap, persistence across reopen and
// kill -9 (random points and every sync boundary).
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include <catch2/catch.hpp>

#include "src/common/crc32c.h"
#include "src/overflow/overflow.h"
#include "src/pages/pages.h"
#include "tests/crash_util.h"
#include "tests/temp_dir.h"

using namespace znslab;
using namespace znslab::overflow;
using znslab::testutil::TempDir;

namespace {

OverflowOptions small(bool persistent = false) {
  OverflowOptions o;
  o.initial_bytes = 1 << 20;
  o.max_bytes = 64 << 20;
  o.persistent = persistent;
  o.max_slots = 1 << 14;
  return o;
}

// Blob bytes derived from (tag, position): any misplaced or stale byte shows.
void fill(std::vector<uint8_t>& b, uint64_t tag, size_t len) {
  b.resize(len);
  for (size_t i = 0; i < len; ++i) b[i] = uint8_t((tag * 0x9E3779B97F4A7C15ull + i * 131) >> 29);
}

bool same(const BlobView& v, const std::vector<uint8_t>& b) {
  return v.size == b.size() && std::memcmp(v.data, b.data(), b.size()) == 0;
}

}  // namespace

TEST_CASE("overflow: a reused extent returns exactly the new bytes, never a stale tail", "[overflow]") {
  TempDir d;
  auto r = OverflowRegion::open(d.file("o"), small());
  REQUIRE(r);
  std::vector<uint8_t> big(100, 'A'), small_b(40, 'B');
  auto a = (*r)->write(big.data(), big.size());
  auto guard = (*r)->write("z", 1);  // keeps a's extent below the cursor
  REQUIRE(a);
  REQUIRE(guard);
  auto off_a = (*r)->locate(*a);
  REQUIRE((*r)->free(*a));
  auto b = (*r)->write(small_b.data(), small_b.size());
  REQUIRE(b);
  CHECK((*r)->locate(*b)->first == off_a->first);  // best fit reused it
  auto v = (*r)->read(*b);
  REQUIRE(v);
  CHECK(v->size == 40);
  CHECK(same(*v, small_b));
  // Split: 112-byte extent, 48 used, 64 left free right after it.
  auto fe = (*r)->free_extents();
  REQUIRE(fe.size() == 1);
  CHECK(fe[0] == std::make_pair(off_a->first + 48, uint64_t(64)));
}

TEST_CASE("overflow: freed, stale and unknown slots are refused", "[overflow]") {
  TempDir d;
  auto r = OverflowRegion::open(d.file("o"), small());
  REQUIRE(r);
  auto a = (*r)->write("hello", 5);
  REQUIRE(a);
  REQUIRE((*r)->free(*a));
  CHECK((*r)->free(*a).code() == Code::kDoubleFree);
  CHECK((*r)->read(*a).status().code() == Code::kNotFound);
  auto b = (*r)->write("again", 5);  // reuses the slot index with a new generation
  REQUIRE(b);
  CHECK(uint32_t(*b) == uint32_t(*a));
  CHECK((*r)->read(*a).status().code() == Code::kStaleHandle);
  CHECK((*r)->free(*a).code() == Code::kStaleHandle);
  CHECK((*r)->read(SlotId(1) << 32 | 999).status().code() == Code::kOutOfBounds);
}

TEST_CASE("overflow: growth doubles the file, keeps the bytes and stops at max_bytes", "[overflow]") {
  TempDir d;
  OverflowOptions o = small();
  o.max_bytes = 4 << 20;
  auto r = OverflowRegion::open(d.file("o"), o);
  REQUIRE(r);
  std::vector<uint8_t> b;
  std::vector<SlotId> ids;
  for (int i = 0;; ++i) {
    fill(b, uint64_t(i), 64 * 1024);
    auto s = (*r)->write(b.data(), b.size());
    if (!s) {
      CHECK(s.status().code() == Code::kOutOfSpace);
      break;
    }
    ids.push_back(*s);
  }
  auto st = (*r)->stats();
  CHECK(st.capacity == uint64_t(4) << 20);
  CHECK(st.grow_count == 2);  // 1 -> 2 -> 4 MiB
  CHECK(ids.size() == 63);    // 4 MiB minus the 4 KiB header holds 63 blobs of 64 KiB
  bool ok = true;
  for (size_t i = 0; i < ids.size(); ++i) {
    fill(b, i, 64 * 1024);
    ok = ok && same(*(*r)->read(ids[i]), b);
  }
  CHECK(ok);
  auto fsz = pages::file_size(::open(d.file("o").c_str(), O_RDONLY));
  CHECK(*fsz == uint64_t(4) << 20);
}

namespace {

// Reference: best fit by linear scan (smallest extent, lowest offset among
// equals), split, coalesce, cursor pull-back: what the tree must match.
struct Model {
  uint64_t cursor;
  std::map<uint64_t, uint64_t> free;
  uint64_t write(uint64_t need) {
    auto best = free.end();
    for (auto it = free.begin(); it != free.end(); ++it)
      if (it->second >= need && (best == free.end() || it->second < best->second)) best = it;
    if (best == free.end()) {
      uint64_t off = cursor;
      cursor += need;
      return off;
    }
    uint64_t off = best->first, size = best->second;
    free.erase(best);
    if (size > need) free[off + need] = size - need;
    return off;
  }
  void release(uint64_t off, uint64_t size) {
    for (auto it = free.begin(); it != free.end(); ++it)
      if (it->first + it->second == off) {
        off = it->first;
        size += it->second;
        free.erase(it);
        break;
      }
    if (auto it = free.find(off + size); it != free.end()) {
      size += it->second;
      free.erase(it);
    }
    if (off + size == cursor) cursor = off;
    else free[off] = size;
  }
};

}  // namespace

TEST_CASE("overflow: best fit with split and coalesce matches a reference model on random sequences", "[overflow]") {
  TempDir d;
  for (uint64_t seed : {1, 2, 3, 4}) {
    auto r = OverflowRegion::open(d.file("m" + std::to_string(seed)), small());
    REQUIRE(r);
    Model m{(*r)->stats().data_off, {}};
    std::mt19937_64 rng(seed);
    struct Live { SlotId id; uint64_t off, need, tag; uint32_t len; };
    std::vector<Live> live;
    std::vector<uint8_t> b;
    int mismatches = 0, bad_reads = 0;
    for (int op = 0; op < 4000; ++op) {
      if (live.empty() || rng() % 100 < 55) {
        // Sizes: a few fixed classes plus uniform ones, so exact and split fits both happen.
        uint32_t len = rng() % 2 ? uint32_t(16u << (rng() % 8)) : uint32_t(1 + rng() % 3000);
        fill(b, uint64_t(op), len);
        auto s = (*r)->write(b.data(), len);
        REQUIRE(s);
        uint64_t need = (std::max<uint64_t>(len, 1) + 15) / 16 * 16;
        uint64_t want = m.write(need);
        uint64_t got = (*r)->locate(*s)->first;
        if (got != want) ++mismatches;
        live.push_back({*s, got, need, uint64_t(op), len});
      } else {
        size_t k = rng() % live.size();
        REQUIRE((*r)->free(live[k].id));
        m.release(live[k].off, live[k].need);
        live[k] = live.back();
        live.pop_back();
      }
      auto fe = (*r)->free_extents();
      if (fe != std::vector<std::pair<uint64_t, uint64_t>>(m.free.begin(), m.free.end()) ||
          (*r)->stats().cursor != m.cursor)
        ++mismatches;
      if (op % 500 == 0)
        for (auto& l : live) {
          fill(b, l.tag, l.len);
          if (!same(*(*r)->read(l.id), b)) ++bad_reads;
        }
    }
    INFO("seed " << seed);
    CHECK(mismatches == 0);
    CHECK(bad_reads == 0);
    // No two free extents touch (coalesced) and none reaches the cursor.
    auto fe = (*r)->free_extents();
    for (size_t i = 1; i < fe.size(); ++i) CHECK(fe[i - 1].first + fe[i - 1].second < fe[i].first);
    if (!fe.empty()) CHECK(fe.back().first + fe.back().second < (*r)->stats().cursor);
  }
}

TEST_CASE("overflow: a reader in another process remaps on growth and reads the written bytes", "[overflow]") {
  TempDir d;
  const std::string f = d.file("o");
  OverflowOptions o = small();
  auto r = OverflowRegion::open(f, o);
  REQUIRE(r);
  testutil::Channel to_child, to_parent;
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto rd = OverflowReader::open(f);
    if (!rd) ::_exit(10);
    to_parent.send(1);
    uint64_t bad = 0;
    std::vector<uint8_t> got, want;
    for (;;) {
      uint64_t off = to_child.recv();
      if (off == 0) break;
      uint64_t len = to_child.recv(), tag = to_child.recv();
      got.resize(len);
      if (!(*rd)->read(off, uint32_t(len), got.data())) { ++bad; continue; }
      fill(want, tag, len);
      if (got != want) ++bad;
    }
    to_parent.send(bad + 1);
    to_parent.send((*rd)->remaps() + 1);
    ::_exit(0);
  }
  REQUIRE(to_parent.recv() == 1);
  std::vector<uint8_t> b;
  for (uint64_t i = 1; i <= 200; ++i) {  // 200 x 40 KiB: 1 MiB -> 8 MiB, three growths
    fill(b, i, 40000);
    auto s = (*r)->write(b.data(), b.size());
    REQUIRE(s);
    auto loc = (*r)->locate(*s);
    to_child.send(loc->first);
    to_child.send(loc->second);
    to_child.send(i);
  }
  to_child.send(0);
  const uint64_t bad = to_parent.recv() - 1, remaps = to_parent.recv() - 1;
  CHECK(testutil::wait_exit(pid) == 0);
  CHECK(bad == 0);
  CHECK((*r)->stats().grow_count == 3);
  CHECK(remaps >= 1);
  CHECK(remaps <= 3);
}

TEST_CASE("overflow: reader threads with their own mappings remap on growth and read the written bytes", "[overflow]") {
  TempDir d;
  const std::string f = d.file("o");
  auto r = OverflowRegion::open(f, small());
  REQUIRE(r);
  struct Job { uint64_t off, len, tag; };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job> jobs;
  bool done = false;
  std::atomic<uint64_t> bad{0}, remaps{0}, reads{0};
  auto reader = [&] {
    auto rd = OverflowReader::open(f);
    if (!rd) { bad.fetch_add(1000000); return; }
    std::vector<uint8_t> got, want;
    for (;;) {
      Job j;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv.wait(lk, [&] { return done || !jobs.empty(); });
        if (jobs.empty()) break;
        j = jobs.front();
        jobs.pop_front();
      }
      got.resize(j.len);
      if (!(*rd)->read(j.off, uint32_t(j.len), got.data())) { bad.fetch_add(1); continue; }
      fill(want, j.tag, j.len);
      if (got != want) bad.fetch_add(1);
      reads.fetch_add(1);
    }
    remaps.fetch_add((*rd)->remaps());
  };
  std::thread t1(reader), t2(reader);
  std::vector<uint8_t> b;
  for (uint64_t i = 1; i <= 300; ++i) {  // 300 x 40 KiB: 1 MiB -> 16 MiB (blobs are never freed here)
    fill(b, i, 40000);
    auto s = (*r)->write(b.data(), b.size());
    REQUIRE(s);
    auto loc = (*r)->locate(*s);
    {
      std::lock_guard<std::mutex> lk(mu);
      jobs.push_back({loc->first, loc->second, i});
    }
    cv.notify_one();
  }
  {
    std::lock_guard<std::mutex> lk(mu);
    done = true;
  }
  cv.notify_all();
  t1.join();
  t2.join();
  CHECK(bad.load() == 0);
  CHECK(reads.load() == 300);
  CHECK((*r)->stats().grow_count == 4);
  CHECK(remaps.load() >= 1);
}

TEST_CASE("overflow: preallocate gives the grown file disk blocks", "[overflow]") {
  TempDir d;
  OverflowOptions o = small();
  o.preallocate = true;
  auto r = OverflowRegion::open(d.file("o"), o);
  REQUIRE(r);
  std::vector<uint8_t> b(1500000, 3);
  REQUIRE((*r)->write(b.data(), b.size()));  // 1 -> 2 MiB
  CHECK((*r)->stats().grow_count == 1);
  struct stat st;
  REQUIRE(::stat(d.file("o").c_str(), &st) == 0);
  CHECK(uint64_t(st.st_blocks) * 512 >= uint64_t(st.st_size));
}

TEST_CASE("overflow: madvise advice survives mremap (smaps VmFlags)", "[overflow]") {
  TempDir d;
  // The raw OS behaviour, through src/pages.
  {
    int fd = ::open(d.file("raw").c_str(), O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(pages::truncate_file(fd, 8 << 20));
    auto m = pages::map_file(fd, 0, 1 << 20, true);
    REQUIRE(m);
    REQUIRE(pages::advise(*m, 1 << 20, pages::Advice::kRandom));
    CHECK_THAT(pages::vm_flags(*m), Catch::Contains("rr"));
    // Block in-place growth so the mapping has to move.
    auto blocker = pages::map_file(fd, 0, 4096, false);
    auto n = pages::remap(*m, 1 << 20, 8 << 20, true);
    REQUIRE(n);
    const bool survives = pages::vm_flags(*n).find("rr") != std::string::npos;
    CHECK(survives == kAdviceSurvivesMremap);
    (void)pages::unmap(*n, 8 << 20);
    if (blocker) (void)pages::unmap(*blocker, 4096);
    ::close(fd);
  }
  // The region after its own growth.
  OverflowOptions o = small();
  o.advice = pages::Advice::kRandom;
  auto r = OverflowRegion::open(d.file("o"), o);
  REQUIRE(r);
  CHECK_THAT(pages::vm_flags((*r)->base()), Catch::Contains("rr"));
  std::vector<uint8_t> b(3 << 20, 1);
  REQUIRE((*r)->write(b.data(), b.size()));
  CHECK((*r)->stats().grow_count >= 1);
  CHECK_THAT(pages::vm_flags((*r)->base()), Catch::Contains("rr"));
}

TEST_CASE("overflow: a persistent region keeps its slots across a clean reopen, a scratch one resets", "[overflow]") {
  TempDir d;
  const std::string f = d.file("p");
  std::map<SlotId, uint64_t> want;  // id -> tag
  std::vector<std::pair<uint64_t, uint64_t>> extents;
  {
    auto r = OverflowRegion::open(f, small(true));
    REQUIRE(r);
    std::vector<uint8_t> b;
    std::vector<SlotId> ids;
    for (uint64_t i = 0; i < 300; ++i) {
      fill(b, i, 1 + i * 37 % 5000);
      auto s = (*r)->write(b.data(), b.size());
      REQUIRE(s);
      want[*s] = i;
      ids.push_back(*s);
    }
    for (size_t i = 0; i < ids.size(); i += 3) {
      REQUIRE((*r)->free(ids[i]));
      want.erase(ids[i]);
    }
    fill(b, 1000, 10);
    auto s = (*r)->write(b.data(), 10);  // reuses slot 0 with generation 2
    REQUIRE(s);
    want[*s] = 1000;
    extents = (*r)->free_extents();
  }
  {
    auto r = OverflowRegion::open(f, small(true));
    REQUIRE(r);
    auto live = (*r)->live_slots();
    CHECK(live.size() == want.size());
    std::vector<uint8_t> b;
    int bad = 0;
    for (auto& [id, tag] : want) {
      auto v = (*r)->read(id);
      if (!v) { ++bad; continue; }
      fill(b, tag, tag == 1000 ? 10 : 1 + tag * 37 % 5000);
      if (!same(*v, b)) ++bad;
    }
    CHECK(bad == 0);
    CHECK((*r)->free_extents() == extents);
    // A reader process/thread can also find slots through the index.
    auto rd = OverflowReader::open(f);
    REQUIRE(rd);
    std::vector<uint8_t> got;
    REQUIRE((*rd)->read_slot(want.begin()->first, &got));
    fill(b, want.begin()->second, got.size());
    CHECK(got == b);
  }
  auto r = OverflowRegion::open(d.file("s"), small(false));
  REQUIRE(r);
  REQUIRE((*r)->write("x", 1));
  r = OverflowRegion::open(d.file("s"), small(false));
  REQUIRE(r);
  CHECK((*r)->stats().live_slots == 0);
}

// ---- crash recovery ---------------------------------------------------------------

namespace {

// Deterministic child ops on a persistent region: writes (60 %) of blob
// fill(k, len) and frees. after_op(k, id, is_write) after op k returns.
template <typename AfterOp>
void region_ops(OverflowRegion& r, uint64_t seed, int ops, AfterOp after_op) {
  std::mt19937_64 rng(seed);
  std::vector<SlotId> live;
  std::vector<uint8_t> b;
  for (int k = 1; k <= ops; ++k) {
    if (live.empty() || rng() % 10 < 6) {
      uint32_t len = uint32_t(1 + rng() % 6000);
      fill(b, uint64_t(k), len);
      auto s = r.write(b.data(), len);
      if (!s) ::_exit(20);
      live.push_back(*s);
      after_op(k, *s, true);
    } else {
      size_t i = rng() % live.size();
      SlotId id = live[i];
      if (!r.free(id)) ::_exit(21);
      live[i] = live.back();
      live.pop_back();
      after_op(k, id, false);
    }
  }
}

// Order-independent digest of a set of live slots: sum of mix(id, crc of bytes).
uint64_t term(SlotId id, const uint8_t* p, size_t n) {
  uint64_t x = id * 0x9E3779B97F4A7C15ull ^ (uint64_t(crc32c(p, n)) << 17) ^ n;
  x ^= x >> 31;
  return x * 0xBF58476D1CE4E5B9ull;
}

uint64_t digest(OverflowRegion& r) {
  uint64_t d = 0;
  for (SlotId id : r.live_slots()) {
    auto v = r.read(id);
    d += term(id, v->data, v->size);
  }
  return d;
}

// The digest of the live slots after each op k (index k), and whether op k
// was a write, from one uninterrupted replay on a scratch region.
struct ModelRun {
  std::vector<uint64_t> digest;
  std::vector<bool> is_write;
};
ModelRun model_run(const std::string& path, uint64_t seed, int ops) {
  ModelRun m;
  m.digest.assign(1, 0);
  m.is_write.assign(1, false);
  auto r = OverflowRegion::open(path, small(false));
  REQUIRE(r);
  std::map<SlotId, uint64_t> terms;
  uint64_t d = 0;
  region_ops(**r, seed, ops, [&](int, SlotId id, bool w) {
    if (w) {
      auto v = (*r)->read(id);
      terms[id] = term(id, v->data, v->size);
      d += terms[id];
    } else {
      d -= terms[id];
      terms.erase(id);
    }
    m.digest.push_back(d);
    m.is_write.push_back(w);
  });
  return m;
}

int g_step = -1, g_at_op = 0, g_op = 0;
void step_hook(OverflowStep s, void*) {
  if (g_op == g_at_op && int(s) == g_step) ::kill(::getpid(), SIGKILL);
}

}  // namespace

TEST_CASE("overflow: kill -9 at random points loses no slot whose write returned", "[overflow]") {
  TempDir d;
  const int trials = testutil::crash_trials(200);
  const int ops = 3000;
  const ModelRun m = model_run(d.file("model"), 23, ops);
  std::mt19937_64 rng(17);
  int lost = 0, checked = 0, mid_run = 0;
  for (int t = 0; t < trials; ++t) {
    const std::string f = d.file("c" + std::to_string(t));
    testutil::Channel ch;
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      auto r = OverflowRegion::open(f, small(true));
      if (!r) ::_exit(30);
      ch.send(1);
      region_ops(**r, 23, ops, [&](int k, SlotId, bool) { ch.send(uint64_t(k) + 1); });
      ::_exit(0);
    }
    ch.wait_for(2 + rng() % uint64_t(ops));  // a random point of the run
    ::kill(pid, SIGKILL);
    testutil::wait_exit(pid);
    const uint64_t acked = ch.drain_last();
    if (acked == 0) continue;  // killed while creating the file
    const int done = int(acked) - 1;
    if (done < ops) ++mid_run;
    auto r = OverflowRegion::open(f, small(true));
    REQUIRE(r);
    ++checked;
    const uint64_t got = digest(**r);
    // The op in flight at the kill may or may not have landed.
    if (got != m.digest[size_t(done)] && (done == ops || got != m.digest[size_t(done) + 1])) ++lost;
    std::remove(f.c_str());
  }
  INFO("trials with a recovered region " << checked << ", killed before the last op " << mid_run);
  CHECK(lost == 0);
  CHECK(checked > trials / 2);
  CHECK(mid_run > trials / 4);
}

TEST_CASE("overflow: kill -9 at every sync boundary of write and free", "[overflow]") {
  TempDir d;
  OverflowOptions o = small(true);
  o.sync = pages::SyncMode::kEach;
  o.step_hook = step_hook;
  const ModelRun m = model_run(d.file("model"), 23, 40);
  // The first write and the first free after op 3, and the op after each.
  std::vector<int> ats;
  for (int k = 4; k <= 40 && ats.size() < 2; ++k)
    if (m.is_write[size_t(k)]) { ats.push_back(k); ats.push_back(k + 1); break; }
  for (int k = 4; k <= 39; ++k)
    if (!m.is_write[size_t(k)]) { ats.push_back(k); ats.push_back(k + 1); break; }
  REQUIRE(ats.size() == 4);
  std::sort(ats.begin(), ats.end());
  ats.erase(std::unique(ats.begin(), ats.end()), ats.end());
  for (int step = 0; step < kOverflowSteps; ++step) {
    for (int at : ats) {
      const std::string f = d.file("s" + std::to_string(step) + "_" + std::to_string(at));
      pid_t pid = ::fork();
      REQUIRE(pid >= 0);
      if (pid == 0) {
        g_step = step;
        g_at_op = at;
        g_op = 1;
        auto r = OverflowRegion::open(f, o);
        if (!r) ::_exit(30);
        region_ops(**r, 23, at, [](int k, SlotId, bool) { g_op = k + 1; });
        ::_exit(0);
      }
      const int st = testutil::wait_exit(pid);
      auto r = OverflowRegion::open(f, small(true));
      REQUIRE(r);
      const uint64_t got = digest(**r);
      const bool is_write = m.is_write[size_t(at)];
      INFO("step " << step << " op " << at << " exit " << st);
      if (st == 0) {
        // The op has no such step (a write has no free steps and vice versa).
        CHECK(is_write == (step >= int(OverflowStep::kFreeWritten)));
        CHECK(got == m.digest[size_t(at)]);
        continue;
      }
      CHECK(st == -SIGKILL);
      // Durable from the step that writes (or clears) the index entry on.
      const bool landed = step == int(OverflowStep::kSlotWritten) || step == int(OverflowStep::kSlotSynced) ||
                          step == int(OverflowStep::kFreeWritten) || step == int(OverflowStep::kFreeSynced);
      CHECK(got == m.digest[size_t(landed ? at : at - 1)]);
    }
  }
}
