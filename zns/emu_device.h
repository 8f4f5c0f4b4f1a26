// zns::EmuDevice: a file-backed emulator of an NVMe ZNS namespace.
//
// URI: emu:PATH?zones=N&zone_size=64M&zone_cap=62M&max_open=14&max_active=14&lba=4096
//   optional: max_io=512K (MDTS; reads/writes are split to it), zasl=512K
//   (zone append size limit), direct=auto|0|1 (O_DIRECT), qd=128 (ring depth),
//   prealloc=0|1 (creation only: allocate the whole data region with
//   fallocate so writes never allocate blocks; resets keep the blocks.
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
// File layout (format version 2, zns/emu_layout.h, docs/zns.md): [header
// page: geometry + CRC32C][zone table: 16 B per zone, each word with its
// own CRC32C] padded to data_offset (a multiple of 1 MiB), then zone z at
// data_offset + z * zone_size. The metadata is allocated when the device
// is created (a full file system fails the creation with ENOSPC, never a
// later store with SIGBUS); creation builds the file under a temporary
// name and renames it into place, so a failed creation leaves no file.
// The zone table is a MAP_SHARED mapping (src/pages map_file).
//
// Crash rule: a zone's persisted write pointer only ever covers bytes whose
// write completed, and is stored (one 8-byte word) before the write is
// acknowledged, so a process killed at any point keeps every acknowledged
// write and never shows an unwritten byte as written; every command stores
// at most one state word for its zone, so a kill leaves the old or the new
// state. No fsync: surviving kill -9 of the process needs only the page
// cache. A write that fails leaves the write pointer at the end of the
// bytes written and returns the errno (ENOSPC, EIO). Reset stores Empty
// before it punches the data (stale bytes beyond the write pointer are
// never read). The file is locked (flock) while open: a second open of
// the same file fails with kBusy.
//
// Thread-safety: all methods may be called concurrently.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "zns/io/uring_engine.h"
#include "zns/zoned_device.h"

namespace znslab::zns {

struct EmuZoneEntry;

class EmuDevice final : public ZonedDevice {
 public:
  // spec: the URI after "emu:". Errors: kInvalidArgument (bad parameter or
  // geometry, geometry different from the existing file), kCorrupt (not an
  // emulator file, empty or truncated file, old format version, checksum
  // mismatch: *error names the header or the zone entry), kBusy (file open
  // elsewhere), kIoError (with errno, e.g. ENOSPC at creation).
  static Result<std::unique_ptr<EmuDevice>> open_spec(std::string_view spec);
  ~EmuDevice() override;

  const DeviceInfo& info() const noexcept override { return info_; }
  Result<std::vector<Zone>> report_zones(uint32_t first, uint32_t count) override;
  Status open(uint32_t zone) override;
  Status close(uint32_t zone) override;
  Status finish(uint32_t zone) override;
  Status reset(uint32_t zone) override;
  // Synchronous I/O of any length up to the zone capacity (size for read),
  // split to the sync ring (max_io pieces, 32 per submission); the buffer
  // may be unaligned (bounced under O_DIRECT). offset + len past the zone
  // (also when it wraps 2^64) is kZoneBoundaryError before anything
  // changes; an append over zasl is kInvalidArgument. A failed write
  // returns the errno of the failure (kIoError with ENOSPC, EIO, ...; EIO
  // "short transfer" only when the file gives no errno) and leaves the
  // write pointer after the bytes that were written.
  Status write(uint32_t zone, uint64_t offset, const void* buf, size_t len) override;
  Result<uint64_t> append(uint32_t zone, const void* buf, size_t len) override;
  Status read(uint32_t zone, uint64_t offset, void* buf, size_t len) override;
  // Asynchronous I/O: a request needing more max_io pieces than the ring
  // holds is kInvalidArgument; a write completion is delivered only once
  // the persisted write pointer covers it (writes of one zone are
  // acknowledged in offset order); when a write fails, later writes of its
  // zone that are in flight fail too (the zone's write pointer stays at the
  // failure) and new writes to it are kBusy until they are reaped.
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
    uint32_t gen = 0;     // zone generation at admission (writes)
    uint64_t offset = 0;  // zone-relative
    size_t len = 0;       // bytes the caller asked for
    size_t io_len = 0;    // bytes submitted to the file (reads: up to the write pointer)
    void* buf = nullptr;
    IoOp op = IoOp::kRead;
  };
  // A write completion not yet acknowledged: an earlier write of its zone
  // is still in flight (the persisted write pointer does not cover it).
  struct Held {
    IoCompletion c;
    uint32_t zone;
    uint32_t gen;
    uint64_t end;         // zone-relative end of the write, bytes
  };
  // In-memory state of one zone (meta_mu_). `wp` equals the persisted
  // write pointer; `res` is where the next write/append is admitted.
  struct ZoneRt {
    uint32_t wp = 0;        // LBAs: extent written and persisted
    uint32_t res = 0;       // LBAs: reservation pointer (>= wp)
    uint32_t inflight = 0;  // writes admitted and not finished
    uint16_t gen = 0;       // bumped when reservations are dropped (failure, reset)
    uint8_t state = 0;      // ZoneState (authoritative; persisted by commit())
    uint8_t failed = 0;     // a write failed at cut_[zone]; rollback when inflight == 0
  };
  static_assert(sizeof(ZoneRt) == 16);
  struct Admit {
    uint64_t offset;        // zone-relative, bytes
    uint32_t gen;
  };

  // Zone state machine; all require meta_mu_ held.
  Status check_resources(int act, int opn);
  void auto_transition();
  Status zrm_open(uint32_t z, bool implicit);
  Status zrm_close(uint32_t z);
  Status zrm_finish(uint32_t z);
  void set_state(uint32_t z, ZoneState s);
  ZoneState state_of(uint32_t z) const { return ZoneState(rt_[z].state); }
  Zone snapshot(uint32_t z) const;
  // Stores zone z's state word (state, wp) if it changed.
  void commit(uint32_t z);
  void store_order(uint32_t z, uint32_t seq);

  // Write admission (QEMU nvme_do_write order): checks, implicit open,
  // reserves [offset, offset+len). Nothing is persisted.
  Result<Admit> begin_write(uint32_t zone, uint64_t offset, size_t len, bool append);
  // A write of [off, off+len) finished with `done` bytes transferred from
  // its start and status `st`: advances and persists the write pointer over
  // completed writes. Returns the write's status if it is decided now
  // (persisted or failed), or nullopt when an earlier write of the zone is
  // still in flight. Requires meta_mu_.
  std::optional<Status> end_write(uint32_t zone, uint64_t off, uint64_t len, uint64_t done, Status st,
                                  uint32_t gen);
  // The status of a finished write once decided (meta_mu_ held), or nullopt.
  std::optional<Status> write_outcome(uint32_t zone, uint64_t end, uint32_t gen) const;
  // Moves held completions whose outcome is decided to out.
  void release_held(std::vector<IoCompletion>& out);
  // A write's outcome was delivered: leave the zone's in-flight count.
  void settle(uint32_t zone);
  Result<size_t> begin_read(uint32_t zone, uint64_t offset, size_t len);
  Status check_args(uint32_t zone, uint64_t offset, const void* buf, size_t len, bool append) const;
  // Whole-length synchronous I/O, split to the sync ring's capacity; on
  // failure *done holds the bytes transferred from the start (LBA-aligned).
  Status sync_io(io::OpKind kind, uint64_t file_off, void* buf, size_t len, uint64_t* done);
  Result<uint64_t> sync_write(uint32_t zone, uint64_t offset, const void* buf, size_t len, bool append);
  void punch(uint32_t zone);
  // Reaps engine completions into ready_ (reap_mu_ held); waits for `want`.
  Result<size_t> pump(size_t want);
  void init_pending(size_t n);

  DeviceInfo info_;
  std::string path_;
  int fd_ = -1;                     // buffered, holds the flock; backing_file()
  int data_fd_ = -1;                // O_DIRECT when possible; all data I/O
  bool direct_ = false;
  bool prealloc_ = false;           // data blocks allocated at creation; reset keeps them
  uint64_t data_offset_ = 0;
  uint32_t lba_shift_ = 12;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  EmuZoneEntry* table_ = nullptr;   // persistent zone table (mapped)

  std::mutex meta_mu_;              // rt_ and everything below it up to sync_
  std::condition_variable meta_cv_; // a write pointer moved or a generation changed
  std::vector<ZoneRt> rt_;
  uint32_t nr_open_ = 0, nr_active_ = 0;
  std::map<uint32_t, uint32_t> imp_order_;          // seq -> implicitly opened zone
  std::unordered_map<uint32_t, uint32_t> imp_seq_;  // zone -> seq
  uint32_t imp_next_ = 1;
  std::unordered_map<uint32_t, std::map<uint32_t, uint32_t>> done_;  // zone -> completed [start, end) above wp, LBAs
  std::unordered_map<uint32_t, uint32_t> cut_;      // zone -> LBA where a failed write stopped
  std::unordered_map<uint32_t, Status> cut_status_; // zone -> the failure, for writes after it
  std::vector<Held> held_;

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
  std::vector<IoCompletion> ready_; // finished without I/O (errors, zero-length reads), released writes
};

}  // namespace znslab::zns
