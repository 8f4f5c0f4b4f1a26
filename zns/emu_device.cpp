// EmuDevice: zone state machine and data path (QEMU hw/nvme semantics; see
// emu_device.h). Geometry, file creation and reopening: emu_open.cpp.
//
// Persistence (docs/zns.md, "Crash ordering"): rt_ is the authoritative
// zone state; commit(z) stores zone z's state word (state, written extent)
// in the mapped table with one 8-byte store. A write's data is submitted
// and completed before the word that covers it is stored, and the write is
// acknowledged only after that store; a reset stores Empty before the data
// is released.
#include "zns/emu_device.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <functional>
#include <thread>

#include "zns/emu_hooks.h"
#include "zns/emu_layout.h"

namespace znslab::zns {

namespace detail {
std::atomic<EmuHook> g_emu_hook{nullptr};
void* g_emu_hook_ctx = nullptr;
}  // namespace detail

void set_emu_hook(EmuHook hook, void* ctx) noexcept {
  detail::g_emu_hook.store(nullptr, std::memory_order_release);
  detail::g_emu_hook_ctx = ctx;
  detail::g_emu_hook.store(hook, std::memory_order_release);
}

void EmuDevice::init_pending(size_t n) {
  pending_.assign(n, Pending{});
  free_pending_.clear();
  for (size_t i = n; i-- > 0;) free_pending_.push_back(uint32_t(i));
}

// ---- persistence (meta_mu_ held) -------------------------------------------

static void store_word(uint64_t* w, uint64_t v) {
  if (*w == v) return;
  emu_step(EmuStep::kTableStore);
  std::atomic_ref<uint64_t>(*w).store(v, std::memory_order_relaxed);
  emu_step(EmuStep::kTableStored);
}

void EmuDevice::commit(uint32_t z) {
  const ZoneRt& r = rt_[z];
  store_word(&table_[z].state_word,
             emu_pack_word(z, emu_state_payload(r.state, r.wp), kEmuSaltState));
}

void EmuDevice::store_order(uint32_t z, uint32_t seq) {
  store_word(&table_[z].order_word, emu_pack_word(z, seq, kEmuSaltOrder));
}

// ---- zone state machine (meta_mu_ held) ------------------------------------

void EmuDevice::set_state(uint32_t z, ZoneState s) {
  const ZoneState old = state_of(z);
  if (old == ZoneState::kImplicitOpen && s != ZoneState::kImplicitOpen) {
    auto it = imp_seq_.find(z);
    if (it != imp_seq_.end()) {
      imp_order_.erase(it->second);
      imp_seq_.erase(it);
    }
  }
  if (s == ZoneState::kImplicitOpen && old != ZoneState::kImplicitOpen) {
    if (imp_next_ == UINT32_MAX) {
      // Sequence numbers ran out: renumber the open zones 1..k in order.
      std::map<uint32_t, uint32_t> fresh;
      uint32_t k = 1;
      for (const auto& [seq, zone] : imp_order_) {
        fresh[k] = zone;
        imp_seq_[zone] = k;
        store_order(zone, k);
        ++k;
      }
      imp_order_.swap(fresh);
      imp_next_ = k;
    }
    const uint32_t seq = imp_next_++;
    imp_order_[seq] = z;
    imp_seq_[z] = seq;
    store_order(z, seq);
  }
  rt_[z].state = uint8_t(s);
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
  if (info_.max_open == 0 || nr_open_ != info_.max_open || imp_order_.empty()) return;
  const uint32_t victim = imp_order_.begin()->second;
  if (zrm_close(victim)) commit(victim);
}

// QEMU nvme_zrm_open_flags (implicit = NVME_ZRM_AUTO). In memory only: the
// caller commits (explicit open) or the write's completion does.
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
  o.write_pointer = o.start + (o.state == ZoneState::kFull ? info_.zone_capacity
                                                           : uint64_t(rt_[z].wp) << lba_shift_);
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
  Status s = zrm_open(zone, false);
  if (s) commit(zone);
  return s;
}

Status EmuDevice::close(uint32_t zone) {
  if (zone >= info_.zone_count) return Status(Code::kLbaOutOfRange, "zns emu: zone index past the end");
  std::lock_guard<std::mutex> g(meta_mu_);
  Status s = zrm_close(zone);
  if (s) commit(zone);
  return s;
}

Status EmuDevice::finish(uint32_t zone) {
  if (zone >= info_.zone_count) return Status(Code::kLbaOutOfRange, "zns emu: zone index past the end");
  std::lock_guard<std::mutex> g(meta_mu_);
  Status s = zrm_finish(zone);
  if (s) commit(zone);
  return s;
}

// Releases a reset zone's blocks (sparse files only). Best effort: the
// bytes are beyond the write pointer and never read back either way.
void EmuDevice::punch(uint32_t zone) {
  if (prealloc_) return;
  const uint64_t off = data_offset_ + uint64_t(zone) * info_.zone_size;
  emu_step(EmuStep::kPunch);
  (void)::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off_t(off), off_t(info_.zone_size));
  emu_step(EmuStep::kPunched);
}

// QEMU nvme_zrm_reset. Empty is persisted first, then the data released:
// a kill between the two leaves an Empty zone (its old bytes unreadable).
Status EmuDevice::reset(uint32_t zone) {
  if (zone >= info_.zone_count) return Status(Code::kLbaOutOfRange, "zns emu: zone index past the end");
  std::lock_guard<std::mutex> g(meta_mu_);
  ZoneRt& r = rt_[zone];
  switch (state_of(zone)) {
    case ZoneState::kExplicitOpen:
    case ZoneState::kImplicitOpen:
    case ZoneState::kClosed:
    case ZoneState::kFull:
      break;
    case ZoneState::kEmpty:
      if (r.inflight == 0) return Status::ok();
      break;
    default:
      return Status(Code::kInvalidZoneStateTransition, "zns emu: reset of a Read Only/Offline zone");
  }
  if (r.inflight != 0) return Status(Code::kBusy, "zns emu: reset of a zone with writes in flight; reap them first");
  const ZoneState s = state_of(zone);
  if (is_open(s)) --nr_open_;
  if (is_active(s)) --nr_active_;
  set_state(zone, ZoneState::kEmpty);
  r.wp = r.res = 0;
  ++r.gen;
  commit(zone);
  punch(zone);
  meta_cv_.notify_all();
  return Status::ok();
}

// QEMU nvme_zoned_ns_shutdown + nvme_clear_zone: open and closed zones with
// data become Closed, those without become Empty.
Status EmuDevice::power_cycle() {
  std::lock_guard<std::mutex> g(meta_mu_);
  for (uint32_t z = 0; z < info_.zone_count; ++z) {
    if (rt_[z].inflight != 0) return Status(Code::kBusy, "zns emu: power cycle with writes in flight; reap them first");
  }
  nr_open_ = 0;
  nr_active_ = 0;
  for (uint32_t z = 0; z < info_.zone_count; ++z) {
    ZoneState s = state_of(z);
    if (!is_active(s)) continue;
    if (rt_[z].wp != 0) {
      set_state(z, ZoneState::kClosed);
      ++nr_active_;
    } else {
      set_state(z, ZoneState::kEmpty);
    }
    commit(z);
  }
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
  commit(zone);
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
  // Written so that offset + len cannot wrap.
  if (offset > info_.zone_size || len > info_.zone_size - offset) {
    return Status(Code::kZoneBoundaryError, "zns emu: I/O crosses the zone end");
  }
  if (append && info_.zone_append_max_bytes && len > info_.zone_append_max_bytes) {
    return Status(Code::kInvalidArgument, "zns emu: zone append larger than ZASL (Invalid Field)");
  }
  return Status::ok();
}

// QEMU nvme_do_write: (append: ZASL) -> state -> write pointer -> boundary ->
// implicit open (resources) -> reserve. The implicit open is persisted by
// the write's completion (a kill before it leaves the zone as it was).
Result<EmuDevice::Admit> EmuDevice::begin_write(uint32_t zone, uint64_t offset, size_t len, bool append) {
  std::lock_guard<std::mutex> g(meta_mu_);
  ZoneRt& r = rt_[zone];
  switch (state_of(zone)) {
    case ZoneState::kFull: return Status(Code::kZoneIsFull, "zns emu: write to a Full zone");
    case ZoneState::kReadOnly: return Status(Code::kZoneIsReadOnly, "zns emu: write to a Read Only zone");
    case ZoneState::kOffline: return Status(Code::kZoneIsOffline, "zns emu: write to an Offline zone");
    default: break;
  }
  if (r.failed) {
    return Status(Code::kBusy, "zns emu: a write to this zone failed and later writes are in flight; reap them first");
  }
  const uint64_t res = uint64_t(r.res) << lba_shift_;
  if (append) {
    offset = res;
  } else if (offset != res) {
    return Status(Code::kZoneInvalidWrite, "zns emu: write not at the write pointer");
  }
  if (offset + len > info_.zone_capacity) {
    return Status(Code::kZoneBoundaryError, "zns emu: write crosses the zone capacity");
  }
  if (auto s = zrm_open(zone, true); !s) return s;
  r.res += uint32_t(len >> lba_shift_);
  ++r.inflight;
  return Admit{offset, r.gen};
}

std::optional<Status> EmuDevice::end_write(uint32_t zone, uint64_t off, uint64_t len, uint64_t done,
                                           Status st, uint32_t gen) {
  ZoneRt& r = rt_[zone];
  (void)gen;  // generations change only when no write is in flight
  const uint32_t off_l = uint32_t(off >> lba_shift_);
  const uint32_t len_l = uint32_t(len >> lba_shift_);
  const uint32_t done_l = uint32_t(std::min(done, len) >> lba_shift_);
  if (done_l < len_l) {
    const uint32_t cut = off_l + done_l;
    if (!r.failed || cut < cut_[zone]) {
      cut_[zone] = cut;
      cut_status_[zone] = st ? Status(Code::kIoError, "zns emu: short transfer on the backing file", EIO) : st;
    }
    r.failed = 1;
  }
  const uint32_t lim = r.failed ? cut_[zone] : UINT32_MAX;
  const uint32_t before = r.wp;
  if (done_l > 0) {
    if (off_l == r.wp) {
      r.wp = std::min(off_l + done_l, lim);
    } else if (off_l < lim) {
      done_[zone][off_l] = off_l + done_l;
    }
  }
  if (auto it = done_.find(zone); it != done_.end()) {
    auto& m = it->second;
    for (auto e = m.find(r.wp); e != m.end() && e->first < lim; e = m.find(r.wp)) {
      r.wp = std::min(e->second, lim);
      m.erase(e);
    }
    if (m.empty()) done_.erase(it);
  }
  if (r.wp != before) {
    if (is_active(state_of(zone)) && (uint64_t(r.wp) << lba_shift_) == info_.zone_capacity) {
      (void)zrm_finish(zone);
    }
    meta_cv_.notify_all();
  }
  commit(zone);  // the data is complete: persist the extent (and an implicit open)
  if (r.failed) meta_cv_.notify_all();
  return write_outcome(zone, off + len, r.gen);
}

std::optional<Status> EmuDevice::write_outcome(uint32_t zone, uint64_t end, uint32_t gen) const {
  const ZoneRt& r = rt_[zone];
  if (gen != r.gen) return Status(Code::kIoError, "zns emu: write dropped (zone reset)", EIO);
  if ((uint64_t(r.wp) << lba_shift_) >= end) return Status::ok();
  if (r.failed && end > (uint64_t(cut_.at(zone)) << lba_shift_)) return cut_status_.at(zone);
  return std::nullopt;
}

// A decided write leaves the zone's count; the last one after a failure
// rolls the reservation back to the persisted write pointer.
void EmuDevice::settle(uint32_t z) {
  ZoneRt& r = rt_[z];
  --r.inflight;
  if (r.inflight == 0 && r.failed) {
    r.res = r.wp;
    r.failed = 0;
    ++r.gen;
    cut_.erase(z);
    cut_status_.erase(z);
    done_.erase(z);
    meta_cv_.notify_all();
  }
}

void EmuDevice::release_held(std::vector<IoCompletion>& out) {
  for (size_t i = 0; i < held_.size();) {
    Held& h = held_[i];
    auto o = write_outcome(h.zone, h.end, h.gen);
    if (!o) {
      ++i;
      continue;
    }
    h.c.status = *o;
    if (!*o) h.c.bytes = 0;
    out.push_back(h.c);
    const uint32_t z = h.zone;
    held_[i] = held_.back();
    held_.pop_back();
    settle(z);
  }
}

// QEMU nvme_check_zone_read (cross-zone reads off): bytes below the
// persisted write pointer hold data; the rest reads as zeros.
Result<size_t> EmuDevice::begin_read(uint32_t zone, uint64_t offset, size_t len) {
  std::lock_guard<std::mutex> g(meta_mu_);
  if (state_of(zone) == ZoneState::kOffline) return Status(Code::kZoneIsOffline, "zns emu: read of an Offline zone");
  const uint64_t wp = uint64_t(rt_[zone].wp) << lba_shift_;
  return size_t(wp > offset ? std::min<uint64_t>(len, wp - offset) : 0);
}

Status EmuDevice::sync_io(io::OpKind kind, uint64_t file_off, void* buf, size_t len, uint64_t* done_out) {
  uint64_t done = 0;
  *done_out = 0;
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
  // Each submission fits the ring: capacity() pieces of max_io bytes.
  const uint64_t chunk_max = uint64_t(ring->engine->capacity()) * info_.max_io_bytes;
  // O_DIRECT needs an aligned buffer: bounce when the caller's is not.
  io::AlignedBuffer bounce;
  const bool bounced = direct_ && (reinterpret_cast<uintptr_t>(buf) % info_.lba_bytes) != 0;
  if (bounced) {
    auto b = io::AlignedBuffer::allocate(std::min<uint64_t>(len, chunk_max), info_.lba_bytes);
    if (!b) return b.status();
    bounce = std::move(*b);
  }
  auto* base = static_cast<uint8_t*>(buf);
  const char* what = kind == io::OpKind::kRead ? "zns emu data read" : "zns emu data write";
  while (done < len) {
    const size_t n = size_t(std::min<uint64_t>(len - done, chunk_max));
    uint8_t* p = bounced ? bounce.data() : base + done;
    if (bounced && kind == io::OpKind::kWrite) std::memcpy(p, base + done, n);
    io::EngineOp op;
    op.kind = kind;
    op.fd = data_fd_;
    op.buf = p;
    op.len = n;
    op.file_offset = file_off + done;
    emu_step(EmuStep::kDataIo, n);
    if (auto s = ring->engine->queue(op); !s) return s;
    io::EngineCompletion c;
    auto r = ring->engine->reap(std::span<io::EngineCompletion>(&c, 1), 1);
    if (!r) return r.status();
    if (*r != 1) return Status(Code::kIoError, "zns emu: lost completion", EIO);
    int64_t res = c.res;
    uint64_t prefix = std::min<uint64_t>(c.prefix, n);
    const EmuFault f = emu_step(EmuStep::kDataDone, n);
    if (f.err > 0) prefix = 0;
    if (f.keep >= 0) prefix = std::min<uint64_t>(prefix, uint64_t(f.keep));
    if (f.err > 0) res = -f.err;
    else if (f.keep >= 0 && res >= 0) res = int64_t(prefix);
    prefix -= prefix % info_.lba_bytes;
    if (bounced && kind == io::OpKind::kRead) std::memcpy(base + done, p, prefix);
    done += prefix;
    *done_out = done;
    if (prefix == n) continue;
    if (res < 0) return Status::from_errno(int(-res), what);
    // Short with no errno: try the rest once more; a second failure to make
    // progress names its errno, or is a short transfer.
    if (prefix == 0) return Status(Code::kIoError, "zns emu: short transfer on the backing file", EIO);
  }
  return Status::ok();
}

Result<uint64_t> EmuDevice::sync_write(uint32_t zone, uint64_t offset, const void* buf, size_t len, bool append) {
  if (auto s = check_args(zone, offset, buf, len, append); !s) return s;
  auto adm = begin_write(zone, offset, len, append);
  if (!adm) return adm.status();
  uint64_t done = 0;
  Status s = sync_io(io::OpKind::kWrite, data_offset_ + uint64_t(zone) * info_.zone_size + adm->offset,
                     const_cast<void*>(buf), len, &done);
  std::vector<IoCompletion> released;
  Status out;
  {
    std::unique_lock<std::mutex> g(meta_mu_);
    auto o = end_write(zone, adm->offset, len, done, s, adm->gen);
    // Acknowledged only once the persisted write pointer covers it.
    while (!o) {
      // An earlier write is in flight. When it is an async one nobody is
      // reaping (this thread may be its submitter), reap it here.
      g.unlock();
      bool pumped = false;
      if (async_->in_flight() > 0) {
        std::unique_lock<std::mutex> rl(reap_mu_, std::try_to_lock);
        if (rl.owns_lock() && async_->in_flight() > 0) pumped = pump(1).is_ok();
      }
      g.lock();
      o = write_outcome(zone, adm->offset + len, adm->gen);
      if (!o && !pumped) meta_cv_.wait_for(g, std::chrono::milliseconds(1));
    }
    out = *o;
    settle(zone);
    release_held(released);
    meta_cv_.notify_all();
  }
  if (!released.empty()) {
    std::lock_guard<std::mutex> tg(table_mu_);
    ready_.insert(ready_.end(), released.begin(), released.end());
  }
  if (!out) return out;
  return adm->offset;
}

Status EmuDevice::write(uint32_t zone, uint64_t offset, const void* buf, size_t len) {
  auto r = sync_write(zone, offset, buf, len, false);
  return r ? Status::ok() : r.status();
}

Result<uint64_t> EmuDevice::append(uint32_t zone, const void* buf, size_t len) {
  return sync_write(zone, 0, buf, len, true);
}

Status EmuDevice::read(uint32_t zone, uint64_t offset, void* buf, size_t len) {
  if (auto s = check_args(zone, offset, buf, len, false); !s) return s;
  auto valid = begin_read(zone, offset, len);
  if (!valid) return valid.status();
  if (*valid < len) std::memset(static_cast<uint8_t*>(buf) + *valid, 0, len - *valid);
  if (*valid == 0) return Status::ok();
  uint64_t done = 0;
  return sync_io(io::OpKind::kRead, data_offset_ + uint64_t(zone) * info_.zone_size + offset, buf, *valid, &done);
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
    const size_t n = io::piece_count(r.len, info_.max_io_bytes);
    if (n > async_->capacity()) {
      return Status(Code::kInvalidArgument,
                    "zns emu: async request needs more max_io pieces than the ring holds (split it, or raise qd)");
    }
    pieces += n;
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
    p.buf = r.buf;
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
      auto adm = begin_write(r.zone, r.offset, r.len, r.op == IoOp::kAppend);
      if (!adm) {
        immediate.push_back(IoCompletion{r.user_data, adm.status(), r.offset, 0, 0});
        continue;
      }
      p.offset = adm->offset;
      p.gen = adm->gen;
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
    if (op.kind == io::OpKind::kWrite) emu_step(EmuStep::kDataIo, op.len);
    if (auto s = async_->queue(op); !s) {
      {
        std::lock_guard<std::mutex> tg(table_mu_);
        free_pending_.push_back(idx);
      }
      if (r.op == IoOp::kRead) {
        immediate.push_back(IoCompletion{r.user_data, s, p.offset, 0, 0});
        continue;
      }
      std::lock_guard<std::mutex> g(meta_mu_);
      (void)end_write(r.zone, p.offset, p.len, 0, s, p.gen);
      held_.push_back(Held{IoCompletion{r.user_data, s, p.offset, 0, 0}, r.zone, p.gen, p.offset + p.len});
      release_held(immediate);
    }
  }
  if (!immediate.empty()) {
    std::lock_guard<std::mutex> tg(table_mu_);
    ready_.insert(ready_.end(), immediate.begin(), immediate.end());
  }
  auto sub = async_->submit();
  return sub ? Status::ok() : sub.status();
}

// Reaps up to 64 engine completions, waiting for `want` (reap_mu_ held),
// and turns them into IoCompletions in ready_ (writes once decided).
Result<size_t> EmuDevice::pump(size_t want) {
  io::EngineCompletion ec[64];
  auto r = async_->reap(std::span<io::EngineCompletion>(ec, 64), std::min<size_t>(want, 64));
  if (!r) return r.status();
  std::vector<IoCompletion> released;
  for (size_t i = 0; i < *r; ++i) {
    Pending p;
    {
      std::lock_guard<std::mutex> tg(table_mu_);
      p = pending_[ec[i].user_data];
      free_pending_.push_back(uint32_t(ec[i].user_data));
    }
    IoCompletion c;
    c.user_data = p.user_data;
    c.offset = p.offset;
    c.latency_ns = ec[i].latency_ns;
    if (p.op == IoOp::kRead) {
      if (ec[i].res < 0) {
        c.status = Status::from_errno(int(-ec[i].res), "zns emu data read");
      } else if (size_t(ec[i].res) != p.io_len) {
        c.status = Status(Code::kIoError, "zns emu: short transfer on the backing file", EIO);
        c.bytes = size_t(ec[i].res);
      } else {
        c.bytes = p.len;
      }
      released.push_back(c);
      continue;
    }
    int64_t res = ec[i].res;
    uint64_t done = std::min<uint64_t>(ec[i].prefix, p.len);
    const EmuFault f = emu_step(EmuStep::kDataDone, p.len);
    if (f.err > 0) done = 0;
    if (f.keep >= 0) done = std::min<uint64_t>(done, uint64_t(f.keep));
    if (f.err > 0) res = -f.err;
    done -= done % info_.lba_bytes;
    Status st;
    if (res < 0) {
      st = Status::from_errno(int(-res), "zns emu data write");
    } else if (done < p.len) {
      // Short with no errno: write the rest once more to learn why.
      uint64_t more = 0;
      const uint64_t foff = data_offset_ + uint64_t(p.zone) * info_.zone_size + p.offset + done;
      st = sync_io(io::OpKind::kWrite, foff, static_cast<uint8_t*>(p.buf) + done, p.len - done, &more);
      done += more;
    }
    c.bytes = p.len;
    std::lock_guard<std::mutex> g(meta_mu_);
    (void)end_write(p.zone, p.offset, p.len, done, st, p.gen);
    held_.push_back(Held{c, p.zone, p.gen, p.offset + p.len});
    release_held(released);
  }
  if (!released.empty()) {
    std::lock_guard<std::mutex> tg(table_mu_);
    ready_.insert(ready_.end(), released.begin(), released.end());
  }
  return *r;
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
  while (n < out.size()) {
    size_t want = min_complete > n ? min_complete - n : 0;
    if (want > 0 && async_->in_flight() == 0) {
      size_t before = n;
      drain_ready();
      if (n == before) break;  // nothing in flight, nothing ready: do not wait forever
      continue;
    }
    auto r = pump(want);
    if (!r) return n ? Result<size_t>(n) : Result<size_t>(r.status());
    drain_ready();
    if (*r == 0 && want == 0) break;
  }
  return n;
}

}  // namespace znslab::zns
