// The tiered-churn generator (issue 11; docs/tiered.md): the operation
// stream of the tiered-churn workload and nothing else (no allocator,
// timers, samples or JSON). The runner (harness/tiered_runner.h) executes
// it through an executor `ex`.
//
// Workload epoch n (0 .. epochs-1) is ring epoch n % 16. epoch(n, ex):
//   ex.begin_epoch(n, slot)            the runner advances the allocator's ring
//   ex.release(handle)                 every object due at the start of n
//                                      (its epoch expired, or a mispredicted
//                                      object's extra epochs ran out)
//   ex.close(slot)                     ring epochs expiring at n
//   then epoch_objects times:
//     ex.allocate(size, slot, key) -> handle   (the runner writes version 0)
//     accesses_per_object accesses on average (a credit carried across
//     epochs): ex.access(handle, key, version, size, write), or
//     ex.access_miss() when 64 draws found no live object
//     ex.object_done(n, i)             after allocation i of epoch n and its
//                                      accesses (the runner samples there)
// drain(ex): ex.release_final(handle) for every object still live.
//
// Epoch n lives lifetimes[n % len] epochs; a `mispredicted` fraction of its
// objects is freed 1..max_extra epochs later (uniform). An access draws an
// epoch age a with P(a) ~ (a + 1)^-skew over the live epochs, then a random
// live object of that epoch (a mispredicted one once the epoch expired); a
// `write_fraction` of accesses rewrite it with its next version. Object
// bytes are a function of (key, version, offset): fill_object /
// object_intact (key = workload epoch << 32 | index).
//
// The handle tables (16 B per object, one table per ring epoch, plus the
// lists of mispredicted objects) are allocated and touched in the
// constructor, so the runner's baseline RSS includes them.
// Randomness: one mt19937_64(seed), drawn in the order above.
// Thread-safety: none (one thread).
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace znslab::workloads {

// The object pattern: 8-byte words, a function of (key, version, offset).
namespace tiered {
inline constexpr uint64_t kMixA = 0x9E3779B97F4A7C15ull, kMixB = 0xC2B2AE3D27D4EB4Full;
// Word i (8 bytes, the tail truncated) of object `key` at `version`.
inline uint64_t pattern_word(uint64_t key, uint32_t version, size_t i) {
  return (key * kMixA) ^ (uint64_t(version + 1) * kMixB) ^ (uint64_t(i) * 0x100000001B3ull);
}
inline void fill_object(uint8_t* p, uint64_t key, uint32_t version, size_t len) {
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const uint64_t w = pattern_word(key, version, i);
    std::memcpy(p + i, &w, 8);
  }
  if (i < len) {
    const uint64_t w = pattern_word(key, version, i);
    std::memcpy(p + i, &w, len - i);
  }
}
inline bool object_intact(const uint8_t* p, uint64_t key, uint32_t version, size_t len) {
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const uint64_t w = pattern_word(key, version, i);
    if (std::memcmp(p + i, &w, 8) != 0) return false;
  }
  if (i < len) {
    const uint64_t w = pattern_word(key, version, i);
    if (std::memcmp(p + i, &w, len - i) != 0) return false;
  }
  return true;
}
}  // namespace tiered

struct TieredChurnParams {
  uint64_t epoch_objects = 0;
  std::vector<uint32_t> lifetimes;  // epochs, each in [1, 15 - max_extra]
  uint32_t min_size = 64, max_size = 768;  // bytes
  double mispredicted = 0;          // fraction of objects outliving their epoch
  uint32_t max_extra = 4;           // epochs a mispredicted object outlives it by, at most
  double skew = 1.0;                // Zipf exponent over epoch age
  double accesses_per_object = 1.0;
  double write_fraction = 0.25;
  uint64_t seed = 1;
};

class TieredChurnGen {
 public:
  static constexpr uint32_t kRing = 16;  // the slab's epoch ring (slab::kEpochCount)

  struct Ref {
    uint32_t slot = 0, idx = 0;
  };
  struct Obj {
    uint64_t handle = 0;
    uint32_t death = 0;  // workload epoch at whose start it is freed
    uint16_t size = 0;
    uint16_t version = 0;
  };

  explicit TieredChurnGen(const TieredChurnParams& p) : p_(p), rng_(p.seed) {
    for (auto& t : tables_) {
      t.objs.assign(p_.epoch_objects, Obj{});
      t.mis.assign(p_.epoch_objects, 0);
      t.mis.clear();  // keeps the touched capacity
    }
    double sum = 0;
    for (uint32_t a = 0; a < kRing; ++a) {
      sum += std::pow(double(a + 1), -p_.skew);
      zipf_cdf_[a] = sum;
    }
    for (double& c : zipf_cdf_) c /= sum;
  }

  // One workload epoch (see the header comment).
  template <class Ex>
  void epoch(uint32_t n, Ex& ex) {
    const uint32_t slot = begin_epoch(n);
    ex.begin_epoch(n, slot);
    for_each_due([&](Ref r) {
      ex.release(obj(r).handle);
      freed(r);
    });
    for_each_expiring([&](uint32_t s) { ex.close(s); });
    for (uint64_t i = 0; !epoch_full(); ++i) {
      const Obj ob = plan_object();
      const uint64_t key = next_key();
      const uint64_t h = ex.allocate(ob.size, slot, key);
      added(ob, h);
      for (credit_ += p_.accesses_per_object; credit_ >= 1.0; credit_ -= 1.0) access(ex);
      ex.object_done(n, i);
    }
  }
  // Frees every object still live (after the last epoch).
  template <class Ex>
  void drain(Ex& ex) {
    for (uint32_t s = 0; s < kRing; ++s)
      for (uint32_t i = 0; i < tables_[s].count; ++i)
        if (tables_[s].objs[i].handle) {
          ex.release_final(tables_[s].objs[i].handle);
          freed(Ref{s, i});
        }
  }

  uint64_t live_bytes() const { return live_bytes_; }  // requested bytes of live objects

 private:
  struct Table {
    std::vector<Obj> objs;      // epoch_objects entries; handle 0 = free
    std::vector<uint32_t> mis;  // indices of mispredicted objects
    uint32_t count = 0, live = 0, epoch = 0, expiry = 0;
    bool used = false;
  };

  // Workload epoch n begins: returns its ring slot. The slot's previous
  // epoch is dead by construction (lifetime + extra <= 15).
  uint32_t begin_epoch(uint32_t n) {
    cur_ = n;
    const uint32_t s = n % kRing;
    Table& t = tables_[s];
    t = Table{std::move(t.objs), std::move(t.mis)};
    t.mis.clear();
    t.used = true;
    t.epoch = n;
    t.expiry = n + p_.lifetimes[n % p_.lifetimes.size()];
    return s;
  }
  template <class F>
  void for_each_due(F&& f) {
    for (uint32_t s = 0; s < kRing; ++s) {
      Table& t = tables_[s];
      if (!t.used || t.live == 0) continue;
      if (t.expiry == cur_) {
        for (uint32_t i = 0; i < t.count; ++i)
          if (t.objs[i].handle && t.objs[i].death == cur_) f(Ref{s, i});
      } else if (t.expiry < cur_) {
        for (uint32_t i : t.mis)
          if (t.objs[i].handle && t.objs[i].death == cur_) f(Ref{s, i});
      }
    }
  }
  template <class F>
  void for_each_expiring(F&& f) const {
    for (uint32_t s = 0; s < kRing; ++s)
      if (tables_[s].used && tables_[s].expiry == cur_ && tables_[s].epoch != cur_) f(s);
  }
  Obj plan_object() {
    Obj o;
    o.size = uint16_t(p_.min_size + uint32_t(rng_() % (uint64_t(p_.max_size - p_.min_size) + 1)));
    const Table& t = tables_[cur_ % kRing];
    o.death = t.expiry;
    if (p_.mispredicted > 0 && coin() < p_.mispredicted) o.death += 1 + uint32_t(rng_() % p_.max_extra);
    return o;
  }
  bool epoch_full() const { return tables_[cur_ % kRing].count >= p_.epoch_objects; }
  // The key of the object added next in the current epoch.
  uint64_t next_key() const {
    const Table& t = tables_[cur_ % kRing];
    return (uint64_t(t.epoch) << 32) | t.count;
  }
  void added(const Obj& o, uint64_t handle) {
    Table& t = tables_[cur_ % kRing];
    const uint32_t i = t.count++;
    t.objs[i] = o;
    t.objs[i].handle = handle;
    if (o.death != t.expiry) t.mis.push_back(i);
    ++t.live;
    live_bytes_ += o.size;
  }
  void freed(Ref r) {
    Table& t = tables_[r.slot];
    live_bytes_ -= t.objs[r.idx].size;
    t.objs[r.idx].handle = 0;
    --t.live;
  }
  Obj& obj(Ref r) { return tables_[r.slot].objs[r.idx]; }

  // A live object to access (false when none was found in 64 draws).
  bool pick_access(Ref* out, bool* write) {
    for (int tries = 0; tries < 64; ++tries) {
      const double u = coin();
      uint32_t age = 0;
      while (age + 1 < kRing && zipf_cdf_[age] < u) ++age;
      if (age > cur_) continue;
      const uint32_t s = (cur_ - age) % kRing;
      const Table& t = tables_[s];
      if (!t.used || t.live == 0 || t.count == 0) continue;
      uint32_t i;
      if (t.expiry > cur_) i = uint32_t(rng_() % t.count);
      else if (!t.mis.empty()) i = t.mis[rng_() % t.mis.size()];
      else continue;
      if (!t.objs[i].handle) continue;
      *out = Ref{s, i};
      *write = coin() < p_.write_fraction;
      return true;
    }
    return false;
  }
  template <class Ex>
  void access(Ex& ex) {
    Ref r;
    bool write = false;
    if (!pick_access(&r, &write)) return ex.access_miss();
    Obj& ob = obj(r);
    if (write) ++ob.version;
    ex.access(ob.handle, (uint64_t(tables_[r.slot].epoch) << 32) | r.idx, ob.version, ob.size, write);
  }
  double coin() { return double(rng_() >> 11) * 0x1.0p-53; }

  TieredChurnParams p_;
  std::mt19937_64 rng_;
  std::array<Table, kRing> tables_;
  std::array<double, kRing> zipf_cdf_{};
  uint32_t cur_ = 0;
  uint64_t live_bytes_ = 0;
  double credit_ = 0;  // accesses owed (accesses_per_object per allocation)
};

}  // namespace znslab::workloads
