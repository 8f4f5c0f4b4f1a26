// zbd: backend (libzbd + io_uring O_DIRECT). Stub until the real backend lands.
#include "zns/backends.h"

namespace znslab::zns {

Result<std::unique_ptr<ZonedDevice>> open_zbd_device(std::string_view spec, std::string* error) {
  if (error) *error = "zbd: backend not implemented yet (" + std::string(spec) + ")";
  return Status(Code::kNotSupported, "zbd backend");
}

}  // namespace znslab::zns
