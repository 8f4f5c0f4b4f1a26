// nvme: backend — an NVMe ZNS namespace through its generic character
// device (/dev/ngXnY). Identify (namespace, ZNS namespace: zone size, MOR,
// MAR; ZNS controller: ZASL; controller: MDTS) and zone management (Zone
// Management Send/Receive) go through libnvme 1.3 ioctls; Write (0x01),
// Read (0x02) and Zone Append (0x7d) go through io_uring
// IORING_OP_URING_CMD with NVME_URING_CMD_IO on a ring with 128-byte SQEs
// and 32-byte CQEs; the LBA a Zone Append landed at is the command result
// in the big CQE (ZNS spec 1.1 §4.3.1.1).
//
// Limits: passthrough commands are never split by the kernel (an oversized
// one fails with EINVAL), so reads and writes are cut to the controller's
// maximum transfer size (max_hw_sectors_kb of the matching nvmeXnY block
// device, i.e. MDTS) and to max_segments - 1 pages (a 512 KiB command on
// a buffer of 128 scattered pages fails with EINVAL on the 6.1 NVMe driver's
// 127 segments; unsplit_io_limit in zns/real_device.h); a zone append
// larger than ZASL (2^ZASL minimum pages; 0 = MDTS) or that limit is
// refused with kInvalidArgument.
//
// Errors: NVMe status values map exactly to Codes (ZNS spec 1.1 §3.4.1,
// command specific SCT 1): 0xb8 kZoneBoundaryError, 0xb9 kZoneIsFull, 0xba
// kZoneIsReadOnly, 0xbb kZoneIsOffline, 0xbc kZoneInvalidWrite, 0xbd
// kTooManyActiveZones, 0xbe kTooManyOpenZones, 0xbf
// kInvalidZoneStateTransition; generic 0x80 kLbaOutOfRange, 0x02
// kInvalidArgument; any other status kIoError (errno EIO). Negative results
// are errno values (Status::from_errno).
#pragma once

#include "src/common/status.h"

namespace znslab::zns {

// NVMe completion status as the kernel returns it for passthrough (SCT<<8 |
// SC, possibly with the More/DNR bits above) -> Status. 0 -> ok.
Status nvme_status_to_status(int nvme_status, const char* context) noexcept;

}  // namespace znslab::zns
