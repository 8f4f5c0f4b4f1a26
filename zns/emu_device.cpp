// Placeholder until the emulator lands (same session): keeps the link whole.
#include "zns/backends.h"

namespace znslab::zns {

Result<std::unique_ptr<ZonedDevice>> open_emu_device(std::string_view, std::string* error) {
  if (error) *error = "emu: backend not built yet";
  return Status(Code::kNotSupported, "emu backend");
}

}  // namespace znslab::zns
