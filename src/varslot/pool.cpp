// src/varslot/pool.cpp: opening, attaching, mapping extents, verify, stats.
// The allocation fast path is in alloc.cpp, the host's duties (growth,
// doorbell, dead-peer reclaim, take-over) in host.cpp.
#include "src/varslot/pool.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "src/varslot/internal.h"

namespace znslab::varslot {

const char* growth_mode_name(GrowthMode m) noexcept {
  switch (m) {
    case GrowthMode::kRemap: return "remap";
    case GrowthMode::kExtentFiles: return "extent_files";
    case GrowthMode::kFixed: return "fixed";
  }
  return nullptr;
}

bool parse_growth_mode(const std::string& s, GrowthMode* out) noexcept {
  for (GrowthMode m : {GrowthMode::kRemap, GrowthMode::kExtentFiles, GrowthMode::kFixed})
    if (s == growth_mode_name(m)) {
      *out = m;
      return true;
    }
  return false;
}

uint64_t extent_layout_bytes(uint32_t slot_size, uint32_t slots, uint64_t* data_offset) noexcept {
  const uint64_t ps = pages::page_size();
  uint64_t data = round_up(sizeof(ExtentHeader) + uint64_t(slots) * sizeof(SlotMeta), ps);
  if (data_offset) *data_offset = data;
  return round_up(data + uint64_t(slots) * slot_size, ps);
}

void Pool::load_geometry() noexcept {
  nclasses_ = hdr_->class_count;
  for (uint32_t c = 0; c < nclasses_; ++c) {
    csize_[c] = hdr_->classes[c].slot_size;
    cslots_[c] = hdr_->classes[c].slots_per_extent;
    ctotal_[c] = extent_layout_bytes(csize_[c], cslots_[c], &cdata_[c]);
  }
  gen_mask_ = hdr_->generation_bits >= 32 ? 0xffffffffu : ((1u << hdr_->generation_bits) - 1);
}

uint64_t Pool::extent_total_bytes(uint32_t c) const noexcept { return ctotal_[c]; }

std::string Pool::extent_path(uint32_t c, uint32_t e) const {
  return path_ + ".c" + std::to_string(c) + ".e" + std::to_string(e);
}

uint32_t Pool::next_gen(uint32_t g) const noexcept { return g >= gen_mask_ ? 1u : g + 1u; }

Status Pool::open_file(const std::string& path, bool create) {
  path_ = path;
  int flags = O_RDWR | O_CLOEXEC | (create ? (O_CREAT | O_TRUNC) : 0);
  fd_ = ::open(path.c_str(), flags, 0600);
  if (fd_ < 0) return Status::from_errno(errno, "varslot: open segment file");
  return Status::ok();
}

// Maps the header: inside the reservation (remap/fixed) or on its own.
// host_view: the host maps the whole reservation over the file at once
// (mapping past the end of a file is allowed; only touching it faults), so
// its growth never calls mmap: no mmap_lock taken for writing while its
// other threads fault pages in (in the loaded workload that wait, not the
// growth's own work, made the growth's wall time). The host touches only
// extents it has ftruncated the file for.
Status Pool::map_header(bool host_view) {
  if (mode_is_single_file(hdr_mode_hint_)) {
    auto r = pages::Reservation::reserve(reserve_bytes_, pages::page_size());
    if (!r) return r.status();
    res_ = std::move(*r);
    const size_t first = host_view ? res_.size() : kHeaderBytes;
    Status s = pages::map_file_at(res_.base(), fd_, 0, first);
    if (!s) return s;
    hdr_ = reinterpret_cast<SegmentHeader*>(res_.base());
    view_size_.store(first, std::memory_order_release);
  } else {
    auto m = pages::map_file(fd_, 0, kHeaderBytes, true);
    if (!m) return m.status();
    maps_.push_back(View{static_cast<uint8_t*>(*m), kHeaderBytes});
    hdr_ = static_cast<SegmentHeader*>(*m);
  }
  mapped_bytes_.fetch_add(mode_is_single_file(hdr_mode_hint_) ? view_size_.load() : kHeaderBytes,
                          std::memory_order_relaxed);
  return Status::ok();
}

Status Pool::ensure_view(uint64_t need) noexcept {
  uint64_t cur = view_size_.load(std::memory_order_acquire);
  if (need <= cur) return Status::ok();
  // current_size is published only after the file has grown to it, and
  // `need` is the end of a published extent: both are within the file.
  uint64_t want = std::max(need, hdr_->current_size.load(std::memory_order_acquire));
  if (want > res_.size()) return Status(Code::kOutOfMemory, "varslot: segment beyond the reservation");
  Status s = pages::map_file_at(res_.base() + cur, fd_, cur, size_t(want - cur));
  if (!s) return s;
  mapped_bytes_.fetch_add(want - cur, std::memory_order_relaxed);
  view_size_.store(want, std::memory_order_release);
  remaps_.fetch_add(1, std::memory_order_relaxed);
  return Status::ok();
}

uint8_t* Pool::map_extent_slow(uint32_t c, uint32_t e) noexcept {
  std::lock_guard<std::mutex> g(mu_);
  uint8_t* p = ext_[c][e].load(std::memory_order_acquire);
  if (p) return p;
  if (e >= hdr_->classes[c].extent_count.load(std::memory_order_acquire)) return nullptr;
  const uint64_t off = hdr_->classes[c].extent_offsets[e].load(std::memory_order_acquire);
  if (mode() == GrowthMode::kExtentFiles) {
    std::string ep;
    try {
      ep = extent_path(c, e);
    } catch (...) {
      return nullptr;
    }
    int fd = ::open(ep.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return nullptr;
    auto m = pages::map_file(fd, 0, ctotal_[c], true);
    ::close(fd);
    if (!m) return nullptr;
    p = static_cast<uint8_t*>(*m);
    try {
      maps_.push_back(View{p, ctotal_[c]});
    } catch (...) {
      (void)pages::unmap(p, ctotal_[c]);
      return nullptr;
    }
    mapped_bytes_.fetch_add(ctotal_[c], std::memory_order_relaxed);
    remaps_.fetch_add(1, std::memory_order_relaxed);
  } else {
    if (!ensure_view(off + ctotal_[c])) return nullptr;
    p = res_.base() + off;
  }
  auto* eh = reinterpret_cast<ExtentHeader*>(p);
  if (eh->magic.load(std::memory_order_acquire) != kExtentMagic) return nullptr;
  ext_[c][e].store(p, std::memory_order_release);
  return p;
}

Result<std::unique_ptr<Pool>> Pool::create(const PoolOptions& o) {
  if (o.path.empty() && !o.memfd) return Status(Code::kInvalidArgument, "varslot: empty path");
  if (o.memfd && o.mode == GrowthMode::kExtentFiles)
    return Status(Code::kNotSupported, "varslot: extent_files needs named files (one per extent), not a memfd");
  if (o.class_sizes.empty() || o.class_sizes.size() > kMaxClasses)
    return Status(Code::kInvalidArgument, "varslot: 1..8 size classes");
  for (size_t i = 0; i < o.class_sizes.size(); ++i) {
    uint32_t s = o.class_sizes[i];
    if (s < 64 || s % 64 != 0 || (i > 0 && s <= o.class_sizes[i - 1]))
      return Status(Code::kInvalidArgument, "varslot: class sizes must be ascending multiples of 64");
    if (o.extent_bytes < s || o.extent_bytes / s > kMaxSlotsPerExtent)
      return Status(Code::kInvalidArgument, "varslot: extent_bytes must hold 1..2^24 slots of every class");
  }
  if (o.max_extents < 1 || o.max_extents > kMaxExtents)
    return Status(Code::kInvalidArgument, "varslot: max_extents must be 1..16");
  if (o.generation_bits < 2 || o.generation_bits > 32)
    return Status(Code::kInvalidArgument, "varslot: generation_bits must be 2..32");
  if (o.mode == GrowthMode::kFixed && (o.fixed_extents < 1 || o.fixed_extents > o.max_extents))
    return Status(Code::kInvalidArgument, "varslot: fixed_extents must be 1..max_extents");
  if (o.max_bytes < kHeaderBytes + o.extent_bytes)
    return Status(Code::kInvalidArgument, "varslot: max_bytes below one extent");

  std::unique_ptr<Pool> p(new Pool());
  p->hdr_mode_hint_ = o.mode;
  p->reserve_bytes_ = round_up(o.max_bytes, pages::page_size());
  p->grow_wait_ms_ = o.grow_wait_ms;
  p->stage_growth_ = o.stage_growth;
  p->grow_rt_priority_ = o.grow_rt_priority;
  if (o.grow_rt_priority < 0 || o.grow_rt_priority > 99)
    return Status(Code::kInvalidArgument, "varslot: grow_rt_priority must be 0..99");
  if (o.memfd) {
    auto fd = pages::create_memfd(o.path.empty() ? "znslab-varslot" : o.path.c_str());
    if (!fd) return fd.status();
    p->fd_ = *fd;
    p->by_fd_ = true;
    p->path_ = "memfd:" + o.path;
  } else if (Status s = p->open_file(o.path, true); !s) {
    return s;
  }
  if (Status s = pages::truncate_file(p->fd_, kHeaderBytes); !s) return s;
  if (Status s = p->map_header(/*host_view=*/true); !s) return s;
  SegmentHeader* h = p->hdr_;
  h->version = kLayoutVersion;
  h->flags = o.mode == GrowthMode::kFixed ? 0 : kFlagExtentsEnabled;
  h->mode = uint32_t(o.mode);
  h->class_count = uint32_t(o.class_sizes.size());
  h->max_extents = o.max_extents;
  h->generation_bits = o.generation_bits;
  h->extent_bytes = o.extent_bytes;
  h->max_bytes = o.max_bytes;
  for (uint32_t c = 0; c < h->class_count; ++c) {
    h->classes[c].slot_size = o.class_sizes[c];
    h->classes[c].slots_per_extent = uint32_t(o.extent_bytes / o.class_sizes[c]);
  }
  h->current_size.store(kHeaderBytes, std::memory_order_relaxed);
  h->host_pid.store(int32_t(::getpid()), std::memory_order_relaxed);
  h->peers[0].pid.store(int32_t(::getpid()), std::memory_order_relaxed);
  h->peers[0].state.store(kPeerActive, std::memory_order_relaxed);
  p->peer_ = 0;
  p->load_geometry();

  // Initial extents: fixed mode sizes generously up front; the growth modes
  // start from initial_bytes.
  const uint32_t n = h->class_count;
  if (o.mode == GrowthMode::kFixed) {
    for (uint32_t c = 0; c < n; ++c)
      for (uint32_t e = 0; e < o.fixed_extents; ++e)
        if (Status s = p->grow_locked(c); !s) return s;
  } else {
    uint64_t budget = o.initial_bytes / o.extent_bytes;
    for (uint32_t round = 0; budget > 0 && round < o.max_extents; ++round)
      for (uint32_t c = 0; c < n && budget > 0; ++c, --budget)
        if (Status s = p->grow_locked(c); !s) return s;
  }
  // Growth counters count growth after creation only.
  h->counters.growth_events.store(0, std::memory_order_relaxed);
  h->counters.grow_ns_total.store(0, std::memory_order_relaxed);
  p->remaps_.store(0, std::memory_order_relaxed);
  reinterpret_cast<std::atomic<uint64_t>*>(&h->magic)->store(kSegmentMagic, std::memory_order_release);
  p->grow_log_n_ = 0;
  p->crash_at_ = o.crash_at;  // armed for growth after creation
  return p;
}

// Opens an existing segment and maps its header (attach and take_over).
Status Pool::open_existing(const std::string& path, bool host_view) {
  if (Status s = open_file(path, false); !s) return s;
  return open_common(host_view);
}

// The same through a descriptor: this Pool keeps its own duplicate.
Status Pool::open_existing_fd(int fd, bool host_view) {
  if (fd < 0) return Status(Code::kInvalidArgument, "varslot: bad segment descriptor");
  fd_ = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (fd_ < 0) return Status::from_errno(errno, "varslot: dup segment descriptor");
  by_fd_ = true;
  path_ = "fd:" + std::to_string(fd);
  return open_common(host_view);
}

Status Pool::open_common(bool host_view) {
  struct stat st;
  if (::fstat(fd_, &st) != 0) return Status::from_errno(errno, "varslot: fstat segment");
  if (uint64_t(st.st_size) < kHeaderBytes) return Status(Code::kCorrupt, "varslot: segment shorter than its header");
  // Read the fixed fields first to learn the mode and cap.
  SegmentHeader probe;
  if (::pread(fd_, &probe, offsetof(SegmentHeader, current_size), 0) !=
      ssize_t(offsetof(SegmentHeader, current_size)))
    return Status::from_errno(errno ? errno : EIO, "varslot: read segment header");
  if (probe.magic != kSegmentMagic) return Status(Code::kCorrupt, "varslot: bad segment magic");
  if (probe.version != kLayoutVersion) return Status(Code::kCorrupt, "varslot: unknown layout version");
  if (probe.mode > uint32_t(GrowthMode::kFixed) || probe.class_count == 0 ||
      probe.class_count > kMaxClasses || probe.max_extents > kMaxExtents)
    return Status(Code::kCorrupt, "varslot: header fields out of range");
  if (by_fd_ && GrowthMode(probe.mode) == GrowthMode::kExtentFiles)
    return Status(Code::kNotSupported, "varslot: an extent_files segment is attached by path, not by descriptor");
  hdr_mode_hint_ = GrowthMode(probe.mode);
  reserve_bytes_ = round_up(probe.max_bytes, pages::page_size());
  if (Status s = map_header(host_view); !s) return s;
  load_geometry();
  return Status::ok();
}

Result<std::unique_ptr<Pool>> Pool::register_guest(std::unique_ptr<Pool> p) {
  // Claim a free peer id (1..63).
  for (uint32_t i = 1; i < kMaxPeers; ++i) {
    uint32_t want = kPeerFree;
    PeerEntry& pe = p->hdr_->peers[i];
    if (pe.state.compare_exchange_strong(want, kPeerActive, std::memory_order_acq_rel)) {
      pe.pending.store(0, std::memory_order_relaxed);
      pe.pid.store(int32_t(::getpid()), std::memory_order_release);
      p->peer_ = i;
      return p;
    }
  }
  return Status(Code::kOutOfMemory, "varslot: all 63 guest peer ids taken");
}

Result<std::unique_ptr<Pool>> Pool::attach(const std::string& path) {
  std::unique_ptr<Pool> p(new Pool());
  if (Status s = p->open_existing(path, false); !s) return s;
  return register_guest(std::move(p));
}

Result<std::unique_ptr<Pool>> Pool::attach_fd(int fd) {
  std::unique_ptr<Pool> p(new Pool());
  if (Status s = p->open_existing_fd(fd, false); !s) return s;
  return register_guest(std::move(p));
}

Pool::~Pool() {
  stop_service();
  if (hdr_) {
    PeerEntry& pe = hdr_->peers[peer_];
    if (peer_ != 0) {
      pe.pid.store(0, std::memory_order_relaxed);
      pe.pending.store(0, std::memory_order_relaxed);
      pe.state.store(kPeerFree, std::memory_order_release);
    } else if (hdr_->host_pid.load(std::memory_order_relaxed) == int32_t(::getpid())) {
      hdr_->host_pid.store(0, std::memory_order_release);
    }
  }
  for (auto& v : maps_) (void)pages::unmap(v.base, v.bytes);
  maps_.clear();
  res_ = pages::Reservation();  // unmaps the view (file pages included)
  if (fd_ >= 0) ::close(fd_);
  for (int i = 0; i < int(kMaxPeers); ++i)
    if (pidfds_[i] >= 0) ::close(pidfds_[i]);
}

uint32_t Pool::slot_size(Handle h) const noexcept {
  return h.class_idx() < nclasses_ ? csize_[h.class_idx()] : 0;
}

Status Pool::verify() noexcept {
  const uint64_t cur = hdr_->current_size.load(std::memory_order_acquire);
  for (uint32_t c = 0; c < nclasses_; ++c) {
    const uint32_t n = hdr_->classes[c].extent_count.load(std::memory_order_acquire);
    if (n > hdr_->max_extents) return Status(Code::kCorrupt, "varslot verify: extent_count above max_extents");
    for (uint32_t e = 0; e < n; ++e) {
      uint64_t off = hdr_->classes[c].extent_offsets[e].load(std::memory_order_acquire);
      if (off < kHeaderBytes || off + ctotal_[c] > cur)
        return Status(Code::kCorrupt, "varslot verify: extent beyond current_size");
      uint8_t* b = extent_base(c, e);
      if (!b) return Status(Code::kCorrupt, "varslot verify: extent cannot be mapped");
      auto* eh = reinterpret_cast<ExtentHeader*>(b);
      if (eh->magic.load(std::memory_order_acquire) != kExtentMagic || eh->class_idx != c ||
          eh->extent_idx != e || eh->slot_count != cslots_[c] || eh->slot_size != csize_[c])
        return Status(Code::kCorrupt, "varslot verify: extent header mismatch");
      uint32_t head = uint32_t(eh->free_head.load(std::memory_order_acquire));
      if (head == kLockedIdx) return Status(Code::kCorrupt, "varslot verify: free list left locked");
      if (head > cslots_[c]) return Status(Code::kCorrupt, "varslot verify: free head out of range");
      if (eh->bump.load(std::memory_order_acquire) > cslots_[c])
        return Status(Code::kCorrupt, "varslot verify: bump index out of range");
    }
  }
  return Status::ok();
}

void Pool::count_slots(uint32_t c, uint64_t* free_slots, uint64_t* alloc_slots) noexcept {
  uint64_t f = 0, a = 0;
  if (c < nclasses_) {
    const uint32_t n = hdr_->classes[c].extent_count.load(std::memory_order_acquire);
    for (uint32_t e = 0; e < n; ++e) {
      uint8_t* b = extent_base(c, e);
      if (!b) continue;
      SlotMeta* m = meta_of(b);
      // Never-used slots (>= bump) are free; their metadata is not read, so
      // counting does not fault in pages of the segment.
      const uint32_t used = std::min(ext_header(b)->bump.load(std::memory_order_acquire), cslots_[c]);
      f += cslots_[c] - used;
      for (uint32_t s = 0; s < used; ++s)
        (word_alloc(m[s].word.load(std::memory_order_acquire)) ? a : f)++;
    }
  }
  if (free_slots) *free_slots = f;
  if (alloc_slots) *alloc_slots = a;
}

PoolStats Pool::stats() const noexcept {
  PoolStats s;
  const SharedCounters& k = hdr_->counters;
  auto ld = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  s.growth_events = ld(k.growth_events);
  s.growth_refused = ld(k.growth_refused);
  s.fallback_allocs = ld(k.fallback_allocs);
  s.double_frees = ld(k.double_frees);
  s.stale_handles = ld(k.stale_handles);
  s.invalid_handles = ld(k.invalid_handles);
  s.recovered_slots = ld(k.recovered_slots);
  s.dead_peers = ld(k.dead_peers);
  s.host_recoveries = ld(k.host_recoveries);
  s.grow_ns_total = ld(k.grow_ns_total);
  s.segment_bytes = hdr_->current_size.load(std::memory_order_acquire);
  s.map_generation = hdr_->map_generation.load(std::memory_order_acquire);
  for (uint32_t c = 0; c < nclasses_; ++c)
    s.extents[c] = hdr_->classes[c].extent_count.load(std::memory_order_acquire);
  s.remaps = remaps_.load(std::memory_order_relaxed);
  s.mapped_bytes = mapped_bytes_.load(std::memory_order_relaxed);
  s.doorbells = doorbells_.load(std::memory_order_relaxed);
  return s;
}

Status Pool::unlink_files() noexcept {
  if (by_fd_) return Status::ok();  // a memfd has no name; it goes with its last descriptor
  Status first;
  try {
    if (mode() == GrowthMode::kExtentFiles)
      for (uint32_t c = 0; c < nclasses_; ++c)
        for (uint32_t e = 0; e < kMaxExtents; ++e) {
          std::string ep = extent_path(c, e);
          if (::unlink(ep.c_str()) != 0 && errno != ENOENT && first)
            first = Status::from_errno(errno, "varslot: unlink extent file");
        }
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT && first)
      first = Status::from_errno(errno, "varslot: unlink segment file");
  } catch (...) {
    return Status(Code::kOutOfMemory, "varslot: unlink_files");
  }
  return first;
}

}  // namespace znslab::varslot
