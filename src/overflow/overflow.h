// The overflow region (seed 003, nodedb-mem's OverflowRegion): one
// memory-mapped file per owner into which spilled blobs are written, with a
// bump cursor, best-fit reuse of freed extents, and growth by doubling with
// ftruncate + mremap(MREMAP_MAYMOVE) up to a maximum (64 MiB initial, 1 GiB
// maximum by default, as the seed).
//
// Fixed here, beyond the seed (docs/overflow.md):
// - best fit is a tree over free extents ordered by (size, offset): O(log n),
//   not the seed's linear scan; a chosen extent is split, a freed extent is
//   coalesced with free neighbours, and a free extent ending at the cursor
//   pulls the cursor back;
// - read() returns exactly the bytes written (the seed kept a reused slot's
//   old size and returned a stale tail);
// - persistent=true keeps a slot index in the file so a reopen (after a
//   clean close or kill -9) finds every slot whose write() returned;
// - readers elsewhere (OverflowReader, other threads or processes) learn
//   of growth through a generation counter in the file header.
//
// File layout: header (4 KiB) | slot index (persistent only: max_slots x 16
// bytes, rounded to 4 KiB) | data. Extents are 16-byte aligned.
//
// Units: bytes; slot ids are opaque 64-bit values (24-bit generation << 32 |
// index), stable across a reopen of a persistent region. max_bytes <= 1 TiB.
// Thread-safety: an OverflowRegion has one owner thread (all calls); each
// reader thread/process opens its own OverflowReader. Every mmap, mremap,
// msync, ftruncate goes through src/pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "src/common/counters.h"
#include "src/common/status.h"
#include "src/pages/pager.h"
#include "src/pages/pages.h"

namespace znslab::overflow {

using SlotId = uint64_t;

// Whether madvise advice (MADV_RANDOM, ...) stays on a mapping across
// mremap(MREMAP_MAYMOVE) growth. Checked against /proc/self/smaps VmFlags
// by the [overflow] test "madvise advice survives mremap"; the region
// re-applies advice after growth only when this is false. Linux copies
// vm_flags to the moved/expanded VMA, so advice survives (kernel 6.18 here).
inline constexpr bool kAdviceSurvivesMremap = true;

// The points of write()/free() where a crash-injection test may kill the
// process (persistent regions; "synced" steps are after msync with
// sync=each, otherwise right after the step before).
enum class OverflowStep : uint8_t {
  kDataWritten,   // blob bytes copied into the extent
  kDataSynced,
  kSlotWritten,   // slot index entry valid: the write is durable
  kSlotSynced,
  kFreeWritten,   // slot index entry cleared: the free is durable
  kFreeSynced,
};
inline constexpr int kOverflowSteps = 6;

struct OverflowOptions {
  uint64_t initial_bytes = 64ull << 20;  // file size of a new region
  uint64_t max_bytes = 1ull << 30;       // growth stops here (kOutOfSpace)
  bool persistent = false;               // keep a slot index (see above)
  uint32_t max_slots = 1u << 20;         // persistent: slot index entries
  // kNone: no msync (survives kill -9 via the page cache); kEach: msync of
  // data, then of the index entry, before write()/free() return. kCommit:
  // msync only when sync() is called.
  pages::SyncMode sync = pages::SyncMode::kNone;
  pages::Advice advice = pages::Advice::kNormal;  // applied to the whole mapping
  // Fault the mapping in at open and after each growth (MADV_POPULATE_WRITE)
  // so a write into fresh space takes no page fault: growth pays instead.
  bool populate = false;
  // fallocate the file at open and each growth: writes can never fault with
  // SIGBUS on a full filesystem (growth fails with kIoError instead).
  bool preallocate = false;
  void (*step_hook)(OverflowStep, void*) = nullptr;  // tests: crash injection
  void* step_hook_arg = nullptr;
};

// The overflow region's counters, declared once (src/common/counters.h): the struct, the JSON
// keys, schema entries and docs table. X(type, field, json key, unit, meaning).
#define ZNSLAB_OVERFLOW_STATS(X) \
  X(uint64_t, capacity, "capacity", "bytes", "current: file bytes (st_size)") \
  X(uint64_t, data_off, "data_off", "bytes", "first data byte") \
  X(uint64_t, cursor, "cursor", "bytes", "current: bump cursor (file offset)") \
  X(uint64_t, live_bytes, "live_bytes", "bytes", "current: bytes of live blobs as written") \
  X(uint64_t, live_slots, "live_slots", "count", "current: live blobs") \
  X(uint64_t, free_extents, "free_extents", "count", "current: free extents below the cursor") \
  X(uint64_t, free_bytes, "free_bytes", "bytes", "current: free bytes below the cursor") \
  X(uint64_t, grow_count, "grow_count", "count", "region growths") \
  X(uint64_t, generation, "generation", "", "growth generation (file header)") \
  X(uint64_t, writes, "writes", "count", "blob writes") \
  X(uint64_t, reuse_writes, "reuse_writes", "count", "writes placed in a free extent (best fit)") \
  X(uint64_t, frees, "frees", "count", "blob frees") \
  X(uint64_t, splits, "splits", "count", "free extents split by a write") \
  X(uint64_t, coalesces, "coalesces", "count", "free extents merged with a neighbour") \
  X(double, fragmentation_pct, "fragmentation_pct", "%", "(cursor - data_off - live_bytes) / (cursor - data_off); 0 when empty")

struct OverflowStats {
  ZNSLAB_OVERFLOW_STATS(ZNSLAB_COUNTER_FIELD)
};
ZNSLAB_COUNTER_FUNCTIONS(OverflowStats, ZNSLAB_OVERFLOW_STATS)

// A read-only view of a blob; valid until the next write() or close.
struct BlobView {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

class OverflowRegion {
 public:
  ~OverflowRegion();
  OverflowRegion(const OverflowRegion&) = delete;
  OverflowRegion& operator=(const OverflowRegion&) = delete;

  // Opens or creates `path`. A persistent region that exists is recovered
  // (slot index -> live slots; free extents are the gaps); a non-persistent
  // one is reset (scratch, as the seed). Errors: kInvalidArgument (initial
  // not a multiple of 4 KiB, initial > max, too small for the index),
  // kCorrupt (bad header, overlapping slots), kIoError, kOutOfMemory.
  static Result<std::unique_ptr<OverflowRegion>> open(const std::string& path, const OverflowOptions& opts);

  // Copies `len` bytes into a best-fit free extent or at the cursor
  // (growing the file when needed). Errors: kOutOfSpace (max_bytes or
  // max_slots reached), kIoError. With persistent=true the slot is durable
  // against kill -9 when write returns (and against power loss with sync=each).
  Result<SlotId> write(const void* data, size_t len) noexcept;
  // As write(), but the bytes go to the file with pwrite(2) instead of a
  // copy through the mapping, so no page of the region is mapped into this
  // process (they stay in the page cache, outside the process RSS; the slab
  // spill target relies on this, docs/spill.md). Errors: as write(); a short
  // pwrite is kIoError (the extent is freed again).
  Result<SlotId> write_fd(const void* data, size_t len) noexcept;
  // Exactly the bytes written. Errors: kOutOfBounds (no such slot),
  // kStaleHandle (slot reused since), kNotFound (freed).
  Result<BlobView> read(SlotId slot) const noexcept;
  // Copies the blob into dst (cap bytes) with pread(2): no page of the
  // mapping is touched. *len (may be null) = the blob's length. Errors: as
  // read; kInvalidArgument (cap < the blob), kIoError (pread failed or short).
  Status read_fd(SlotId slot, void* dst, size_t cap, size_t* len = nullptr) const noexcept;
  // Errors: as read; kDoubleFree for a freed slot.
  Status free(SlotId slot) noexcept;
  // msync of the whole mapping. Errors: kIoError.
  Status sync() noexcept;

  // Where a live slot's bytes are in the file (for OverflowReader users).
  Result<std::pair<uint64_t, uint32_t>> locate(SlotId slot) const noexcept;
  // Live slot ids, ascending by index.
  std::vector<SlotId> live_slots() const;
  // Free extents below the cursor as (offset, bytes), ascending (tests).
  std::vector<std::pair<uint64_t, uint64_t>> free_extents() const;
  OverflowStats stats() const noexcept;
  // DRAM held by the region's tables (slot vector, free-extent trees), bytes
  // (approximate: tree nodes counted at 64 B).
  uint64_t table_bytes() const noexcept;
  uint8_t* base() const noexcept { return base_; }
  uint64_t capacity() const noexcept { return capacity_; }

 private:
  struct Slot {
    uint64_t off = 0;
    uint32_t len = 0;
    uint32_t gen = 1;
    uint64_t ext = 0;  // extent bytes (len rounded up to 16); 0 = free slot
  };
  OverflowRegion() = default;
  Status grow(uint64_t required) noexcept;
  Result<SlotId> put(const void* data, size_t len, bool through_fd) noexcept;
  void add_free(uint64_t off, uint64_t size) noexcept;
  Result<uint32_t> check(SlotId slot) const noexcept;
  void hook(OverflowStep s) noexcept {
    if (hook_) hook_(s, hook_arg_);
  }

  int fd_ = -1;
  uint8_t* base_ = nullptr;
  uint64_t capacity_ = 0, max_bytes_ = 0, data_off_ = 0, cursor_ = 0;
  bool persistent_ = false;
  uint32_t max_slots_ = 0;
  pages::SyncMode sync_ = pages::SyncMode::kNone;
  pages::Advice advice_ = pages::Advice::kNormal;
  bool populate_ = false;
  bool preallocate_ = false;
  void (*hook_)(OverflowStep, void*) = nullptr;
  void* hook_arg_ = nullptr;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  std::map<uint64_t, uint64_t> by_off_;                   // free extent offset -> bytes
  std::set<std::pair<uint64_t, uint64_t>> by_size_;       // (bytes, offset)
  uint64_t live_bytes_ = 0, live_slots_ = 0, free_bytes_ = 0;
  uint64_t grow_count_ = 0, generation_ = 0;
  uint64_t writes_ = 0, reuse_writes_ = 0, frees_ = 0, splits_ = 0, coalesces_ = 0;
};

// A read-only mapping of an overflow region for another thread or process.
// Before each read it compares its generation with the file header's and
// remaps (mremap MAYMOVE) when the region grew; it never reads past what it
// has mapped. Thread-safety: one reader per thread.
class OverflowReader {
 public:
  ~OverflowReader();
  OverflowReader(const OverflowReader&) = delete;
  OverflowReader& operator=(const OverflowReader&) = delete;

  // Errors: kNotFound, kCorrupt (not an overflow region), kIoError.
  static Result<std::unique_ptr<OverflowReader>> open(const std::string& path);
  // Copies [off, off+len) of the file to dst. Errors: kOutOfBounds (beyond
  // the region even after remapping), kIoError.
  Status read(uint64_t off, uint32_t len, void* dst) noexcept;
  // A persistent region's slot, through its slot index. Errors: kNotFound
  // (no valid entry), kNotSupported (region not persistent), as read.
  Status read_slot(SlotId slot, std::vector<uint8_t>* out);
  uint64_t remaps() const noexcept { return remaps_; }
  uint64_t mapped_bytes() const noexcept { return mapped_; }
  uint64_t generation() const noexcept { return gen_; }

 private:
  OverflowReader() = default;
  Status refresh() noexcept;
  int fd_ = -1;
  uint8_t* base_ = nullptr;
  uint64_t mapped_ = 0, gen_ = 0, remaps_ = 0, data_off_ = 0;
  bool persistent_ = false;
  uint32_t max_slots_ = 0;
};

}  // namespace znslab::overflow
