// zns::FaultDevice: a fault-injecting wrapper around any ZonedDevice
// (leveldb's EnvWrapper / FaultInjectionTestEnv pattern: it derives from
// ZonedDeviceWrapper and overrides only what it changes). Every call is
// forwarded unchanged unless a fault is armed:
//   - fail_nth_io(n): the n-th data I/O from now (write, append, read, or
//     one request of submit(); 1 = the next) fails with kIoError / EIO and
//     is NOT forwarded (as if the command died on the way: the device's
//     write pointer does not move). repeat=true fails every n-th.
//   - set_zone_condition(z, READ_ONLY|OFFLINE): the zone goes Read Only or
//     Offline as a device does on media failure (ZNS 1.1 §2.1.1.6-7). The
//     inner device does it itself when it supports inject_zone_condition()
//     (the emulator, persistently); otherwise the wrapper keeps an overlay:
//     writes/appends fail Zone Is Read Only / Zone Is Offline, reads of an
//     Offline zone fail Zone Is Offline, management commands fail Invalid
//     Zone State Transition, report_zones shows the state.
// Thread-safety: as the inner device; the fault counters are atomics and
// the overlay is guarded by a mutex.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "zns/zoned_device.h"

namespace znslab::zns {

class FaultDevice : public ZonedDeviceWrapper {
 public:
  explicit FaultDevice(std::unique_ptr<ZonedDevice> inner);

  // Arms the I/O fault: the n-th data I/O from now fails (n >= 1; 0 disarms).
  void fail_nth_io(uint64_t n, bool repeat = false) noexcept;
  // Forces zone z to kReadOnly or kOffline (see above). Errors:
  // kInvalidArgument (other states), kLbaOutOfRange.
  Status set_zone_condition(uint32_t zone, ZoneState state);
  // Data I/Os seen / failed by the wrapper since construction.
  uint64_t io_count() const noexcept { return ios_.load(); }
  uint64_t injected_failures() const noexcept { return failures_.load(); }
  Result<std::vector<Zone>> report_zones(uint32_t first, uint32_t count) override;
  Status open(uint32_t zone) override;
  Status close(uint32_t zone) override;
  Status finish(uint32_t zone) override;
  Status reset(uint32_t zone) override;
  Status write(uint32_t zone, uint64_t offset, const void* buf, size_t len) override;
  Result<uint64_t> append(uint32_t zone, const void* buf, size_t len) override;
  Status read(uint32_t zone, uint64_t offset, void* buf, size_t len) override;
  Status submit(std::span<const IoRequest> batch) override;
  Result<size_t> reap(std::span<IoCompletion> out, size_t min_complete) override;
  Status inject_zone_condition(uint32_t zone, ZoneState state) override {
    return set_zone_condition(zone, state);
  }

 private:
  bool take_fault() noexcept;                  // counts one I/O; true = fail it
  std::optional<ZoneState> overlay(uint32_t zone);
  Status overlay_write_status(uint32_t zone);  // ok when no overlay applies

  std::atomic<uint64_t> ios_{0}, failures_{0}, target_{0}, period_{0};
  std::mutex mu_;
  std::map<uint32_t, ZoneState> overlay_;
  std::vector<IoCompletion> ready_;            // completions of failed async requests
};

}  // namespace znslab::zns
