// Backend constructors behind zns::open_device() (zns/open_device.cpp).
// Each takes the part of the URI after "scheme:" and returns a device or a
// Status; *error (when non-null) receives a human-readable message naming
// what was wrong and where (path, URI parameter, errno).
// Thread-safety: the returned devices are safe for concurrent use.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "zns/zoned_device.h"

namespace znslab::zns {

// emu:PATH?zones=N&zone_size=64M&zone_cap=62M&max_open=14&max_active=14&lba=4096
// (zns/emu_device.cpp).
Result<std::unique_ptr<ZonedDevice>> open_emu_device(std::string_view spec);
// zbd:/dev/nvme0n1 — libzbd + io_uring O_DIRECT (zns/zbd_device.cpp).
Result<std::unique_ptr<ZonedDevice>> open_zbd_device(std::string_view spec);
// nvme:/dev/ng0n1 — libnvme + IORING_OP_URING_CMD passthrough (zns/nvme_device.cpp).
Result<std::unique_ptr<ZonedDevice>> open_nvme_device(std::string_view spec);

}  // namespace znslab::zns
