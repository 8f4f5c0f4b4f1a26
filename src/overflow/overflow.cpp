#include "src/overflow/overflow.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "src/common/crc32c.h"

namespace znslab::overflow {
namespace {

constexpr uint64_t kMagic = 0x574c46564f534e5aull;  // "ZNSOVFLW"
constexpr uint32_t kVersion = 1;
constexpr uint64_t kHeaderBytes = 4096;
constexpr uint64_t kAlign = 16;

// File header. crc covers magic..max_slots; generation and capacity change
// with growth and are read by readers with acquire loads.
struct Header {
  uint64_t magic;
  uint32_t version;
  uint32_t persistent;
  uint64_t data_off;
  uint64_t max_bytes;
  uint32_t max_slots;
  uint32_t crc;
  uint64_t generation;
  uint64_t capacity;
};
static_assert(sizeof(Header) == 56);

// One slot index entry. Valid iff check == entry_check(index, off, len)
// (never 0); free() clears check first, write() sets it last. `off` packs
// the slot generation (high 24 bits) over the byte offset (low 40 bits), so
// slot ids stay valid across a reopen.
constexpr uint64_t kOffMask = (uint64_t(1) << 40) - 1;
constexpr uint32_t kGenMask = (1u << 24) - 1;
struct Entry {
  uint64_t off;
  uint32_t len;
  uint32_t check;
};
static_assert(sizeof(Entry) == 16);

uint32_t entry_check(uint32_t index, uint64_t off, uint32_t len) {
  uint8_t b[16];
  std::memcpy(b, &index, 4);
  std::memcpy(b + 4, &off, 8);
  std::memcpy(b + 12, &len, 4);
  uint32_t c = crc32c(b, sizeof b);
  return c ? c : 1;
}

uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

uint64_t load_acq(const uint64_t* p) {
  return std::atomic_ref<uint64_t>(*const_cast<uint64_t*>(p)).load(std::memory_order_acquire);
}
void store_rel(uint64_t* p, uint64_t v) { std::atomic_ref<uint64_t>(*p).store(v, std::memory_order_release); }

bool header_valid(const Header& h) {
  return h.magic == kMagic && h.version == kVersion && crc32c(&h, offsetof(Header, crc)) == h.crc;
}

}  // namespace

OverflowRegion::~OverflowRegion() {
  if (base_) (void)pages::unmap(base_, capacity_);
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<OverflowRegion>> OverflowRegion::open(const std::string& path, const OverflowOptions& o) {
  const uint64_t index_bytes = o.persistent ? round_up(uint64_t(o.max_slots) * sizeof(Entry), 4096) : 0;
  const uint64_t data_off = kHeaderBytes + index_bytes;
  if (o.initial_bytes % 4096 || o.max_bytes % 4096 || o.initial_bytes > o.max_bytes || o.max_bytes > (uint64_t(1) << 40) ||
      o.initial_bytes < data_off + 4096 || (o.persistent && o.max_slots == 0))
    return Status(Code::kInvalidArgument,
                  "overflow::open: initial_bytes and max_bytes must be multiples of 4 KiB, initial <= max, and initial must hold the header and slot index");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::from_errno(errno, "overflow::open open");
  std::unique_ptr<OverflowRegion> r(new OverflowRegion());
  r->fd_ = fd;
  r->sync_ = o.sync;
  r->advice_ = o.advice;
  r->populate_ = o.populate;
  r->preallocate_ = o.preallocate;
  r->hook_ = o.step_hook;
  r->hook_arg_ = o.step_hook_arg;
  auto fsz = pages::file_size(fd);
  if (!fsz) return fsz.status();

  bool recover = false;
  if (o.persistent && *fsz >= kHeaderBytes) {
    Header h;
    if (::pread(fd, &h, sizeof h, 0) != ssize_t(sizeof h)) return Status::from_errno(errno, "overflow::open pread");
    if (!header_valid(h) || !h.persistent) return Status(Code::kCorrupt, "overflow::open: existing file is not a persistent overflow region");
    if (h.data_off != data_off || h.max_slots != o.max_slots)
      return Status(Code::kInvalidArgument, "overflow::open: max_slots differs from the existing region's");
    recover = true;
  }
  if (!recover) {
    // A new region, or a scratch one reset (persistent=false: the seed's behaviour).
    if (Status s = pages::truncate_file(fd, 0); !s) return s;
    if (Status s = pages::truncate_file(fd, o.initial_bytes); !s) return s;
    if (o.preallocate) {
      if (Status s = pages::allocate_file(fd, 0, o.initial_bytes); !s) return s;
    }
    fsz = o.initial_bytes;
  }
  r->capacity_ = *fsz & ~uint64_t(4095);
  r->max_bytes_ = std::max(o.max_bytes, r->capacity_);
  r->data_off_ = data_off;
  r->persistent_ = o.persistent;
  r->max_slots_ = o.persistent ? o.max_slots : 0;
  auto m = pages::map_file(fd, 0, r->capacity_, true);
  if (!m) return m.status();
  r->base_ = static_cast<uint8_t*>(*m);
  if (o.advice != pages::Advice::kNormal) {
    if (Status s = pages::advise(r->base_, r->capacity_, o.advice); !s) return s;
  }
  if (o.populate) {
    if (Status s = pages::advise(r->base_, r->capacity_, pages::Advice::kPopulateWrite); !s) return s;
  }
  Header* h = reinterpret_cast<Header*>(r->base_);
  if (!recover) {
    Header nh;
    std::memset(&nh, 0, sizeof nh);
    nh.magic = kMagic;
    nh.version = kVersion;
    nh.persistent = o.persistent;
    nh.data_off = data_off;
    nh.max_bytes = r->max_bytes_;
    nh.max_slots = r->max_slots_;
    nh.crc = crc32c(&nh, offsetof(Header, crc));
    nh.capacity = r->capacity_;
    std::memcpy(h, &nh, sizeof nh);
    r->cursor_ = data_off;
    if (o.persistent && o.sync != pages::SyncMode::kNone) {
      if (Status s = pages::sync_range(h, kHeaderBytes); !s) return s;
    }
    return r;
  }
  // Recovery: every valid slot index entry is a live slot; the free
  // extents are the gaps between them below the cursor (= highest end).
  store_rel(&h->capacity, r->capacity_);
  r->generation_ = load_acq(&h->generation);
  const Entry* idx = reinterpret_cast<const Entry*>(r->base_ + kHeaderBytes);
  std::vector<std::pair<uint64_t, uint64_t>> live;  // (off, ext)
  uint32_t high = 0;
  for (uint32_t i = 0; i < o.max_slots; ++i) {
    const Entry e = idx[i];
    if (e.check == 0 || e.check != entry_check(i, e.off, e.len)) continue;
    const uint64_t ext = round_up(std::max<uint64_t>(e.len, 1), kAlign);
    const uint64_t off = e.off & kOffMask;
    const uint32_t gen = uint32_t(e.off >> 40);
    if (off < data_off || off % kAlign || off + ext > r->capacity_ || gen == 0)
      return Status(Code::kCorrupt, "overflow::open: a slot index entry points outside the data area");
    if (r->slots_.size() <= i) r->slots_.resize(i + 1);
    r->slots_[i] = Slot{off, e.len, gen, ext};
    live.emplace_back(off, ext);
    r->live_bytes_ += e.len;
    ++r->live_slots_;
    high = i + 1;
  }
  r->slots_.resize(high);
  for (uint32_t i = high; i-- > 0;)
    if (r->slots_[i].ext == 0) r->free_slots_.push_back(i);
  std::sort(live.begin(), live.end());
  uint64_t at = data_off;
  for (auto& [off, ext] : live) {
    if (off < at) return Status(Code::kCorrupt, "overflow::open: two slots overlap");
    if (off > at) r->add_free(at, off - at);
    at = off + ext;
  }
  r->cursor_ = at;
  return r;
}

void OverflowRegion::add_free(uint64_t off, uint64_t size) noexcept {
  by_off_.emplace(off, size);
  by_size_.emplace(size, off);
  free_bytes_ += size;
}

Status OverflowRegion::grow(uint64_t required) noexcept {
  uint64_t cap = capacity_;
  while (cap < required) cap *= 2;
  if (cap > max_bytes_) {
    if (required > max_bytes_) return Status(Code::kOutOfSpace, "overflow: region would exceed max_bytes");
    cap = max_bytes_;
  }
  if (Status s = pages::truncate_file(fd_, cap); !s) return s;
  if (preallocate_) {
    if (Status s = pages::allocate_file(fd_, capacity_, cap - capacity_); !s) {
      (void)pages::truncate_file(fd_, capacity_);
      return s;
    }
  }
  auto nb = pages::remap(base_, capacity_, cap, true);
  if (!nb) {
    (void)pages::truncate_file(fd_, capacity_);
    return nb.status();
  }
  base_ = static_cast<uint8_t*>(*nb);
  if (populate_) (void)pages::advise(base_ + capacity_, cap - capacity_, pages::Advice::kPopulateWrite);
  capacity_ = cap;
  if (!kAdviceSurvivesMremap && advice_ != pages::Advice::kNormal) (void)pages::advise(base_, capacity_, advice_);
  Header* h = reinterpret_cast<Header*>(base_);
  store_rel(&h->capacity, cap);
  store_rel(&h->generation, ++generation_);
  ++grow_count_;
  return Status::ok();
}

Result<SlotId> OverflowRegion::write(const void* data, size_t len) noexcept { return put(data, len, false); }

Result<SlotId> OverflowRegion::write_fd(const void* data, size_t len) noexcept { return put(data, len, true); }

Result<SlotId> OverflowRegion::put(const void* data, size_t len, bool through_fd) noexcept {
  if (len > UINT32_MAX) return Status(Code::kInvalidArgument, "overflow::write: blob larger than 4 GiB");
  const uint64_t need = round_up(std::max<uint64_t>(len, 1), kAlign);
  uint32_t index;
  if (!free_slots_.empty()) {
    index = free_slots_.back();
  } else {
    if (persistent_ && slots_.size() >= max_slots_) return Status(Code::kOutOfSpace, "overflow::write: slot index full (max_slots)");
    if (slots_.size() >= UINT32_MAX) return Status(Code::kOutOfSpace, "overflow::write: 2^32 slots");
    index = uint32_t(slots_.size());
  }
  uint64_t off;
  auto it = by_size_.lower_bound({need, 0});
  if (it != by_size_.end()) {
    // Best fit: the smallest free extent that holds the blob (lowest offset
    // among equals); the rest stays free.
    const uint64_t size = it->first;
    off = it->second;
    by_size_.erase(it);
    by_off_.erase(off);
    free_bytes_ -= size;
    if (size > need) {
      add_free(off + need, size - need);
      ++splits_;
    }
    ++reuse_writes_;
  } else {
    if (cursor_ + need > capacity_) {
      if (Status s = grow(cursor_ + need); !s) return s;
    }
    off = cursor_;
    cursor_ += need;
  }
  if (index == slots_.size()) {
    slots_.emplace_back();
  } else {
    free_slots_.pop_back();
    // A reused index gets a new generation: ids of its earlier blobs go stale.
    Slot& old = slots_[index];
    old.gen = (old.gen + 1) & kGenMask;
    if (old.gen == 0) old.gen = 1;
  }
  Slot& sl = slots_[index];
  sl.off = off;
  sl.len = uint32_t(len);
  sl.ext = need;
  if (!through_fd) {
    std::memcpy(base_ + off, data, len);
  } else {
    size_t done = 0;
    while (done < len) {
      const ssize_t w = ::pwrite(fd_, static_cast<const uint8_t*>(data) + done, len - done, off_t(off + done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        const int err = w < 0 ? errno : EIO;
        // Undo: the slot and extent are free again (accounted as a write + free).
        live_bytes_ += len;
        ++live_slots_;
        ++writes_;
        (void)free((SlotId(sl.gen) << 32) | index);
        return Status::from_errno(err, "overflow::write_fd pwrite");
      }
      done += size_t(w);
    }
  }
  if (persistent_) {
    hook(OverflowStep::kDataWritten);
    const bool each = sync_ == pages::SyncMode::kEach;
    if (each && len) {
      if (Status s = pages::sync_range(base_ + off, len); !s) return s;
    }
    hook(OverflowStep::kDataSynced);
    Entry* e = reinterpret_cast<Entry*>(base_ + kHeaderBytes) + index;
    const uint64_t packed = (uint64_t(sl.gen) << 40) | off;
    e->off = packed;
    e->len = uint32_t(len);
    std::atomic_ref<uint32_t>(e->check).store(entry_check(index, packed, uint32_t(len)), std::memory_order_release);
    hook(OverflowStep::kSlotWritten);
    if (each) {
      if (Status s = pages::sync_range(e, sizeof *e); !s) return s;
    }
    hook(OverflowStep::kSlotSynced);
  }
  live_bytes_ += len;
  ++live_slots_;
  ++writes_;
  return (SlotId(sl.gen) << 32) | index;
}

Result<uint32_t> OverflowRegion::check(SlotId slot) const noexcept {
  const uint32_t index = uint32_t(slot), gen = uint32_t(slot >> 32);
  if (index >= slots_.size()) return Status(Code::kOutOfBounds, "overflow: no such slot");
  const Slot& s = slots_[index];
  if (s.gen != gen) return Status(Code::kStaleHandle, "overflow: slot was reused since");
  if (s.ext == 0) return Status(Code::kNotFound, "overflow: slot is free");
  return index;
}

Result<BlobView> OverflowRegion::read(SlotId slot) const noexcept {
  auto i = check(slot);
  if (!i) return i.status();
  const Slot& s = slots_[*i];
  return BlobView{base_ + s.off, s.len};
}

Status OverflowRegion::read_fd(SlotId slot, void* dst, size_t cap, size_t* len) const noexcept {
  auto i = check(slot);
  if (!i) return i.status();
  const Slot& s = slots_[*i];
  if (len) *len = s.len;
  if (cap < s.len) return Status(Code::kInvalidArgument, "overflow::read_fd: destination smaller than the blob");
  size_t done = 0;
  while (done < s.len) {
    const ssize_t r = ::pread(fd_, static_cast<uint8_t*>(dst) + done, s.len - done, off_t(s.off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::from_errno(errno, "overflow::read_fd pread");
    if (r == 0) return Status(Code::kIoError, "overflow::read_fd: short read (file truncated?)");
    done += size_t(r);
  }
  return Status::ok();
}

uint64_t OverflowRegion::table_bytes() const noexcept {
  return slots_.capacity() * sizeof(Slot) + free_slots_.capacity() * sizeof(uint32_t) +
         (by_off_.size() + by_size_.size()) * 64;
}

Result<std::pair<uint64_t, uint32_t>> OverflowRegion::locate(SlotId slot) const noexcept {
  auto i = check(slot);
  if (!i) return i.status();
  return std::pair<uint64_t, uint32_t>(slots_[*i].off, slots_[*i].len);
}

Status OverflowRegion::free(SlotId slot) noexcept {
  auto i = check(slot);
  if (!i) return i.status().code() == Code::kNotFound ? Status(Code::kDoubleFree, "overflow::free: slot already free") : i.status();
  Slot& s = slots_[*i];
  if (persistent_) {
    Entry* e = reinterpret_cast<Entry*>(base_ + kHeaderBytes) + *i;
    std::atomic_ref<uint32_t>(e->check).store(0, std::memory_order_release);
    hook(OverflowStep::kFreeWritten);
    if (sync_ == pages::SyncMode::kEach) {
      if (Status st = pages::sync_range(e, sizeof *e); !st) return st;
    }
    hook(OverflowStep::kFreeSynced);
  }
  uint64_t off = s.off, size = s.ext;
  live_bytes_ -= s.len;
  --live_slots_;
  ++frees_;
  s.ext = 0;
  s.len = 0;
  free_slots_.push_back(*i);
  // Coalesce with the free neighbours.
  auto next = by_off_.lower_bound(off);
  if (next != by_off_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == off) {
      off = prev->first;
      size += prev->second;
      by_size_.erase({prev->second, prev->first});
      free_bytes_ -= prev->second;
      by_off_.erase(prev);
      ++coalesces_;
    }
  }
  if (next != by_off_.end() && next->first == off + size) {
    size += next->second;
    by_size_.erase({next->second, next->first});
    free_bytes_ -= next->second;
    by_off_.erase(next);
    ++coalesces_;
  }
  if (off + size == cursor_) cursor_ = off;  // the tail goes back to the bump cursor
  else add_free(off, size);
  return Status::ok();
}

Status OverflowRegion::sync() noexcept { return pages::sync_range(base_, capacity_); }

std::vector<SlotId> OverflowRegion::live_slots() const {
  std::vector<SlotId> v;
  for (uint32_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].ext) v.push_back((SlotId(slots_[i].gen) << 32) | i);
  return v;
}

std::vector<std::pair<uint64_t, uint64_t>> OverflowRegion::free_extents() const {
  return std::vector<std::pair<uint64_t, uint64_t>>(by_off_.begin(), by_off_.end());
}

OverflowStats OverflowRegion::stats() const noexcept {
  OverflowStats s;
  s.capacity = capacity_;
  s.data_off = data_off_;
  s.cursor = cursor_;
  s.live_bytes = live_bytes_;
  s.live_slots = live_slots_;
  s.free_extents = by_off_.size();
  s.free_bytes = free_bytes_;
  s.grow_count = grow_count_;
  s.generation = generation_;
  s.writes = writes_;
  s.reuse_writes = reuse_writes_;
  s.frees = frees_;
  s.splits = splits_;
  s.coalesces = coalesces_;
  const uint64_t used = cursor_ - data_off_;
  s.fragmentation_pct = used ? 100.0 * double(used - std::min(used, live_bytes_)) / double(used) : 0.0;
  return s;
}

// ---- OverflowReader ------------------------------------------------------------------

OverflowReader::~OverflowReader() {
  if (base_) (void)pages::unmap(base_, mapped_);
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<OverflowReader>> OverflowReader::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno(errno, "overflow reader: open");
  std::unique_ptr<OverflowReader> r(new OverflowReader());
  r->fd_ = fd;
  auto fsz = pages::file_size(fd);
  if (!fsz) return fsz.status();
  if (*fsz < kHeaderBytes) return Status(Code::kCorrupt, "overflow reader: file shorter than the header");
  r->mapped_ = *fsz & ~uint64_t(4095);
  auto m = pages::map_file(fd, 0, r->mapped_, false);
  if (!m) return m.status();
  r->base_ = static_cast<uint8_t*>(*m);
  const Header* h = reinterpret_cast<const Header*>(r->base_);
  if (!header_valid(*h)) return Status(Code::kCorrupt, "overflow reader: not an overflow region (magic/CRC32C)");
  r->persistent_ = h->persistent;
  r->max_slots_ = h->max_slots;
  r->data_off_ = h->data_off;
  r->gen_ = load_acq(&h->generation);
  return r;
}

Status OverflowReader::refresh() noexcept {
  const Header* h = reinterpret_cast<const Header*>(base_);
  const uint64_t g = load_acq(&h->generation);
  const uint64_t cap = load_acq(&h->capacity) & ~uint64_t(4095);
  if (cap > mapped_) {
    auto nb = pages::remap(base_, mapped_, cap, true);
    if (!nb) return nb.status();
    base_ = static_cast<uint8_t*>(*nb);
    mapped_ = cap;
    ++remaps_;
  }
  gen_ = g;
  return Status::ok();
}

Status OverflowReader::read(uint64_t off, uint32_t len, void* dst) noexcept {
  const Header* h = reinterpret_cast<const Header*>(base_);
  if (load_acq(&h->generation) != gen_ || off + len > mapped_) {
    if (Status s = refresh(); !s) return s;
  }
  if (off + len > mapped_ || off < data_off_) return Status(Code::kOutOfBounds, "overflow reader: range beyond the region");
  std::memcpy(dst, base_ + off, len);
  return Status::ok();
}

Status OverflowReader::read_slot(SlotId slot, std::vector<uint8_t>* out) {
  if (!persistent_) return Status(Code::kNotSupported, "overflow reader: region has no slot index");
  const uint32_t index = uint32_t(slot);
  if (index >= max_slots_) return Status(Code::kOutOfBounds, "overflow reader: no such slot");
  const Entry* e = reinterpret_cast<const Entry*>(base_ + kHeaderBytes) + index;
  const uint32_t c = std::atomic_ref<uint32_t>(const_cast<Entry*>(e)->check).load(std::memory_order_acquire);
  const uint64_t packed = e->off;
  const uint32_t len = e->len;
  if (c == 0 || c != entry_check(index, packed, len) || (packed >> 40) != (uint32_t(slot >> 32) & kGenMask))
    return Status(Code::kNotFound, "overflow reader: slot not live");
  const uint64_t off = packed & kOffMask;
  out->resize(len);
  return read(off, len, out->data());
}

}  // namespace znslab::overflow
