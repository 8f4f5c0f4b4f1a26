// segment::MappingManager: large, stable mmap windows over data files, pinned
// by move-only RAII handles (seed 001, "MappingManager"; issue 5).
//
// A file registered here is divided into windows of `window_bytes` starting
// at a per-file base offset: window k covers [base + k*W, base + (k+1)*W).
// Callers place data so that nothing spans a window (segment sizes divide W;
// the zoned store uses a multiple of the zone size). A window is mapped on
// first pin (MAP_SHARED through src/pages, writable or read-only as the file
// was registered) and never moved (no mremap): a pointer into a window stays
// valid while any Pin on that window exists.
//
// Mapping count is capped (`max_mappings`, derived from vm.max_map_count);
// when mapping one more window would exceed the cap, the least recently
// released unpinned window is unmapped. A pinned window is never unmapped;
// if every mapped window is pinned, pin() fails with kBusy.
//
// Fast path (Window::try_pin, Pin copy via clone(), Pin destructor): one
// atomic add on the window's pin count, no lock, no syscall, no allocation.
// The slow path (first pin of an unmapped window, lookup by file offset)
// takes the manager mutex and may mmap/munmap.
//
// Pin protocol: pins >= 0 counts holders. The evictor (under the mutex)
// claims an idle window with CAS(pins: 0 -> kEvicting), unmaps it, clears
// `base`, and adds -kEvicting back; a pinner that incremented into the
// negative range backs off to the slow path.
//
// Thread-safety: all methods may be called concurrently; a Pin may be used
// and destroyed on any thread. Window objects live as long as the manager,
// so a Window* kept as a hint never dangles while the manager exists.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "src/common/counters.h"
#include "src/common/status.h"
#include "src/segment/file_registry.h"

namespace znslab::segment {

class MappingManager;

// One window of one file. Fields other than the atomics are immutable after
// creation. Internal to the segment layer; exposed for the inline fast path.
struct Window {
  static constexpr int64_t kEvicting = INT64_MIN / 2;
  std::atomic<int64_t> pins{0};
  std::atomic<uint8_t*> base{nullptr};
  std::atomic<uint64_t> last_use{0};  // logical clock value of the last release to 0
  MappingManager* owner = nullptr;
  uint32_t file_id = 0;
  uint32_t index = 0;        // window number within the file
  uint64_t file_offset = 0;  // bytes
  uint64_t length = 0;       // bytes
  bool writable = false;

  // Fast path: pins the window if it is mapped and not being evicted and
  // returns its base; nullptr otherwise (the caller takes the slow path).
  uint8_t* try_pin() noexcept {
    int64_t p = pins.fetch_add(1, std::memory_order_acquire);
    if (p >= 0) {
      uint8_t* b = base.load(std::memory_order_acquire);
      if (b) return b;
    }
    pins.fetch_sub(1, std::memory_order_release);
    return nullptr;
  }
  inline void unpin() noexcept;
};

// A pin on [data(), data()+size()) of one window. Move-only; clone() adds a
// pin on the same range (fast path). Empty pins (default-constructed or
// moved-from) have data() == nullptr.
class Pin {
 public:
  Pin() = default;
  Pin(Window* w, uint8_t* p, size_t len) noexcept : w_(w), p_(p), len_(len) {}
  Pin(Pin&& o) noexcept : w_(o.w_), p_(o.p_), len_(o.len_) { o.w_ = nullptr; o.p_ = nullptr; o.len_ = 0; }
  Pin& operator=(Pin&& o) noexcept {
    if (this != &o) {
      reset();
      w_ = o.w_; p_ = o.p_; len_ = o.len_;
      o.w_ = nullptr; o.p_ = nullptr; o.len_ = 0;
    }
    return *this;
  }
  Pin(const Pin&) = delete;
  Pin& operator=(const Pin&) = delete;
  ~Pin() { reset(); }

  uint8_t* data() const noexcept { return p_; }
  size_t size() const noexcept { return len_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  Window* window() const noexcept { return w_; }
  // Another pin on the same range. Never fails on a non-empty pin (the
  // window is pinned, so it is mapped); empty in, empty out.
  Pin clone() const noexcept {
    if (!w_) return Pin();
    w_->pins.fetch_add(1, std::memory_order_relaxed);
    return Pin(w_, p_, len_);
  }
  void reset() noexcept {
    if (w_) w_->unpin();
    w_ = nullptr; p_ = nullptr; len_ = 0;
  }

 private:
  Window* w_ = nullptr;
  uint8_t* p_ = nullptr;
  size_t len_ = 0;
};

// vm.max_map_count / 4 (the rest of the process needs VMAs too), capped by
// `requested` (0 = 4096), at least 4. 65530 here -> 4096.
size_t derive_max_mappings(size_t requested) noexcept;

struct MappingOptions {
  uint64_t window_bytes = 1ull << 30;  // default window size, bytes (page multiple)
  size_t max_mappings = 0;             // 0 = derive_max_mappings(0)
};

// The mapping manager's counters, declared once (src/common/counters.h): the struct, the JSON keys,
// schema entries and docs table. X(type, field, json key, unit, meaning).
#define ZNSLAB_MAPPING_STATS(X) \
  X(size_t, mappings, "mappings", "windows", "current: windows mapped") \
  X(size_t, peak_mappings, "peak_mappings", "windows", "maximum of mappings") \
  X(size_t, max_mappings, "max_mappings", "windows", "the cap on mapped windows") \
  X(uint64_t, maps, "maps", "count", "mmap calls") \
  X(uint64_t, evictions, "mapping_evictions", "count", "windows unmapped to stay under the cap or by evict_idle") \
  X(uint64_t, slow_pins, "slow_pins", "count", "pins that took the mutex") \
  X(int64_t, pins_active, "pins_active", "pins", "current: sum of pin counts over all windows") \
  X(uint64_t, mapped_bytes, "mapped_bytes", "bytes", "current: bytes mapped") \
  X(uint64_t, window_objects, "window_objects", "count", "Window structs allocated (metadata)")

struct MappingStats {
  ZNSLAB_MAPPING_STATS(ZNSLAB_COUNTER_FIELD)
};
ZNSLAB_COUNTER_FUNCTIONS(MappingStats, ZNSLAB_MAPPING_STATS)

class MappingManager {
 public:
  MappingManager(FileRegistry& files, MappingOptions opt = {});
  // Unmaps every window that is not pinned. Pinned windows at destruction
  // are a caller bug: they are left mapped (never a dangling pointer) and
  // counted in leaked_windows().
  ~MappingManager();
  MappingManager(const MappingManager&) = delete;
  MappingManager& operator=(const MappingManager&) = delete;

  // Describes how file `file_id` (already in the FileRegistry) is windowed:
  // windows start at `base_offset` (page multiple) and are `window_bytes`
  // long (0 = the default). Errors: kInvalidArgument (unaligned, twice).
  Status add_file(uint32_t file_id, uint64_t base_offset = 0, uint64_t window_bytes = 0);

  // The window containing [offset, offset+len) of the file (created, not
  // mapped). Errors: kNotFound (file not added), kInvalidArgument (range
  // spans a window boundary, len == 0, offset < base).
  Result<Window*> window_for(uint32_t file_id, uint64_t offset, size_t len);

  // Pins [offset, offset+len): maps the window if needed (growing an owned
  // writable file to cover it). Errors: as window_for, kBusy (mapping cap
  // reached with every window pinned), kOutOfMemory/kIoError from mmap.
  Result<Pin> pin(uint32_t file_id, uint64_t offset, size_t len);
  // Pins through a window hint from window_for(); the fast path when the
  // window is mapped. `offset` is the file offset; same errors as pin().
  Result<Pin> pin_window(Window* w, uint64_t offset, size_t len) {
    if (uint8_t* b = w->try_pin()) return Pin(w, b + (offset - w->file_offset), len);
    return pin_slow(w, offset, len);
  }

  // Unmaps idle (unpinned) windows, least recently used first, until at
  // most `keep` windows are mapped. Returns how many were unmapped.
  size_t evict_idle(size_t keep);

  MappingStats stats() const;
  size_t max_mappings() const noexcept { return max_mappings_; }
  uint64_t window_bytes() const noexcept { return window_bytes_; }
  size_t leaked_windows() const noexcept { return leaked_; }
  // Logical clock for LRU; advanced when a window's pin count drops to 0.
  uint64_t tick() noexcept { return clock_.fetch_add(1, std::memory_order_relaxed) + 1; }

 private:
  struct FileWindows {
    uint64_t base = 0;
    uint64_t window_bytes = 0;
    bool writable = false;
    bool owned_writable = false;  // grow the file before mapping
    std::vector<std::unique_ptr<Window>> windows;  // by index; null until used
  };
  Result<Pin> pin_slow(Window* w, uint64_t offset, size_t len);
  Result<Window*> window_for_locked(uint32_t file_id, uint64_t offset, size_t len);
  Status map_locked(Window* w);
  bool evict_one_locked();
  void unmap_locked(Window* w);

  FileRegistry& files_;
  const uint64_t window_bytes_;
  const size_t max_mappings_;
  mutable std::mutex mu_;
  std::unordered_map<uint32_t, FileWindows> by_file_;
  std::vector<Window*> mapped_;  // windows with base != nullptr
  size_t peak_mappings_ = 0;
  uint64_t maps_ = 0, evictions_ = 0, slow_pins_ = 0, window_objects_ = 0;
  size_t leaked_ = 0;
  std::atomic<uint64_t> clock_{0};
};

inline void Window::unpin() noexcept {
  if (pins.fetch_sub(1, std::memory_order_release) == 1)
    last_use.store(owner->tick(), std::memory_order_relaxed);
}

}  // namespace znslab::segment
