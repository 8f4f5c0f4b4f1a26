// Names of zone states (the strings `znslab zone report` prints).
#include "zns/zoned_device.h"

namespace znslab::zns {

const char* zone_state_name(ZoneState s) noexcept {
  switch (s) {
    case ZoneState::kEmpty: return "EMPTY";
    case ZoneState::kImplicitOpen: return "IMPLICIT_OPEN";
    case ZoneState::kExplicitOpen: return "EXPLICIT_OPEN";
    case ZoneState::kClosed: return "CLOSED";
    case ZoneState::kFull: return "FULL";
    case ZoneState::kReadOnly: return "READ_ONLY";
    case ZoneState::kOffline: return "OFFLINE";
  }
  return "UNKNOWN";
}

std::optional<ZoneState> zone_state_from_name(std::string_view name) noexcept {
  for (uint8_t i = 0; i <= uint8_t(ZoneState::kOffline); ++i) {
    auto s = ZoneState(i);
    if (name == zone_state_name(s)) return s;
  }
  return std::nullopt;
}

}  // namespace znslab::zns
