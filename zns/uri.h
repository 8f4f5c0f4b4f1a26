// Device URI parsing: "scheme:path?key=value&key=value" with byte sizes
// such as 64M, 62M, 4K, 1G, 512 (suffixes K/M/G/T, powers of 1024, case
// insensitive; an optional trailing "B" or "iB" is accepted: 64MiB).
//
// Thread-safety: pure functions. Errors: kInvalidArgument, with a message
// naming the offending part in *error when given.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "src/common/status.h"

namespace znslab::zns {

struct DeviceUri {
  std::string scheme;                         // "emu", "zbd", "nvme"
  std::string path;                           // before '?'
  std::map<std::string, std::string> params;  // after '?', in key order
};

// Splits "scheme:path?k=v&k=v". Errors: kInvalidArgument with a message
// naming the problem (no scheme, empty path, a parameter without '=', a
// repeated key).
Result<DeviceUri> parse_device_uri(std::string_view uri);

// Splits "path?k=v&k=v" (the part after "scheme:").
Result<DeviceUri> parse_device_spec(std::string_view spec);

// "64M" -> 67108864. Errors: empty, not a number, unknown suffix, overflow.
std::optional<uint64_t> parse_size(std::string_view text) noexcept;

// 67108864 -> "64M" (the largest exact suffix), 1000 -> "1000".
std::string format_size(uint64_t bytes);

}  // namespace znslab::zns
