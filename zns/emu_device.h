// zns::EmuDevice: a file-backed emulator of an NVMe ZNS namespace.
//
// URI: emu:PATH?zones=N&zone_size=64M&zone_cap=62M&max_open=14&max_active=14&lba=4096
//   optional: max_io=512K (MDTS; reads/writes are split to it), zasl=512K
//   (zone append size limit), direct=auto|0|1 (O_DIRECT), qd=128 (ring depth),
//   prealloc=0|1 (creation only: allocate the whole data region with
//   fallocate so writes never allocate blocks; resets then zero in place.
//   Default 0: sparse file, resets punch holes).
// Defaults when creating: zones=16, zone_size=64M, zone_cap=zone_size,
// lba=4096, max_open=0 and max_active=0 (no limit: QEMU's defaults),
// max_io=512K (QEMU mdts=7 with 4 KiB pages), zasl=max_io.
//
// Semantics follow QEMU hw/nvme (ctrl.c nvme_do_write, nvme_check_zone_write,
// nvme_zrm_open_flags/close/finish/reset, nvme_zrm_auto_transition_zone;
// ns.c nvme_ns_zoned_check_calc_geometry, nvme_zoned_ns_shutdown), which
// implements NVMe ZNS 1.1 §2.1: checks in QEMU's order, the same status for
// each violation, implicit-open auto-transition (the oldest implicitly
// opened zone is closed when the open limit is reached).
//
// File layout: [header page: geometry][zone table: 32 B per zone] padded to
// data_offset (a multiple of 1 MiB), then zone z at data_offset + z *
// zone_size. The header and zone table live in a MAP_SHARED mapping
// (src/pages map_file); a zone's write pointer is advanced there before its
// data is submitted, so a process killed at any point leaves every
// acknowledged write below the persisted write pointer. Reset punches the
// zone's data (reads as zeros). The file is locked (flock) while open:
// a second open of the same file fails with kBusy.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "zns/io/uring_engine.h"
#include "zns/zoned_device.h"

namespace znslab::zns {

struct EmuZoneMeta;
struct EmuHeader;

class EmuDevice final : public ZonedDevice {
 public:
  // spec: the URI after "emu:". Errors: kInvalidArgument (bad parameter or
  // geometry, geometry different from the existing file), kCorrupt (not an
  // emulator file), kBusy (file open elsewhere), kIoError.
  static Result<std::unique_ptr<EmuDevice>> open_spec(std::string_view spec, std::string* error);
  ~EmuDevice() override;

  const DeviceInfo& info() const noexcept override { return info_; }
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
  std::optional<BackingFile> backing_file() const noexcept override;
  Status power_cycle() override;
  Status inject_zone_condition(uint32_t zone, ZoneState state) override;

  bool direct_io() const noexcept { return direct_; }
  bool preallocated() const noexcept { return prealloc_; }

 private:
  EmuDevice() = default;
  // One async request in flight.
  struct Pending {
    uint64_t user_data = 0;
    uint32_t zone = 0;
    uint64_t offset = 0;  // zone-relative
    size_t len = 0;       // bytes the caller asked for
    size_t io_len = 0;    // bytes submitted to the file (reads: up to the write pointer)
    IoOp op = IoOp::kRead;
  };

  // Zone state machine; all require meta_mu_ held.
  Status check_resources(int act, int opn);
  void auto_transition();
  Status zrm_open(uint32_t z, bool implicit);
  Status zrm_close(uint32_t z);
  Status zrm_finish(uint32_t z);
  void set_state(uint32_t z, ZoneState s);
  ZoneState state_of(uint32_t z) const;
  Zone snapshot(uint32_t z) const;

  // Write/append admission (QEMU nvme_do_write order); reserves the range
  // and persists the advanced write pointer. Returns the zone-relative
  // offset written. end_write() completes it (Full at the boundary).
  Result<uint64_t> begin_write(uint32_t zone, uint64_t offset, size_t len, bool append);
  void end_write(uint32_t zone);
  // Read admission: bytes of [offset, offset+len) that hold data (the rest reads as zeros).
  Result<size_t> begin_read(uint32_t zone, uint64_t offset, size_t len);
  Status check_args(uint32_t zone, uint64_t offset, const void* buf, size_t len, bool append) const;
  Status sync_io(io::OpKind kind, uint64_t file_off, void* buf, size_t len);
  Status punch(uint32_t zone);
  void init_pending(size_t n);

  DeviceInfo info_;
  std::string path_;
  int fd_ = -1;                     // buffered, holds the flock; backing_file()
  int data_fd_ = -1;                // O_DIRECT when possible; all data I/O
  bool direct_ = false;
  bool prealloc_ = false;           // reset zeroes in place instead of punching holes
  uint64_t data_offset_ = 0;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  EmuHeader* hdr_ = nullptr;
  EmuZoneMeta* zones_ = nullptr;

  std::mutex meta_mu_;              // zone table, counters below
  uint32_t nr_open_ = 0, nr_active_ = 0;
  std::vector<uint32_t> inflight_;  // writes reserved and not completed, per zone

  // Synchronous I/O: a small pool of rings, one caller each.
  struct SyncRing {
    std::mutex mu;
    std::unique_ptr<io::UringEngine> engine;
  };
  std::vector<std::unique_ptr<SyncRing>> sync_;

  // Asynchronous I/O.
  std::mutex submit_mu_, reap_mu_, table_mu_;
  std::unique_ptr<io::UringEngine> async_;
  std::vector<Pending> pending_;    // indexed by engine user_data
  std::vector<uint32_t> free_pending_;
  std::vector<IoCompletion> ready_; // finished without I/O (errors, zero-length reads)
};

}  // namespace znslab::zns
