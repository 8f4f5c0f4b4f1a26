// RealZonedDevice: see real_device.h.
#include "zns/real_device.h"

#include <algorithm>
#include <cstring>

#include <unistd.h>

namespace znslab::zns {

namespace {
constexpr unsigned kAsyncDepth = 128;
constexpr unsigned kSyncDepth = 4;
}  // namespace

uint64_t unsplit_io_limit(uint64_t max_bytes, uint64_t max_segments, uint32_t lba_bytes) noexcept {
  const uint64_t page = uint64_t(sysconf(_SC_PAGESIZE));
  uint64_t lim = max_bytes;
  if (max_segments > 1) lim = std::min(lim, (max_segments - 1) * page);
  if (lba_bytes) lim = lim / lba_bytes * lba_bytes;
  return std::max<uint64_t>(lim, lba_bytes);
}

RealZonedDevice::~RealZonedDevice() = default;

void RealZonedDevice::init_zones() {
  const uint32_t n = info_.zone_count;
  zone_mu_ = std::make_unique<std::mutex[]>(n);
  wp_ = std::make_unique<std::atomic<int64_t>[]>(n);
  for (uint32_t i = 0; i < n; ++i) wp_[i].store(-1, std::memory_order_relaxed);
  zone_queue_.assign(n, {});
  zone_busy_.assign(n, 0);
}

Result<std::vector<Zone>> RealZonedDevice::report_zones(uint32_t first, uint32_t count) {
  if (first >= info_.zone_count) return Status(Code::kLbaOutOfRange, "report_zones: first zone out of range");
  count = std::min<uint64_t>(count, uint64_t(info_.zone_count) - first);
  return do_report(first, count);
}

Status RealZonedDevice::mgmt(ZoneMgmt op, uint32_t zone) {
  if (zone >= info_.zone_count) return Status(Code::kLbaOutOfRange, "zone management: zone index out of range");
  std::lock_guard<std::mutex> g(zone_mu_[zone]);
  Status s = do_mgmt(op, zone);
  wp_[zone].store(op == ZoneMgmt::kReset && s.is_ok() ? 0 : -1, std::memory_order_relaxed);
  return s;
}

Status RealZonedDevice::check_io(IoOp op, uint32_t zone, uint64_t offset, const void* buf,
                                 size_t len) const {
  if (zone >= info_.zone_count) return Status(Code::kLbaOutOfRange, "I/O: zone index out of range");
  if (len == 0 || buf == nullptr) return Status(Code::kInvalidArgument, "I/O: empty length or null buffer");
  const uint64_t lba = info_.lba_bytes;
  if (len % lba != 0 || (op != IoOp::kAppend && offset % lba != 0))
    return Status(Code::kInvalidArgument, "I/O: offset/length not a multiple of the logical block size");
  if (reinterpret_cast<uintptr_t>(buf) % lba != 0)
    return Status(Code::kInvalidArgument, "I/O: buffer not aligned to the logical block size (O_DIRECT)");
  if (op == IoOp::kAppend) {
    if (info_.zone_append_max_bytes == 0) return Status(Code::kNotSupported, "zone append: device has no append");
    if (len > info_.zone_append_max_bytes)
      return Status(Code::kInvalidArgument, "zone append larger than the zone append size limit (ZASL)");
    if (len > info_.zone_size) return Status(Code::kZoneBoundaryError, "zone append larger than the zone");
    return Status::ok();
  }
  // A request may not cross into the next zone (NVMe: Zone Boundary Error);
  // refusing it here keeps a bad offset from touching a neighbour zone.
  if (offset > info_.zone_size || len > info_.zone_size - offset)
    return Status(Code::kZoneBoundaryError, "I/O crosses the zone boundary");
  return Status::ok();
}

Result<std::unique_ptr<io::UringEngine>> RealZonedDevice::take_engine() {
  {
    std::lock_guard<std::mutex> g(pool_mu_);
    if (!pool_.empty()) {
      auto e = std::move(pool_.back());
      pool_.pop_back();
      return e;
    }
  }
  return io::UringEngine::create(engine_options(kSyncDepth));
}

void RealZonedDevice::give_engine(std::unique_ptr<io::UringEngine> e) {
  std::lock_guard<std::mutex> g(pool_mu_);
  if (pool_.size() < 8) pool_.push_back(std::move(e));
}

Status RealZonedDevice::run_sync(IoOp op, uint32_t zone, uint64_t offset, void* buf, size_t len,
                                 uint64_t* landed) {
  auto eng = take_engine();
  if (!eng) return eng.status();
  const uint64_t max = op == IoOp::kAppend ? len : std::max<uint64_t>(info_.max_io_bytes, info_.lba_bytes);
  Status st;
  size_t done = 0;
  while (done < len && st.is_ok()) {
    const size_t piece = std::min<uint64_t>(max, len - done);
    st = queue_piece(**eng, op, zone, offset + done, static_cast<uint8_t*>(buf) + done, piece, 0);
    if (!st) break;
    io::EngineCompletion c;
    auto r = (*eng)->reap(std::span<io::EngineCompletion>(&c, 1), 1);
    if (!r) { st = r.status(); break; }
    if (*r != 1) { st = Status(Code::kIoError, "io_uring: completion missing", EIO); break; }
    st = piece_status(op, zone, c, landed);
    if (st.is_ok() && op != IoOp::kAppend && c.res != int64_t(piece) && !native_append())
      st = Status(Code::kIoError, "short block I/O", EIO);
    done += piece;
  }
  give_engine(std::move(*eng));
  return st;
}

Result<uint64_t> RealZonedDevice::cached_wp(uint32_t zone) {
  int64_t wp = wp_[zone].load(std::memory_order_relaxed);
  if (wp >= 0) return uint64_t(wp);
  auto z = do_report(zone, 1);
  if (!z) return z.status();
  if (z->empty()) return Status(Code::kIoError, "report_zones returned no zone", EIO);
  const uint64_t rel = (*z)[0].write_pointer - (*z)[0].start;
  wp_[zone].store(int64_t(rel), std::memory_order_relaxed);
  return rel;
}

Status RealZonedDevice::write(uint32_t zone, uint64_t offset, const void* buf, size_t len) {
  Status s = check_io(IoOp::kWrite, zone, offset, buf, len);
  if (!s) return s;
  std::lock_guard<std::mutex> g(zone_mu_[zone]);
  s = run_sync(IoOp::kWrite, zone, offset, const_cast<void*>(buf), len, nullptr);
  wp_[zone].store(s.is_ok() ? int64_t(offset + len) : -1, std::memory_order_relaxed);
  return s;
}

Result<uint64_t> RealZonedDevice::append(uint32_t zone, const void* buf, size_t len) {
  Status s = check_io(IoOp::kAppend, zone, 0, buf, len);
  if (!s) return s;
  if (native_append()) {
    uint64_t landed = 0;
    s = run_sync(IoOp::kAppend, zone, 0, const_cast<void*>(buf), len, &landed);
    wp_[zone].store(-1, std::memory_order_relaxed);
    if (!s) return s;
    return landed;
  }
  // Emulated: a regular write at the cached write pointer under the zone lock.
  std::lock_guard<std::mutex> g(zone_mu_[zone]);
  auto wp = cached_wp(zone);
  if (!wp) return wp.status();
  s = run_sync(IoOp::kWrite, zone, *wp, const_cast<void*>(buf), len, nullptr);
  wp_[zone].store(s.is_ok() ? int64_t(*wp + len) : -1, std::memory_order_relaxed);
  if (!s) return s;
  return *wp;
}

Status RealZonedDevice::read(uint32_t zone, uint64_t offset, void* buf, size_t len) {
  Status s = check_io(IoOp::kRead, zone, offset, buf, len);
  if (!s) return s;
  s = run_sync(IoOp::kRead, zone, offset, buf, len, nullptr);
  if (s.is_ok() && zero_fill_beyond_wp()) s = zero_beyond_wp(zone, offset, buf, len);
  return s;
}

Status RealZonedDevice::zero_beyond_wp(uint32_t zone, uint64_t offset, void* buf, size_t len) {
  const uint64_t end = offset + len;
  const int64_t cached = wp_[zone].load(std::memory_order_relaxed);
  if (cached >= 0 && end <= uint64_t(cached)) return Status::ok();
  auto z = do_report(zone, 1);
  if (!z) return z.status();
  if (z->empty()) return Status(Code::kIoError, "report_zones returned no zone", EIO);
  const Zone& zz = (*z)[0];
  if (zz.state == ZoneState::kReadOnly || zz.state == ZoneState::kOffline) return Status::ok();
  const uint64_t wp = zz.write_pointer - zz.start;
  if (wp >= end) return Status::ok();
  const uint64_t from = std::max(wp, offset);
  std::memset(static_cast<uint8_t*>(buf) + (from - offset), 0, end - from);
  return Status::ok();
}

// ---- asynchronous path --------------------------------------------------------

Status RealZonedDevice::ensure_async_engine_locked() {
  if (async_) return Status::ok();
  auto e = io::UringEngine::create(engine_options(kAsyncDepth));
  if (!e) return e.status();
  async_ = std::move(*e);
  return Status::ok();
}

Status RealZonedDevice::submit(std::span<const IoRequest> batch) {
  for (const IoRequest& r : batch) {
    Status s = check_io(r.op, r.zone, r.offset, r.buf, r.len);
    if (!s) return s;
  }
  std::lock_guard<std::mutex> g(amu_);
  Status s = ensure_async_engine_locked();
  if (!s) return s;
  const uint64_t t0 = io::now_ns();
  for (const IoRequest& r : batch) {
    uint32_t id;
    if (!free_ops_.empty()) {
      id = free_ops_.back();
      free_ops_.pop_back();
    } else {
      id = uint32_t(ops_.size());
      ops_.emplace_back();
    }
    AsyncOp& op = ops_[id];
    op = AsyncOp{};
    op.req = r;
    op.t0_ns = t0;
    op.active = true;
    op.serial = r.op == IoOp::kWrite || (r.op == IoOp::kAppend && !native_append());
    ++active_ops_;
    if (op.serial)
      zone_queue_[r.zone].push_back(id);
    else
      parallel_.push_back(id);
  }
  dispatch_locked();
  auto sub = async_->submit();
  return sub ? Status::ok() : sub.status();
}

// Queues the next piece(s) of op `id`. Returns false when the engine is full.
bool RealZonedDevice::dispatch_op_locked(uint32_t id) {
  AsyncOp& op = ops_[id];
  const IoRequest& r = op.req;
  if (op.serial) {
    if (op.dispatched == 0 && r.op == IoOp::kAppend) {
      auto wp = cached_wp(r.zone);
      if (!wp) {
        op.err = wp.status();
        return true;  // completed by the caller (nothing in flight)
      }
      op.landed = *wp;
    }
    const uint64_t base = r.op == IoOp::kAppend ? op.landed : r.offset;
    const size_t piece = std::min<uint64_t>(std::max<uint64_t>(info_.max_io_bytes, info_.lba_bytes),
                                            r.len - op.dispatched);
    Status s = queue_piece(*async_, IoOp::kWrite, r.zone, base + op.dispatched,
                           static_cast<uint8_t*>(r.buf) + op.dispatched, piece, id);
    if (s.code() == Code::kBusy) return false;
    if (!s) { op.err = s; return true; }
    op.dispatched += piece;
    ++op.in_flight;
    return true;
  }
  const uint64_t max = r.op == IoOp::kAppend ? r.len : std::max<uint64_t>(info_.max_io_bytes, info_.lba_bytes);
  while (op.dispatched < r.len) {
    const size_t piece = std::min<uint64_t>(max, r.len - op.dispatched);
    Status s = queue_piece(*async_, r.op, r.zone, r.offset + op.dispatched,
                           static_cast<uint8_t*>(r.buf) + op.dispatched, piece, id);
    if (s.code() == Code::kBusy) return false;
    if (!s) {
      op.err = s;
      op.dispatched = r.len;  // stop issuing; complete when in-flight pieces land
      op.completed += piece;  // account the refused piece
      break;
    }
    op.dispatched += piece;
    ++op.in_flight;
  }
  return true;
}

void RealZonedDevice::dispatch_locked() {
  // Parallel ops (reads, native appends).
  while (!parallel_.empty()) {
    const uint32_t id = parallel_.front();
    if (!dispatch_op_locked(id)) return;  // engine full: retry after reaping
    parallel_.pop_front();
    AsyncOp& op = ops_[id];
    if (op.in_flight == 0) complete_locked(id);
  }
  // One serial op per idle zone.
  for (uint32_t z = 0; z < info_.zone_count; ++z) {
    while (!zone_busy_[z] && !zone_queue_[z].empty()) {
      const uint32_t id = zone_queue_[z].front();
      if (!dispatch_op_locked(id)) return;
      if (ops_[id].in_flight == 0) {  // failed before reaching the device
        zone_queue_[z].pop_front();
        complete_locked(id);
        continue;
      }
      zone_busy_[z] = 1;
    }
  }
}

void RealZonedDevice::complete_locked(uint32_t id) {
  AsyncOp& op = ops_[id];
  if (op.req.op == IoOp::kRead && op.err.is_ok() && zero_fill_beyond_wp())
    op.err = zero_beyond_wp(op.req.zone, op.req.offset, op.req.buf, op.req.len);
  IoCompletion c;
  c.user_data = op.req.user_data;
  c.status = op.err;
  c.offset = op.req.op == IoOp::kAppend ? op.landed : op.req.offset;
  c.bytes = op.err.is_ok() ? op.req.len : 0;
  c.latency_ns = io::now_ns() - op.t0_ns;
  if (op.serial) {
    const int64_t wp = op.err.is_ok() ? int64_t(c.offset + op.req.len) : -1;
    wp_[op.req.zone].store(wp, std::memory_order_relaxed);
  } else if (op.req.op == IoOp::kAppend) {
    wp_[op.req.zone].store(-1, std::memory_order_relaxed);
  }
  done_.push_back(c);
  op.active = false;
  free_ops_.push_back(id);
  --active_ops_;
}

void RealZonedDevice::on_piece_locked(const io::EngineCompletion& ec) {
  const uint32_t id = uint32_t(ec.user_data);
  if (id >= ops_.size() || !ops_[id].active) return;
  AsyncOp& op = ops_[id];
  --op.in_flight;
  const IoOp kind = op.serial ? IoOp::kWrite : op.req.op;
  uint64_t landed = 0;
  Status s = piece_status(kind, op.req.zone, ec, &landed);
  if (s.is_ok() && kind == IoOp::kAppend) op.landed = landed;
  if (!s && op.err.is_ok()) op.err = s;
  if (op.serial) {
    const uint32_t z = op.req.zone;
    if (op.err.is_ok() && op.dispatched < op.req.len) {
      if (!dispatch_op_locked(id)) {
        // Engine full: cannot happen with one piece per zone freed just now,
        // but fail the op rather than stall.
        op.err = Status(Code::kBusy, "io_uring engine full while continuing a write");
      } else if (op.in_flight > 0) {
        return;
      }
    }
    zone_queue_[z].pop_front();
    zone_busy_[z] = 0;
    complete_locked(id);
    return;
  }
  if (op.in_flight == 0 && op.dispatched >= op.req.len) complete_locked(id);
}

Result<size_t> RealZonedDevice::reap(std::span<IoCompletion> out, size_t min_complete) {
  std::lock_guard<std::mutex> g(amu_);
  min_complete = std::min(min_complete, out.size());
  size_t n = 0;
  io::EngineCompletion ecs[32];
  for (;;) {
    while (n < out.size() && !done_.empty()) {
      out[n++] = done_.front();
      done_.pop_front();
    }
    if (!async_ || n == out.size()) return n;
    const bool must_wait = n < min_complete;
    if (!must_wait && async_->in_flight() == 0) return n;
    if (must_wait && active_ops_ == 0) return n;  // nothing in flight: fewer than asked
    auto r = async_->reap(std::span<io::EngineCompletion>(ecs, 32), must_wait ? 1 : 0);
    if (!r) return r.status();
    for (size_t i = 0; i < *r; ++i) on_piece_locked(ecs[i]);
    dispatch_locked();
    auto sub = async_->submit();
    if (!sub) return sub.status();
    if (*r == 0 && async_->in_flight() == 0 && done_.empty()) return n;  // nothing can arrive
    if (*r == 0 && !must_wait) {
      while (n < out.size() && !done_.empty()) {
        out[n++] = done_.front();
        done_.pop_front();
      }
      return n;
    }
  }
}

}  // namespace znslab::zns
