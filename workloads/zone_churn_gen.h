// The zone-churn generator (issue 5): the record stream of the zone-churn
// workload and nothing else (no store, device, timers, samples or JSON).
// The runner (harness/store_runner.h) executes it through `ex`:
//   ex.remove(id)             delete record `id` (it dies this epoch)
//   ex.put(id, len, cls)      store record `id`: len bytes, lifetime class cls
//                             (its contents: record_word(id, w) per 8-byte word)
//   ex.read(id)               read back a recently written record (it may
//                             have died meanwhile: the runner decides)
//   ex.end_epoch(epoch)       the epoch's writes are done
// Time advances in epochs. Each record gets a lifetime class c (uniform over
// `lifetimes`, in epochs) and dies at the start of epoch birth +
// lifetimes[c]. Each epoch writes epoch_bytes (the runner derives it from the
// device capacity and live_fraction); the stream ends when target_bytes have
// been written. read_fraction of puts are followed by a read of a record
// drawn from a reservoir of 4096 recently written ones. One mt19937_64(seed)
// draws, in order per put: class, size (uniform [min_size, max_size]), the
// reservoir slot when full, the read decision and the record read.
// Thread-safety: run() is const; one executor per call.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace znslab::workloads {

struct ZoneChurnParams {
  std::vector<uint32_t> lifetimes = {1, 2, 4, 8};  // epochs
  uint64_t min_size = 16384, max_size = 131072;    // bytes per record
  uint64_t seed = 1;
  double read_fraction = 0.05;
  uint64_t epoch_bytes = 0;   // bytes written per epoch
  uint64_t target_bytes = 0;  // bytes written in all
};

class ZoneChurnGenerator {
 public:
  explicit ZoneChurnGenerator(const ZoneChurnParams& p) : p_(p) {}
  const ZoneChurnParams& params() const noexcept { return p_; }

  // The 8-byte word w of record id (records carry their number in every word).
  static uint64_t record_word(uint64_t id, uint64_t w) noexcept { return id * 0x9E3779B97F4A7C15ull + w; }

  // Emits the whole stream. Stops early when ex.put() returns false.
  template <class Ex>
  void run(Ex& ex) const {
    uint32_t lmax = 0;
    for (uint32_t l : p_.lifetimes) lmax = std::max(lmax, l);
    std::vector<std::vector<uint64_t>> dying(lmax + 1);  // by death epoch (ring)
    std::vector<uint64_t> reservoir;                     // recent live records for reads
    std::mt19937_64 rng(p_.seed);
    std::uniform_int_distribution<uint64_t> size_dist(p_.min_size, p_.max_size);
    uint64_t records = 0, written = 0;
    for (uint64_t epoch = 0; written < p_.target_bytes; ++epoch) {
      auto& die = dying[epoch % dying.size()];
      for (uint64_t id : die) ex.remove(id);
      die.clear();
      uint64_t epoch_written = 0;
      while (epoch_written < p_.epoch_bytes && written < p_.target_bytes) {
        const uint32_t cls = uint32_t(rng() % p_.lifetimes.size());
        const uint32_t len = uint32_t(size_dist(rng));
        const uint64_t id = records;
        if (!ex.put(id, len, cls)) return;
        dying[(epoch + p_.lifetimes[cls]) % dying.size()].push_back(id);
        if (reservoir.size() < 4096) reservoir.push_back(id);
        else reservoir[rng() % reservoir.size()] = id;
        ++records;
        epoch_written += len;
        written += len;
        if (p_.read_fraction > 0 && double(rng() % 1000000) < p_.read_fraction * 1e6)
          ex.read(reservoir[rng() % reservoir.size()]);
      }
      ex.end_epoch(epoch);
    }
  }

 private:
  ZoneChurnParams p_;
};

}  // namespace znslab::workloads
