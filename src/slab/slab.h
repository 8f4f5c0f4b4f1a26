// The temporal (epoch-based) slab allocator: public API.
//
// Layers (mimalloc-style, bottom up): src/pages (OS boundary: arena
// reservation, madvise) -> size classes, slabs and the slab registry ->
// epochs -> this API. Behaviour follows seed 002 (the ZNS-Slab changelog):
//   * size classes 64..768 B, 4 KiB slabs with an allocation bitmap;
//   * a ring of 16 epochs (ACTIVE/CLOSING) with a 64-bit era counter;
//   * portable 64-bit handles v1 resolved through a slab registry, with a
//     24-bit per-slot generation, masked by a keyed hash of (slab, slot)
//     (docs/slab.md, "Handles": forged and stale handles);
//   * empty-slab reclamation "Option C" (immediate) by default.
//
// Thread-safety: SlabAllocator is safe for concurrent use by any number of
// threads; allocate/free/deref are lock-free on the common path, do no
// syscalls and no heap allocation, and never throw. Epoch management calls
// (advance/close/label) are safe concurrently but take a cold-path lock.
// EpochDomain is owned by the thread that created it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "src/common/counters.h"
#include "src/common/status.h"

namespace znslab::zns {
class ZonedDevice;
}

namespace znslab::slab {
namespace detail {
struct DomainStack;  // per-thread stack of epoch domains (epoch.cpp)
}

// Size classes (seed 002, "Initial Commit"), bytes.
inline constexpr std::array<uint32_t, 8> kSizeClasses = {64, 96, 128, 192, 256, 384, 512, 768};
inline constexpr uint32_t kNumClasses = kSizeClasses.size();
inline constexpr size_t kSlabBytes = 4096;      // one slab = one 4 KiB page
inline constexpr size_t kMaxObjectBytes = 768;  // larger requests: kInvalidArgument
inline constexpr uint32_t kEpochCount = 16;     // the epoch ring
inline constexpr uint32_t kMaxDomainDepth = 32; // epoch domain nesting limit

// O(1) size -> class index (1-byte-granularity table). Returns kNumClasses
// for size 0 or size > kMaxObjectBytes.
uint32_t size_class_of(size_t bytes) noexcept;

// ---- Handles: portable format v1 (seed 002, "Phase 1.5") -----------------
//   [63:42] slab_id (22 bits)   [41:18] generation (24 bits)
//   [17:10] slot (8 bits)       [9:2]   size_class (8 bits)
//   [1:0]   version (2 bits) = 0b01
// The layout is the seed's; the generation's meaning is this allocator's:
// the slot's 24-bit generation counter (odd while allocated) XOR a keyed
// hash of (slab_id, slot) with a per-allocator key (Options::handle_key).
// Promise (issue 9, measured in docs/slab.md): a handle with any bit of a
// live handle changed is refused with probability >= 1 - 2^-16 (each
// forgery; the design gives ~2^-23), and a stale handle stays refused until
// its slot has been reused >= 2^22 times, whatever epochs and chunks do.
// handle_pack/unpack only move bits; they do not mask.
struct HandleFields {
  uint32_t slab_id = 0;     // < 2^22
  uint32_t generation = 0;  // < 2^24 (masked counter, see above)
  uint32_t slot = 0;        // < 2^8
  uint32_t size_class = 0;  // < 2^8
  uint32_t version = 1;     // < 2^2
};
inline constexpr uint32_t kHandleVersion = 1;
constexpr uint64_t handle_pack(const HandleFields& f) noexcept {
  return (uint64_t(f.slab_id & 0x3FFFFFu) << 42) | (uint64_t(f.generation & 0xFFFFFFu) << 18) |
         (uint64_t(f.slot & 0xFFu) << 10) | (uint64_t(f.size_class & 0xFFu) << 2) |
         uint64_t(f.version & 0x3u);
}
constexpr HandleFields handle_unpack(uint64_t h) noexcept {
  return HandleFields{uint32_t(h >> 42) & 0x3FFFFFu, uint32_t(h >> 18) & 0xFFFFFFu,
                      uint32_t(h >> 10) & 0xFFu, uint32_t(h >> 2) & 0xFFu, uint32_t(h) & 0x3u};
}

// An opaque handle; 0 is never a valid handle.
struct Handle {
  uint64_t raw = 0;
  friend constexpr bool operator==(Handle, Handle) = default;
};

struct Allocation {
  Handle handle;
  void* ptr = nullptr;   // valid until the handle is freed
  uint32_t usable = 0;   // slot size of the class, bytes
};

enum class EpochState : uint8_t { kActive, kClosing };
const char* epoch_state_name(EpochState s) noexcept;  // "ACTIVE" / "CLOSING"

// When a slab that becomes empty is queued for return to the OS.
//   kImmediate: at once, whatever its epoch's state (seed 002 "Option C",
//               the fix; default).
//   kOnClose:   only when its epoch is CLOSING (the seed's old behaviour;
//               reproduces the RSS ratchet with an immortal epoch 0).
//   kOff:       never; empty slabs stay committed for reuse.
enum class ReclaimPolicy : uint8_t { kImmediate, kOnClose, kOff };
const char* reclaim_policy_name(ReclaimPolicy p) noexcept;  // "immediate", "on_close", "off"
Result<ReclaimPolicy> parse_reclaim_policy(std::string_view s) noexcept;

// Bitmap scan mode (seed 002 "Adaptive Bitmap Scanning").
enum class ScanMode : uint8_t { kSequential = 0, kRandomized = 1 };

// Where cold slabs go when Options::dram_budget_bytes is exceeded.
//   kNone:     nowhere (a budget then only triggers reclaim of empty slabs).
//   kZns:      zones of a zns::ZonedDevice (Options::spill_device is a URI).
//   kOverflow: the src/overflow region (Options::spill_device is a file).
enum class SpillTarget : uint8_t { kNone, kZns, kOverflow };
const char* spill_target_name(SpillTarget t) noexcept;  // "none", "zns", "overflow"
Result<SpillTarget> parse_spill_target(std::string_view s) noexcept;
// What is moved to the target as a unit.
//   kEpoch: whole epochs, coldest first (CLOSING with live objects before
//           ACTIVE; then least recently allocated/accessed); one open zone
//           per spilling epoch (issue 11, the design under test).
//   kPage:  individual 4 KiB slabs, least recently used first, into one
//           shared open zone (the swap/ZNSwap-like baseline).
enum class SpillUnit : uint8_t { kEpoch, kPage };
const char* spill_unit_name(SpillUnit u) noexcept;  // "epoch", "page"
Result<SpillUnit> parse_spill_unit(std::string_view s) noexcept;

struct Options {
  ReclaimPolicy reclaim = ReclaimPolicy::kImmediate;
  // Virtual address space reserved for slabs, bytes (MAP_NORESERVE; costs
  // nothing until touched). Bounded by 2^22 slab ids x 4 KiB = 16 GiB.
  size_t arena_bytes = size_t(16) << 30;
  // Slabs of one epoch are carved from chunks of this many bytes, so a
  // whole epoch's memory returns in large madvise ranges. Power of two,
  // multiple of kSlabBytes.
  size_t chunk_bytes = size_t(2) << 20;
  // madvise(MADV_HUGEPAGE) on chunks (THP in `madvise` mode here).
  bool use_thp = false;
  // When an epoch takes its third uncommitted slab in a row (it is
  // growing), back up to this many consecutive uncommitted slabs of the
  // chunk at once with
  // madvise(MADV_POPULATE_WRITE) (one syscall instead of one page fault per
  // 4 KiB on first touch; the extra slabs are taken next). 0 or 1: off;
  // ignored with use_thp (one fault backs a huge page) or on kernels
  // without MADV_POPULATE_WRITE (< 5.14).
  uint32_t populate_slabs = 16;
  // Pending empty slabs that trigger a batched decommit (0 = only on
  // epoch_close()/reclaim()).
  uint32_t reclaim_batch_slabs = 64;
  // A batched decommit also waits until the queued empty slabs reach this
  // percentage of the committed slabs (whichever of the two is larger), so
  // a large free phase runs a few passes returning long runs (each pass
  // scans the dirty chunks and madvises run by run) instead of one per
  // reclaim_batch_slabs. Percent, 0..100; 0 = reclaim_batch_slabs alone.
  // epoch_close()/reclaim() are unaffected (they return everything). 25:
  // churn's 4 KiB free phase 175 -> 122 ns/object (docs/slab.md, issue 14).
  uint32_t reclaim_batch_pct = 25;
  // Adaptive bitmap scanning (seed 002): retry-rate threshold and dwell.
  double scan_retry_threshold = 0.30;
  uint32_t scan_dwell_checks = 3;
  // Per-thread magazines of free slots per (epoch, class), up to 30 slots
  // each: allocate pops and free pushes with plain loads/stores (free keeps
  // its one sequence CAS, the ownership point that refuses stale and double
  // frees). Cached slots stay claimed in their slab; they return on
  // overflow, when their epoch closes (the closing thread's at once, other
  // threads' on their next allocate/free, or at thread exit), on
  // reclaim()/stats/verify() for the calling thread, and at thread exit.
  // false: every operation uses the shared slab word (one CAS each way).
  bool thread_cache = true;
  // Solo free mode (issue 14; docs/slab.md "Solo free mode"): while a single
  // thread is the only one that has ever called free(), its frees take the
  // slot with a plain load and store of the slot entry instead of the CAS
  // (same checks, same errors). The first free by any other thread ends the
  // mode for good (one membarrier(2) handshake) and every free uses the CAS
  // from then on. Needs thread_cache and membarrier(PRIVATE_EXPEDITED); off
  // with spill (dram_budget_bytes > 0). false: every free uses the CAS.
  bool solo_free = true;
  // Key of the handle generation mask (see "Handles"). 0: a random key from
  // getrandom() per allocator (the default; handles of one allocator are
  // meaningless to another). Non-zero: a fixed key, for reproducible tests.
  uint64_t handle_key = 0;

  // ---- Spill to zoned storage (issue 11; docs/spill.md) ----
  // DRAM budget, bytes: committed slabs x 4 KiB + slab metadata (SlabMeta of
  // every chunk in use, spilled slabs included, plus the spill tables).
  // 0 = unlimited (no spill; the allocator behaves exactly as without it).
  // When an allocation refill or a fault-back would exceed it, pending
  // empty slabs are returned first, then cold slabs are written to the
  // spill target and their DRAM returned, down to 15/16 of the budget.
  size_t dram_budget_bytes = 0;
  SpillTarget spill = SpillTarget::kNone;
  // kZns: a zns::ZonedDevice URI (emu:PATH?zones=N&..., zbd:/dev/nvmeXnY,
  // nvme:/dev/ngXnY); every zone is reset at create() (scratch space).
  // kOverflow: the overflow region file (src/overflow): "PATH" or
  // "PATH?initial_bytes=N&max_bytes=N" (bytes, K/M/G suffixes; defaults 64
  // MiB / 1 GiB); reset at create() (scratch), slabs written as 4 KiB blobs
  // with pwrite (never mapped in: outside the RSS). A full region
  // (max_bytes) fails the spill write and the data stays in DRAM.
  std::string spill_device;
  SpillUnit spill_unit = SpillUnit::kEpoch;
  // Zone append (the device picks the offset) instead of writes at the
  // write pointer for spill I/O (kZns only; needs zone_append_max_bytes).
  bool spill_append = false;
  // Meshing (Mesh, PLDI 2019; docs/spill.md): garbage collection packs
  // spilled slabs of one class whose allocated slots do not overlap (at most
  // half full) into one shared 4 KiB block. false: every slab is copied alone.
  bool spill_mesh = true;
};

// ---- Stats snapshots (seed 002 "Phase 2.0 Core Stats API") ----------------
inline constexpr uint32_t kStatsVersion = 1;

// The global counters, declared once (src/common/counters.h): the struct,
// stats_json()'s "global" object, the result schema and the table in
// docs/slab.md come from this list. X(type, field, json key, unit, meaning).
#define ZNSLAB_SLAB_GLOBAL_STATS(X)                                                                      \
  X(uint64_t, committed_bytes, "committed_bytes", "bytes", "current: slabs backed (attached + pending) x 4096") \
  X(uint64_t, live_bytes, "live_bytes", "bytes", "current: slot size x live objects")                    \
  X(uint64_t, requested_bytes, "requested_bytes", "bytes", "current: bytes callers asked for, live objects") \
  X(uint64_t, live_objects, "live_objects", "count", "current: live objects")                           \
  X(uint64_t, empty_slabs, "empty_slabs", "slabs", "current: committed slabs with no live object")      \
  X(uint64_t, total_slabs, "total_slabs", "slabs", "current: slab ids in use (committed or reclaimed-awaiting-reuse)") \
  X(uint64_t, allocs, "allocs", "count", "successful allocations")                                      \
  X(uint64_t, frees, "frees", "count", "successful frees")                                              \
  X(uint64_t, madvise_calls, "madvise_calls", "count", "madvise and process_madvise calls returning slab memory to the OS") \
  X(uint64_t, madvise_bytes, "madvise_bytes", "bytes", "bytes returned to the OS by madvise")           \
  X(uint64_t, madvise_failures, "madvise_failures", "count", "madvise calls that failed")               \
  X(uint64_t, slow_path_cache_miss, "slow_path_cache_miss", "count", "refills that needed a new slab")  \
  X(uint64_t, slow_path_epoch_closed, "slow_path_epoch_closed", "count", "allocations refused: epoch CLOSING") \
  X(uint64_t, slow_path_partial_null, "slow_path_partial_null", "count", "refills with no current partial slab") \
  X(uint64_t, slow_path_partial_full, "slow_path_partial_full", "count", "refills whose current partial slab was full") \
  X(uint64_t, slabs_recycled, "slabs_recycled", "slabs", "empty slabs reused from the cache")           \
  X(uint64_t, slabs_fresh, "slabs_fresh", "slabs", "slabs taken from never-used arena space")           \
  X(double, recycle_rate_pct, "recycle_rate_pct", "%", "100 x recycled / (recycled + fresh)")           \
  X(uint64_t, stale_handle_frees, "stale_handle_frees", "count", "frees refused: stale handle (each exactly once)") \
  X(uint64_t, double_frees, "double_frees", "count", "frees refused: already free")                     \
  X(uint64_t, invalid_handle_frees, "invalid_handle_frees", "count", "frees refused: not a handle of this allocator") \
  X(uint64_t, stale_derefs, "stale_derefs", "count", "deref() calls refused (stale or forged handle)")  \
  X(uint64_t, scan_cas_attempts, "scan_cas_attempts", "count", "bitmap claim CAS attempts")            \
  X(uint64_t, scan_cas_retries, "scan_cas_retries", "count", "bitmap claim CAS retries")               \
  X(uint64_t, scan_adapt_checks, "scan_adapt_checks", "count", "adaptive-scan controller checks")       \
  X(uint64_t, scan_adapt_switches, "scan_adapt_switches", "count", "adaptive-scan mode switches")       \
  X(uint64_t, epoch_advances, "epoch_advances", "count", "successful epoch_advance() calls")                       \
  X(uint64_t, epoch_closes, "epoch_closes", "count", "epochs closed by epoch_close()")                             \
  X(uint64_t, pending_slabs, "pending_slabs", "slabs", "current: detached empty slabs still committed (awaiting reuse or decommit)") \
  X(uint64_t, chunks_returned, "chunks_returned", "count", "whole chunks decommitted into the free-chunk pool") \
  X(uint64_t, decommit_ranges, "decommit_ranges", "count", "coalesced madvise(MADV_DONTNEED) ranges over slab memory") \
  X(uint64_t, domain_violations, "domain_violations", "count", "EpochDomain misuse refused (depth > 32, wrong thread, not LIFO)") \
  X(uint64_t, thread_cached_slots, "thread_cached_slots", "count", "current: free slots held claimed by OTHER threads' caches") \
  X(uint64_t, retired_slab_ids, "retired_slab_ids", "count", "slab ids retired by the 2^23 generation rule (docs/slab.md, Handles)") \
  X(uint64_t, populated_slabs, "populated_slabs", "slabs", "slabs backed ahead of use by Options::populate_slabs")

// Snapshot of the global counters. thread_cached_slots: free slots held
// claimed in thread caches (Options::thread_cache) of OTHER threads: not
// live, not counted free; their slabs count as in use (not in empty_slabs).
// A snapshot first returns the calling thread's own cached slots, so
// single-threaded snapshots see 0 there.
struct GlobalStats {
  uint32_t version = kStatsVersion;
  ZNSLAB_SLAB_GLOBAL_STATS(ZNSLAB_COUNTER_FIELD)
};
ZNSLAB_COUNTER_FUNCTIONS(GlobalStats, ZNSLAB_SLAB_GLOBAL_STATS)

// ---- Spill counters (issue 11), declared once -----------------------------
// X(name, kind): kind "count" = monotonic total, "gauge" = current value.
// Bytes are slab bytes (4 KiB per slab) unless named device_*.
//   dram_committed_bytes  gauge: committed slabs x 4 KiB + slab metadata (the
//                         quantity the budget bounds)
//   dram_meta_bytes       gauge: of which resident SlabMeta pages (256 B per slab,
//                         one 4 KiB page per 16 slab ids; with spill a page goes back
//                         when none of its 16 ids is attached, or when its attached
//                         slabs are all spilled and held as compact records, which
//                         count in dram_table_bytes)
//   dram_table_bytes      gauge: of which spill tables (per-slab-id location and
//                         CRC, zone tables and slot maps, the two staging buffers)
//   spilled_bytes         count: slab bytes written to the target by spills
//   spilled_now_bytes     gauge: slab bytes currently held only on the target
//   spill_ios             count: write I/Os submitted by spills and GC
//   spill_write_errors    count: spill writes that failed (data kept in DRAM)
//   clean_evictions       count: slabs evicted again without a write (page unchanged
//                         since read back, CRC32C; the device copy was kept)
//   faultbacks            count: slabs read back (deref, pin, refill, prefetch)
//   faultback_bytes       count: bytes read back
//   faultback_errors      count: fault-back reads that failed (deref errors)
//   zone_resets           count: zones reset (dead epochs, after GC)
//   zone_resets_no_copy   count: of those, zones reset with no live slab left
//   zone_finishes         count: zones finished early for max open/active
//   zone_handoffs         count: open zones of a CLOSING epoch adopted by the next spilling epoch
//   gc_runs               count: zones garbage-collected
//   gc_copied_bytes       count: live slab bytes copied forward by GC
//   gc_dropped_clean      count: clean copies of resident slabs that GC dropped
//                         instead of copying (the slab is written again only if
//                         it is spilled again)
//   device_bytes_written  count: spilled_bytes + gc_copied_bytes
//   spill_runs            count: budget-driven spill passes
//   over_budget_events    count: passes that could not get under the budget
//   meta_pages_released   count: SlabMeta pages (4 KiB, 16 slab ids) returned while
//                         their chunk stayed in use, because none of the 16 ids
//                         was attached any more
//   meta_pages_compacted  count: SlabMeta pages whose spilled slabs were moved into
//                         compact records (page returned; docs/spill.md)
//   meta_pages_expanded   count: compact pages brought back (free/deref/pin/attach)
//   crc_checks            count: CRC32C of a resident slab's page against its clean
//                         copy in a spill pass (clean: evicted; else marked dirty)
//   crc_skips             count: slabs a spill pass knew dirty (found changed by an
//                         earlier pass, not read back since): no CRC
#define ZNSLAB_SLAB_SPILL_COUNTERS(X)                                              \
  X(dram_committed_bytes, gauge) X(dram_meta_bytes, gauge) X(dram_table_bytes, gauge) \
  X(spilled_bytes, count) X(spilled_now_bytes, gauge)                                  \
  X(spill_ios, count) X(spill_write_errors, count) X(clean_evictions, count)        \
  X(faultbacks, count)                                                               \
  X(faultback_bytes, count) X(faultback_errors, count) X(zone_resets, count)       \
  X(zone_resets_no_copy, count) X(zone_finishes, count) X(zone_handoffs, count)   \
  X(gc_runs, count) X(gc_dropped_clean, count)                                       \
  X(gc_mesh_blocks, count) X(gc_meshed_slabs, count)                                 \
  X(gc_copied_bytes, count) X(device_bytes_written, count) X(spill_runs, count)    \
  X(over_budget_events, count) X(meta_pages_released, count)         \
  X(meta_pages_compacted, count) X(meta_pages_expanded, count)                      \
  X(crc_checks, count) X(crc_skips, count)

// Fault-back latency (deref/pin of a spilled slab, read + install), ns.
struct SpillLatency {
  uint64_t count = 0;
  uint64_t p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;  // ns (bucket upper bounds, <= 1/16 error)
};

struct SpillStats {
  uint32_t version = 1;
  uint64_t dram_budget_bytes = 0;  // Options::dram_budget_bytes
#define X(n, kind) uint64_t n = 0;
  ZNSLAB_SLAB_SPILL_COUNTERS(X)
#undef X
  double write_amplification = 0;  // device_bytes_written / spilled_bytes (0 before any spill)
  SpillLatency faultback_ns;
  uint32_t zones_total = 0, zones_free = 0, zones_open = 0;  // spill device zones
  std::string last_error;  // the last spill/fault-back device error, "" if none
};

struct ClassStats {
  uint32_t size_class = 0;     // index
  uint32_t object_bytes = 0;   // slot size
  uint32_t slots_per_slab = 0;
  uint64_t committed_bytes = 0, live_bytes = 0, live_objects = 0;
  uint64_t empty_slabs = 0, total_slabs = 0;
  uint64_t slow_path_cache_miss = 0, slow_path_partial_null = 0, slow_path_partial_full = 0;
  double recycle_rate_pct = 0;
  ScanMode scan_mode = ScanMode::kSequential;
  uint64_t scan_adapt_checks = 0, scan_adapt_switches = 0;
};

struct EpochStats {
  uint32_t epoch = 0;            // ring index
  EpochState state = EpochState::kActive;
  uint64_t era = 0;              // era stamped when last activated
  uint64_t open_since_ns = 0;    // CLOCK_MONOTONIC ns when activated; 0 never
  uint64_t live_objects = 0;     // live allocation count
  uint64_t committed_bytes = 0;
  uint64_t reclaimable_slabs = 0;  // empty slabs pending return
  uint64_t domain_refcount = 0;
  uint64_t rss_before_close = 0, rss_after_close = 0;  // bytes; 0 if never closed
  std::string label;             // up to 31 chars
};

// Optional observer for cold-path events (the harness records them in the
// result timeline). Default methods do nothing. Called without allocator
// locks held, on the thread that caused the event.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void on_epoch_close(const EpochStats& /*after*/) {}
  virtual void on_decommit(uint64_t /*bytes*/, uint64_t /*ranges*/) {}
};

class SlabAllocator {
 public:
  struct Impl;
  // Errors: kInvalidArgument (bad options), kOutOfMemory (reservation failed).
  static Result<std::unique_ptr<SlabAllocator>> create(const Options& opts = {},
                                                       EventSink* sink = nullptr);
  // As create(), spilling to `spill_device` (already open; owned) instead of
  // opening Options::spill_device (tests pass a zns::FaultDevice). Needs
  // Options::spill == kZns and dram_budget_bytes > 0. Errors: as create(),
  // kNotSupported (logical block > 4 KiB, zone capacity < 4 KiB), device errors
  // from resetting its zones.
  static Result<std::unique_ptr<SlabAllocator>> create(const Options& opts, EventSink* sink,
                                                       std::unique_ptr<zns::ZonedDevice> spill_device);
  ~SlabAllocator();
  SlabAllocator(const SlabAllocator&) = delete;
  SlabAllocator& operator=(const SlabAllocator&) = delete;

  // Allocates `bytes` (1..768) in ring epoch `epoch` (< 16).
  // Errors: kInvalidArgument (size/epoch), kEpochClosed (counted),
  // kOutOfMemory (slab ids or arena exhausted).
  Result<Allocation> allocate(size_t bytes, uint32_t epoch) noexcept;
  // Frees a handle. Stale, forged or double-freed handles return
  // kStaleHandle / kInvalidHandle / kDoubleFree, bump a counter, and touch
  // no live object.
  Status free(Handle h) noexcept;
  // Resolves a live handle to its pointer; kStaleHandle/kInvalidHandle else.
  // With spill on, a spilled slab is first read back (synchronous io_uring
  // read on the calling thread only; other threads go on); then errors also
  // kIoError & co. from the device (never a pointer to garbage). The pointer
  // stays valid until the handle is freed or, with spill on, until the slab
  // is spilled again (cold slabs only; use pin() to hold it resident).
  Result<void*> deref(Handle h) const noexcept;

  // A move-only guard that keeps a slab resident (never spilled) while it
  // lives; ptr() is the object's address. Destroy it before freeing the
  // handle and before the allocator. Thread-safe: any thread may unpin.
  class PinGuard {
   public:
    PinGuard() = default;
    PinGuard(PinGuard&& o) noexcept : im_(o.im_), slab_(o.slab_), ptr_(o.ptr_) { o.im_ = nullptr; }
    PinGuard& operator=(PinGuard&& o) noexcept;
    PinGuard(const PinGuard&) = delete;
    PinGuard& operator=(const PinGuard&) = delete;
    ~PinGuard() { reset(); }
    void* ptr() const noexcept { return ptr_; }
    explicit operator bool() const noexcept { return im_ != nullptr; }
    void reset() noexcept;  // unpins now

   private:
    friend class SlabAllocator;
    Impl* im_ = nullptr;  // SlabAllocator::Impl
    uint32_t slab_ = 0;
    void* ptr_ = nullptr;
  };
  // Resolves (faulting back like deref) and pins the handle's slab. Errors:
  // as deref. Cost without spill: deref + one atomic increment/decrement.
  Result<PinGuard> pin(Handle h) noexcept;
  // Starts reading every spilled slab of ring epoch `epoch` back on the
  // spill worker thread and returns at once (kOk also when nothing is
  // spilled or spill is off). Errors: kInvalidArgument (epoch >= 16).
  Status prefetch(uint32_t epoch) noexcept;
  // Spill counters and fault-back latency (zeros when spill is off).
  SpillStats stats_spill() const noexcept;

  // Epoch ring. epoch_current() is always a ring index in [0, 16).
  uint32_t epoch_current() const noexcept;
  // Marks the current epoch CLOSING, activates the next ring slot (ACTIVE,
  // new era, metadata reset) and returns its index.
  uint32_t epoch_advance() noexcept;
  // Marks `epoch` CLOSING, records RSS before/after, and returns its empty
  // slabs to the OS (batched ranges). Errors: kInvalidArgument.
  Status epoch_close(uint32_t epoch) noexcept;
  // Re-activates a CLOSING ring slot without advancing (new era).
  Status epoch_reopen(uint32_t epoch) noexcept;
  Status epoch_set_label(uint32_t epoch, std::string_view label) noexcept;

  // Returns pending empty slabs to the OS now (coalesced ranges). Returns
  // bytes decommitted. Cold path; the harness may call it between phases.
  uint64_t reclaim() noexcept;

  GlobalStats stats_global() const noexcept;
  ClassStats stats_class(uint32_t size_class) const noexcept;
  EpochStats stats_epoch(uint32_t epoch) const noexcept;
  // JSON document {"schema":"znslab.slab-stats/1","global":{..},"classes":[..],"epochs":[..]}.
  std::string stats_json() const;

  const Options& options() const noexcept;

  // Cold consistency check for tests and debugging (takes the arena lock;
  // call when no allocate/free is in flight). For every attached slab:
  // free slots + allocated slots == capacity, no bit outside the capacity;
  // per class: sum over slabs of allocated slots == live_objects; globally:
  // committed_bytes == (attached + pending slabs) x 4 KiB. Errors: kCorrupt
  // naming the first violated invariant.
  Status verify() const noexcept;

  // fork(2) support, for pthread_atfork handlers (the preload malloc,
  // src/trace/preload/slab_malloc.cpp, registers them). fork_prepare() takes
  // every lock of this allocator in its one global order (epoch, reclaim,
  // every bin, arena, thread-cache list, shard index), so no lock is held
  // by a thread that does not exist in the child; fork_parent() and
  // fork_child() release them (in the child the caller is the only thread,
  // and it owns them). Between prepare and parent/child the calling thread
  // must not use the allocator. Blocks until in-flight slow paths finish.
  void fork_prepare() noexcept;
  void fork_parent() noexcept;
  void fork_child() noexcept;
  // Limit: the spill engine (dram_budget_bytes > 0) is not covered: its
  // locks and its prefetch worker do not cross fork, so a child must not
  // use an allocator that spills.

 private:
  explicit SlabAllocator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class EpochDomain;
};

// RAII epoch scope (seed 002 "Phase 3", with the 2025-02-07 fixes): wraps an
// epoch of the allocator (no implicit advance), increments its domain
// refcount on enter and decrements on exit; nests up to 32 deep per thread,
// LIFO enforced; owned by the creating thread (use from another thread, or
// out-of-order destruction, is refused with kDomainViolation and counted,
// never corrupts state). With auto_close, exit closes the epoch if its era
// is unchanged and the refcount reached zero.
class EpochDomain {
 public:
  // Errors (via status()): kDomainViolation when nesting > 32.
  EpochDomain(SlabAllocator& alloc, uint32_t epoch, bool auto_close = false) noexcept;
  ~EpochDomain();
  EpochDomain(const EpochDomain&) = delete;
  EpochDomain& operator=(const EpochDomain&) = delete;

  Status status() const noexcept { return status_; }
  uint32_t epoch() const noexcept { return epoch_; }
  uint64_t era() const noexcept { return era_; }
  // Allocates in this domain's epoch (checks ownership).
  Result<Allocation> allocate(size_t bytes) noexcept;
  // The innermost domain of the calling thread, or nullptr.
  static EpochDomain* current() noexcept;
  // Depth of the calling thread's domain stack.
  static uint32_t depth() noexcept;

 private:
  SlabAllocator* alloc_;
  uint32_t epoch_;
  uint64_t era_ = 0;
  bool auto_close_;
  bool entered_ = false;
  Status status_;
  unsigned long owner_;  // pthread_t of the creating thread
  std::shared_ptr<detail::DomainStack> stack_;  // the owner's stack (kept alive for refusals)
  uint32_t slot_ = 0;                           // index in the owner's stack
};

}  // namespace znslab::slab
