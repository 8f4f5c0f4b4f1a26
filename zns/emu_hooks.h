// Test shim of the emulator's OS boundary (crash-point and fault tests).
//
// The emulator calls emu_step() at every boundary where its on-file state
// can change: before and after each data I/O (one io_uring submission and
// its completions), each zone table store and each hole punch. A test
// installs a hook that counts the boundaries and, in a forked child, kills
// the process at the Nth (tests/zns_crash_point_test.cpp), or that makes a
// data I/O fail (errno) or come back short (tests/zns_failed_write_test.cpp).
// With no hook installed a step is one relaxed atomic load.
// Thread-safety: set_emu_hook may race with I/O only in tests that accept it.
#pragma once

#include <atomic>
#include <cstdint>

namespace znslab::zns {

enum class EmuStep : uint8_t {
  kDataIo,      // before a data read/write is submitted
  kDataDone,    // after its completion was reaped
  kTableStore,  // before a zone table word is stored
  kTableStored, // after
  kPunch,       // before the data of a reset zone is released (fallocate)
  kPunched,     // after
};

// What the hook asks of a data I/O at EmuStep::kDataDone.
struct EmuFault {
  int err = 0;           // > 0: the I/O fails with this errno
  int64_t keep = -1;     // >= 0: only this many bytes count as transferred
};

// Returns a fault to apply (meaningful only for kDataDone). `bytes` is the
// size of the I/O (0 for table and punch steps).
using EmuHook = EmuFault (*)(EmuStep step, uint64_t bytes, void* ctx);

void set_emu_hook(EmuHook hook, void* ctx) noexcept;

namespace detail {
extern std::atomic<EmuHook> g_emu_hook;
extern void* g_emu_hook_ctx;
}  // namespace detail

inline EmuFault emu_step(EmuStep step, uint64_t bytes = 0) noexcept {
  EmuHook h = detail::g_emu_hook.load(std::memory_order_acquire);
  if (h == nullptr) return EmuFault{};
  return h(step, bytes, detail::g_emu_hook_ctx);
}

}  // namespace znslab::zns
