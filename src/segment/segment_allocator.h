// segment::SegmentAllocator: fixed-size segments of a few size classes carved
// from data files and accessed through mapping-manager windows (seed 001,
// "Updated SegmentAllocator"; issue 5).
//
// Layout: size class c has its own data file <dir>/segments-c<c>.dat
// (file id = first_file_id + c); segment i of class c lives at file offset
// i * class_bytes[c]. Class sizes are powers of two dividing the window size,
// so a segment never spans a window. Files grow one window at a time
// (ftruncate, sparse). Freed segments are reused LIFO within their class.
//
// An Allocation carries {file_id, segment_id, offset, length, class_id,
// generation} (a SegmentRef) and a Pin; ptr() is direct pointer access. A
// SegmentRef can be kept without a pin (windows may then be evicted) and
// re-pinned with pin() (fast path: one atomic add on a mapped window).
//
// Errors: allocate: kInvalidArgument (0 or larger than the largest class),
// kOutOfMemory (class file would exceed max_file_bytes), and the mapping
// manager's errors. free/pin: kInvalidHandle (forged: class, file or segment
// out of range), kStaleHandle (segment freed and reused since), kDoubleFree.
//
// Thread-safety: a SegmentAllocator is owned by one thread at a time
// (external synchronisation, no lock inside); the FileRegistry and
// MappingManager it uses may be shared by many allocators and threads. Pins
// may be released on any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "src/common/counters.h"
#include "src/common/status.h"
#include "src/segment/file_registry.h"
#include "src/segment/mapping_manager.h"

namespace znslab::segment {

struct SegmentRef {
  uint32_t file_id = 0;
  uint32_t segment_id = 0;   // index within the class file
  uint64_t offset = 0;       // file offset, bytes
  uint32_t length = 0;       // class size, bytes
  uint8_t class_id = 0;
  uint32_t generation = 0;   // odd while allocated; detects stale/double free
  Window* window = nullptr;  // hint for the pin fast path
};

struct Allocation {
  SegmentRef ref;
  Pin pin;
  uint8_t* ptr() const noexcept { return pin.data(); }
  bool is_valid() const noexcept { return static_cast<bool>(pin); }
};

struct SegmentAllocatorOptions {
  std::string dir;                      // folder for the data files (must exist)
  std::vector<uint64_t> class_bytes = {64u << 10, 256u << 10, 1u << 20, 4u << 20, 16u << 20};
  uint64_t max_file_bytes = 1ull << 40; // per class file, bytes
  uint32_t first_file_id = 0;
};

// The segment allocator's counters, declared once (src/common/counters.h): the struct, the JSON keys,
// schema entries and docs table. X(type, field, json key, unit, meaning).
#define ZNSLAB_SEGMENT_ALLOCATOR_STATS(X) \
  X(uint64_t, segments_live, "segments_live", "segments", "current: live segments") \
  X(uint64_t, segments_total, "segments_total", "segments", "ever carved from files (live + free list)") \
  X(uint64_t, allocations, "allocations", "count", "segment allocations") \
  X(uint64_t, frees, "frees", "count", "segment frees") \
  X(uint64_t, live_bytes, "segment_bytes_live", "bytes", "current: sum of live segment sizes") \
  X(uint64_t, metadata_bytes, "segment_metadata_bytes", "bytes", "current: the allocator's own bookkeeping (heap)")

struct SegmentAllocatorStats {
  ZNSLAB_SEGMENT_ALLOCATOR_STATS(ZNSLAB_COUNTER_FIELD)
};
ZNSLAB_COUNTER_FUNCTIONS(SegmentAllocatorStats, ZNSLAB_SEGMENT_ALLOCATOR_STATS)

class SegmentAllocator {
 public:
  // Registers one data file per class with `files` and `mappings`.
  // Errors: kInvalidArgument (no classes, a class not a power of two, not
  // increasing, or not dividing the mapping window size), registry errors.
  static Result<std::unique_ptr<SegmentAllocator>> create(FileRegistry& files, MappingManager& mappings,
                                                          SegmentAllocatorOptions opt);

  // Smallest class with class_bytes >= bytes; -1 if none.
  int class_for(size_t bytes) const noexcept;
  size_t class_count() const noexcept { return classes_.size(); }
  uint64_t class_bytes(size_t c) const noexcept { return classes_[c].bytes; }

  // A pinned segment of the smallest class holding `bytes`.
  Result<Allocation> allocate(size_t bytes);
  // Releases the allocation's pin and frees its segment.
  Status free(Allocation&& a);
  // Frees by reference (pins held elsewhere must be dropped first).
  Status free(const SegmentRef& r);
  // A new pin on a live segment; fast when its window is mapped.
  Result<Pin> pin(const SegmentRef& r) noexcept {
    Status s = check(r);
    if (!s) return s;
    if (uint8_t* b = r.window->try_pin()) return Pin(r.window, b + (r.offset - r.window->file_offset), r.length);
    return mappings_.pin_window(r.window, r.offset, r.length);
  }

  SegmentAllocatorStats stats() const noexcept;
  const std::string& path(size_t c) const { return classes_[c].path; }

 private:
  struct Class {
    uint64_t bytes = 0;
    uint32_t file_id = 0;
    std::string path;
    uint32_t next = 0;                  // segments carved so far
    std::vector<uint32_t> free_list;    // freed segment ids (LIFO)
    std::vector<uint32_t> generation;   // per carved segment; odd = allocated
    std::vector<Window*> windows;       // per window index of this file
  };
  SegmentAllocator(FileRegistry& f, MappingManager& m) : files_(f), mappings_(m) {}
  Status check(const SegmentRef& r) const noexcept {
    if (r.class_id >= classes_.size() || !r.window)
      return Status(Code::kInvalidHandle, "segment::SegmentAllocator: class out of range or no window");
    const Class& c = classes_[r.class_id];
    if (r.file_id != c.file_id || r.segment_id >= c.next || r.length != c.bytes ||
        r.offset != uint64_t(r.segment_id) * c.bytes)
      return Status(Code::kInvalidHandle, "segment::SegmentAllocator: forged segment reference");
    uint32_t g = c.generation[r.segment_id];
    if (g != r.generation) {
      if (g == r.generation + 1) return Status(Code::kDoubleFree, "segment::SegmentAllocator: segment already freed");
      return Status(Code::kStaleHandle, "segment::SegmentAllocator: segment was freed and reused");
    }
    return Status::ok();
  }

  FileRegistry& files_;
  MappingManager& mappings_;
  uint64_t window_bytes_ = 0;
  uint64_t max_file_bytes_ = 0;
  std::vector<Class> classes_;
  uint64_t live_ = 0, allocations_ = 0, frees_ = 0, live_bytes_ = 0;
};

}  // namespace znslab::segment
