// Spill internals shared by spill.cpp (spill passes, fault-back, public
// API) and spill_zones.cpp (zone table, writes, resets, garbage
// collection): the Spill state hung off SlabAllocator::Impl::sp. Not a
// public header. Thread-safety: as noted per member (Spill::mu guards the
// zone table, loc and the tags' spill-bit transitions). Issue 11;
// docs/spill.md.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "src/slab/slab_internal.h"

namespace znslab::slab::detail {

inline uint64_t mono_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}
inline uint64_t coarse_ms() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return uint64_t(ts.tv_sec) * 1000ull + uint64_t(ts.tv_nsec) / 1000000ull;
}
inline bool test_bit(const uint64_t* b, uint32_t i) { return (b[i >> 6] >> (i & 63)) & 1; }
inline void set_bit(uint64_t* b, uint32_t i) { b[i >> 6] |= uint64_t(1) << (i & 63); }
inline void clear_bit(uint64_t* b, uint32_t i) { b[i >> 6] &= ~(uint64_t(1) << (i & 63)); }

// Log-linear latency histogram, ns: exact below 16, then 16 sub-buckets per
// power of two (upper bounds within 1/16). Lock-free adds.
struct LatHist {
  static constexpr uint32_t kBuckets = 64 * 16;
  std::atomic<uint64_t> b[kBuckets] = {};
  std::atomic<uint64_t> n{0}, mx{0};
  static uint32_t index(uint64_t v) noexcept {
    if (v < 16) return uint32_t(v);
    const uint32_t msb = 63 - uint32_t(__builtin_clzll(v));
    return (msb - 3) * 16 + uint32_t((v >> (msb - 4)) & 15);
  }
  static uint64_t upper(uint32_t i) noexcept {
    if (i < 16) return i;
    const uint32_t msb = i / 16 + 3, sub = i % 16;
    return ((uint64_t(17 + sub)) << (msb - 4)) - 1;
  }
  void add(uint64_t v) noexcept {
    b[index(v)].fetch_add(1, std::memory_order_relaxed);
    n.fetch_add(1, std::memory_order_relaxed);
    uint64_t m = mx.load(std::memory_order_relaxed);
    while (v > m && !mx.compare_exchange_weak(m, v, std::memory_order_relaxed)) {
    }
  }
  SpillLatency snapshot() const noexcept {
    SpillLatency s;
    uint64_t counts[kBuckets];
    uint64_t total = 0;
    for (uint32_t i = 0; i < kBuckets; ++i) total += counts[i] = b[i].load(std::memory_order_relaxed);
    s.count = total;
    s.max = mx.load(std::memory_order_relaxed);
    if (!total) return s;
    auto q = [&](double f) {
      const uint64_t rank = uint64_t(f * double(total - 1)) + 1;
      uint64_t acc = 0;
      for (uint32_t i = 0; i < kBuckets; ++i)
        if ((acc += counts[i]) >= rank) return std::min(upper(i), s.max);
      return s.max;
    };
    s.p50 = q(0.50);
    s.p90 = q(0.90);
    s.p99 = q(0.99);
    s.p999 = q(0.999);
    return s;
  }
};

enum ZState : uint8_t { kZFree, kZOpen, kZFull };
// Zone owners: epochs 0..15, the shared zone of page spill, GC copies.
// Epoch spill uses the shared zone for sparse CLOSING epochs (kOwnerSparse).
inline constexpr uint32_t kOwnerPage = kEpochCount, kOwnerSparse = kOwnerPage, kOwnerGc = kEpochCount + 1,
                          kOwners = kEpochCount + 2;

// Meshing (Mesh, PLDI 2019; docs/spill.md "Meshing"): GC packs spilled
// slabs of one size class whose allocated slots do not overlap (their free
// bitmaps are in DRAM, in the slab word) into ONE 4 KiB block, each slab's
// allocated slots at their own offsets. A zone slot holding such a block
// has slab_at = kMeshBit | index into Spill::mesh. Every member's loc[]
// names that slot; the block's refs counts the members whose loc still
// does (a member whose loc moved on is stale and ignored). While spilled a
// slab's allocated set only shrinks (an allocation needs a fault-back
// first), so members never come to overlap on the device.
inline constexpr uint32_t kMeshBit = 0x80000000u;
inline constexpr uint32_t kMeshMax = 16;  // slabs per shared block
struct MeshBlock {
  uint32_t refs = 0;  // members whose copy is this block
  uint32_t n = 0;     // entries in ids (some may be stale)
  uint32_t ids[kMeshMax] = {};
};

// A shared block being packed by GC: the union of its members' allocated
// slots, their class, and the members (indices into GC's list of slabs).
struct MeshBin {
  uint64_t used;
  uint32_t cls, n;
  uint32_t member[kMeshMax];
};

struct SZone {
  ZState state = kZFree;
  uint8_t owner = 0;
  uint32_t written = 0;  // slabs written (write pointer / 4 KiB)
  uint32_t live = 0;     // slabs whose only copy is here
  uint32_t reading = 0;  // fault-back reads in flight
  uint64_t last_use = 0;
  std::vector<uint32_t> slab_at;  // slab id per slot, kNone = dead, kMeshBit | i = Spill::mesh[i]
};

// The overflow spill target (spill_overflow.cpp): the region and its
// mutex. Opaque here so the slab's other files need not see src/overflow.
struct OvflState;
struct OvflDeleter {
  void operator()(OvflState* o) const noexcept;
};

// Spill::loc of a slab whose copy is a blob of the overflow region: this
// bit | the region's SlotId (24-bit generation << 32 | index, bit 63 clear).
// Zone locations ((zone + 1) << 32 | slot) never set it.
inline constexpr uint64_t kLocOverflow = uint64_t(1) << 63;
inline bool loc_is_overflow(uint64_t l) noexcept { return (l & kLocOverflow) != 0; }

// A slab marked for spilling: its id and its tag with the spill bits set.
struct SpillMark {
  uint32_t id;
  uint32_t tag;
};

struct Spill {
  std::unique_ptr<zns::ZonedDevice> dev;  // null: budget without a target (or overflow)
  std::unique_ptr<OvflState, OvflDeleter> ov;  // the overflow target (null unless spill = overflow)
  zns::DeviceInfo info;
  uint32_t spz = 0;         // slabs per zone (zone capacity / 4 KiB)
  uint32_t open_limit = 0;  // zones open for owners (one more is kept for GC)
  uint64_t append_max = 0;  // bytes per zone append (0: writes at the write pointer)
  size_t stage_slabs = 64;  // slabs per batch (<= 64: 256 KiB)
  pages::Reservation stage;     // spill batches (page-aligned: O_DIRECT-safe)
  pages::Reservation gc_stage;  // GC copies (a GC runs while a batch is staged)
  pages::Reservation loc_res;
  // Per slab id: where its copy is, (zone + 1) << 32 | slot (0 = none), and
  // the CRC32C of the page when it was last read back. A copy outlives the
  // fault-back ("clean copy"): if the page's CRC is unchanged when the slab
  // is chosen again, it is evicted without a write (clean_evictions).
  uint64_t* loc = nullptr;
  uint32_t* crc = nullptr;
  // Per slab id, one bit, guarded by mu: a resident slab whose page was
  // found changed since its clean copy (CRC mismatch in a spill pass). The
  // page only gets dirtier until it is spilled again, so later passes skip
  // the CRC of a slab with this bit (it is dirty). Cleared when a
  // fault-back records a new clean copy (fault_in). Lives in loc_res.
  uint64_t* dirty = nullptr;
  // Accesses per ring epoch (deref/pin hits and refills, note_access),
  // decayed by a quarter at every epoch-unit spill pass: the pass spills
  // the epochs with the fewest recent accesses first. Relaxed load + store
  // (a lost increment under a race only blurs the estimate).
  alignas(64) std::atomic<uint64_t> heat[kEpochCount] = {};
  // The allocator's tags (Impl::tags): GC tells resident slabs (no spill
  // bit: the copy is a clean copy) from spilled ones, and a slab's epoch.
  const std::atomic<uint32_t>* tags = nullptr;
  // The allocator's slab registry (Impl::slabs): GC reads a spilled slab's
  // free bitmap (SlabMeta::word) to mesh it. Read only.
  const SlabMeta* slabs = nullptr;
  bool mesh_on = false;  // Options::spill_mesh
  uint64_t table_bytes = 0;
  std::atomic<uint64_t> slot_map_bytes{0};  // SZone::slab_at capacity, bytes

  std::mutex run_mu;  // one spill pass / GC / housekeeping at a time
  std::mutex mu;      // leaf: zone table, loc, tag spill-bit transitions
  std::condition_variable cv;  // a kTagMoving transition finished
  std::vector<SZone> zones;
  std::vector<uint32_t> free_zones;
  std::vector<uint32_t> dead_zones;  // no live slab, awaiting reset
  std::vector<MeshBlock> mesh;       // shared blocks (capacity counted in slot_map_bytes)
  std::vector<uint32_t> mesh_free;   // unused indices of mesh
  std::vector<MeshBin> mesh_bins;    // GC scratch (spz entries reserved at init, in table_bytes)
  int32_t open_of[kOwners];
  uint32_t n_open = 0;
  uint64_t use_clock = 0;
  std::string last_error;

#define X(n, kind) std::atomic<uint64_t> n{0};
  ZNSLAB_SLAB_SPILL_COUNTERS(X)
#undef X
  LatHist lat;

  // Compact records (compact.cpp), guarded by mu: per SlabMeta group (slab
  // id / 16) held compact, its records (layout in compact.cpp). The bytes
  // (capacity + kRecOverhead per group) count in dram_table_bytes.
  std::unordered_map<uint32_t, std::vector<uint32_t>> compact;
  std::atomic<uint64_t> compact_bytes{0};

  // Prefetch worker (started on the first prefetch()).
  std::thread worker;
  std::mutex wmu;
  std::condition_variable wcv;
  uint32_t want_mask = 0;  // epochs to bring back
  bool stop = false;

  Spill() {
    for (auto& o : open_of) o = -1;
  }
};

// Reserves loc, crc and dirty for n_slabs ids in s.loc_res (lazily
// committed; dram_tables() counts them up to the id high-water mark).
// Errors: the reservation's (kOutOfMemory).
Status reserve_side_tables(Spill& s, uint32_t n_slabs) noexcept;
// Bytes of loc + crc + dirty per `ids` slab ids, as dram_tables() counts.
inline uint64_t side_table_bytes(uint64_t ids) noexcept { return ids * 12 + (ids + 63) / 64 * 8; }

// ---- compact records (compact.cpp) ----
// Spill::mu held: slab `id` carries kTagCompact; its group is expanded if
// compact, else (compaction still pending) the id's bit is cleared.
void compact_touch_locked(SlabAllocator::Impl& im, uint32_t id) noexcept;
// Spill::mu held: the slab word (free-slot bitmap + state) of slab `id`
// from its compact record; false if its group is not held compact (then the
// word is in SlabMeta). GC reads it to mesh spilled slabs (spill_zones.cpp)
// without faulting a released SlabMeta page back in.
bool compact_word(const Spill& s, uint32_t id, uint64_t* word) noexcept;

// ---- zone bookkeeping (spill_zones.cpp; Spill::mu held unless noted) ----

// Records "what: status" as the last spill error (never throws).
void set_error(Spill& s, const char* what, const Status& st);
// arena_mu held (spill.cpp): after a batch of n <= 64 marked slabs was
// written, alive[j] = b[j] is still attached as marked; the pages of those
// slabs are returned (one madvise per run of consecutive ids) and leave
// the committed counts.
void decommit_written(SlabAllocator::Impl& im, const SpillMark* b, uint32_t n, bool* alive) noexcept;
// A slab's copy in zone z slot k is no longer needed; `spilled`: the slab
// was not resident (its only copy). A zone left with no live slab is queued
// for reset.
void drop_copy(Spill& s, uint32_t z, uint32_t k, bool spilled);
// Zone z slot k loses one referencing slab (a plain slot dies; a shared
// block's refs drops, the slot dies at 0). Updates SZone::live only.
void unref_copy(Spill& s, uint32_t z, uint32_t k);
// The slabs whose copy is zone z slot k (one, the live members of a shared
// block, or none) into out[kMeshMax]; returns how many.
uint32_t slot_ids(const Spill& s, uint32_t z, uint32_t k, uint32_t* out);
// Sizes the slot map of a zone being written (spz entries, counted in the
// DRAM budget as slot_map_bytes).
void ensure_map(Spill& s, SZone& zn);
// Resets every queued dead zone (no copy) and returns it to the free list.
void reset_dead(Spill& s);
// Writes n slabs (4 KiB each) from buf at zone z slot `slot` (write at the
// write pointer, or zone appends of append_max bytes); *landed = the slot
// the first slab landed at. Device errors are returned, never thrown.
Status write_slabs(Spill& s, uint32_t z, uint32_t slot, const uint8_t* buf, uint32_t n, uint32_t* landed);
// The open zone of `owner` (an epoch, kOwnerPage or kOwnerGc), opening a
// free one (garbage-collecting if none is free, skipping owners in
// closing_mask when a zone must be closed); kNone when none can be had.
uint32_t pick_zone(Spill& s, uint32_t owner, uint32_t closing_mask = 0);

// ---- the overflow target (spill_overflow.cpp) ----

// Opens the region named by Options::spill_device ("PATH" or
// "PATH?initial_bytes=N&max_bytes=N", sizes with K/M/G suffixes), sized
// tables and the staging buffer. Errors name the path: kInvalidArgument
// (bad spec), the region's open errors (kIoError, ...), kOutOfMemory.
Status ovfl_init(SlabAllocator::Impl& im) noexcept;
// Writes the n staged slabs (Spill::stage) as 4 KiB blobs and finishes the
// batch: written slabs are decommitted and point at their blob; on a write
// error the rest stay in DRAM (unmarked, counted, last_error). No lock held
// but the bin mutex. False when a write failed.
bool ovfl_flush_batch(SlabAllocator::Impl& im, const SpillMark* b, uint32_t n) noexcept;
// Spill::mu held: a copy at `l` (zone or overflow location) is no longer
// needed; `spilled`: the slab was not resident. Dispatches to drop_copy.
void drop_loc(Spill& s, uint64_t l, bool spilled);
// Reads the blob at overflow location l into dst (4 KiB) with pread and
// checks its CRC32C against `want` (recorded at spill). Errors: kCorrupt
// (CRC mismatch: the blob was damaged), the region's read errors. Spill::mu
// not held.
Status ovfl_read(Spill& s, uint64_t l, void* dst, uint32_t want) noexcept;
// Spilled slab ids of the epochs in `mask` whose copy is in the region.
void ovfl_spilled_ids(SlabAllocator::Impl& im, uint32_t mask, std::vector<uint32_t>& out);

}  // namespace znslab::slab::detail
