// The executor of harness/tiered_runner.h: carries out the operations of a
// tiered generator (workloads/tiered_churn_gen.h) on the temporal slab,
// each allocator call timed alone, object bytes written and checked with
// the generator's pattern (workloads::tiered). Defined inline so the
// generator's calls inline. Throws RunError on a refused operation.
// Thread-safety: one thread.
#pragma once

#include <cstdint>
#include <string>

#include "harness/registry.h"
#include "harness/result.h"
#include "harness/timer.h"
#include "src/slab/slab.h"
#include "workloads/tiered_churn_gen.h"

namespace znslab::harness {

class TieredExec {
 public:
  struct Counts {
    uint64_t allocs = 0, frees = 0, accesses = 0, reads = 0, writes = 0, corrupt = 0, access_misses = 0;
  };
  using SampleFn = void (*)(void* ctx, uint32_t epoch);

  // `sample(ctx, n)` runs after every `sample_step`-th allocation of an
  // epoch (with its accesses). Histograms: alloc, free, pin|deref (ns).
  TieredExec(slab::SlabAllocator& a, LatencyHistogram& alloc_lat, LatencyHistogram& free_lat,
             LatencyHistogram& access_lat, bool use_pin, uint64_t sample_step, SampleFn sample, void* sample_ctx)
      : a_(a),
        alloc_lat_(alloc_lat),
        free_lat_(free_lat),
        access_lat_(access_lat),
        use_pin_(use_pin),
        step_(sample_step ? sample_step : 1),
        sample_(sample),
        sample_ctx_(sample_ctx) {
    first_corrupt.reserve(256);
  }

  void begin_epoch(uint32_t n, uint32_t slot) {
    n_ = n;
    if (n == 0) return;
    const uint32_t e = a_.epoch_advance();
    if (e != slot)
      throw RunError("tiered-churn: epoch_advance gave ring epoch " + std::to_string(e) + ", expected " +
                     std::to_string(slot));
  }
  void release(uint64_t handle) {
    const uint64_t t = timer_start();
    Status s = a_.free(slab::Handle{handle});
    free_lat_.record(ticks_to_ns(timer_stop() - t));
    if (!s) throw RunError("tiered-churn: free: " + s.to_string());
    ++counts.frees;
  }
  void close(uint32_t slot) {
    Status st = a_.epoch_close(slot);
    if (!st) throw RunError("tiered-churn: epoch_close(" + std::to_string(slot) + "): " + st.to_string());
  }
  uint64_t allocate(uint32_t size, uint32_t slot, uint64_t key) {
    const uint64_t t = timer_start();
    auto r = a_.allocate(size, slot);
    alloc_lat_.record(ticks_to_ns(timer_stop() - t));
    if (!r)
      throw RunError("tiered-churn: allocate(" + std::to_string(size) + ", epoch " + std::to_string(slot) +
                     ") at workload epoch " + std::to_string(n_) + ": " + r.status().to_string());
    workloads::tiered::fill_object(static_cast<uint8_t*>(r->ptr), key, 0, size);
    ++counts.allocs;
    return r->handle.raw;
  }
  void access(uint64_t handle, uint64_t key, uint32_t version, uint32_t size, bool write) {
    const slab::Handle h{handle};
    slab::SlabAllocator::PinGuard guard;  // holds the slab resident while its bytes are used
    uint8_t* bytes = nullptr;
    const uint64_t t = timer_start();
    if (use_pin_) {
      auto g = a_.pin(h);
      access_lat_.record(ticks_to_ns(timer_stop() - t));
      if (!g) throw RunError("tiered-churn: pin of a live object: " + g.status().to_string());
      guard = std::move(*g);
      bytes = static_cast<uint8_t*>(guard.ptr());
    } else {
      auto p = a_.deref(h);
      access_lat_.record(ticks_to_ns(timer_stop() - t));
      if (!p) throw RunError("tiered-churn: deref of a live object: " + p.status().to_string());
      bytes = static_cast<uint8_t*>(*p);
    }
    if (write) {
      workloads::tiered::fill_object(bytes, key, version, size);
      ++counts.writes;
    } else {
      if (!workloads::tiered::object_intact(bytes, key, version, size)) {
        if (!counts.corrupt)
          first_corrupt = "epoch " + std::to_string(key >> 32) + " object " + std::to_string(uint32_t(key)) + " (" +
                          std::to_string(size) + " B, version " + std::to_string(version) + ")";
        ++counts.corrupt;
      }
      ++counts.reads;
    }
    ++counts.accesses;
  }
  void access_miss() { ++counts.access_misses; }
  void object_done(uint32_t n, uint64_t i) {
    if ((i + 1) % step_ == 0) sample_(sample_ctx_, n);
  }
  // The final drain (untimed, not counted in frees).
  void release_final(uint64_t handle) {
    Status s = a_.free(slab::Handle{handle});
    if (!s) throw RunError("tiered-churn: final free: " + s.to_string());
  }

  Counts counts;
  std::string first_corrupt;  // the first object read back wrong

 private:
  slab::SlabAllocator& a_;
  LatencyHistogram &alloc_lat_, &free_lat_, &access_lat_;
  bool use_pin_;
  uint64_t step_;
  SampleFn sample_;
  void* sample_ctx_;
  uint32_t n_ = 0;
};

}  // namespace znslab::harness
