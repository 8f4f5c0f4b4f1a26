// libFuzzer target: device URI parsing (zns/uri.h). Any input must give a
// DeviceUri or a kInvalidArgument error with a message, never a crash; a
// parsed URI's sizes must round-trip through format_size/parse_size.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "zns/uri.h"

using namespace znslab;
using namespace znslab::zns;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto u = parse_device_uri(text);
  if (!u) {
    // A refusal names its reason.
    if (u.status().code() != Code::kInvalidArgument || !*u.status().context()) __builtin_trap();
  } else {
    if (u->scheme.empty() || u->path.empty()) __builtin_trap();
    for (const auto& [k, v] : u->params) {
      if (k.empty()) __builtin_trap();
      if (auto n = parse_size(v)) {
        auto back = parse_size(format_size(*n));
        if (!back || *back != *n) __builtin_trap();
      }
    }
  }
  auto s = parse_device_spec(text);
  (void)s;
  if (auto n = parse_size(text)) {
    auto back = parse_size(format_size(*n));
    if (!back || *back != *n) __builtin_trap();
  }
  return 0;
}
