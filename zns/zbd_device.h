// zbd: backend — a zoned block device (/dev/nvme0n1, /dev/nullb0, an SMR
// disk) through libzbd 2.0 for zone report and management (open, close,
// finish, reset: BLK*ZONE ioctls) and io_uring O_DIRECT reads and writes at
// the write pointer (zns/io/uring_engine.h).
//
// Limits: every I/O is cut to /sys/block/<dev>/queue/max_sectors_kb (on the
// Debian 6.1 kernel an io_uring write larger than that is split by the
// block layer and fails with EIO on zoned devices) and to max_segments - 1
// pages (unsplit_io_limit, zns/real_device.h). One regular write in flight
// per zone (zns/real_device.h).
//
// Zone append: the block layer offers no zone append to user space for
// block devices, so append is EMULATED: a regular write at the write
// pointer this process tracks for the zone (refreshed by a zone report when
// unknown), under a per-zone lock. Its size limit is the smaller of
// zone_append_max_bytes (sysfs) and max_sectors_kb. A write by another
// process to the same zone between two appends makes the next append fail
// (not at the write pointer) and refreshes the tracked pointer.
//
// Errors: the block layer turns most NVMe zone statuses into EIO; those are
// returned as kIoError with errno EIO (never a guessed zone class).
// ETOOMANYREFS (BLK_STS_ZONE_OPEN_RESOURCE) -> kTooManyOpenZones and
// EOVERFLOW (BLK_STS_ZONE_ACTIVE_RESOURCE) -> kTooManyActiveZones, as
// null_blk and the NVMe driver report them; others via Status::from_errno.
#pragma once

#include "src/common/status.h"

namespace znslab::zns {

// errno from a zoned block device -> Status (see the header comment).
Status zbd_errno_status(int sys_errno, const char* context) noexcept;

}  // namespace znslab::zns
