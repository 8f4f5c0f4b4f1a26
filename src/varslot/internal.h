// src/varslot internals shared by pool.cpp, alloc.cpp and host.cpp: layout
// arithmetic, the futex doorbell, and the inline extent lookup of the fast
// path. Not part of the module's interface.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>

#include "src/varslot/pool.h"

namespace znslab::varslot {

inline uint64_t round_up(uint64_t v, uint64_t a) noexcept { return (v + a - 1) / a * a; }

inline bool mode_is_single_file(GrowthMode m) noexcept { return m != GrowthMode::kExtentFiles; }

inline ExtentHeader* ext_header(uint8_t* base) noexcept { return reinterpret_cast<ExtentHeader*>(base); }
inline SlotMeta* meta_of(uint8_t* base) noexcept {
  return reinterpret_cast<SlotMeta*>(base + sizeof(ExtentHeader));
}

// Shared (not FUTEX_PRIVATE) futex calls on a 32-bit word of the segment:
// the doorbell and map_generation. wait returns after a wake, a timeout,
// or at once when *word != expected.
inline void futex_wait(std::atomic<uint32_t>* word, uint32_t expected, int timeout_ms) noexcept {
  timespec ts{timeout_ms / 1000, long(timeout_ms % 1000) * 1000000L};
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}
inline void futex_wake_all(std::atomic<uint32_t>* word) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
}

inline uint8_t* Pool::extent_base(uint32_t c, uint32_t e) noexcept {
  uint8_t* p = ext_[c][e].load(std::memory_order_acquire);
  return p ? p : map_extent_slow(c, e);
}

}  // namespace znslab::varslot
