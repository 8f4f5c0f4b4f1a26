#include "zns/fault_device.h"

#include <cerrno>

namespace znslab::zns {

static Status injected() { return Status(Code::kIoError, "fault injection: I/O failed", EIO); }

FaultDevice::FaultDevice(std::unique_ptr<ZonedDevice> inner) : ZonedDeviceWrapper(std::move(inner)) {}

void FaultDevice::fail_nth_io(uint64_t n, bool repeat) noexcept {
  period_.store(repeat ? n : 0);
  target_.store(n == 0 ? 0 : ios_.load() + n);
}

bool FaultDevice::take_fault() noexcept {
  uint64_t k = ios_.fetch_add(1) + 1;
  uint64_t t = target_.load();
  if (t == 0 || k != t) return false;
  uint64_t p = period_.load();
  target_.store(p ? t + p : 0);
  failures_.fetch_add(1);
  return true;
}

Status FaultDevice::set_zone_condition(uint32_t zone, ZoneState state) {
  if (state != ZoneState::kReadOnly && state != ZoneState::kOffline) {
    return Status(Code::kInvalidArgument, "set_zone_condition: only READ_ONLY or OFFLINE");
  }
  if (zone >= inner().info().zone_count) return Status(Code::kLbaOutOfRange, "set_zone_condition: zone past the end");
  Status s = inner().inject_zone_condition(zone, state);
  if (s.code() != Code::kNotSupported) return s;
  std::lock_guard<std::mutex> g(mu_);
  overlay_[zone] = state;
  return Status::ok();
}

std::optional<ZoneState> FaultDevice::overlay(uint32_t zone) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = overlay_.find(zone);
  if (it == overlay_.end()) return std::nullopt;
  return it->second;
}

Status FaultDevice::overlay_write_status(uint32_t zone) {
  auto o = overlay(zone);
  if (!o) return Status::ok();
  return *o == ZoneState::kOffline ? Status(Code::kZoneIsOffline, "fault injection: zone Offline")
                                   : Status(Code::kZoneIsReadOnly, "fault injection: zone Read Only");
}

Result<std::vector<Zone>> FaultDevice::report_zones(uint32_t first, uint32_t count) {
  auto r = inner().report_zones(first, count);
  if (!r) return r;
  std::lock_guard<std::mutex> g(mu_);
  for (Zone& z : *r) {
    auto it = overlay_.find(z.index);
    if (it != overlay_.end()) z.state = it->second;
  }
  return r;
}

#define ZNS_FAULT_MGMT(name)                                                              \
  Status FaultDevice::name(uint32_t zone) {                                               \
    if (overlay(zone)) {                                                                  \
      return Status(Code::kInvalidZoneStateTransition, "fault injection: zone Read Only/Offline"); \
    }                                                                                     \
    return inner().name(zone);                                                            \
  }
ZNS_FAULT_MGMT(open)
ZNS_FAULT_MGMT(close)
ZNS_FAULT_MGMT(finish)
ZNS_FAULT_MGMT(reset)
#undef ZNS_FAULT_MGMT

Status FaultDevice::write(uint32_t zone, uint64_t offset, const void* buf, size_t len) {
  if (take_fault()) return injected();
  if (auto s = overlay_write_status(zone); !s) return s;
  return inner().write(zone, offset, buf, len);
}

Result<uint64_t> FaultDevice::append(uint32_t zone, const void* buf, size_t len) {
  if (take_fault()) return injected();
  if (auto s = overlay_write_status(zone); !s) return s;
  return inner().append(zone, buf, len);
}

Status FaultDevice::read(uint32_t zone, uint64_t offset, void* buf, size_t len) {
  if (take_fault()) return injected();
  if (overlay(zone) == ZoneState::kOffline) return Status(Code::kZoneIsOffline, "fault injection: zone Offline");
  return inner().read(zone, offset, buf, len);
}

Status FaultDevice::submit(std::span<const IoRequest> batch) {
  std::vector<IoRequest> pass;
  std::vector<IoCompletion> failed;
  pass.reserve(batch.size());
  for (const IoRequest& r : batch) {
    Status s = take_fault() ? injected() : Status::ok();
    if (s && r.op != IoOp::kRead) s = overlay_write_status(r.zone);
    if (s && r.op == IoOp::kRead && overlay(r.zone) == ZoneState::kOffline) {
      s = Status(Code::kZoneIsOffline, "fault injection: zone Offline");
    }
    if (s) {
      pass.push_back(r);
    } else {
      failed.push_back(IoCompletion{r.user_data, s, r.offset, 0, 0});
    }
  }
  if (!pass.empty()) {
    if (auto s = inner().submit(pass); !s) return s;
  }
  if (!failed.empty()) {
    std::lock_guard<std::mutex> g(mu_);
    ready_.insert(ready_.end(), failed.begin(), failed.end());
  }
  return Status::ok();
}

Result<size_t> FaultDevice::reap(std::span<IoCompletion> out, size_t min_complete) {
  size_t n = 0;
  {
    std::lock_guard<std::mutex> g(mu_);
    while (n < out.size() && !ready_.empty()) {
      out[n++] = ready_.front();
      ready_.erase(ready_.begin());
    }
  }
  if (n == out.size()) return n;
  auto r = inner().reap(out.subspan(n), min_complete > n ? min_complete - n : 0);
  if (!r) return n ? Result<size_t>(n) : r;
  return n + *r;
}

}  // namespace znslab::zns
