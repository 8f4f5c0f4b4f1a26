// The zone-write generator (issue 3): the I/O stream of one zone-write pass
// and nothing else (no device, buffers, timers, samples or JSON). The
// runner (harness/device_runner.h, run_zone_writes) executes it through `ex`:
//   ex.zone_capacity()          bytes writable per zone
//   ex.next_zone(stream)        the stream moves to a fresh zone
//   ex.write(stream, off, len)  (or ex.append) one I/O of len bytes
//   ex.drain()                  the pass's I/Os are all issued
// `zones` streams are written round-robin, one I/O of block_size bytes
// each (shorter at a zone's end and at the pass's end) until total_bytes
// are issued; a stream whose zone is full moves to the next zone.
// Deterministic (no random numbers). Thread-safety: run_pass() is const.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

namespace znslab::workloads {

struct ZoneWriteParams {
  uint32_t zones = 1;              // streams written concurrently
  uint64_t block_size = 131072;    // bytes per I/O
  uint64_t total_bytes = 1ull << 30;  // bytes per pass
  bool append = false;             // zone append instead of writes at the write pointer
};

class ZoneWriteGenerator {
 public:
  explicit ZoneWriteGenerator(const ZoneWriteParams& p) : p_(p) {}
  const ZoneWriteParams& params() const noexcept { return p_; }

  template <class Ex>
  void run_pass(Ex& ex) const {
    const uint64_t cap = ex.zone_capacity();
    std::vector<uint64_t> next(p_.zones, 0);  // bytes written into each stream's zone
    for (uint32_t k = 0; k < p_.zones; ++k) ex.next_zone(k);
    uint64_t issued = 0, rr = 0;
    while (issued < p_.total_bytes) {
      const uint32_t k = uint32_t(rr++ % p_.zones);
      if (next[k] >= cap) {
        ex.next_zone(k);
        next[k] = 0;
      }
      const uint64_t len = std::min<uint64_t>({p_.block_size, cap - next[k], p_.total_bytes - issued});
      if (p_.append) ex.append(k, next[k], len);
      else ex.write(k, next[k], len);
      next[k] += len;
      issued += len;
    }
    ex.drain();
  }

 private:
  ZoneWriteParams p_;
};

}  // namespace znslab::workloads
