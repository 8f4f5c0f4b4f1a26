// The parts of the kernel's ublk UAPI (include/uapi/linux/ublk_cmd.h, Linux
// 6.6+ for zoned devices; read from the 7.3 linux-libc-dev) that znslab's
// ublk server uses. Debian 12's linux-libc-dev (6.1) lacks the zoned and
// user-copy parts, so the layouts are declared here; static_asserts pin the
// sizes the kernel expects. Field meanings are the kernel's.
#pragma once

#include <linux/ioctl.h>

#include <cstdint>

namespace znslab::zns::ublk {

// Control command payload (in the 80-byte cmd area of a 128-byte SQE sent to
// /dev/ublk-control).
struct CtrlCmd {
  uint32_t dev_id;      // target device; UINT32_MAX with ADD_DEV = "any free id"
  uint16_t queue_id;    // UINT16_MAX when the command is not for one queue
  uint16_t len;         // bytes at addr
  uint64_t addr;        // user buffer (dev info, params)
  uint64_t data[1];     // inline argument (START_DEV: server pid)
  uint16_t dev_path_len;
  uint16_t pad;
  uint32_t reserved;
};
static_assert(sizeof(CtrlCmd) == 32);

// struct ublksrv_ctrl_dev_info.
struct DevInfo {
  uint16_t nr_hw_queues;
  uint16_t queue_depth;
  uint16_t state;
  uint16_t pad0;
  uint32_t max_io_buf_bytes;
  uint32_t dev_id;
  int32_t ublksrv_pid;
  uint32_t pad1;
  uint64_t flags;
  uint64_t ublksrv_flags;
  uint32_t owner_uid;
  uint32_t owner_gid;
  uint64_t reserved1;
  uint64_t reserved2;
};
static_assert(sizeof(DevInfo) == 64);

// struct ublksrv_io_desc: one per tag, in the read-only mmap of /dev/ublkcN.
struct IoDesc {
  uint32_t op_flags;     // op: bits 0-7, flags: 8-31
  uint32_t nr_sectors;   // nr_zones for REPORT_ZONES
  uint64_t start_sector; // 512-byte sectors
  uint64_t addr;         // unused with USER_COPY
};
static_assert(sizeof(IoDesc) == 24);

// struct ublksrv_io_cmd (16 bytes: fits the cmd area of a 64-byte SQE).
struct IoCmd {
  uint16_t q_id;
  uint16_t tag;
  int32_t result;        // COMMIT: bytes done or -errno
  uint64_t addr;         // 0 with USER_COPY; zone append: the LBA written (512-byte sectors)
};
static_assert(sizeof(IoCmd) == 16);

struct ParamBasic {
  uint32_t attrs;
  uint8_t logical_bs_shift;
  uint8_t physical_bs_shift;
  uint8_t io_opt_shift;
  uint8_t io_min_shift;
  uint32_t max_sectors;
  uint32_t chunk_sectors;  // zoned: the zone size in sectors
  uint64_t dev_sectors;
  uint64_t virt_boundary_mask;
};
struct ParamDiscard {
  uint32_t discard_alignment;
  uint32_t discard_granularity;
  uint32_t max_discard_sectors;
  uint32_t max_write_zeroes_sectors;
  uint16_t max_discard_segments;
  uint16_t reserved0;
};
struct ParamDevt {
  uint32_t char_major, char_minor, disk_major, disk_minor;
};
struct ParamZoned {
  uint32_t max_open_zones;
  uint32_t max_active_zones;
  uint32_t max_zone_append_sectors;
  uint8_t reserved[20];
};
// struct ublk_params up to the zoned part (the kernel accepts a shorter
// `len` than its own struct).
struct Params {
  uint32_t len;
  uint32_t types;
  ParamBasic basic;
  ParamDiscard discard;
  ParamDevt devt;
  ParamZoned zoned;
};
static_assert(sizeof(ParamBasic) == 32 && sizeof(ParamDiscard) == 20 && sizeof(ParamDevt) == 16 &&
              sizeof(ParamZoned) == 32);

constexpr uint32_t kParamBasic = 1u << 0;
constexpr uint32_t kParamZoned = 1u << 3;

// Device flags (UBLK_F_*).
constexpr uint64_t kFlagCmdIoctlEncode = 1ull << 6;
constexpr uint64_t kFlagUserCopy = 1ull << 7;
constexpr uint64_t kFlagZoned = 1ull << 8;

// Control commands, ioctl-encoded ('u', nr, struct ublksrv_ctrl_cmd).
constexpr uint32_t kCmdAddDev = _IOWR('u', 0x04, CtrlCmd);
constexpr uint32_t kCmdDelDev = _IOWR('u', 0x05, CtrlCmd);
constexpr uint32_t kCmdStartDev = _IOWR('u', 0x06, CtrlCmd);
constexpr uint32_t kCmdStopDev = _IOWR('u', 0x07, CtrlCmd);
constexpr uint32_t kCmdSetParams = _IOWR('u', 0x08, CtrlCmd);
constexpr uint32_t kCmdGetFeatures = _IOR('u', 0x13, CtrlCmd);

// I/O commands on /dev/ublkcN ('u', nr, struct ublksrv_io_cmd).
constexpr uint32_t kIoFetchReq = _IOWR('u', 0x20, IoCmd);
constexpr uint32_t kIoCommitAndFetchReq = _IOWR('u', 0x21, IoCmd);

// Result of a fetch when the device is going away (UBLK_IO_RES_ABORT).
constexpr int kIoResAbort = -19;  // -ENODEV

// Request operations (UBLK_IO_OP_*).
enum IoOp : uint8_t {
  kOpRead = 0,
  kOpWrite = 1,
  kOpFlush = 2,
  kOpDiscard = 3,
  kOpWriteSame = 4,
  kOpWriteZeroes = 5,
  kOpZoneOpen = 10,
  kOpZoneClose = 11,
  kOpZoneFinish = 12,
  kOpZoneAppend = 13,
  kOpZoneResetAll = 14,
  kOpZoneReset = 15,
  kOpReportZones = 18,
};

// mmap offset of queue q's descriptor array and pread/pwrite offset of a
// request's data (user copy): UBLKSRV_IO_BUF_OFFSET + q << 41 + tag << 25.
constexpr uint64_t kIoBufOffset = 0x80000000ull;
constexpr unsigned kTagShift = 25;
constexpr unsigned kQidShift = 41;
constexpr uint64_t kMaxIoBufBytes = 1ull << 25;  // 32 MiB per request
constexpr uint64_t user_copy_pos(uint16_t q, uint16_t tag) noexcept {
  return kIoBufOffset + (uint64_t(q) << kQidShift) + (uint64_t(tag) << kTagShift);
}
// The kernel reserves this many bytes of mmap space per queue
// (UBLK_MAX_QUEUE_DEPTH descriptors, page aligned).
constexpr uint64_t kMaxCmdBufBytes = 4096ull * sizeof(IoDesc);

}  // namespace znslab::zns::ublk
