#include "src/segment/mapping_manager.h"

#include <algorithm>
#include <cstdio>

#include "src/pages/pages.h"

namespace znslab::segment {

size_t derive_max_mappings(size_t requested) noexcept {
  size_t want = requested ? requested : 4096;
  size_t sys = 65530;  // the kernel default
  if (FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
    unsigned long v = 0;
    if (std::fscanf(f, "%lu", &v) == 1 && v > 0) sys = v;
    std::fclose(f);
  }
  return std::max<size_t>(std::min(want, sys / 4), 4);
}

MappingManager::MappingManager(FileRegistry& files, MappingOptions opt)
    : files_(files),
      window_bytes_(opt.window_bytes ? opt.window_bytes : (1ull << 30)),
      max_mappings_(opt.max_mappings ? opt.max_mappings : derive_max_mappings(0)) {}

MappingManager::~MappingManager() {
  std::lock_guard<std::mutex> g(mu_);
  for (Window* w : mapped_) {
    int64_t zero = 0;
    if (w->pins.compare_exchange_strong(zero, Window::kEvicting)) {
      (void)pages::unmap(w->base.load(), w->length);
      w->base.store(nullptr);
    } else {
      ++leaked_;
    }
  }
  mapped_.clear();
}

Status MappingManager::add_file(uint32_t file_id, uint64_t base_offset, uint64_t window_bytes) {
  uint64_t wb = window_bytes ? window_bytes : window_bytes_;
  size_t ps = pages::page_size();
  if (base_offset % ps || wb % ps || wb == 0)
    return Status(Code::kInvalidArgument, "segment::MappingManager::add_file: base or window not page-aligned");
  if (!files_.contains(file_id))
    return Status(Code::kNotFound, "segment::MappingManager::add_file: file not in the FileRegistry");
  std::lock_guard<std::mutex> g(mu_);
  if (by_file_.count(file_id))
    return Status(Code::kInvalidArgument, "segment::MappingManager::add_file: file already added");
  FileWindows fw;
  fw.base = base_offset;
  fw.window_bytes = wb;
  fw.writable = files_.writable(file_id);
  fw.owned_writable = fw.writable;
  by_file_.emplace(file_id, std::move(fw));
  return Status::ok();
}

Result<Window*> MappingManager::window_for_locked(uint32_t file_id, uint64_t offset, size_t len) {
  auto it = by_file_.find(file_id);
  if (it == by_file_.end()) return Status(Code::kNotFound, "segment::MappingManager: file not added");
  FileWindows& fw = it->second;
  if (len == 0 || offset < fw.base)
    return Status(Code::kInvalidArgument, "segment::MappingManager: empty range or offset below the file's base");
  uint64_t rel = offset - fw.base;
  uint64_t idx = rel / fw.window_bytes;
  if ((rel + len - 1) / fw.window_bytes != idx)
    return Status(Code::kInvalidArgument, "segment::MappingManager: range spans a window boundary");
  if (idx > UINT32_MAX) return Status(Code::kInvalidArgument, "segment::MappingManager: offset too large");
  if (fw.windows.size() <= idx) fw.windows.resize(idx + 1);
  auto& slot = fw.windows[idx];
  if (!slot) {
    slot = std::make_unique<Window>();
    slot->owner = this;
    slot->file_id = file_id;
    slot->index = static_cast<uint32_t>(idx);
    slot->file_offset = fw.base + idx * fw.window_bytes;
    slot->length = fw.window_bytes;
    slot->writable = fw.writable;
    ++window_objects_;
  }
  return slot.get();
}

Result<Window*> MappingManager::window_for(uint32_t file_id, uint64_t offset, size_t len) {
  std::lock_guard<std::mutex> g(mu_);
  return window_for_locked(file_id, offset, len);
}

void MappingManager::unmap_locked(Window* w) {
  (void)pages::unmap(w->base.load(std::memory_order_relaxed), w->length);
  w->base.store(nullptr, std::memory_order_release);
  mapped_.erase(std::find(mapped_.begin(), mapped_.end(), w));
  ++evictions_;
}

bool MappingManager::evict_one_locked() {
  // Least recently released idle window first. last_use changes under us
  // (unpins on other threads), so sort a snapshot: a comparator reading live
  // atomics would be inconsistent, which std::sort turns into out-of-bounds reads.
  std::vector<std::pair<uint64_t, Window*>> idle;
  for (Window* w : mapped_)
    if (w->pins.load(std::memory_order_relaxed) == 0)
      idle.emplace_back(w->last_use.load(std::memory_order_relaxed), w);
  std::sort(idle.begin(), idle.end());
  for (auto& [t, w] : idle) {
    int64_t zero = 0;
    if (!w->pins.compare_exchange_strong(zero, Window::kEvicting, std::memory_order_acq_rel)) continue;
    unmap_locked(w);
    w->pins.fetch_sub(Window::kEvicting, std::memory_order_release);  // restore
    return true;
  }
  return false;
}

Status MappingManager::map_locked(Window* w) {
  while (mapped_.size() >= max_mappings_) {
    if (!evict_one_locked())
      return Status(Code::kBusy, "segment::MappingManager: mapping cap reached and every window is pinned");
  }
  if (w->writable) {
    Status s = files_.ensure_size(w->file_id, w->file_offset + w->length);
    if (!s) return s;
  }
  auto ref = files_.acquire(w->file_id);
  if (!ref) return ref.status();
  auto p = pages::map_file(ref->fd(), w->file_offset, w->length, w->writable);
  ++maps_;
  if (!p) return p.status();
  w->base.store(static_cast<uint8_t*>(*p), std::memory_order_release);
  mapped_.push_back(w);
  peak_mappings_ = std::max(peak_mappings_, mapped_.size());
  return Status::ok();
}

Result<Pin> MappingManager::pin_slow(Window* w, uint64_t offset, size_t len) {
  std::lock_guard<std::mutex> g(mu_);
  ++slow_pins_;
  if (offset < w->file_offset || offset + len > w->file_offset + w->length || len == 0)
    return Status(Code::kInvalidArgument, "segment::MappingManager::pin: range outside its window");
  if (!w->base.load(std::memory_order_acquire)) {
    Status s = map_locked(w);
    if (!s) return s;
  }
  // Under the mutex no evictor runs, so the window stays mapped.
  w->pins.fetch_add(1, std::memory_order_acquire);
  return Pin(w, w->base.load(std::memory_order_relaxed) + (offset - w->file_offset), len);
}

Result<Pin> MappingManager::pin(uint32_t file_id, uint64_t offset, size_t len) {
  Window* w;
  {
    std::lock_guard<std::mutex> g(mu_);
    auto r = window_for_locked(file_id, offset, len);
    if (!r) return r.status();
    w = *r;
  }
  return pin_window(w, offset, len);
}

size_t MappingManager::evict_idle(size_t keep) {
  std::lock_guard<std::mutex> g(mu_);
  size_t n = 0;
  while (mapped_.size() > keep && evict_one_locked()) ++n;
  return n;
}

MappingStats MappingManager::stats() const {
  std::lock_guard<std::mutex> g(mu_);
  MappingStats s;
  s.mappings = mapped_.size();
  s.peak_mappings = peak_mappings_;
  s.max_mappings = max_mappings_;
  s.maps = maps_;
  s.evictions = evictions_;
  s.slow_pins = slow_pins_;
  s.window_objects = window_objects_;
  for (Window* w : mapped_) s.mapped_bytes += w->length;
  for (auto& [id, fw] : by_file_)
    for (auto& w : fw.windows)
      if (w) {
        int64_t p = w->pins.load(std::memory_order_relaxed);
        if (p > 0) s.pins_active += p;
      }
  return s;
}

}  // namespace znslab::segment
