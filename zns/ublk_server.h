// zns::UblkServer: serves a ZonedDevice (typically the emulator, emu:) as a
// host-managed zoned block device /dev/ublkbN through the kernel's ublk
// driver (Linux >= 6.6 with CONFIG_BLK_DEV_UBLK and CONFIG_BLK_DEV_ZONED).
//
// Protocol (kernel include/uapi/linux/ublk_cmd.h): control commands
// ADD_DEV / SET_PARAMS / START_DEV / STOP_DEV / DEL_DEV go to
// /dev/ublk-control as IORING_OP_URING_CMD (128-byte SQEs); one queue
// thread issues FETCH_REQ for every tag on /dev/ublkcN and answers each
// request with COMMIT_AND_FETCH_REQ (64-byte SQEs), both through
// zns::io::UringEngine. Flags: UBLK_F_ZONED | UBLK_F_USER_COPY |
// UBLK_F_CMD_IOCTL_ENCODE: request data moves by pread()/pwrite() on
// /dev/ublkcN, and a zone append returns its LBA in the commit's addr field.
//
// Limits advertised: zone size (chunk_sectors), max open/active zones of
// the device, max_zone_append_sectors = min(zone append limit, max I/O),
// max_sectors = max I/O bytes / 512, logical = physical block = lba_bytes.
//
// Errors of the device become block-layer errors (UblkRequestHandler):
// Too Many Open Zones -> -ETOOMANYREFS (BLK_STS_ZONE_OPEN_RESOURCE), Too
// Many Active Zones -> -EOVERFLOW (BLK_STS_ZONE_ACTIVE_RESOURCE), other
// zone and LBA errors -> -EIO, as the kernel's NVMe driver maps them.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "src/common/status.h"
#include "zns/zoned_device.h"

namespace znslab::zns {

// errno (negative) a ublk request answers for a failed device Status.
int ublk_errno(const Status& s) noexcept;

// Executes one ublk request on a device, independent of the kernel (unit
// testable). Units: sectors are 512 bytes, as in struct ublksrv_io_desc.
// Not thread-safe (one per queue thread); the device may be shared.
class UblkRequestHandler {
 public:
  // Request data transfer: copy_in fills buf with `len` request bytes from
  // byte `off` (writes, appends); copy_out hands `len` bytes to the request
  // at byte `off` (reads, zone reports). Return bytes moved or -errno.
  using CopyFn = std::function<ssize_t(void* buf, size_t len, uint64_t off)>;
  struct Reply {
    int32_t result = 0;       // bytes done (read/write/append/report) or -errno
    uint64_t append_lba = 0;  // zone append: first written sector
  };
  // max_io_bytes: the largest request (the buffer size). The device's zone
  // size must be a power of two and a multiple of 512 bytes.
  UblkRequestHandler(ZonedDevice& dev, size_t max_io_bytes);
  // op: UBLK_IO_OP_*; nr: sectors (nr_zones for REPORT_ZONES).
  Reply handle(uint8_t op, uint64_t start_sector, uint32_t nr, const CopyFn& copy_in,
               const CopyFn& copy_out);

 private:
  ZonedDevice& dev_;
  std::vector<uint8_t> buf_;
};

struct UblkOptions {
  int dev_id = -1;             // -1: the kernel picks the first free /dev/ublkbN
  unsigned queue_depth = 64;   // tags of the single hardware queue (1..4096)
  uint32_t max_io_bytes = 512 * 1024;  // largest request (max_sectors * 512)
  bool verbose = false;        // progress lines on stderr
};

// Thread-safety: run() on one thread; request_stop() from any thread or a
// signal handler's helper thread.
class UblkServer {
 public:
  // Checks the geometry and opens /dev/ublk-control. Errors: kNotSupported
  // (no ublk driver, zone size not a power of two), kInvalidArgument.
  static Result<std::unique_ptr<UblkServer>> create(ZonedDevice& dev, const UblkOptions& opts);
  ~UblkServer();
  UblkServer(const UblkServer&) = delete;
  UblkServer& operator=(const UblkServer&) = delete;

  // Adds and starts the device, calls on_ready(dev_id) once /dev/ublkbN
  // exists, serves requests until request_stop() or the device is removed
  // (ublk del / STOP_DEV from elsewhere), then stops and deletes it.
  // Errors: the failing control command's errno (kIoError/kNotSupported).
  Status run(const std::function<void(int dev_id)>& on_ready);
  // Asks run() to stop (sends STOP_DEV); safe to call more than once.
  void request_stop();
  // Requests served so far.
  uint64_t requests() const noexcept { return requests_.load(std::memory_order_relaxed); }

 private:
  UblkServer(ZonedDevice& dev, const UblkOptions& opts) : dev_(dev), opts_(opts) {}
  Status ctrl(uint32_t op, uint64_t addr, uint16_t len, uint64_t data0);
  Status queue_loop(int cdev_fd, std::atomic<int>* fetch_state);

  ZonedDevice& dev_;
  UblkOptions opts_;
  int ctrl_fd_ = -1;
  uint32_t dev_id_ = UINT32_MAX;
  std::atomic<bool> stop_{false};
  std::atomic<bool> stopped_dev_{false};
  std::atomic<uint64_t> requests_{0};
};

}  // namespace znslab::zns
