// zns::RealZonedDevice: what the two real-device backends (zbd:, nvme:)
// share — argument checks, the per-zone write ordering rule, the
// asynchronous queue on top of the io_uring engine (zns/io/uring_engine.h),
// and the cached write pointer used to emulate zone append on zbd:.
//
// Ordering rule: at most ONE regular write (or emulated append) is in flight
// per zone. io_uring does not keep submission order when a request is
// retried from its worker threads, and a zoned device rejects a write that
// overtakes its predecessor (not at the write pointer). Queue depth comes
// from writing many zones at once. Writes larger than the device limit
// (max_io_bytes) are cut into pieces issued one after another; reads are cut
// into pieces issued together. Native zone appends (nvme:) are never split
// (ZASL) and may be in flight together in one zone: the device picks the LBA.
//
// reap(out, min_complete) returns fewer than min_complete completions (never
// blocks) when nothing it could wait for is in flight.
//
// Thread-safety: every public method may be called from any thread. The
// asynchronous path has one lock; reap() holds it while it waits, so a
// concurrent submit() waits for the reaper's next completion.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "zns/io/uring_engine.h"
#include "zns/zoned_device.h"

namespace znslab::zns {

enum class ZoneMgmt : uint8_t { kOpen, kClose, kFinish, kReset };

// The largest I/O that is never split (block layer) or refused with EINVAL
// (NVMe passthrough) whatever the physical layout of the user buffer:
// max_bytes (max_sectors_kb / MDTS) limited to (max_segments - 1) pages —
// each page of a user buffer may be its own DMA segment, plus one for a
// buffer not aligned to a page (the NVMe PCI driver of 6.1 allows 127
// segments, so 512 KiB = 128 pages can fail). Rounded down to lba_bytes.
// max_segments 0 = unknown (no segment limit applied).
uint64_t unsplit_io_limit(uint64_t max_bytes, uint64_t max_segments, uint32_t lba_bytes) noexcept;

class RealZonedDevice : public ZonedDevice {
 public:
  ~RealZonedDevice() override;

  const DeviceInfo& info() const noexcept override { return info_; }
  Result<std::vector<Zone>> report_zones(uint32_t first, uint32_t count) override;
  Status open(uint32_t zone) override { return mgmt(ZoneMgmt::kOpen, zone); }
  Status close(uint32_t zone) override { return mgmt(ZoneMgmt::kClose, zone); }
  Status finish(uint32_t zone) override { return mgmt(ZoneMgmt::kFinish, zone); }
  Status reset(uint32_t zone) override { return mgmt(ZoneMgmt::kReset, zone); }
  Status write(uint32_t zone, uint64_t offset, const void* buf, size_t len) override;
  Result<uint64_t> append(uint32_t zone, const void* buf, size_t len) override;
  Status read(uint32_t zone, uint64_t offset, void* buf, size_t len) override;
  Status submit(std::span<const IoRequest> batch) override;
  Result<size_t> reap(std::span<IoCompletion> out, size_t min_complete) override;

 protected:
  RealZonedDevice() = default;
  // Call once info_ is filled (sizes the per-zone state).
  void init_zones();

  // ---- backend hooks -------------------------------------------------------
  // Reports zones [first, first+count) (already range-checked).
  virtual Result<std::vector<Zone>> do_report(uint32_t first, uint32_t count) = 0;
  virtual Status do_mgmt(ZoneMgmt op, uint32_t zone) = 0;
  // True when the device has a zone append command (nvme:); false when
  // append is emulated by a write at the cached write pointer (zbd:).
  virtual bool native_append() const noexcept = 0;
  // Queues one piece (len <= max_io_bytes, or <= zone_append_max_bytes for
  // a native append) on `eng`. `offset` is zone-relative (ignored for kAppend).
  virtual Status queue_piece(io::UringEngine& eng, IoOp op, uint32_t zone, uint64_t offset,
                             void* buf, size_t len, uint64_t tag) = 0;
  // Maps one piece's completion to a Status; for a native append stores the
  // zone-relative offset the data landed at in *landed.
  virtual Status piece_status(IoOp op, uint32_t zone, const io::EngineCompletion& c,
                              uint64_t* landed) = 0;
  // Options for the engines this device creates (big_entries for nvme:).
  virtual io::EngineOptions engine_options(unsigned queue_depth) const = 0;
  // True when the device may return something other than zeros for blocks
  // beyond the write pointer (null_blk returns 0xff): reads are then
  // zero-filled past the write pointer to keep the ZonedDevice contract.
  virtual bool zero_fill_beyond_wp() const noexcept { return false; }

  DeviceInfo info_;

 private:
  struct AsyncOp {
    IoRequest req;
    uint64_t t0_ns = 0;
    size_t dispatched = 0;  // bytes handed to the engine
    size_t completed = 0;   // bytes completed
    unsigned in_flight = 0; // pieces in the engine
    Status err;
    uint64_t landed = 0;    // zone-relative offset of an append
    bool serial = false;    // writes and emulated appends: one piece at a time per zone
    bool active = false;
  };

  Status mgmt(ZoneMgmt op, uint32_t zone);
  Status check_io(IoOp op, uint32_t zone, uint64_t offset, const void* buf, size_t len) const;
  Result<std::unique_ptr<io::UringEngine>> take_engine();
  void give_engine(std::unique_ptr<io::UringEngine> e);
  // Runs pieces of one synchronous I/O, one at a time.
  Status run_sync(IoOp op, uint32_t zone, uint64_t offset, void* buf, size_t len,
                  uint64_t* landed);
  // Write pointer (zone-relative) for an emulated append; refreshes from a
  // report when unknown.
  Result<uint64_t> cached_wp(uint32_t zone);
  // Zero the part of a successful read at `offset` that lies beyond the
  // zone's write pointer (a zone report when the cached one is lower).
  Status zero_beyond_wp(uint32_t zone, uint64_t offset, void* buf, size_t len);

  // Async path (amu_ held).
  void dispatch_locked();
  bool dispatch_op_locked(uint32_t id);
  void complete_locked(uint32_t id);
  void on_piece_locked(const io::EngineCompletion& c);
  Status ensure_async_engine_locked();

  std::unique_ptr<std::mutex[]> zone_mu_;         // one per zone: sync write/append/mgmt order
  std::unique_ptr<std::atomic<int64_t>[]> wp_;    // cached zone-relative WP; -1 unknown

  std::mutex pool_mu_;
  std::vector<std::unique_ptr<io::UringEngine>> pool_;  // engines for synchronous calls

  std::mutex amu_;
  std::unique_ptr<io::UringEngine> async_;
  std::vector<AsyncOp> ops_;
  std::vector<uint32_t> free_ops_;
  std::vector<std::deque<uint32_t>> zone_queue_;  // serial ops per zone, front = running
  std::vector<uint8_t> zone_busy_;
  std::deque<uint32_t> parallel_;                 // reads / native appends not fully dispatched
  std::deque<IoCompletion> done_;
  size_t active_ops_ = 0;
};

}  // namespace znslab::zns
