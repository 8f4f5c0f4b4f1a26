// The pager-churn generator (issue 10; seed 004 page provider): the
// operation stream of the pager-churn workload and nothing else (no pager,
// files, timers, samples or JSON). The runner (harness/phase_runner.h,
// run_pager_phases) executes it through `ex` (kind 0 = page, 1 = sub-page):
//   ex.phase(name)          "fill", "churn", "timing", "drain"
//   ex.alloc(kind) -> id    allocate; ex.touch(kind, id, n) writes the
//                           8-byte count n of allocations into 1 in touch_every
//   ex.free(kind, id)       free
//   ex.step(ops)            one fill/churn operation done (ops so far)
//   ex.filled(p, s)         the long-lived counts reached the peak
//   ex.commit()             commit the pager's allocation state
//   ex.at_peak(ops)         fill and churn are over
//   ex.pair_batch(kind)     one timing batch of alloc+free pairs
//   ex.end()                the run is over
// Phases: fill (allocate pages and sub-pages in proportion until `pages`
// and `sub_pages` long-lived ones are live; a short_lived_fraction of
// allocations is freed again short_lifetime ops later), churn (churn_ops
// random free+alloc pairs of one kind at the peak; then every short-lived
// allocation still queued is freed and the state committed), timing
// (timing_batches batches of pages, then of sub-pages), drain (free
// final_free_fraction of the long-lived pages, then of the sub-pages;
// commit). An "op" is an allocation or a free of a random long-lived one
// (short-lived expiries are not counted). One mt19937_64(seed) draws, in
// order: per fill allocation the kind (when both still need some), the
// short-lived coin; per churn pair the kind, the victim; per drain free the
// victim. Thread-safety: run() is const; one executor per call.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <vector>

namespace znslab::workloads {

struct PagerChurnParams {
  uint64_t pages = 1048576;      // long-lived pages at the peak
  uint64_t sub_pages = 262144;   // long-lived sub-pages at the peak
  double short_lived_fraction = 0.2;
  uint32_t short_lifetime = 64;  // ops
  uint32_t touch_every = 1024;   // allocations
  uint64_t churn_ops = 1000000;  // free+alloc pairs
  uint64_t timing_batches = 100000;
  double final_free_fraction = 0.5;
  uint64_t seed = 1;
};

class PagerChurnGenerator {
 public:
  explicit PagerChurnGenerator(const PagerChurnParams& p) : p_(p) {}
  const PagerChurnParams& params() const noexcept { return p_; }

  template <class Ex>
  void run(Ex& ex) const {
    State<Ex> s(p_, ex);
    const uint64_t pages = p_.pages, subs = p_.sub_pages;
    ex.phase("fill");
    while (s.long_[0].size() < pages || s.long_[1].size() < subs) {
      const bool page = s.long_[0].size() < pages && (s.long_[1].size() >= subs || s.rng() % (pages + subs) < pages);
      s.alloc(page ? 0 : 1);
      ex.step(s.ops);
    }
    ex.filled(s.long_[0].size(), s.long_[1].size());
    ex.phase("churn");
    for (uint64_t i = 0; i < p_.churn_ops; ++i) {
      const int kind = s.rng() % (pages + subs) < pages ? 0 : 1;
      s.free_random(kind);
      ex.step(s.ops);
      s.alloc(kind);
      ex.step(s.ops);
    }
    for (; !s.short_.empty(); s.short_.pop_front()) ex.free(s.short_.front().kind, s.short_.front().id);
    ex.commit();
    ex.at_peak(s.ops);
    ex.phase("timing");
    for (uint64_t b = 0; b < p_.timing_batches; ++b) ex.pair_batch(0);
    for (uint64_t b = 0; b < p_.timing_batches; ++b) ex.pair_batch(1);
    ex.phase("drain");
    for (int kind = 0; kind < 2; ++kind)
      for (uint64_t i = 0, n = uint64_t(double(s.long_[kind].size()) * p_.final_free_fraction); i < n; ++i)
        s.free_random(kind);
    ex.commit();
    ex.end();
  }

 private:
  // The stream's state: long-lived ids by kind, the short-lived queue.
  template <class Ex>
  struct State {
    struct Short {
      int kind;
      uint64_t id, due;
    };
    State(const PagerChurnParams& params, Ex& e) : p(params), ex(e), rng(params.seed) {}
    const PagerChurnParams& p;
    Ex& ex;
    std::mt19937_64 rng;
    std::vector<uint64_t> long_[2];
    std::deque<Short> short_;
    uint64_t ops = 0, allocs = 0;

    double coin() { return double(rng() >> 11) * 0x1.0p-53; }
    void alloc(int kind) {
      const uint64_t id = ex.alloc(kind);
      if (++allocs % p.touch_every == 0) ex.touch(kind, id, allocs);
      if (coin() < p.short_lived_fraction) short_.push_back({kind, id, ops + p.short_lifetime});
      else long_[kind].push_back(id);
      ++ops;
      expire();
    }
    void free_random(int kind) {
      auto& v = long_[kind];
      if (v.empty()) return;
      const size_t k = rng() % v.size();
      ex.free(kind, v[k]);
      v[k] = v.back();
      v.pop_back();
      ++ops;
      expire();
    }
    void expire() {
      for (; !short_.empty() && short_.front().due <= ops; short_.pop_front()) ex.free(short_.front().kind, short_.front().id);
    }
  };

  PagerChurnParams p_;
};

}  // namespace znslab::workloads
