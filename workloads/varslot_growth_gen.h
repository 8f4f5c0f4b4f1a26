// The operation stream of varslot-growth (issue 13, seed 000; issue 8
// "generators apart"): what each process allocates, releases and passes.
// No timing, sampling, pool or JSON here: the executor (harness/
// process_runner.h, ProcessExec) owns the pool, the held handles, payloads,
// the rings between processes and every measurement.
//
// Each process keeps per class a target of live slots (live_bytes split
// evenly over the classes and processes: live_targets). A step picks a
// class by `op_weights`; below target it allocates a size within the class
// (lo+1 .. class size, lo the next smaller class) and holds the slot; at
// target it releases held slot k (uniform) of that class, and every
// `pass_every`-th release hands it to another process (uniform over the
// others), which frees it. timed_pair() asks for one alloc + free of a size
// of a class picked the same way.
//
// Executor Ex: bool/int-returning calls
//   int  allocate(uint32_t cls, uint32_t bytes)  -1 failed, 0 op done but
//                                                not held, 1 held
//   uint32_t release(uint32_t cls, size_t k, bool pass, uint32_t to)
//                                                ops done (0 when passed)
//   void timed_alloc_free(uint32_t bytes)
// Thread-safety: one generator per process (it holds that process's RNG).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace znslab::workloads {

struct VarslotGrowthParams {
  uint32_t nprocs = 1;                  // host + guests
  std::vector<uint32_t> class_sizes;    // bytes, ascending
  std::vector<uint64_t> target;         // live slots per class per process
  std::vector<double> weights;          // class pick weights
  uint32_t pass_every = 8;              // 0 = never pass
  uint64_t seed = 1;
};

class VarslotGrowthGenerator {
 public:
  VarslotGrowthGenerator(const VarslotGrowthParams& p, uint32_t me)
      : p_(p), me_(me), count_(p.target.size(), 0), pick_(p.weights.begin(), p.weights.end()),
        rng_(p.seed * 1000 + me) {}

  // Live-slot targets per class and process: live_bytes split evenly over
  // classes and processes, in slots of each class.
  static std::vector<uint64_t> live_targets(uint64_t live_bytes, const std::vector<uint32_t>& class_sizes,
                                            uint32_t nprocs) {
    std::vector<uint64_t> t;
    for (uint32_t sz : class_sizes) t.push_back(live_bytes / class_sizes.size() / sz / nprocs);
    return t;
  }

  // One step: an allocation or a release. Returns the ops done.
  template <class Ex>
  uint32_t step(Ex& ex) noexcept {
    const uint32_t c = uint32_t(pick_(rng_));
    if (count_[c] < p_.target[c]) {
      const int r = ex.allocate(c, request_size(c));
      if (r < 0) return 0;
      count_[c] += uint64_t(r);
      return 1;
    }
    if (count_[c] == 0) return 0;
    const size_t k = size_t(rng_() % count_[c]);
    --count_[c];
    bool pass = false;
    uint32_t to = 0;
    if (p_.pass_every && ++since_pass_ >= p_.pass_every && p_.nprocs > 1) {
      since_pass_ = 0;
      pass = true;
      to = (me_ + 1 + uint32_t(rng_() % (p_.nprocs - 1))) % p_.nprocs;
    }
    return ex.release(c, k, pass, to);
  }

  // One alloc + free of the same slot, for the latency histogram.
  template <class Ex>
  void timed_pair(Ex& ex) noexcept {
    const uint32_t c = uint32_t(pick_(rng_));
    ex.timed_alloc_free(request_size(c));
  }

 private:
  uint32_t request_size(uint32_t c) noexcept {
    const uint32_t hi = p_.class_sizes[c], lo = c ? p_.class_sizes[c - 1] : 0;
    return lo + 1 + uint32_t(rng_() % (hi - lo));
  }

  const VarslotGrowthParams& p_;
  uint32_t me_;
  std::vector<uint64_t> count_;  // held slots per class (the executor holds the handles)
  std::discrete_distribution<uint32_t> pick_;
  uint32_t since_pass_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace znslab::workloads
