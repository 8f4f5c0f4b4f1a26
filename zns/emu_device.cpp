// EmuDevice: zone state machine and data path (QEMU hw/nvme semantics; see
// emu_device.h). Geometry, file creation and reopening: emu_open.cpp.
#include "zns/emu_device.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <thread>

#include "zns/emu_layout.h"

namespace znslab::zns {


void EmuDevice::init_pending(size_t n) {
  pending_.assign(n, Pending{});
  free_pending_.clear();
  for (size_t i = n; i-- > 0;) free_pending_.push_back(uint32_t(i));
}

// ---- zone state machine (meta_mu_ held) ------------------------------------

ZoneState EmuDevice::state_of(uint32_t z) const { return ZoneState(zones_[z].state); }

void EmuDevice::set_state(uint32_t z, ZoneState s) {
  EmuZoneMeta& m = zones_[z];
  if (s == ZoneState::kImplicitOpen && ZoneState(m.state) != ZoneState::kImplicitOpen) {
    m.imp_seq = hdr_->imp_open_seq++;
  }
  m.state = uint8_t(s);
}

// QEMU nvme_zns_check_resources: active first, then open.
Status EmuDevice::check_resources(int act, int opn) {
  if (info_.max_active != 0 && nr_active_ + uint32_t(act) > info_.max_active) {
    return Status(Code::kTooManyActiveZones, "zns emu: max active resources in use");
  }
  if (info_.max_open != 0 && nr_open_ + uint32_t(opn) > info_.max_open) {
    return Status(Code::kTooManyOpenZones, "zns emu: max open resources in use (all explicitly opened)");
  }
  return Status::ok();
}

// QEMU nvme_zrm_auto_transition_zone: at the open limit, close the zone
// that was implicitly opened first (head of imp_open_zones).
void EmuDevice::auto_transition() {
  if (info_.max_open == 0 || nr_open_ != info_.max_open) return;
  uint32_t best = UINT32_MAX;
  uint64_t best_seq = UINT64_MAX;
  for (uint32_t z = 0; z < info_.zone_count; ++z) {
    if (state_of(z) == ZoneState::kImplicitOpen && zones_[z].imp_seq < best_seq) {
      best_seq = zones_[z].imp_seq;
      best = z;
    }
  }
  if (best != UINT32_MAX) (void)zrm_close(best);
}

// QEMU nvme_zrm_open_flags (implicit = NVME_ZRM_AUTO).
Status EmuDevice::zrm_open(uint32_t z, bool implicit) {
  int act = 0;
  switch (state_of(z)) {
    case ZoneState::kEmpty:
      act = 1;
      [[fallthrough]];
    case ZoneState::kClosed: {
      auto_transition();
      if (auto s = check_resources(act, 1); !s) return s;
      if (act) ++nr_active_;
      ++nr_open_;
      set_state(z, implicit ? ZoneState::kImplicitOpen : ZoneState::kExplicitOpen);
      return Status::ok();
    }
    case ZoneState::kImplicitOpen:
      if (!implicit) set_state(z, ZoneState::kExplicitOpen);
      return Status::ok();
    case ZoneState::kExplicitOpen:
      return Status::ok();
    default:
      return Status(Code::kInvalidZoneStateTransition, "zns emu: open of a Full/Read Only/Offline zone");
  }
}

// QEMU nvme_zrm_close: open -> Closed; Closed stays; others are invalid.
Status EmuDevice::zrm_close(uint32_t z) {
  switch (state_of(z)) {
    case ZoneState::kExplicitOpen:
    case ZoneState::kImplicitOpen:
      --nr_open_;
      set_state(z, ZoneState::kClosed);
      return Status::ok();
    case ZoneState::kClosed:
      return Status::ok();
    default:
      return Status(Code::kInvalidZoneStateTransition, "zns emu: close of an Empty/Full/Read Only/Offline zone");
  }
}

// QEMU nvme_zrm_finish: any of Empty/open/Closed -> Full; Full stays.
Status EmuDevice::zrm_finish(uint32_t z) {
  switch (state_of(z)) {
    case ZoneState::kFull:
      return Status::ok();
    case ZoneState::kImplicitOpen:
    case ZoneState::kExplicitOpen:
      --nr_open_;
      [[fallthrough]];
    case ZoneState::kClosed:
      --nr_active_;
      [[fallthrough]];
    case ZoneState::kEmpty:
      set_state(z, ZoneState::kFull);
      return Status::ok();
    default:
      return Status(Code::kInvalidZoneStateTransition, "zns emu: finish of a Read Only/Offline zone");
  }
}

Zone EmuDevice::snapshot(uint32_t z) const {
  Zone o;
  o.index = z;
  o.start = uint64_t(z) * info_.zone_size;
  o.capacity = info_.zone_capacity;
  o.state = state_of(z);
  o.write_pointer = o.start + (o.state == ZoneState::kFull ? info_.zone_capacity : zones_[z].wp);
  return o;
}

// ---- management --------------------------------------------------------------

Result<std::vector<Zone>> EmuDevice::report_zones(uint32_t first, uint32_t count) {
  if (first >= info_.zone_count) return Status(Code::kLbaOutOfRange, "zns emu: report from a zone past the end");
  uint32_t n = std::min<uint64_t>(count, info_.zone_count - first);
  std::vector<Zone> out;
  out.reserve(n);
  std::lock_guard<std::mutex> g(meta_mu_);
  for (uint32_t z = first; z < first + n; ++z) out.push_back(snapshot(z));
  return out;
}

Status EmuDevice::open(uint32_t zone) {
  if (zone >= info_.zone_count) return Status(Code::kLbaOutOfRange, "zns emu: zone index past the end");
  std::lock_guard<std::mutex> g(meta_mu_);
  return zrm_open(zone, false);
}

Status EmuDevice::close(uint32_t zone) {
  if (zone >= info_.zone_count) return Status(Code::kLbaOutOfRange, "zns emu: zone index past the end");
  std::lock_guard<std::mutex> g(meta_mu_);
  return zrm_close(zone);
}

Status EmuDevice::finish(uint32_t zone) {
  if (zone >= info_.zone_count) return Status(Code::kLbaOutOfRange, "zns emu: zone index past the end");
  std::lock_guard<std::mutex> g(meta_mu_);
  return zrm_finish(zone);
}

Status EmuDevice::punch(uint32_t zone) {
  const uint64_t off = data_offset_ + uint64_t(zone) * info_.zone_size;
  const int mode = prealloc_ ? (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)
                             : (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
  if (::fallocate(fd_, mode, off_t(off), off_t(info_.zone_size)) == 0) return Status::ok();
  // Filesystem without hole punching: write zeros over the written extent.
  const uint64_t len = zones_[zone].wp ? zones_[zone].wp : info_.zone_capacity;
  std::vector<uint8_t> zeros(std::min<uint64_t>(len, 1 << 20), 0);
  for (uint64_t done = 0; done < len;) {
    size_t n = size_t(std::min<uint64_t>(zeros.size(), len - done));
    ssize_t w = ::pwrite(fd_, zeros.data(), n, off_t(off + done));
    if (w <= 0) return Status::from_errno(w < 0 ? errno : EIO, "zns emu reset: zeroing zone data");
    done += uint64_t(w);
  }
  return Status::ok();
}

// QEMU nvme_zrm_reset (+ the zone's data reads back as zeros, as QEMU's
// reset writes zeroes with BDRV_REQ_MAY_UNMAP).
Status EmuDevice::reset(uint32_t zone) {
  if (zone >= info_.zone_count) return Status(Code::kLbaOutOfRange, "zns emu: zone index past the end");
  std::lock_guard<std::mutex> g(meta_mu_);
  switch (state_of(zone)) {
    case ZoneState::kExplicitOpen:
    case ZoneState::kImplicitOpen:
      --nr_open_;
      [[fallthrough]];
    case ZoneState::kClosed:
      --nr_active_;
      [[fallthrough]];
    case ZoneState::kFull: {
      Status ps = punch(zone);
      zones_[zone].wp = 0;  // persisted before the state: a kill between leaves a valid zone
      set_state(zone, ZoneState::kEmpty);
      return ps;
    }
    case ZoneState::kEmpty:
      return Status::ok();
    default:
      return Status(Code::kInvalidZoneStateTransition, "zns emu: reset of a Read Only/Offline zone");
  }
}

// QEMU nvme_zoned_ns_shutdown + nvme_clear_zone: open and closed zones with
// data become Closed, those without become Empty.
Status EmuDevice::power_cycle() {
  std::lock_guard<std::mutex> g(meta_mu_);
  nr_open_ = 0;
  nr_active_ = 0;
  for (uint32_t z = 0; z < info_.zone_count; ++z) {
    ZoneState s = state_of(z);
    if (!is_active(s)) continue;
    if (zones_[z].wp != 0) {
      set_state(z, ZoneState::kClosed);
      ++nr_active_;
    } else {
      set_state(z, ZoneState::kEmpty);
    }
  }
  hdr_->power_cycles++;
  return Status::ok();
}

Status EmuDevice::inject_zone_condition(uint32_t zone, ZoneState state) {
  if (zone >= info_.zone_count) return Status(Code::kLbaOutOfRange, "zns emu: zone index past the end");
  if (state != ZoneState::kReadOnly && state != ZoneState::kOffline) {
    return Status(Code::kInvalidArgument, "inject_zone_condition: only READ_ONLY or OFFLINE");
  }
  std::lock_guard<std::mutex> g(meta_mu_);
  ZoneState s = state_of(zone);
  if (is_open(s)) --nr_open_;
  if (is_active(s)) --nr_active_;
  set_state(zone, state);
  return Status::ok();
}

// ---- data path -------------------------------------------------------------------

Status EmuDevice::check_args(uint32_t zone, uint64_t offset, const void* buf, size_t len,
                             bool append) const {
  if (zone >= info_.zone_count) return Status(Code::kLbaOutOfRange, "zns emu: zone index past the end");
  if (buf == nullptr || len == 0) return Status(Code::kInvalidArgument, "zns emu: empty I/O or null buffer");
  if (len % info_.lba_bytes != 0 || offset % info_.lba_bytes != 0) {
    return Status(Code::kInvalidArgument, "zns emu: offset/length not a multiple of the LBA size");
  }
  if (offset > info_.zone_size) return Status(Code::kZoneBoundaryError, "zns emu: offset past the zone");
  if (append && info_.zone_append_max_bytes && len > info_.zone_append_max_bytes) {
    return Status(Code::kInvalidArgument, "zns emu: zone append larger than ZASL (Invalid Field)");
  }
  return Status::ok();
}

// QEMU nvme_do_write: (append: ZASL) -> state -> write pointer -> boundary ->
// implicit open (resources) -> advance the write pointer.
Result<uint64_t> EmuDevice::begin_write(uint32_t zone, uint64_t offset, size_t len, bool append) {
  std::lock_guard<std::mutex> g(meta_mu_);
  EmuZoneMeta& m = zones_[zone];
  switch (state_of(zone)) {
    case ZoneState::kFull: return Status(Code::kZoneIsFull, "zns emu: write to a Full zone");
    case ZoneState::kReadOnly: return Status(Code::kZoneIsReadOnly, "zns emu: write to a Read Only zone");
    case ZoneState::kOffline: return Status(Code::kZoneIsOffline, "zns emu: write to an Offline zone");
    default: break;
  }
  if (append) {
    offset = m.wp;
  } else if (offset != m.wp) {
    return Status(Code::kZoneInvalidWrite, "zns emu: write not at the write pointer");
  }
  if (offset + len > info_.zone_capacity) {
    return Status(Code::kZoneBoundaryError, "zns emu: write crosses the zone capacity");
  }
  if (auto s = zrm_open(zone, true); !s) return s;
  m.wp = offset + len;  // persisted (MAP_SHARED) before the data is submitted
  ++inflight_[zone];
  return offset;
}

// QEMU nvme_finalize_zoned_write/nvme_advance_zone_wp: the zone becomes Full
// when every reserved write has completed and the write pointer is at capacity.
void EmuDevice::end_write(uint32_t zone) {
  std::lock_guard<std::mutex> g(meta_mu_);
  if (inflight_[zone] > 0) --inflight_[zone];
  if (inflight_[zone] == 0 && zones_[zone].wp == info_.zone_capacity && is_active(state_of(zone))) {
    (void)zrm_finish(zone);
  }
}

// QEMU nvme_check_zone_read (cross-zone reads off).
Result<size_t> EmuDevice::begin_read(uint32_t zone, uint64_t offset, size_t len) {
  std::lock_guard<std::mutex> g(meta_mu_);
  if (state_of(zone) == ZoneState::kOffline) return Status(Code::kZoneIsOffline, "zns emu: read of an Offline zone");
  if (offset + len > info_.zone_size) return Status(Code::kZoneBoundaryError, "zns emu: read crosses the zone end");
  const uint64_t wp = zones_[zone].wp;
  return size_t(wp > offset ? std::min<uint64_t>(len, wp - offset) : 0);
}

Status EmuDevice::sync_io(io::OpKind kind, uint64_t file_off, void* buf, size_t len) {
  // O_DIRECT needs an aligned buffer: bounce when the caller's is not.
  io::AlignedBuffer bounce;
  void* p = buf;
  if (direct_ && (reinterpret_cast<uintptr_t>(buf) % info_.lba_bytes) != 0) {
    auto b = io::AlignedBuffer::allocate(len, info_.lba_bytes);
    if (!b) return b.status();
    bounce = std::move(*b);
    if (kind == io::OpKind::kWrite) std::memcpy(bounce.data(), buf, len);
    p = bounce.data();
  }
  // One ring per caller at a time: try each, then wait on one.
  SyncRing* ring = nullptr;
  std::unique_lock<std::mutex> lk;
  for (auto& r : sync_) {
    std::unique_lock<std::mutex> t(r->mu, std::try_to_lock);
    if (t.owns_lock()) {
      ring = r.get();
      lk = std::move(t);
      break;
    }
  }
  if (ring == nullptr) {
    ring = sync_[std::hash<std::thread::id>{}(std::this_thread::get_id()) % sync_.size()].get();
    lk = std::unique_lock<std::mutex>(ring->mu);
  }
  io::EngineOp op;
  op.kind = kind;
  op.fd = data_fd_;
  op.buf = p;
  op.len = len;
  op.file_offset = file_off;
  if (auto s = ring->engine->queue(op); !s) return s;
  io::EngineCompletion c;
  auto r = ring->engine->reap(std::span<io::EngineCompletion>(&c, 1), 1);
  if (!r) return r.status();
  if (*r != 1) return Status(Code::kIoError, "zns emu: lost completion", EIO);
  if (c.res < 0) return Status::from_errno(int(-c.res), kind == io::OpKind::kRead ? "zns emu data read" : "zns emu data write");
  if (size_t(c.res) != len) return Status(Code::kIoError, "zns emu: short transfer on the backing file", EIO);
  if (p != buf && kind == io::OpKind::kRead) std::memcpy(buf, p, len);
  return Status::ok();
}

Status EmuDevice::write(uint32_t zone, uint64_t offset, const void* buf, size_t len) {
  if (auto s = check_args(zone, offset, buf, len, false); !s) return s;
  auto off = begin_write(zone, offset, len, false);
  if (!off) return off.status();
  Status s = sync_io(io::OpKind::kWrite, data_offset_ + uint64_t(zone) * info_.zone_size + *off,
                     const_cast<void*>(buf), len);
  end_write(zone);
  return s;
}

Result<uint64_t> EmuDevice::append(uint32_t zone, const void* buf, size_t len) {
  if (auto s = check_args(zone, 0, buf, len, true); !s) return s;
  auto off = begin_write(zone, 0, len, true);
  if (!off) return off.status();
  Status s = sync_io(io::OpKind::kWrite, data_offset_ + uint64_t(zone) * info_.zone_size + *off,
                     const_cast<void*>(buf), len);
  end_write(zone);
  if (!s) return s;
  return *off;
}

Status EmuDevice::read(uint32_t zone, uint64_t offset, void* buf, size_t len) {
  if (auto s = check_args(zone, offset, buf, len, false); !s) return s;
  auto valid = begin_read(zone, offset, len);
  if (!valid) return valid.status();
  if (*valid < len) std::memset(static_cast<uint8_t*>(buf) + *valid, 0, len - *valid);
  if (*valid == 0) return Status::ok();
  return sync_io(io::OpKind::kRead, data_offset_ + uint64_t(zone) * info_.zone_size + offset, buf, *valid);
}

std::optional<BackingFile> EmuDevice::backing_file() const noexcept {
  return BackingFile{fd_, data_offset_};
}

// ---- asynchronous path ------------------------------------------------------------

Status EmuDevice::submit(std::span<const IoRequest> batch) {
  if (batch.empty()) return Status::ok();
  size_t pieces = 0;
  for (const IoRequest& r : batch) {
    if (auto s = check_args(r.zone, r.op == IoOp::kAppend ? 0 : r.offset, r.buf, r.len,
                            r.op == IoOp::kAppend); !s) {
      return s;
    }
    if (direct_ && reinterpret_cast<uintptr_t>(r.buf) % info_.lba_bytes != 0) {
      return Status(Code::kInvalidArgument, "zns emu: async buffer not aligned to the LBA size (O_DIRECT)");
    }
    pieces += io::piece_count(r.len, info_.max_io_bytes);
  }
  std::lock_guard<std::mutex> sg(submit_mu_);
  {
    std::lock_guard<std::mutex> tg(table_mu_);
    if (pieces + async_->in_flight() > async_->capacity() || batch.size() > free_pending_.size()) {
      return Status(Code::kBusy, "zns emu: too many I/Os in flight; reap completions first");
    }
  }
  std::vector<IoCompletion> immediate;
  for (const IoRequest& r : batch) {
    const uint64_t zbase = data_offset_ + uint64_t(r.zone) * info_.zone_size;
    Pending p;
    p.user_data = r.user_data;
    p.zone = r.zone;
    p.len = r.len;
    p.op = r.op;
    io::EngineOp op;
    op.fd = data_fd_;
    op.buf = r.buf;
    if (r.op == IoOp::kRead) {
      auto valid = begin_read(r.zone, r.offset, r.len);
      if (!valid) {
        immediate.push_back(IoCompletion{r.user_data, valid.status(), r.offset, 0, 0});
        continue;
      }
      if (*valid < r.len) std::memset(static_cast<uint8_t*>(r.buf) + *valid, 0, r.len - *valid);
      if (*valid == 0) {
        immediate.push_back(IoCompletion{r.user_data, Status::ok(), r.offset, r.len, 0});
        continue;
      }
      p.offset = r.offset;
      p.io_len = *valid;
      op.kind = io::OpKind::kRead;
    } else {
      auto off = begin_write(r.zone, r.offset, r.len, r.op == IoOp::kAppend);
      if (!off) {
        immediate.push_back(IoCompletion{r.user_data, off.status(), r.offset, 0, 0});
        continue;
      }
      p.offset = *off;
      p.io_len = r.len;
      op.kind = io::OpKind::kWrite;
    }
    op.len = p.io_len;
    op.file_offset = zbase + p.offset;
    uint32_t idx;
    {
      std::lock_guard<std::mutex> tg(table_mu_);
      idx = free_pending_.back();
      free_pending_.pop_back();
      pending_[idx] = p;
    }
    op.user_data = idx;
    if (auto s = async_->queue(op); !s) {
      if (r.op != IoOp::kRead) end_write(r.zone);
      std::lock_guard<std::mutex> tg(table_mu_);
      free_pending_.push_back(idx);
      immediate.push_back(IoCompletion{r.user_data, s, p.offset, 0, 0});
    }
  }
  if (!immediate.empty()) {
    std::lock_guard<std::mutex> tg(table_mu_);
    ready_.insert(ready_.end(), immediate.begin(), immediate.end());
  }
  auto sub = async_->submit();
  return sub ? Status::ok() : sub.status();
}

Result<size_t> EmuDevice::reap(std::span<IoCompletion> out, size_t min_complete) {
  std::lock_guard<std::mutex> rg(reap_mu_);
  size_t n = 0;
  auto drain_ready = [&] {
    std::lock_guard<std::mutex> tg(table_mu_);
    size_t k = std::min(out.size() - n, ready_.size());
    for (size_t i = 0; i < k; ++i) out[n++] = ready_[i];
    ready_.erase(ready_.begin(), ready_.begin() + long(k));
  };
  drain_ready();
  io::EngineCompletion ec[64];
  while (n < out.size()) {
    size_t want = min_complete > n ? min_complete - n : 0;
    if (want > 0 && async_->in_flight() == 0) {
      size_t before = n;
      drain_ready();
      if (n == before) break;  // nothing in flight, nothing ready: do not wait forever
      continue;
    }
    size_t k = std::min<size_t>(64, out.size() - n);
    auto r = async_->reap(std::span<io::EngineCompletion>(ec, k), std::min(want, k));
    if (!r) return n ? Result<size_t>(n) : Result<size_t>(r.status());
    if (*r == 0 && want == 0) break;
    for (size_t i = 0; i < *r; ++i) {
      Pending p;
      {
        std::lock_guard<std::mutex> tg(table_mu_);
        p = pending_[ec[i].user_data];
        free_pending_.push_back(uint32_t(ec[i].user_data));
      }
      if (p.op != IoOp::kRead) end_write(p.zone);
      IoCompletion& c = out[n++];
      c.user_data = p.user_data;
      c.offset = p.offset;
      c.latency_ns = ec[i].latency_ns;
      if (ec[i].res < 0) {
        c.status = Status::from_errno(int(-ec[i].res), p.op == IoOp::kRead ? "zns emu data read" : "zns emu data write");
        c.bytes = 0;
      } else if (size_t(ec[i].res) != p.io_len) {
        c.status = Status(Code::kIoError, "zns emu: short transfer on the backing file", EIO);
        c.bytes = size_t(ec[i].res);
      } else {
        c.status = Status::ok();
        c.bytes = p.len;
      }
    }
  }
  return n;
}

}  // namespace znslab::zns
