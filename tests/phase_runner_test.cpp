// The generators of pager-churn, overflow-spill and zone-write (checked
// with recording executors, "[generators]") and the phase runner's reader
// threads ("[harness]"): what each stream contains and what the runner
// relies on (no double frees, pinned blobs kept, zone capacity respected,
// every posted job run once).
#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <vector>

#include <catch2/catch.hpp>

#include "harness/phase_runner.h"
#include "workloads/overflow_spill_gen.h"
#include "workloads/pager_churn_gen.h"
#include "workloads/zone_write_gen.h"

using namespace znslab::workloads;

namespace {

// Records a pager-churn stream: ids are handed out in order per kind.
struct PagerRecorder {
  std::set<uint64_t> live[2];
  uint64_t next[2] = {0, 0}, allocs = 0, frees = 0, double_frees = 0, touches = 0, commits = 0, batches[2] = {0, 0};
  uint64_t last_step = 0, steps = 0, filled_pages = 0, filled_subs = 0, peak_ops = 0;
  std::vector<std::string> phases;
  bool ended = false;
  size_t live_at_drain[2] = {0, 0};
  void phase(const char* n) {
    phases.push_back(n);
    if (phases.back() == "drain") live_at_drain[0] = live[0].size(), live_at_drain[1] = live[1].size();
  }
  uint64_t alloc(int k) {
    ++allocs;
    live[k].insert(next[k]);
    return next[k]++;
  }
  void touch(int, uint64_t, uint64_t) { ++touches; }
  void free(int k, uint64_t id) {
    ++frees;
    if (!live[k].erase(id)) ++double_frees;
  }
  void step(uint64_t ops) {
    CHECK(ops >= last_step);
    last_step = ops;
    ++steps;
  }
  void filled(uint64_t p, uint64_t s) { filled_pages = p, filled_subs = s; }
  void commit() { ++commits; }
  void at_peak(uint64_t ops) { peak_ops = ops; }
  void pair_batch(int k) { ++batches[k]; }
  void end() { ended = true; }
};

}  // namespace

TEST_CASE("pager-churn stream: fills to the peak, no double free, drains the final fraction", "[generators]") {
  PagerChurnParams p;
  p.pages = 5000;
  p.sub_pages = 1000;
  p.churn_ops = 2000;
  p.timing_batches = 7;
  p.touch_every = 100;
  p.final_free_fraction = 0.5;
  const PagerChurnGenerator g(p);
  PagerRecorder r;
  g.run(r);
  CHECK(r.phases == std::vector<std::string>{"fill", "churn", "timing", "drain"});
  CHECK(r.filled_pages == 5000);
  CHECK(r.filled_subs == 1000);
  CHECK(r.double_frees == 0);
  CHECK(r.batches[0] == 7);
  CHECK(r.batches[1] == 7);
  CHECK(r.commits == 2);  // after the churn, after the drain
  CHECK(r.ended);
  CHECK(r.touches == r.allocs / 100);
  // The churn replaces long-lived allocations, some by short-lived ones
  // (all freed before the timing): the drain frees half of what is left.
  CHECK(r.live_at_drain[0] <= 5000);
  CHECK(r.live_at_drain[0] > 4000);
  CHECK(r.live[0].size() == r.live_at_drain[0] - r.live_at_drain[0] / 2);
  CHECK(r.live[1].size() == r.live_at_drain[1] - r.live_at_drain[1] / 2);
  CHECK(r.peak_ops == r.last_step);

  PagerRecorder r2;
  g.run(r2);
  CHECK(r2.live[0] == r.live[0]);  // same seed, same stream
  CHECK(r2.live[1] == r.live[1]);
}

namespace {

// Records an overflow-spill stream; blob sizes add up to live bytes.
struct SpillRecorder {
  std::vector<uint32_t> len;
  std::vector<bool> live;
  std::set<size_t> pins;
  uint64_t live_now = 0, reads = 0, bad = 0, served = 0, freed = 0, writes_at_fill = 0, live_at_fill = 0;
  std::vector<std::string> done;
  size_t write(uint32_t n) {
    len.push_back(n);
    live.push_back(true);
    live_now += n;
    return len.size() - 1;
  }
  uint64_t last_observed = 0;
  void observe() { last_observed = live_now; }
  uint64_t live_bytes() const { return live_now; }
  void free(size_t b) {
    if (!live[b] || pins.count(b)) ++bad;
    live[b] = false;
    live_now -= len[b];
  }
  void read(size_t b) {
    ++reads;
    if (!live[b]) ++bad;
  }
  bool pinned(size_t b) const { return pins.count(b) != 0; }
  template <class F>
  void serve_readers(F&& choose) {
    const int64_t b = choose();
    if (b < 0) return;
    if (!live[size_t(b)]) ++bad;
    ++served;
    if (pins.size() < 8) pins.insert(size_t(b));  // a few readers never finish
  }
  void fill_done() {
    done.push_back("fill");
    writes_at_fill = len.size();
    live_at_fill = last_observed;  // after the last fill write, before the pending short-lived ones go
  }
  void free_done(uint64_t f) {
    done.push_back("free");
    freed = f;
  }
  void refill_done() { done.push_back("refill"); }
};

}  // namespace

TEST_CASE("overflow-spill stream: fill to fill_bytes, pinned blobs never freed, refill the freed bytes",
          "[generators]") {
  OverflowSpillParams p;
  p.fill_bytes = 4 << 20;
  p.reader_post_every = 4;
  const OverflowSpillGenerator g(p);
  SpillRecorder r;
  g.run(r);
  CHECK(r.done == std::vector<std::string>{"fill", "free", "refill"});
  CHECK(r.bad == 0);  // no double free, no pinned blob freed, reads and hand-offs of live blobs only
  CHECK(r.live_at_fill >= p.fill_bytes);
  CHECK(r.live_at_fill < p.fill_bytes + std::max<uint64_t>(p.max_size, 4096));
  CHECK(r.freed > 0);
  uint64_t refilled = 0;
  for (size_t b = r.writes_at_fill; b < r.len.size(); ++b) refilled += r.len[b];
  CHECK(refilled >= r.freed);
  CHECK(refilled < r.freed + p.max_size);
  CHECK(r.reads == r.len.size() / p.read_every);
  CHECK(r.served > 0);
  size_t n4k = 0;
  for (uint32_t l : r.len) {
    CHECK(((l >= p.min_size && l <= p.max_size) || l == 4096));
    n4k += l == 4096;
  }
  CHECK(double(n4k) / double(r.len.size()) == Approx(p.fraction_4k).margin(0.05));
}

TEST_CASE("zone-write stream: total bytes in block-size I/Os, round-robin, a new zone when one is full",
          "[generators]") {
  struct Rec {
    uint64_t cap = 1000;
    std::vector<int> zone_of;  // stream -> zone number handed out
    int zones = 0;
    std::map<int, uint64_t> fill;  // zone -> bytes
    std::vector<uint32_t> order;
    uint64_t total = 0, bad = 0, appends = 0;
    bool drained = false;
    uint64_t zone_capacity() const { return cap; }
    void next_zone(uint32_t s) {
      if (zone_of.size() <= s) zone_of.resize(s + 1, -1);
      if (zone_of[s] >= 0 && fill[zone_of[s]] != cap) ++bad;  // left before it was full
      zone_of[s] = zones++;
    }
    void write(uint32_t s, uint64_t off, uint64_t len) {
      uint64_t& f = fill[zone_of[s]];
      if (off != f || f + len > cap) ++bad;
      f += len;
      total += len;
      order.push_back(s);
    }
    void append(uint32_t s, uint64_t off, uint64_t len) {
      ++appends;
      write(s, off, len);
    }
    void drain() { drained = true; }
  };
  ZoneWriteParams p;
  p.zones = 3;
  p.block_size = 300;
  p.total_bytes = 10000;
  Rec r;
  ZoneWriteGenerator(p).run_pass(r);
  CHECK(r.drained);
  CHECK(r.bad == 0);
  CHECK(r.total == 10000);
  CHECK(r.appends == 0);
  for (size_t i = 0; i < r.order.size(); ++i) CHECK(r.order[i] == i % 3);
  CHECK(r.zones == 3 + 9);  // 3 opened, then a new one per 1000 bytes past the first three
  p.append = true;
  Rec a;
  ZoneWriteGenerator(p).run_pass(a);
  CHECK(a.appends == r.order.size());
}

TEST_CASE("phase runner readers: every posted job runs once on its reader, stop() joins", "[harness]") {
  using znslab::harness::ReaderJob;
  using znslab::harness::ReaderPool;
  std::atomic<uint64_t> sum[2] = {0, 0}, count[2] = {0, 0};
  ReaderPool pool;
  pool.start(2, [&](int i) -> ReaderPool::Handler {
    return [&, i](const ReaderJob& j) {
      sum[i].fetch_add(j.off + j.len + j.tag);
      count[i].fetch_add(1);
    };
  });
  REQUIRE(pool.size() == 2);
  CHECK(!pool.has_job(0));
  uint64_t posted[2] = {0, 0}, expect[2] = {0, 0};
  for (uint64_t k = 1; k <= 2000; ++k) {
    const int i = int(k % 2);
    while (!pool.idle(i)) std::this_thread::yield();
    if (posted[i]) CHECK(pool.cookie(i) == k - 2);
    pool.post(i, ReaderJob{k, 1, 2}, k);
    ++posted[i];
    expect[i] += k + 3;
  }
  pool.stop();
  pool.stop();  // idempotent
  for (int i = 0; i < 2; ++i) {
    CHECK(count[i].load() == posted[i]);
    CHECK(sum[i].load() == expect[i]);
  }
}
