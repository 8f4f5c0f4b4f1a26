#include "src/segment/zoned_store.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace znslab::segment {

namespace {
constexpr size_t kBufAlign = 4096;  // O_DIRECT-safe for every lba size we accept
uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
}  // namespace

const char* placement_name(Placement p) noexcept { return p == Placement::kEpoch ? "epoch" : "single"; }
const char* gc_policy_name(GcPolicy g) noexcept { return g == GcPolicy::kCostBenefit ? "cost-benefit" : "greedy"; }

ZonedSegmentStore::~ZonedSegmentStore() {
  std::free(staging_);
  std::free(gc_buf_);
}

Result<std::unique_ptr<ZonedSegmentStore>> ZonedSegmentStore::open(zns::ZonedDevice& dev, ZonedStoreOptions opt) {
  const zns::DeviceInfo& info = dev.info();
  if (info.zone_count == 0 || info.zone_capacity == 0 || info.lba_bytes == 0 || info.lba_bytes > kBufAlign)
    return Status(Code::kInvalidArgument, "segment::ZonedSegmentStore::open: device geometry unusable (zones, capacity or lba)");
  if (opt.gc_free_zones < 1) return Status(Code::kInvalidArgument, "segment::ZonedSegmentStore::open: gc_free_zones must be >= 1");
  uint32_t host = opt.placement == Placement::kSingle ? 1 : std::max<uint32_t>(opt.streams, 1);
  uint32_t limit = 0;
  if (info.max_open) limit = info.max_open;
  if (info.max_active && (!limit || info.max_active < limit)) limit = info.max_active;
  if (limit == 1) return Status(Code::kInvalidArgument, "segment::ZonedSegmentStore::open: device allows one open zone; GC needs two");
  if (limit && host > limit - 1) host = limit - 1;
  if (info.zone_count < host + 1 + opt.gc_free_zones + 1)
    return Status(Code::kInvalidArgument, "segment::ZonedSegmentStore::open: too few zones for the streams and the GC reserve");

  std::unique_ptr<ZonedSegmentStore> st(new ZonedSegmentStore(dev, opt));
  st->lba_ = info.lba_bytes;
  st->zcap_ = info.zone_capacity;
  st->c_.host_streams = host;
  st->gc_stream_ = host;
  st->stream_zone_.assign(host + 1, -1);
  uint64_t maxseg = opt.max_segment_bytes ? std::min<uint64_t>(opt.max_segment_bytes, info.zone_capacity) : info.zone_capacity;
  st->staging_bytes_ = round_up(maxseg, st->lba_);
  st->staging_ = static_cast<uint8_t*>(std::aligned_alloc(kBufAlign, round_up(st->staging_bytes_, kBufAlign)));
  st->gc_buf_ = static_cast<uint8_t*>(std::aligned_alloc(kBufAlign, round_up(st->staging_bytes_, kBufAlign)));
  if (!st->staging_ || !st->gc_buf_) return Status(Code::kOutOfMemory, "segment::ZonedSegmentStore::open: staging buffers");
  st->zones_.resize(info.zone_count);

  auto bf = dev.backing_file();
  if (opt.read_path == ReadPath::kMmap && !bf)
    return Status(Code::kNotSupported, "segment::ZonedSegmentStore::open: mmap reads need the emulator's backing file");
  if (opt.read_path != ReadPath::kDevice && bf) {
    uint64_t zs = info.zone_size;
    uint64_t w = std::max<uint64_t>(1, opt.window_bytes / zs) * zs;
    st->files_ = std::make_unique<FileRegistry>(1);
    Status s = st->files_->add_borrowed(0, bf->fd, false);
    if (!s) return s;
    st->mm_ = std::make_unique<MappingManager>(*st->files_, MappingOptions{w, 0});
    s = st->mm_->add_file(0, bf->data_offset, w);
    if (!s) return s;
  }
  Status s = st->format();
  if (!s) return s;
  return st;
}

Status ZonedSegmentStore::format() {
  auto zs = dev_.report_zones(0, UINT32_MAX);
  if (!zs) return zs.status();
  for (const zns::Zone& z : *zs) {
    if (z.index >= zones_.size()) continue;
    if (z.state == zns::ZoneState::kOffline || z.state == zns::ZoneState::kReadOnly) {
      zones_[z.index].state = ZState::kUnusable;
      ++c_.unusable_zones;
      continue;
    }
    if (z.state != zns::ZoneState::kEmpty) {
      Status s = dev_.reset(z.index);
      if (!s) return s;
    }
  }
  for (uint32_t i = uint32_t(zones_.size()); i-- > 0;)
    if (zones_[i].state == ZState::kFree) free_.push_back(i);  // LIFO: lowest index first
  return Status::ok();
}

Result<uint32_t> ZonedSegmentStore::slot_of(SegmentKey key) const {
  uint32_t idx = uint32_t(key), gen = uint32_t(key >> 32);
  if (idx >= slots_.size() || (gen & 1u) == 0)
    return Status(Code::kInvalidHandle, "segment::ZonedSegmentStore: unknown segment key");
  if (slots_[idx].gen != gen) return Status(Code::kStaleHandle, "segment::ZonedSegmentStore: segment was removed");
  return idx;
}

void ZonedSegmentStore::mark_unusable(uint32_t z) {
  ZoneInfo& zi = zones_[z];
  if (zi.state == ZState::kUnusable) return;
  if (zi.state == ZState::kOpen && zi.stream >= 0) stream_zone_[zi.stream] = -1;
  if (zi.state == ZState::kFree) free_.erase(std::remove(free_.begin(), free_.end(), z), free_.end());
  zi.state = ZState::kUnusable;
  zi.stream = -1;
  ++c_.unusable_zones;
}

Status ZonedSegmentStore::reset_zone(uint32_t z, uint64_t live_at_pick) {
  Status s = dev_.reset(z);
  if (!s) {
    note_error();
    mark_unusable(z);
    return s;
  }
  ZoneInfo& zi = zones_[z];
  ++c_.zone_resets;
  c_.reset_live_bytes += live_at_pick;
  c_.reset_capacity_bytes += zcap_;
  zi.state = ZState::kFree;
  zi.stream = -1;
  zi.wp = 0;
  zi.live = 0;
  zi.slots.clear();
  free_.push_back(z);
  return Status::ok();
}

Status ZonedSegmentStore::close_stream_zone(uint32_t stream) {
  int64_t zi64 = stream_zone_[stream];
  if (zi64 < 0) return Status::ok();
  uint32_t z = uint32_t(zi64);
  ZoneInfo& zi = zones_[z];
  stream_zone_[stream] = -1;
  zi.stream = -1;
  zi.state = ZState::kFull;
  if (zi.wp < zcap_) {
    Status s = dev_.finish(z);
    if (!s) {
      note_error();
      mark_unusable(z);
      return s;
    }
    ++c_.zone_finishes;
  }
  if (zi.live == 0) return reset_zone(z, 0);
  return Status::ok();
}

Status ZonedSegmentStore::take_zone(uint32_t stream, bool for_gc) {
  if (!for_gc && !in_gc_) {
    // Bounded: each victim frees (1 - u) of a zone; stop after one pass over the device.
    for (size_t rounds = 0; free_.size() <= opt_.gc_free_zones && rounds < zones_.size(); ++rounds) {
      Status s = collect_one();
      if (s.code() == Code::kOutOfMemory) break;  // nothing collectable now
      if (!s) return s;
    }
  }
  // Host streams leave the last empty zone to GC.
  if (free_.empty() || (!for_gc && free_.size() < 2))
    return Status(Code::kOutOfMemory, "segment::ZonedSegmentStore: no empty zone left (device full of live data)");
  uint32_t z = free_.back();
  free_.pop_back();
  ZoneInfo& zi = zones_[z];
  zi.state = ZState::kOpen;
  zi.stream = int32_t(stream);
  zi.wp = 0;
  zi.live = 0;
  zi.slots.clear();
  stream_zone_[stream] = z;
  ++c_.zone_opens;
  return Status::ok();
}

Status ZonedSegmentStore::write_stream(uint32_t stream, const uint8_t* buf, uint32_t padded, uint32_t* zone,
                                       uint64_t* offset) {
  int64_t cur = stream_zone_[stream];
  if (cur >= 0 && zcap_ - zones_[cur].wp < padded) {
    Status s = close_stream_zone(stream);
    if (!s) return s;
    cur = -1;
  }
  if (cur < 0) {
    Status s = take_zone(stream, stream == gc_stream_);
    if (!s) return s;
    cur = stream_zone_[stream];
  }
  uint32_t z = uint32_t(cur);
  ZoneInfo& zi = zones_[z];
  Status s;
  uint64_t at = zi.wp;
  const uint64_t zasl = dev_.info().zone_append_max_bytes;
  if (opt_.use_append && zasl >= padded) {
    auto r = dev_.append(z, buf, padded);
    if (r) {
      at = *r;
      ++c_.appends;
      if (at != zi.wp) {  // one writer per zone: the device must append at our write pointer
        note_error();
        mark_unusable(z);
        return Status(Code::kCorrupt, "segment::ZonedSegmentStore: zone append landed away from the write pointer");
      }
    } else {
      s = r.status();
    }
  } else {
    s = dev_.write(z, zi.wp, buf, padded);
  }
  if (!s) {
    note_error();
    // Find out what the zone looks like now; stop writing to it either way.
    auto rep = dev_.report_zones(z, 1);
    if (!rep || rep->empty()) {
      mark_unusable(z);
      return s;
    }
    const zns::Zone& dz = rep->front();
    if (dz.state == zns::ZoneState::kOffline || dz.state == zns::ZoneState::kReadOnly) {
      mark_unusable(z);
      return s;
    }
    zi.wp = dz.written();
    (void)close_stream_zone(stream);
    return s;
  }
  *zone = z;
  *offset = at;
  zi.wp += padded;
  c_.device_bytes_written += padded;
  zi.last_write = c_.device_bytes_written;
  if (zi.wp == zcap_) {  // the device made it Full
    zi.state = ZState::kFull;
    zi.stream = -1;
    stream_zone_[stream] = -1;
  }
  return Status::ok();
}

Result<SegmentKey> ZonedSegmentStore::put(const void* data, size_t len, uint32_t lifetime) {
  if (len == 0 || !data) return Status(Code::kInvalidArgument, "segment::ZonedSegmentStore::put: empty segment");
  uint64_t padded = round_up(len, lba_);
  if (padded > staging_bytes_ || padded > zcap_)
    return Status(Code::kInvalidArgument, "segment::ZonedSegmentStore::put: segment larger than the zone capacity / max_segment_bytes");
  std::memcpy(staging_, data, len);
  if (padded > len) std::memset(staging_ + len, 0, padded - len);
  uint32_t stream = opt_.placement == Placement::kSingle ? 0 : lifetime % c_.host_streams;
  uint32_t z;
  uint64_t off;
  Status s = write_stream(stream, staging_, uint32_t(padded), &z, &off);
  if (!s) return s;
  uint32_t idx;
  if (!free_slots_.empty()) {
    idx = free_slots_.back();
    free_slots_.pop_back();
  } else {
    idx = uint32_t(slots_.size());
    slots_.emplace_back();
  }
  Slot& sl = slots_[idx];
  ++sl.gen;
  sl.zone = z;
  sl.offset = off;
  sl.len = uint32_t(len);
  sl.padded = uint32_t(padded);
  zones_[z].slots.push_back(idx);
  zones_[z].live += padded;
  c_.host_bytes_written += padded;
  c_.payload_bytes += len;
  ++c_.segments_live;
  c_.live_bytes += padded;
  ++c_.puts;
  return (uint64_t(sl.gen) << 32) | idx;
}

void ZonedSegmentStore::cache_drop(uint32_t slot) {
  auto it = cache_.find(slot);
  if (it == cache_.end()) return;
  cache_used_ -= it->second.data.size();
  cache_lru_.erase(it->second.lru);
  cache_.erase(it);
}

Status ZonedSegmentStore::remove(SegmentKey key) {
  auto r = slot_of(key);
  if (!r) return r.status();
  Slot& sl = slots_[*r];
  ++sl.gen;
  free_slots_.push_back(*r);
  cache_drop(*r);
  ZoneInfo& zi = zones_[sl.zone];
  zi.live -= sl.padded;
  --c_.segments_live;
  c_.live_bytes -= sl.padded;
  ++c_.removes;
  if (zi.state == ZState::kFull && zi.live == 0) return reset_zone(sl.zone, 0);
  return Status::ok();
}

Result<size_t> ZonedSegmentStore::length(SegmentKey key) const {
  auto r = slot_of(key);
  if (!r) return r.status();
  return size_t(slots_[*r].len);
}

Status ZonedSegmentStore::read_into(const Slot& s, uint8_t* dst) {
  if (mm_) {
    ZoneInfo& zi = zones_[s.zone];
    const zns::DeviceInfo& info = dev_.info();
    auto bf = dev_.backing_file();
    uint64_t file_off = bf->data_offset + uint64_t(s.zone) * info.zone_size + s.offset;
    if (!zi.window) {
      auto w = mm_->window_for(0, file_off, s.padded);
      if (!w) return w.status();
      zi.window = *w;
    }
    auto p = mm_->pin_window(zi.window, file_off, s.padded);
    if (!p) return p.status();
    std::memcpy(dst, p->data(), s.padded);
    return Status::ok();
  }
  Status st = dev_.read(s.zone, s.offset, dst, s.padded);
  if (!st) note_error();
  return st;
}

Result<size_t> ZonedSegmentStore::read(SegmentKey key, void* buf, size_t cap) {
  auto r = slot_of(key);
  if (!r) return r.status();
  const Slot& sl = slots_[*r];
  if (cap < sl.len) return Status(Code::kInvalidArgument, "segment::ZonedSegmentStore::read: buffer smaller than the segment");
  ++c_.reads;
  if (mm_) {
    ZoneInfo& zi = zones_[sl.zone];
    auto bf = dev_.backing_file();
    uint64_t file_off = bf->data_offset + uint64_t(sl.zone) * dev_.info().zone_size + sl.offset;
    if (!zi.window) {
      auto w = mm_->window_for(0, file_off, sl.padded);
      if (!w) return w.status();
      zi.window = *w;
    }
    auto p = mm_->pin_window(zi.window, file_off, sl.len);
    if (!p) return p.status();
    std::memcpy(buf, p->data(), sl.len);
    return size_t(sl.len);
  }
  auto it = cache_.find(*r);
  if (it != cache_.end()) {
    ++c_.cache_hits;
    cache_lru_.splice(cache_lru_.begin(), cache_lru_, it->second.lru);
    std::memcpy(buf, it->second.data.data(), sl.len);
    return size_t(sl.len);
  }
  ++c_.cache_misses;
  Status s = read_into(sl, gc_buf_);
  if (!s) return s;
  std::memcpy(buf, gc_buf_, sl.len);
  if (sl.len <= opt_.cache_bytes) {
    while (cache_used_ + sl.len > opt_.cache_bytes && !cache_lru_.empty()) cache_drop(cache_lru_.back());
    cache_lru_.push_front(*r);
    CacheEntry& e = cache_[*r];
    e.data.assign(gc_buf_, gc_buf_ + sl.len);
    e.lru = cache_lru_.begin();
    cache_used_ += sl.len;
  }
  return size_t(sl.len);
}

Status ZonedSegmentStore::collect_one() {
  // Victim: a full zone (never an open one) that would free space.
  int64_t best = -1;
  double best_score = 0;
  for (uint32_t z = 0; z < zones_.size(); ++z) {
    const ZoneInfo& zi = zones_[z];
    if (zi.state != ZState::kFull || zi.live >= zcap_) continue;
    double u = double(zi.live) / double(zcap_);
    double score;
    if (opt_.gc == GcPolicy::kGreedy) {
      score = 1.0 - u;
    } else {
      double age = double(c_.device_bytes_written - zi.last_write + 1);
      score = (1.0 - u) * age / (1.0 + u);
    }
    if (best < 0 || score > best_score) {
      best = z;
      best_score = score;
    }
  }
  if (best < 0) return Status(Code::kOutOfMemory, "segment::ZonedSegmentStore: nothing to collect");
  uint32_t v = uint32_t(best);
  uint64_t live_at_pick = zones_[v].live;
  if (live_at_pick > 0) {
    // Copying must not need more space than GC has: its open zone plus the empty ones.
    int64_t gz = stream_zone_[gc_stream_];
    uint64_t room = (gz >= 0 ? zcap_ - zones_[gz].wp : 0) + uint64_t(free_.size()) * zcap_;
    if (live_at_pick > room) return Status(Code::kOutOfMemory, "segment::ZonedSegmentStore: no room to copy a victim");
    in_gc_ = true;
    std::vector<uint32_t> victims = zones_[v].slots;  // copy: write_stream may not touch v, but be safe
    for (uint32_t idx : victims) {
      Slot& sl = slots_[idx];
      if ((sl.gen & 1u) == 0 || sl.zone != v) continue;  // removed, or already moved
      Status s = read_into(sl, gc_buf_);
      if (!s) { in_gc_ = false; return s; }
      uint32_t nz;
      uint64_t noff;
      s = write_stream(gc_stream_, gc_buf_, sl.padded, &nz, &noff);
      if (!s) { in_gc_ = false; return s; }
      zones_[v].live -= sl.padded;
      sl.zone = nz;
      sl.offset = noff;
      zones_[nz].slots.push_back(idx);
      zones_[nz].live += sl.padded;
      c_.gc_copied_bytes += sl.padded;
      ++c_.gc_copies;
    }
    in_gc_ = false;
  }
  ++c_.gc_runs;
  return reset_zone(v, live_at_pick);
}

Status ZonedSegmentStore::collect(uint32_t free_zones) {
  while (free_.size() < free_zones) {
    Status s = collect_one();
    if (s.code() == Code::kOutOfMemory) return Status::ok();
    if (!s) return s;
  }
  return Status::ok();
}

}  // namespace znslab::segment
