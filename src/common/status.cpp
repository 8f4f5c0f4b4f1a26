#include "src/common/status.h"

#include <cstring>
#include <mutex>
#include <string_view>
#include <unordered_set>

namespace znslab {

const char* code_name(Code c) noexcept {
  switch (c) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: return "Invalid argument";
    case Code::kOutOfMemory: return "Out of memory";
    case Code::kIoError: return "I/O error";
    case Code::kNotSupported: return "Not supported";
    case Code::kNotFound: return "Not found";
    case Code::kCorrupt: return "Corrupt state";
    case Code::kBusy: return "Busy";
    case Code::kInvalidHandle: return "Invalid handle";
    case Code::kStaleHandle: return "Stale handle";
    case Code::kDoubleFree: return "Double free";
    case Code::kEpochClosed: return "Epoch closed";
    case Code::kDomainViolation: return "Epoch domain violation";
    case Code::kZoneBoundaryError: return "Zone Boundary Error";
    case Code::kZoneIsFull: return "Zone Is Full";
    case Code::kZoneIsReadOnly: return "Zone Is Read Only";
    case Code::kZoneIsOffline: return "Zone Is Offline";
    case Code::kZoneInvalidWrite: return "Zone Invalid Write";
    case Code::kTooManyActiveZones: return "Too Many Active Zones";
    case Code::kTooManyOpenZones: return "Too Many Open Zones";
    case Code::kInvalidZoneStateTransition: return "Invalid Zone State Transition";
    case Code::kLbaOutOfRange: return "LBA Out of Range";
    case Code::kDeviceGone: return "Device gone";
    case Code::kOutOfBounds: return "Out of bounds";
    case Code::kOutOfSpace: return "Out of space";
  }
  return "Unknown";
}

namespace {
// The intern table of Status::with_message. Node-based: element addresses
// (and so the c_str() pointers handed out) never move. Leaked on purpose:
// statuses may outlive static destruction.
struct MessageTable {
  std::mutex mu;
  std::unordered_set<std::string> texts;
  size_t bytes = 0;
};
MessageTable& message_table() {
  static MessageTable* t = new MessageTable;
  return *t;
}
constexpr size_t kMaxMessages = size_t(64) << 10, kMaxMessageBytes = size_t(16) << 20;
}  // namespace

Status Status::with_message(Code code, std::string_view message, int sys_errno) {
  MessageTable& t = message_table();
  std::lock_guard<std::mutex> g(t.mu);
  std::string key(message);
  auto it = t.texts.find(key);
  if (it == t.texts.end()) {
    if (t.texts.size() >= kMaxMessages || t.bytes + key.size() > kMaxMessageBytes)
      return Status(code, "(message dropped: the status message table is full)", sys_errno);
    t.bytes += key.size();
    it = t.texts.insert(std::move(key)).first;
  }
  return Status(code, it->c_str(), sys_errno);
}

Status Status::from_errno_message(int e, std::string_view message) {
  return with_message(from_errno(e, "").code(), message, e);
}

Status Status::from_errno(int e, const char* context) noexcept {
  Code c = Code::kIoError;
  switch (e) {
    case ENOMEM: c = Code::kOutOfMemory; break;
    case EINVAL: c = Code::kInvalidArgument; break;
    case ENOENT: c = Code::kNotFound; break;
    case EOPNOTSUPP: c = Code::kNotSupported; break;
    case ENODEV:
    case ENXIO: c = Code::kDeviceGone; break;
    case EBUSY: c = Code::kBusy; break;
    default: break;
  }
  return Status(c, context, e);
}

std::string Status::to_string() const {
  std::string s = code_name(code_);
  if (errno_ != 0) {
    char buf[128];
    // GNU strerror_r returns the message pointer.
    const char* msg = strerror_r(errno_, buf, sizeof buf);
    s += ": ";
    s += msg;
    s += " (errno ";
    s += std::to_string(errno_);
    if (context_ && *context_) {
      s += ", ";
      s += context_;
    }
    s += ")";
  } else if (context_ && *context_) {
    s += " (";
    s += context_;
    s += ")";
  }
  return s;
}

}  // namespace znslab
