// The alternating generator (issue 2 §4; seed 002 "Benchmarking
// Methodology": alternating alloc/free): the operation stream of the
// alternating workload and nothing else (no threads, timers, samples or
// JSON). The runner (harness/step_runner.h; bench/) executes it through an
// executor `ex`.
//
// One worker (workers == 1): a table of live_slots objects.
//   fill_phase   allocate every slot once (sizes drawn after the steps);
//   steps        step i frees slot s_i and allocates a size z_i into it,
//                (s_i, z_i) drawn up front from `seed` (mt19937_64, slot
//                uniform in [0, live_slots), size uniform in
//                [min_size, max_size]), so no RNG runs in a timed region;
//                warmup runs steps [0, warmup_steps), the measured passes
//                steps [0, steps) (the runner runs them twice: timed, batch);
//   drain_phase  free every slot.
//   ops: ex.allocate(slot, size, fill_byte), ex.release(slot).
// T >= 2 workers (cross-thread frees, issue 14): worker t allocates and
// hands each new object to worker (t+1) % T; each step of worker t frees
// the oldest object it was handed and allocates a new one. Worker t does
// live_slots / T fills and steps / T (warmup_steps / T) steps, sizes from
// mt19937_64(seed + t) (fills first, then steps).
//   ops: ex.allocate_handoff(size, fill_byte), ex.release_handed().
// The vocabulary is chosen by the executor type (an executor with
// release(slot) gets the slot stream; it is only used with one worker).
// Every loop stops early when ex.ok() turns false (the runner's failure
// flag). fill_byte is 0xA5 with `fill`, else -1 (do not write).
// Thread-safety: const phases may run concurrently for different workers.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace znslab::workloads {

struct AlternatingParams {
  uint64_t live_slots = 4096;
  uint64_t steps = 2000000, warmup_steps = 200000;
  uint32_t min_size = 64, max_size = 768;  // bytes
  uint64_t seed = 42;
  bool fill = false;
  uint32_t workers = 1;
};

class AlternatingGenerator {
  template <class Ex>
  static constexpr bool kSlotOps = requires(Ex& e) { e.release(uint64_t{0}); };

 public:
  static constexpr uint32_t kEpoch = 1;  // every object (ACTIVE throughout)

  explicit AlternatingGenerator(const AlternatingParams& p) : p_(p) {
    std::uniform_int_distribution<uint32_t> size_d(p.min_size, p.max_size);
    if (p.workers == 1) {
      std::mt19937_64 rng(p.seed);
      std::uniform_int_distribution<uint64_t> slot_d(0, p.live_slots - 1);
      const uint64_t nops = std::max(p.steps, p.warmup_steps);
      slot_.resize(nops);
      size_.resize(1);
      size_[0].resize(nops);
      for (uint64_t i = 0; i < nops; ++i) {
        slot_[i] = uint32_t(slot_d(rng));
        size_[0][i] = size_d(rng);
      }
      fill_.resize(1);
      fill_[0].resize(p.live_slots);
      for (auto& z : fill_[0]) z = size_d(rng);
      return;
    }
    const uint64_t nops = std::max(steps_per_worker(), warmup_per_worker());
    size_.resize(p.workers);
    fill_.resize(p.workers);
    for (uint32_t t = 0; t < p.workers; ++t) {
      std::mt19937_64 rng(p.seed + t);
      fill_[t].resize(slots_per_worker());
      for (auto& z : fill_[t]) z = size_d(rng);
      size_[t].resize(nops);
      for (auto& z : size_[t]) z = size_d(rng);
    }
  }

  const AlternatingParams& params() const noexcept { return p_; }
  uint32_t workers() const noexcept { return p_.workers; }
  uint64_t slots_per_worker() const noexcept { return p_.live_slots / p_.workers; }
  uint64_t steps_per_worker() const noexcept { return p_.steps / p_.workers; }
  uint64_t warmup_per_worker() const noexcept { return p_.warmup_steps / p_.workers; }
  int fill_byte() const noexcept { return p_.fill ? 0xA5 : -1; }

  template <class Ex>
  void fill_phase(uint32_t t, Ex& ex) const {
    const std::vector<uint32_t>& fz = fill_[t];
    if constexpr (kSlotOps<Ex>) {
      for (uint64_t s = 0; s < fz.size(); ++s) ex.allocate(s, fz[s], fill_byte());
    } else {
      for (uint64_t i = 0; i < fz.size() && ex.ok(); ++i) ex.allocate_handoff(fz[i], fill_byte());
    }
  }
  // Steps [0, n) of worker t (n: warmup_per_worker() or steps_per_worker()).
  template <class Ex>
  void steps(uint32_t t, uint64_t n, Ex& ex) const {
    const std::vector<uint32_t>& z = size_[t];
    if constexpr (kSlotOps<Ex>) {
      for (uint64_t i = 0; i < n; ++i) {
        ex.release(slot_[i]);
        ex.allocate(slot_[i], z[i], fill_byte());
      }
    } else {
      for (uint64_t i = 0; i < n && ex.ok(); ++i) {
        if (!ex.release_handed()) break;
        ex.allocate_handoff(z[i], fill_byte());
      }
    }
  }
  template <class Ex>
  void drain_phase(uint32_t /*t*/, Ex& ex) const {
    if constexpr (kSlotOps<Ex>) {
      for (uint64_t s = 0; s < p_.live_slots; ++s) ex.release(s);
    } else {
      while (ex.release_handed_if_any()) {
      }
    }
  }

 private:
  AlternatingParams p_;
  std::vector<uint32_t> slot_;               // one worker: slot of step i
  std::vector<std::vector<uint32_t>> size_;  // per worker: size of step i
  std::vector<std::vector<uint32_t>> fill_;  // per worker: sizes of the fill
};

}  // namespace znslab::workloads
