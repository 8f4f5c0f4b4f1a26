// open_device(): URI dispatch to the backends (emu:, zbd:, nvme:).
#include <string>

#include "zns/backends.h"
#include "zns/zoned_device.h"

namespace znslab::zns {

Result<std::unique_ptr<ZonedDevice>> open_device(std::string_view uri) {
  auto colon = uri.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status::with_message(Code::kInvalidArgument,
                                "device URI '" + std::string(uri) +
                                    "' has no scheme (expected emu:PATH?zones=N&..., zbd:/dev/nvmeXnY or nvme:/dev/ngXnY)");
  }
  std::string_view scheme = uri.substr(0, colon);
  std::string_view spec = uri.substr(colon + 1);
  if (scheme == "emu") return open_emu_device(spec);
  if (scheme == "zbd") return open_zbd_device(spec);
  if (scheme == "nvme") return open_nvme_device(spec);
  return Status::with_message(Code::kInvalidArgument, "device URI '" + std::string(uri) + "': unknown scheme '" +
                                                          std::string(scheme) + "' (expected emu, zbd or nvme)");
}

}  // namespace znslab::zns
