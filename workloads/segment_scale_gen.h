// The segment-scale generator (issue 5; seed 001 "Phase 4: Performance
// Validation"): the operation stream of the segment-scale workload and
// nothing else (no allocator, files, timers, samples or JSON). The runner
// (harness/segment_runner.h) executes it through `ex`:
//   ex.insert(structure, idx, len)  append record idx (len payload bytes,
//                                   payload_byte(idx, i)) to a structure
//   ex.pin_batch(r)                 pin + unpin a live segment chosen by the
//                                   random number r (runner: r % segments)
//   ex.verify(idx)                  read record idx back and check it
// One mt19937_64(seed) draws, in order: per record the structure (uniform
// over `structures`) and the length (uniform [min_size, max_size]); then
// one number per pin batch; then min(verify_records, records) record
// indices. Thread-safety: run() is const; one executor per call.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>

namespace znslab::workloads {

struct SegmentScaleParams {
  uint64_t records = 1000000;
  uint32_t structures = 16;
  uint32_t min_size = 64, max_size = 512;  // payload bytes per record
  uint64_t pin_batches = 200000;
  uint64_t verify_records = 100000;
  uint64_t seed = 1;
};

class SegmentScaleGenerator {
 public:
  explicit SegmentScaleGenerator(const SegmentScaleParams& p) : p_(p) {}
  const SegmentScaleParams& params() const noexcept { return p_; }

  static uint8_t payload_byte(uint32_t idx, uint32_t i) noexcept {
    return uint8_t((idx * 2654435761u + i * 40503u) >> 13);
  }

  template <class Ex>
  void run(Ex& ex) const {
    std::mt19937_64 rng(p_.seed);
    std::uniform_int_distribution<uint32_t> size_dist(p_.min_size, p_.max_size);
    for (uint64_t i = 0; i < p_.records; ++i) {
      const uint32_t s = uint32_t(rng() % p_.structures);
      const uint32_t len = size_dist(rng);
      ex.insert(s, uint32_t(i), len);
    }
    ex.inserts_done();
    for (uint64_t b = 0; b < p_.pin_batches; ++b) ex.pin_batch(rng());
    const uint64_t nverify = std::min<uint64_t>(p_.verify_records, p_.records);
    for (uint64_t v = 0; v < nverify; ++v) ex.verify(uint32_t(rng() % p_.records));
  }

 private:
  SegmentScaleParams p_;
};

}  // namespace znslab::workloads
