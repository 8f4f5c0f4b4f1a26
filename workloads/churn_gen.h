// The churn generator (seed 002 "Bounded RSS"; issue 2 §4): the operation
// stream of the churn workload and nothing else. It knows no threads,
// timers, samples or JSON: the runner (harness/cycle_runner.h; bench/)
// calls its phases and executes the operations it emits through an
// executor `ex` with
//   ex.allocate(slot, size, epoch, fill_byte, pinned)  one object into `slot`
//                  (fill_byte < 0: do not write it; pinned: it lives to the
//                  end, outside the slot table)
//   ex.release(slot)                                   frees the slot's object
//                                                      (an empty slot: no-op)
//   ex.epoch_open(epoch, round) / ex.epoch_close(epoch) epoch events
// Header-only, so bench/ drives the same stream without the harness.
//
// The stream. Rounds (cycles) c = 0 .. cycles-1; the objects of a round are
// split into `workers` contiguous slot ranges (the runner gives each range
// to one thread). Per round:
//   begin_round   epoch_open(1 + c % 15)
//   alloc phase   worker t allocates its slots in order, sizes from
//                 size_distribution in [min_size, max_size] drawn per
//                 (seed, c, t); with fill, every requested byte is written
//                 with 0x5A ^ (c & 0xFF). Pinned slots (round(pinned_fraction
//                 x objects) indices chosen up front from seed) are
//                 allocated in round 0 only, in epoch 0, interleaved in time
//                 with the others, and live to the end;
//   free phase    worker t frees the slots of worker (t+1) % workers in
//                 free_order (random: a fixed permutation per worker; fifo;
//                 lifo), so with >= 2 workers every free is cross-thread;
//   end_round     epoch_close(1 + c % 15).
// Epoch 0 stays ACTIVE for the whole run; ring slots 1..15 are reused every
// 15 rounds and never hold a live object when reopened.
// Thread-safety: const phases may run concurrently for different workers.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace znslab::workloads {

inline uint64_t splitmix64(uint64_t& x) noexcept {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

enum class SizeDist { kUniform, kLogUniform, kSizeClasses };
enum class FreeOrder { kRandom, kFifo, kLifo };

struct ChurnParams {
  uint64_t cycles = 150;
  uint64_t objects = 64000;       // per cycle, all workers together
  uint32_t workers = 1;
  uint64_t seed = 42;
  uint32_t min_size = 64, max_size = 768;  // bytes
  double pinned_fraction = 0.2;
  bool fill = true;
  SizeDist dist = SizeDist::kUniform;
  FreeOrder order = FreeOrder::kRandom;
};

// Object sizes of one (cycle, worker) stream.
class ChurnSizes {
 public:
  ChurnSizes(const ChurnParams& p, uint64_t cycle, uint64_t worker) : p_(p) {
    state_ = p.seed * 0x100000001B3ull ^ (cycle + 1) * 0x9E3779B97F4A7C15ull ^ (worker + 1) * 0xD6E8FEB86659FD93ull;
    static constexpr uint32_t kClasses[] = {64, 96, 128, 192, 256, 384, 512, 768};
    for (uint32_t c : kClasses)
      if (c >= p.min_size && c <= p.max_size) classes_[nclasses_++] = c;
    if (nclasses_ == 0) classes_[nclasses_++] = p.max_size;
    lmin_ = std::log(double(p.min_size));
    lspan_ = std::log(double(p.max_size) + 1.0) - lmin_;
  }
  uint32_t next() noexcept {
    uint64_t r = splitmix64(state_);
    switch (p_.dist) {
      case SizeDist::kUniform:
        return p_.min_size + uint32_t(r % (p_.max_size - p_.min_size + 1));
      case SizeDist::kLogUniform: {
        double u = double(r >> 11) * (1.0 / 9007199254740992.0);
        uint32_t s = uint32_t(std::exp(lmin_ + u * lspan_));
        return std::clamp(s, p_.min_size, p_.max_size);
      }
      case SizeDist::kSizeClasses:
        return classes_[r % nclasses_];
    }
    return p_.min_size;
  }

 private:
  const ChurnParams& p_;
  uint64_t state_;
  uint32_t classes_[8] = {};
  uint32_t nclasses_ = 0;
  double lmin_ = 0, lspan_ = 0;
};

class ChurnGenerator {
 public:
  static constexpr uint32_t kPinnedEpoch = 0;
  static constexpr uint32_t kCycleEpochs = 15;  // ring slots 1..15

  // Chooses the pinned slots and the free orders up front (O(objects)).
  explicit ChurnGenerator(const ChurnParams& p) : p_(p), pinned_(p.objects, 0), perm_(p.workers) {
    const uint64_t n = p.objects;
    npinned_ = uint64_t(std::llround(p.pinned_fraction * double(n)));
    {  // partial Fisher-Yates
      std::vector<uint32_t> idx(n);
      for (uint64_t i = 0; i < n; ++i) idx[i] = uint32_t(i);
      uint64_t st = p.seed ^ 0x5A17ED5EEDull;
      for (uint64_t i = 0; i < npinned_; ++i) {
        uint64_t j = i + splitmix64(st) % (n - i);
        std::swap(idx[i], idx[j]);
        pinned_[idx[i]] = 1;
      }
    }
    for (uint32_t t = 0; t < p.workers; ++t) {
      std::vector<uint32_t>& fp = perm_[t];
      fp.resize(slot_end(t) - slot_begin(t));
      for (uint32_t i = 0; i < fp.size(); ++i) fp[i] = i;
      if (p.order == FreeOrder::kLifo) std::reverse(fp.begin(), fp.end());
      if (p.order == FreeOrder::kRandom) {
        uint64_t st = p.seed ^ (0xF4EEull + t);
        for (size_t i = fp.size(); i > 1; --i) std::swap(fp[i - 1], fp[splitmix64(st) % i]);
      }
    }
  }

  const ChurnParams& params() const noexcept { return p_; }
  uint64_t rounds() const noexcept { return p_.cycles; }
  uint32_t workers() const noexcept { return p_.workers; }
  uint64_t slots() const noexcept { return p_.objects; }
  uint64_t objects_per_round() const noexcept { return p_.objects; }
  uint64_t pinned_objects() const noexcept { return npinned_; }
  // Worker t's slots: [slot_begin(t), slot_end(t)).
  uint64_t slot_begin(uint32_t t) const noexcept { return p_.objects * t / p_.workers; }
  uint64_t slot_end(uint32_t t) const noexcept { return p_.objects * (t + 1) / p_.workers; }
  // Upper bound of worker t's pinned objects (for storage reserved up front).
  uint64_t pinned_capacity(uint32_t t) const noexcept {
    return uint64_t(double(slot_end(t) - slot_begin(t)) * p_.pinned_fraction) + 16;
  }
  static uint32_t round_epoch(uint64_t c) noexcept { return 1 + uint32_t(c % kCycleEpochs); }

  template <class Ex>
  void begin_round(uint64_t c, Ex& ex) const {
    ex.epoch_open(round_epoch(c), c);
  }
  template <class Ex>
  void alloc_phase(uint64_t c, uint32_t t, Ex& ex) const {
    ChurnSizes sizes(p_, c, t);
    const uint32_t e = round_epoch(c);
    const int fill = p_.fill ? int(0x5A ^ (c & 0xFF)) : -1;
    for (uint64_t i = slot_begin(t), hi = slot_end(t); i < hi; ++i) {
      const uint32_t size = sizes.next();
      const bool pin = c == 0 && pinned_[i];
      ex.allocate(i, size, pin ? kPinnedEpoch : e, fill, pin);
    }
  }
  template <class Ex>
  void free_phase(uint64_t /*c*/, uint32_t t, Ex& ex) const {
    const uint32_t v = (t + 1) % p_.workers;
    const uint64_t lo = slot_begin(v);
    for (uint32_t k : perm_[v]) ex.release(lo + k);
  }
  template <class Ex>
  void end_round(uint64_t c, Ex& ex) const {
    ex.epoch_close(round_epoch(c));
  }

 private:
  ChurnParams p_;
  uint64_t npinned_ = 0;
  std::vector<uint8_t> pinned_;            // per slot of round 0
  std::vector<std::vector<uint32_t>> perm_;  // per worker: free order of its slots (relative)
};

}  // namespace znslab::workloads
