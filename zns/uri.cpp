#include "zns/uri.h"

#include <cctype>

namespace znslab::zns {

static Status bad(const std::string& msg) { return Status::with_message(Code::kInvalidArgument, msg); }

Result<DeviceUri> parse_device_spec(std::string_view spec) {
  DeviceUri u;
  auto q = spec.find('?');
  u.path = std::string(spec.substr(0, q));
  if (u.path.empty()) return bad("device URI '" + std::string(spec) + "': empty path");
  if (q == std::string_view::npos) return u;
  std::string_view rest = spec.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    std::string_view kv = rest.substr(0, amp);
    rest = (amp == std::string_view::npos) ? std::string_view() : rest.substr(amp + 1);
    if (kv.empty()) continue;
    auto eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return bad("device URI parameter '" + std::string(kv) + "' is not key=value");
    }
    std::string key(kv.substr(0, eq));
    if (u.params.count(key)) return bad("device URI parameter '" + key + "' given twice");
    u.params[key] = std::string(kv.substr(eq + 1));
  }
  return u;
}

Result<DeviceUri> parse_device_uri(std::string_view uri) {
  auto c = uri.find(':');
  if (c == std::string_view::npos || c == 0) {
    return bad("device URI '" + std::string(uri) +
                          "' has no scheme (expected emu:PATH?..., zbd:/dev/..., nvme:/dev/ng...)");
  }
  auto r = parse_device_spec(uri.substr(c + 1));
  if (!r) return r;
  r->scheme = std::string(uri.substr(0, c));
  return r;
}

std::optional<uint64_t> parse_size(std::string_view t) noexcept {
  if (t.empty()) return std::nullopt;
  size_t i = 0;
  uint64_t v = 0;
  while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) {
    uint64_t d = uint64_t(t[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
    ++i;
  }
  if (i == 0) return std::nullopt;
  std::string_view suf = t.substr(i);
  unsigned shift = 0;
  if (!suf.empty()) {
    switch (std::toupper(static_cast<unsigned char>(suf[0]))) {
      case 'K': shift = 10; break;
      case 'M': shift = 20; break;
      case 'G': shift = 30; break;
      case 'T': shift = 40; break;
      case 'B': shift = 0; break;
      default: return std::nullopt;
    }
    std::string_view tail = suf.substr(1);
    if (std::toupper(static_cast<unsigned char>(suf[0])) == 'B') {
      if (!tail.empty()) return std::nullopt;
    } else if (!(tail.empty() || tail == "B" || tail == "b" || tail == "iB" || tail == "ib")) {
      return std::nullopt;
    }
  }
  if (shift && v > (UINT64_MAX >> shift)) return std::nullopt;
  return v << shift;
}

std::string format_size(uint64_t b) {
  static const char* suf[] = {"T", "G", "M", "K"};
  static const unsigned sh[] = {40, 30, 20, 10};
  for (int i = 0; i < 4; ++i) {
    if (b != 0 && (b & ((uint64_t(1) << sh[i]) - 1)) == 0) {
      return std::to_string(b >> sh[i]) + suf[i];
    }
  }
  return std::to_string(b);
}

}  // namespace znslab::zns
