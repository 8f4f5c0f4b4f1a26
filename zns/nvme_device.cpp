// nvme: backend (libnvme + io_uring passthrough). Stub until the real backend lands.
#include "zns/backends.h"

namespace znslab::zns {

Result<std::unique_ptr<ZonedDevice>> open_nvme_device(std::string_view spec, std::string* error) {
  if (error) *error = "nvme: backend not implemented yet (" + std::string(spec) + ")";
  return Status(Code::kNotSupported, "nvme backend");
}

}  // namespace znslab::zns
