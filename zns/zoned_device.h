// zns::ZonedDevice: the one interface to zoned storage in znslab.
//
// A ZonedDevice is a namespace divided into equal zones (NVMe Zoned Namespace
// Command Set 1.1, section 2.1 "Zoned Namespaces"). Each zone has a start, a
// zone size, a zone capacity (writable bytes, <= zone size), a write pointer
// and a state. Writes must land exactly at the write pointer; zone append
// lets the device choose the offset and returns it.
//
// Units: every offset and length in this interface is in BYTES and must be a
// multiple of DeviceInfo::lba_bytes. Zone-relative offsets are named
// `offset`; absolute ones `start`/`write_pointer`/`device_offset`.
//
// Backends (chosen by URI in open_device()):
//   emu:PATH?zones=N&zone_size=64M&zone_cap=62M&max_open=14&max_active=14&lba=4096
//   zbd:/dev/nvme0n1     libzbd + io_uring (O_DIRECT) on a zoned block device
//   nvme:/dev/ng0n1      libnvme passthrough; I/O via IORING_OP_URING_CMD
// and a fault-injecting wrapper (zns/fault_device.h) forwarding every call.
//
// Errors: each violation returns the Code named after the NVMe status a
// real device returns (ZNS spec 1.1 §3.4.1): kZoneBoundaryError,
// kZoneIsFull, kZoneIsReadOnly, kZoneIsOffline, kZoneInvalidWrite,
// kTooManyActiveZones, kTooManyOpenZones, kInvalidZoneStateTransition;
// kLbaOutOfRange for a zone index/offset outside the namespace. Through the
// block layer (zbd:) most zone errors arrive only as EIO: that backend
// returns kIoError with the errno, or the class the errno allows, and never
// guesses a finer class.
//
// Thread-safety: every method of every backend may be called concurrently
// from several threads (like leveldb's Env). Completions of the
// asynchronous API are delivered to whichever thread calls reap().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "src/common/status.h"

namespace znslab::zns {

// Zone states (ZNS spec 1.1 §2.1.1, Figure "Zone State Machine").
enum class ZoneState : uint8_t {
  kEmpty,
  kImplicitOpen,
  kExplicitOpen,
  kClosed,
  kFull,
  kReadOnly,
  kOffline,
};
// "EMPTY", "IMPLICIT_OPEN", "EXPLICIT_OPEN", "CLOSED", "FULL", "READ_ONLY", "OFFLINE".
const char* zone_state_name(ZoneState s) noexcept;
// Inverse of zone_state_name; nullopt for an unknown name.
std::optional<ZoneState> zone_state_from_name(std::string_view name) noexcept;
// Open (implicitly or explicitly): counts against max open AND max active.
constexpr bool is_open(ZoneState s) noexcept {
  return s == ZoneState::kImplicitOpen || s == ZoneState::kExplicitOpen;
}
// Active = open or closed (ZNS spec §2.1.1.4): counts against max active.
constexpr bool is_active(ZoneState s) noexcept {
  return is_open(s) || s == ZoneState::kClosed;
}

struct DeviceInfo {
  std::string backend;         // "emu", "zbd", "nvme"
  std::string path;            // file or device node
  std::string model;           // model/serial where known, else ""
  uint32_t zone_count = 0;
  uint64_t zone_size = 0;      // bytes between zone starts
  uint64_t zone_capacity = 0;  // writable bytes per zone (<= zone_size)
  uint32_t lba_bytes = 0;      // logical block size
  uint32_t max_open = 0;       // max open resources; 0 = no limit
  uint32_t max_active = 0;     // max active resources; 0 = no limit
  uint64_t zone_append_max_bytes = 0;  // ZASL / zone_append_max_bytes; 0 = no append
  uint64_t max_io_bytes = 0;   // largest single I/O the backend submits (max_sectors_kb, MDTS)
  uint64_t capacity_bytes() const noexcept { return uint64_t(zone_count) * zone_capacity; }
};

// A value snapshot of one zone (never a live reference: ZenFS's public
// mutable Zone::wp_ is what not to copy).
struct Zone {
  uint32_t index = 0;
  uint64_t start = 0;          // absolute byte offset of the zone
  uint64_t capacity = 0;       // bytes
  uint64_t write_pointer = 0;  // absolute byte offset (== start when EMPTY)
  ZoneState state = ZoneState::kEmpty;
  uint64_t written() const noexcept { return write_pointer - start; }
};

enum class IoOp : uint8_t { kWrite, kAppend, kRead };

// One asynchronous I/O. `offset` is zone-relative; ignored for kAppend.
// `buf` must stay valid until its completion is reaped; for O_DIRECT
// backends it must be aligned to lba_bytes (use zns::io aligned buffers).
struct IoRequest {
  IoOp op = IoOp::kWrite;
  uint32_t zone = 0;
  uint64_t offset = 0;
  void* buf = nullptr;
  size_t len = 0;
  uint64_t user_data = 0;
};

struct IoCompletion {
  uint64_t user_data = 0;
  Status status;
  uint64_t offset = 0;   // zone-relative offset written/read (append: where the data landed)
  size_t bytes = 0;      // bytes transferred
  uint64_t latency_ns = 0;  // submit-to-reap latency
};

// Where the emulator's data lives, for read-only mappings by higher layers
// (the zoned segment store maps it through src/pages). Zone z's byte o is at
// file offset data_offset + z * zone_size + o.
struct BackingFile {
  int fd = -1;
  uint64_t data_offset = 0;
};

class ZonedDevice {
 public:
  virtual ~ZonedDevice() = default;

  virtual const DeviceInfo& info() const noexcept = 0;

  // Snapshot of zones [first, first+count) (count clamped to the end).
  // Errors: kLbaOutOfRange, kIoError, kDeviceGone.
  virtual Result<std::vector<Zone>> report_zones(uint32_t first = 0,
                                                 uint32_t count = UINT32_MAX) = 0;

  // Zone management (ZNS spec §4.4 Zone Management Send). open = explicit
  // open; close: open -> Closed (QEMU keeps it Closed even when nothing was
  // written; Empty -> Invalid Zone State Transition); finish: -> Full (also
  // from Empty); reset: -> Empty, write pointer to zone start. A Full
  // zone's write_pointer is reported as start + capacity.
  virtual Status open(uint32_t zone) = 0;
  virtual Status close(uint32_t zone) = 0;
  virtual Status finish(uint32_t zone) = 0;
  virtual Status reset(uint32_t zone) = 0;

  // Synchronous data path. write: `offset` must equal the zone's write
  // pointer (else kZoneInvalidWrite); may implicitly open the zone.
  // append: returns the zone-relative offset where the data landed.
  // read: bytes beyond the write pointer read as zeros.
  virtual Status write(uint32_t zone, uint64_t offset, const void* buf, size_t len) = 0;
  virtual Result<uint64_t> append(uint32_t zone, const void* buf, size_t len) = 0;
  virtual Status read(uint32_t zone, uint64_t offset, void* buf, size_t len) = 0;

  // Asynchronous data path through the io_uring engine. submit() queues and
  // submits a batch (all or nothing on argument errors); reap() waits for at
  // least `min_complete` completions and returns how many it stored in out.
  virtual Status submit(std::span<const IoRequest> batch) = 0;
  virtual Result<size_t> reap(std::span<IoCompletion> out, size_t min_complete) = 0;

  // The emulator's backing file; nullopt on real devices.
  virtual std::optional<BackingFile> backing_file() const noexcept { return std::nullopt; }

  // Device reset as at power loss / controller shutdown (QEMU
  // nvme_zoned_ns_shutdown): every open zone becomes Closed, or Empty when
  // nothing was written to it. Emulator only; others return kNotSupported.
  virtual Status power_cycle() { return Status(Code::kNotSupported, "power_cycle"); }

  // Fault injection (zns/fault_device.h): forces a zone to Read Only or
  // Offline (ZNS spec 1.1 §2.1.1.6/§2.1.1.7: the device does this on media
  // failure), releasing its open/active resources. Any other state is
  // kInvalidArgument. Backends that cannot do it return kNotSupported and
  // the fault wrapper keeps an overlay instead.
  virtual Status inject_zone_condition(uint32_t zone, ZoneState state) {
    (void)zone;
    (void)state;
    return Status(Code::kNotSupported, "inject_zone_condition");
  }
};

// A ZonedDevice that forwards every call to another (leveldb's EnvWrapper):
// a fault injector or a test double overrides only the calls it changes.
// Owns the inner device. Thread-safety: as the inner device.
class ZonedDeviceWrapper : public ZonedDevice {
 public:
  explicit ZonedDeviceWrapper(std::unique_ptr<ZonedDevice> inner) : inner_(std::move(inner)) {}
  ZonedDevice& inner() noexcept { return *inner_; }
  const ZonedDevice& inner() const noexcept { return *inner_; }

  const DeviceInfo& info() const noexcept override { return inner_->info(); }
  Result<std::vector<Zone>> report_zones(uint32_t first, uint32_t count) override {
    return inner_->report_zones(first, count);
  }
  Status open(uint32_t zone) override { return inner_->open(zone); }
  Status close(uint32_t zone) override { return inner_->close(zone); }
  Status finish(uint32_t zone) override { return inner_->finish(zone); }
  Status reset(uint32_t zone) override { return inner_->reset(zone); }
  Status write(uint32_t zone, uint64_t offset, const void* buf, size_t len) override {
    return inner_->write(zone, offset, buf, len);
  }
  Result<uint64_t> append(uint32_t zone, const void* buf, size_t len) override {
    return inner_->append(zone, buf, len);
  }
  Status read(uint32_t zone, uint64_t offset, void* buf, size_t len) override {
    return inner_->read(zone, offset, buf, len);
  }
  Status submit(std::span<const IoRequest> batch) override { return inner_->submit(batch); }
  Result<size_t> reap(std::span<IoCompletion> out, size_t min_complete) override {
    return inner_->reap(out, min_complete);
  }
  std::optional<BackingFile> backing_file() const noexcept override { return inner_->backing_file(); }
  Status power_cycle() override { return inner_->power_cycle(); }
  Status inject_zone_condition(uint32_t zone, ZoneState state) override {
    return inner_->inject_zone_condition(zone, state);
  }

 private:
  std::unique_ptr<ZonedDevice> inner_;
};

// Opens a device by URI (see the header comment). Errors, each with a
// message naming the device and the problem (Status::context()):
// kInvalidArgument (a bad URI part), kNotFound, kNotSupported (e.g. not a
// zoned device), kCorrupt (an emulator file that fails validation), kBusy
// (an emulator file locked by another process), kIoError.
Result<std::unique_ptr<ZonedDevice>> open_device(std::string_view uri);

}  // namespace znslab::zns
