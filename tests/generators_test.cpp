// [generators] the workload generators of workloads/ (operation streams
// only; the runners in harness/ execute them): what a stream contains,
// checked with recording executors.
#include <cmath>
#include <map>
#include <set>
#include <vector>

#include <catch2/catch.hpp>

#include "workloads/alternating_gen.h"
#include "workloads/churn_gen.h"

using namespace znslab::workloads;

namespace {

struct Op {
  char kind;  // 'a' allocate, 'f' release, 'o' epoch_open, 'c' epoch_close
  uint64_t slot;
  uint32_t size, epoch;
  int fill;
  bool pin;
};

struct Recorder {
  std::vector<Op> ops;
  void allocate(uint64_t slot, uint32_t size, uint32_t epoch, int fill, bool pin) {
    ops.push_back({'a', slot, size, epoch, fill, pin});
  }
  void release(uint64_t slot) { ops.push_back({'f', slot, 0, 0, 0, false}); }
  void epoch_open(uint32_t e, uint64_t /*round*/) { ops.push_back({'o', 0, 0, e, 0, false}); }
  void epoch_close(uint32_t e) { ops.push_back({'c', 0, 0, e, 0, false}); }
};

std::vector<Op> churn_round(const ChurnGenerator& g, uint64_t c) {
  Recorder r;
  g.begin_round(c, r);
  for (uint32_t t = 0; t < g.workers(); ++t) g.alloc_phase(c, t, r);
  for (uint32_t t = 0; t < g.workers(); ++t) g.free_phase(c, t, r);
  g.end_round(c, r);
  return r.ops;
}

}  // namespace

TEST_CASE("churn stream: every slot allocated once per round, pinned in round 0 only, epoch ring 1..15",
          "[generators]") {
  ChurnParams p;
  p.cycles = 20;
  p.objects = 1000;
  p.workers = 3;
  p.pinned_fraction = 0.25;
  const ChurnGenerator g(p);
  CHECK(g.pinned_objects() == 250);
  for (uint64_t c : {0u, 1u, 14u, 15u, 16u}) {
    const auto ops = churn_round(g, c);
    REQUIRE(ops.front().kind == 'o');
    CHECK(ops.front().epoch == 1 + c % 15);
    CHECK(ops.back().kind == 'c');
    CHECK(ops.back().epoch == ops.front().epoch);
    std::set<uint64_t> allocated, freed;
    uint64_t pinned = 0;
    for (const Op& o : ops) {
      if (o.kind == 'a') {
        CHECK(allocated.insert(o.slot).second);
        CHECK(o.size >= p.min_size);
        CHECK(o.size <= p.max_size);
        CHECK(o.fill == int(0x5A ^ (c & 0xFF)));
        if (o.pin) {
          ++pinned;
          CHECK(o.epoch == ChurnGenerator::kPinnedEpoch);
        } else {
          CHECK(o.epoch == 1 + c % 15);
        }
      }
      if (o.kind == 'f') CHECK(freed.insert(o.slot).second);
    }
    CHECK(allocated.size() == p.objects);
    CHECK(freed.size() == p.objects);  // the runner skips empty (pinned) slots
    CHECK(pinned == (c == 0 ? 250u : 0u));
  }
}

TEST_CASE("churn stream: same seed same stream; worker t frees worker t+1's slots", "[generators]") {
  ChurnParams p;
  p.cycles = 3;
  p.objects = 600;
  p.workers = 2;
  const ChurnGenerator a(p), b(p);
  const auto ra = churn_round(a, 2), rb = churn_round(b, 2);
  REQUIRE(ra.size() == rb.size());
  for (size_t i = 0; i < ra.size(); ++i) CHECK((ra[i].slot == rb[i].slot && ra[i].size == rb[i].size));
  Recorder r;
  a.free_phase(0, 0, r);
  for (const Op& o : r.ops) {
    CHECK(o.slot >= a.slot_begin(1));
    CHECK(o.slot < a.slot_end(1));
  }
  p.order = FreeOrder::kFifo;
  const ChurnGenerator fifo(p);
  Recorder rf;
  fifo.free_phase(0, 1, rf);
  REQUIRE(rf.ops.size() == 300);
  for (size_t i = 0; i < rf.ops.size(); ++i) CHECK(rf.ops[i].slot == i);  // worker 1 frees worker 0's, in order
}

TEST_CASE("churn sizes follow size_distribution", "[generators]") {
  ChurnParams p;
  p.min_size = 100;
  p.max_size = 600;
  p.dist = SizeDist::kSizeClasses;
  ChurnSizes s(p, 0, 0);
  const std::set<uint32_t> classes{128, 192, 256, 384, 512};
  std::set<uint32_t> seen;
  for (int i = 0; i < 2000; ++i) seen.insert(s.next());
  CHECK(seen == classes);
  p.dist = SizeDist::kLogUniform;
  ChurnSizes l(p, 0, 0);
  uint64_t below_200 = 0;
  for (int i = 0; i < 10000; ++i) {
    const uint32_t z = l.next();
    REQUIRE(z >= 100);
    REQUIRE(z <= 600);
    below_200 += z < 200;
  }
  // log-uniform: P(z < 200) = ln 2 / ln 6.01 = 0.387 (uniform would give 0.2)
  CHECK(std::abs(double(below_200) / 10000.0 - 0.387) < 0.03);
}

namespace {
struct SlotRec {
  std::vector<std::pair<char, uint64_t>> ops;
  std::map<uint64_t, bool> live;
  bool ok() const { return true; }
  void allocate(uint64_t slot, uint32_t, int) {
    CHECK_FALSE(live[slot]);
    live[slot] = true;
    ops.push_back({'a', slot});
  }
  void release(uint64_t slot) {
    CHECK(live[slot]);
    live[slot] = false;
    ops.push_back({'f', slot});
  }
};
struct HandRec {
  uint64_t allocs = 0, frees = 0, handed = 0;
  bool ok() const { return true; }
  void allocate_handoff(uint32_t, int) { ++allocs, ++handed; }
  bool release_handed() {
    REQUIRE(handed > 0);
    --handed, ++frees;
    return true;
  }
  bool release_handed_if_any() { return handed ? release_handed() : false; }
};
}  // namespace

TEST_CASE("alternating stream: a full table, each step a free then an allocate of the same slot", "[generators]") {
  AlternatingParams p;
  p.live_slots = 64;
  p.steps = 5000;
  p.warmup_steps = 100;
  const AlternatingGenerator g(p);
  SlotRec r;
  g.fill_phase(0, r);
  CHECK(r.ops.size() == 64);
  g.steps(0, g.steps_per_worker(), r);
  REQUIRE(r.ops.size() == 64 + 2 * 5000);
  for (size_t i = 64; i < r.ops.size(); i += 2) {
    CHECK(r.ops[i].first == 'f');
    CHECK(r.ops[i + 1] == std::make_pair('a', r.ops[i].second));
  }
  g.drain_phase(0, r);
  for (auto& [s, l] : r.live) CHECK_FALSE(l);
  // warmup runs the first steps of the same sequence
  SlotRec w;
  g.fill_phase(0, w);
  g.steps(0, g.warmup_per_worker(), w);
  CHECK(std::equal(w.ops.begin(), w.ops.end(), r.ops.begin()));
}

TEST_CASE("alternating stream with workers: live_slots / T fills, steps / T steps, each freeing a handed object",
          "[generators]") {
  AlternatingParams p;
  p.live_slots = 100;
  p.steps = 1000;
  p.warmup_steps = 0;
  p.workers = 4;
  const AlternatingGenerator g(p);
  HandRec r;  // one worker handing to itself: the counts per worker
  g.fill_phase(1, r);
  CHECK(r.allocs == 25);
  g.steps(1, g.steps_per_worker(), r);
  CHECK(r.allocs == 25 + 250);
  CHECK(r.frees == 250);
  g.drain_phase(1, r);
  CHECK(r.frees == r.allocs);
}

#include "workloads/zone_churn_gen.h"

namespace {
struct StoreRec {
  std::map<uint64_t, uint64_t> death;  // id -> epoch it must die
  std::map<uint64_t, uint32_t> cls;
  std::set<uint64_t> live;
  uint64_t epoch = 0, written = 0, reads = 0, removes = 0;
  const ZoneChurnParams* p = nullptr;
  bool put(uint64_t id, uint32_t len, uint32_t c) {
    CHECK(live.insert(id).second);
    CHECK(len >= p->min_size);
    CHECK(len <= p->max_size);
    death[id] = epoch + p->lifetimes[c];
    written += len;
    return true;
  }
  void remove(uint64_t id) {
    CHECK(live.erase(id) == 1);
    CHECK(death[id] == epoch);  // every record dies exactly at birth + lifetime
    ++removes;
  }
  void read(uint64_t id) {
    CHECK(death.count(id));
    ++reads;
  }
  void end_epoch(uint64_t e) {
    CHECK(e == epoch);
    ++epoch;
  }
};
}  // namespace

TEST_CASE("zone-churn stream: records die at birth + lifetime, target bytes written, reads of written records",
          "[generators]") {
  ZoneChurnParams p;
  p.lifetimes = {1, 3};
  p.min_size = 100;
  p.max_size = 1000;
  p.read_fraction = 0.25;
  p.epoch_bytes = 20000;
  p.target_bytes = 400000;
  StoreRec r;
  r.p = &p;
  ZoneChurnGenerator(p).run(r);
  CHECK(r.written >= p.target_bytes);
  CHECK(r.written < p.target_bytes + p.max_size);
  CHECK(r.epoch >= p.target_bytes / (p.epoch_bytes + p.max_size));
  CHECK(r.removes > 0);
  const double puts = double(r.death.size());
  CHECK(std::abs(double(r.reads) / puts - 0.25) < 0.05);
  CHECK(ZoneChurnGenerator::record_word(7, 0) != ZoneChurnGenerator::record_word(8, 0));
}

#include "workloads/segment_scale_gen.h"

namespace {
struct SegRec {
  std::vector<uint32_t> structure_of;
  uint64_t inserts = 0, pins = 0, verifies = 0;
  bool done = false;
  void insert(uint32_t s, uint32_t idx, uint32_t len) {
    CHECK_FALSE(done);
    CHECK(idx == inserts);
    CHECK(len >= 10);
    CHECK(len <= 20);
    structure_of.push_back(s);
    ++inserts;
  }
  void inserts_done() { done = true; }
  void pin_batch(uint64_t) {
    CHECK(done);
    ++pins;
  }
  void verify(uint32_t idx) {
    CHECK(idx < inserts);
    ++verifies;
  }
};
}  // namespace

TEST_CASE("segment-scale stream: every record inserted once, then pin batches, then verifications",
          "[generators]") {
  SegmentScaleParams p;
  p.records = 5000;
  p.structures = 7;
  p.min_size = 10;
  p.max_size = 20;
  p.pin_batches = 30;
  p.verify_records = 10000;  // capped at records
  SegRec r;
  SegmentScaleGenerator(p).run(r);
  CHECK(r.inserts == 5000);
  CHECK(r.pins == 30);
  CHECK(r.verifies == 5000);
  std::set<uint32_t> used(r.structure_of.begin(), r.structure_of.end());
  CHECK(used.size() == 7);
  CHECK(SegmentScaleGenerator::payload_byte(1, 0) != SegmentScaleGenerator::payload_byte(1, 1));
}
