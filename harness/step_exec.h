// Executors of the step runner (harness/step_runner.h): how the operations
// a step generator emits are carried out and timed. Fast path: no locks,
// no allocation; a refused allocation throws RunError on one worker (no
// other thread to stop) and sets the shared failure flag with several.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness/allocators.h"
#include "harness/registry.h"
#include "harness/result.h"
#include "harness/timer.h"

namespace znslab::harness {

// One worker: the slot table. kTimed: every operation timed alone.
template <bool kTimed>
class SlotExecT {
 public:
  AllocatorAdapter* alloc = nullptr;
  Obj* table = nullptr;
  uint32_t epoch = 0;
  LatencyHistogram* h_alloc = nullptr;  // kTimed only
  LatencyHistogram* h_free = nullptr;
  uint64_t errors = 0;                  // frees the allocator reported as failed

  bool ok() const noexcept { return true; }
  void allocate(uint64_t slot, uint32_t size, int fill_byte) {
    Obj& o = table[slot];
    bool ok;
    if constexpr (kTimed) {
      uint64_t a = timer_start();
      ok = alloc->allocate(size, epoch, o);
      uint64_t b = timer_stop();
      if (ok) h_alloc->record(ticks_to_ns(b - a));
    } else {
      ok = alloc->allocate(size, epoch, o);
    }
    if (!ok)
      throw RunError(std::string("alternating: ") + alloc->name() + " refused an allocation of " +
                     std::to_string(size) + " bytes");
    if (fill_byte >= 0) std::memset(o.ptr, fill_byte, size);
  }
  void release(uint64_t slot) noexcept {
    bool ok;
    if constexpr (kTimed) {
      uint64_t a = timer_start();
      ok = alloc->release(table[slot]);
      uint64_t b = timer_stop();
      h_free->record(ticks_to_ns(b - a));
    } else {
      ok = alloc->release(table[slot]);
    }
    errors += !ok;
  }
};
class SlotExecTimed final : public SlotExecT<true> {};
class SlotExecUntimed final : public SlotExecT<false> {};

// Single-producer single-consumer FIFO of objects, sized to never fill.
class Ring {
 public:
  explicit Ring(size_t min_cap) {
    size_t cap = 64;
    while (cap < min_cap) cap <<= 1;
    buf_.resize(cap);
    mask_ = cap - 1;
  }
  void push(const Obj& o) noexcept {
    const uint64_t t = tail_.load(std::memory_order_relaxed);
    buf_[t & mask_] = o;
    tail_.store(t + 1, std::memory_order_release);
  }
  // Waits for an object (the producer is at most a few steps behind);
  // false once `stop` is set while waiting.
  bool pop(Obj& o, const std::atomic<bool>& stop) noexcept {
    const uint64_t h = head_.load(std::memory_order_relaxed);
    for (uint32_t spins = 0; tail_.load(std::memory_order_acquire) == h; ++spins) {
      if (spins > 64) {
        if (stop.load(std::memory_order_relaxed)) return false;
        std::this_thread::yield();
      }
    }
    o = buf_[h & mask_];
    head_.store(h + 1, std::memory_order_release);
    return true;
  }
  bool empty() const noexcept {
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire);
  }

 private:
  std::vector<Obj> buf_;
  size_t mask_ = 0;
  alignas(64) std::atomic<uint64_t> head_{0};
  alignas(64) std::atomic<uint64_t> tail_{0};
};

// The first failure of any worker (message kept, flag raised).
struct StepFailure {
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::string what;
  void fail(const char* m) noexcept {
    {
      std::lock_guard<std::mutex> g(mu);
      if (what.empty()) {
        try {
          what = m;
        } catch (...) {
        }
      }
    }
    failed.store(true);
  }
};

// T >= 2 workers: allocate and hand to the next worker (`out`), free the
// oldest object handed to this one (`in`).
template <bool kTimed>
class HandoffExecT {
 public:
  AllocatorAdapter* alloc = nullptr;
  Ring* in = nullptr;
  Ring* out = nullptr;
  uint32_t epoch = 0;
  StepFailure* failure = nullptr;
  LatencyHistogram* h_alloc = nullptr;  // kTimed only
  LatencyHistogram* h_free = nullptr;
  uint64_t errors = 0;

  bool ok() const noexcept { return !failure->failed.load(std::memory_order_relaxed); }
  void allocate_handoff(uint32_t size, int fill_byte) noexcept {
    Obj n;
    bool ok;
    if constexpr (kTimed) {
      uint64_t a = timer_start();
      ok = alloc->allocate(size, epoch, n);
      uint64_t b = timer_stop();
      h_alloc->record(ticks_to_ns(b - a));
    } else {
      ok = alloc->allocate(size, epoch, n);
    }
    if (!ok) {
      failure->fail("refused an allocation");
      return;
    }
    if (fill_byte >= 0) std::memset(n.ptr, fill_byte, size);
    out->push(n);
  }
  // False when the wait was stopped by a failure.
  bool release_handed() noexcept {
    Obj o;
    if (!in->pop(o, failure->failed)) return false;
    bool ok;
    if constexpr (kTimed) {
      uint64_t a = timer_start();
      ok = alloc->release(o);
      uint64_t b = timer_stop();
      h_free->record(ticks_to_ns(b - a));
    } else {
      ok = alloc->release(o);
    }
    errors += !ok;
    return true;
  }
  // Frees one handed object if any is waiting; false when none is.
  bool release_handed_if_any() noexcept { return !in->empty() && release_handed(); }
};
class HandoffExecTimed final : public HandoffExecT<true> {};
class HandoffExecUntimed final : public HandoffExecT<false> {};

}  // namespace znslab::harness
