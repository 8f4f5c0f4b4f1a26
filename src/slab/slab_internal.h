// Internal layout of the temporal slab allocator (not a public header).
//
// Layers inside src/slab (bottom up):
//   arena.cpp   chunks and slabs carved from ONE pages::Reservation; the
//               slab registry (off-page SlabMeta indexed by slab id); batched,
//               coalesced decommit.
//   slab.cpp    the lock-free allocate/free/deref paths over the slab word.
//   epoch.cpp   the epoch ring, epoch_close/reclaim, EpochDomain.
//   stats.cpp   counter snapshots and JSON.
//
// Slab id = (slab address - arena base) / 4096. The registry is an array of
// SlabMeta in a second Reservation, so the whole 4 KiB slab holds objects and
// madvise on a slab never destroys its metadata.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

#include "src/pages/pages.h"
#include "src/slab/slab.h"
#include "zns/zoned_device.h"

namespace znslab::slab::detail {

struct Spill;  // spill_internal.h: zone tables, device, counters (null without spill)
void spill_delete(Spill* sp) noexcept;
// Counts one SlabMeta page released early (spill counter meta_pages_released).
void spill_count_meta_release(Spill* sp) noexcept;

inline constexpr uint32_t kNone = 0xFFFFFFFFu;
inline constexpr uint32_t kMaxSlabIds = 1u << 22;  // handle slab_id field

// ---- The slab word: allocation bitmap + slab state in ONE atomic ----------
// bits [0,61): free-slot bitmap (1 = slot free; at most 56 used, see
// SlabMeta: a class-64 slab holds 56 objects, not 64, so that its slot
// entries fit in the 256-byte off-page metadata).
// bits 61..63: the slab state, exactly one of
//   FLOAT (0)  attached to (class, epoch) but on no list: it was full when it
//              left the current position; only frees reach it.
//   kCur       the current slab of its (class, epoch) bin: the ONLY state in
//              which the lock-free fast path may claim a slot.
//   kStk       on its bin's partial stack (lock-free push by freers, pops
//              under the bin mutex).
//   kDet       detached: owned by the arena (pending decommit or free).
// Invariant: a claim is a CAS whose expected value has kCur set, and a detach
// is a CAS whose expected value has every slot free. So a claim and a detach
// can never both succeed: a thread that read "current" before the slab was
// detached loses its CAS and cannot take a slot in a slab being returned to
// the OS. The re-attach ABA case (the word returns to the same value in a new
// incarnation) is caught by re-reading SlabMeta::tag after the claim and
// rolling back (slab.cpp, claim()).
inline constexpr uint64_t kFreeMask = (uint64_t(1) << 61) - 1;
inline constexpr uint64_t kCur = uint64_t(1) << 61;
inline constexpr uint64_t kStk = uint64_t(1) << 62;
inline constexpr uint64_t kDet = uint64_t(1) << 63;
inline constexpr uint64_t kStateMask = kCur | kStk | kDet;

// Objects per slab for each class (4096 / size; class 64 capped at 56: the
// 8 lost slots cost 512 B per class-64 slab, 12.5 % of that class only).
inline constexpr uint32_t kMaxSlots = 56;
inline constexpr uint32_t kSlots[kNumClasses] = {56, 42, 32, 21, 16, 10, 8, 5};
// A floating slab goes back on its bin's partial stack once this many slots
// are free (half of the slab), so a popped slab serves several
// allocations on the fast path instead of one.
inline constexpr uint32_t kRelistMin[kNumClasses] = {28, 21, 16, 10, 8, 5, 4, 3};
// Empty slabs a bin keeps on its partial stack under `immediate` before
// further empty slabs are detached (batch passes keep as many; epoch_close()
// and reclaim() keep none). Bounds the hot reserve to 2 x 128 bins x 4 KiB.
inline constexpr uint32_t kKeepEmptyPerBin = 2;
inline constexpr uint64_t all_free(uint32_t c) { return (uint64_t(1) << kSlots[c]) - 1; }

// ---- SlabMeta::tag ----------------------------------------------------------
// [0,4) class  [4,8) epoch  [8] attached  [16,24) chunk incarnation
// [24,32) attach counter (bumps on every attach; the claim re-validation).
inline constexpr uint32_t kTagAttached = 1u << 8;
// Spill (spill.cpp; set only when Options::dram_budget_bytes and a spill
// target are given, so without spill these bits are never set):
//   kTagSpilled   the slab's only valid copy is on the spill target; its page
//                 is decommitted (SlabMeta, i.e. slot entries and bitmap, stays).
//   kTagMoving    in transition (being written out or read back): deref and
//                 pin wait; the spiller and refills skip it.
// Tag comparisons that detect re-attachment ignore these bits (kTagSpillBits).
inline constexpr uint32_t kTagSpilled = 1u << 9;
inline constexpr uint32_t kTagMoving = 1u << 10;
//   kTagCompact   (compact.cpp) the slab's SlabMeta is, or is about to be,
//                 held as a compact record while its page is decommitted:
//                 free/deref/pin/fault-back/attach expand the page first.
inline constexpr uint32_t kTagCompact = 1u << 11;
inline constexpr uint32_t kTagSpillBits = kTagSpilled | kTagMoving | kTagCompact;
inline constexpr uint32_t tag_class(uint32_t t) { return t & 0xF; }
inline constexpr uint32_t tag_epoch(uint32_t t) { return (t >> 4) & 0xF; }
inline constexpr uint32_t tag_inc(uint32_t t) { return (t >> 16) & 0xFF; }
inline constexpr uint32_t make_tag(uint32_t c, uint32_t e, uint32_t inc, uint32_t attach) {
  return c | (e << 4) | kTagAttached | ((inc & 0xFF) << 16) | ((attach & 0xFF) << 24);
}

// ---- Handle generation (24 bits; issue 9, M2 and M4) ----------------------------
// Each slot has a 24-bit generation counter in its slot entry: odd =
// allocated, even = free. Allocation stores g+1 (odd); free CASes it from that
// odd value to the next even one, the single point where a free takes
// ownership (a double free finds exactly g+1). The handle does not carry g
// itself but g XOR mask(slab id, slot), a keyed hash (gen_mask below) with a
// per-allocator random key: a handle whose slot or slab id bits were changed
// must guess the other slot's masked value (one chance in 2^23 after the
// parity check), even when both counters are equal (M4: every slot's
// counter used to start at 1).
//
// Counters never restart (M2): when a chunk returns whole, its SlabMeta
// pages are decommitted (and, with spill, a SlabMeta page as soon as none of
// its 16 slab ids is attached: arena.cpp, release_dead_meta), so before that
// each slab's per-slab base (gen_base, persistent, 4 B per slab id) advances
// by the largest distance any of its slots moved since its entries were
// initialised; the next attach initialises every slot entry to the new base
// (init_bits clear) and carries a new attach counter in its tag. A slot's
// counter therefore only moves forward: by 1 per allocate or free, plus
// base jumps at chunk returns / page releases whose sum is bounded by the base. A slab id
// whose base reaches kRetireBase (2^23) is retired: never attached again.
// So for a stale handle to be accepted its slot's counter must travel 2^24
// (a full lap) with jumps <= 2^23, i.e. >= 2^23 own steps: the slot was
// reused >= 2^22 times (each reuse = one allocate + one free).
inline constexpr uint32_t kGenBits = 24;
inline constexpr uint32_t kGenMask = (1u << kGenBits) - 1;
inline constexpr uint32_t kRetireBase = 1u << 23;
// Slot entry: [0,24) generation counter (odd = allocated), [24,32) slot size
// minus requested bytes (<= 255 for every class).
inline constexpr uint32_t slot_entry(uint32_t gen, uint32_t slack) {
  return (gen & kGenMask) | (slack << 24);
}
inline constexpr uint32_t slot_gen(uint32_t entry) { return entry & kGenMask; }
inline constexpr uint32_t slot_slack(uint32_t entry) { return entry >> 24; }
// The handle's generation field for counter value g of (slab, slot) under
// key (a, b): g XOR the top 24 bits of a * x + b over 64 bits, x = slab id
// << 8 | slot (Dietzfelbinger's multiply-add-shift family: for a random odd
// a and random b, the masks of two different x differ by any given value
// with probability about 2^-24). An involution: unmasking is the same call.
inline uint32_t gen_mask(uint64_t a, uint64_t b, uint32_t slab, uint32_t slot, uint32_t g) {
  const uint64_t x = (uint64_t(slab) << 8) | slot;
  return (g ^ uint32_t((a * x + b) >> (64 - kGenBits))) & kGenMask;
}
// Memory cost: a 4-byte slot entry x 56 + a 32-byte header = 256 B of
// metadata per 4 KiB slab (6.25 %), resident only for chunks currently in
// use (decommitted with the chunk), plus 4 B of gen_base per slab id ever
// used. A free touches two cache lines of it: the header and its entry.

struct alignas(64) SlabMeta {
  std::atomic<uint64_t> word;      // bitmap + state (above)
  std::atomic<uint32_t> access_tick;  // spill: Impl spill tick of the last deref/attach
                                     // (the tag lives in Impl::tags, a dense array:
                                     // a free reads it from a hot cache line)
  std::atomic<uint32_t> next_stk;  // bin partial-stack link (slab id)
  std::atomic<uint32_t> next_det;  // detached-stack link (slab id)
  std::atomic<uint32_t> pins;      // PinGuards alive on this slab (spill never takes it)
  std::atomic<uint64_t> era;       // era of the epoch when attached (seed 002 Phase 2.2)
  std::atomic<uint32_t> slot[kMaxSlots];  // slot entries (sequence | slack)
};
static_assert(sizeof(SlabMeta) == 256);

// Chunk bookkeeping; every field guarded by Impl::arena_mu.
struct ChunkMeta {
  uint32_t epoch_p1;      // owner epoch + 1; 0 = none (pool / never used)
  uint32_t next_p1;       // epoch list / free pool link, chunk id + 1
  uint32_t prev_p1;
  uint32_t used;          // slabs attached (detached ones until absorbed)
  uint32_t backed;        // slabs committed (not decommitted)
  uint32_t unused_backed; // warm slabs: empty, committed, reusable
  uint32_t dirty_next_p1;
  uint8_t inc;            // incarnation: bumps when the chunk is returned whole
  uint8_t flags;          // kChunkDirty | kChunkThp | kChunkGrew | kChunkTrimmed
  uint16_t retired;       // slab ids retired (gen_base reached kRetireBase): never attached
};
// kChunkGrew: a THP chunk gave out a slab since the last full reclaim pass.
// kChunkTrimmed: a THP chunk's unused slabs were returned (its huge page
// split) in this incarnation; see SlabAllocator::Impl::trim_thp_tails().
inline constexpr uint8_t kChunkDirty = 1, kChunkThp = 2, kChunkGrew = 4, kChunkTrimmed = 8;

// ---- Sharded hot-path counters (declared once) ---------------------------------
// Per class; each thread with a shard index < kShards owns one shard
// exclusively and updates it with a relaxed load + store (no RMW, no shared
// cache line); other threads use the overflow shard with fetch_add.
// live_objects = allocs - frees and live_bytes = live_objects x object size
// are derived, and CAS attempts = allocs + retries + rollbacks, so the fast
// path bumps three counters per operation.
#define ZNSLAB_SLAB_CLASS_COUNTERS(X)                                                  \
  X(allocs) X(frees) X(requested_bytes) X(empty_slabs) X(cas_retries) X(cas_rollbacks) \
  X(slow_path_cache_miss) X(slow_path_partial_null) X(slow_path_partial_full)        \
  X(slabs_recycled) X(slabs_fresh) X(cached)
#define ZNSLAB_SLAB_MISC_COUNTERS(X) \
  X(stale_handle_frees) X(double_frees) X(invalid_handle_frees) X(stale_derefs) \
  X(slow_path_epoch_closed)

struct ClassCounters {
#define X(n) std::atomic<int64_t> n{0};
  ZNSLAB_SLAB_CLASS_COUNTERS(X)
#undef X
};
struct alignas(64) Shard {
  ClassCounters cls[kNumClasses];
  std::atomic<int64_t> epoch_live[kEpochCount]{};
#define X(n) std::atomic<int64_t> n{0};
  ZNSLAB_SLAB_MISC_COUNTERS(X)
#undef X
};
inline constexpr uint32_t kShards = 64;  // exclusive shards; index kShards = overflow

// The calling thread's shard index (process-wide; reused after thread exit).
uint32_t thread_shard_index() noexcept;
// The process-wide locks behind thread_shard_index() and the thread-cache
// lists (tcache.cpp), for SlabAllocator::fork_prepare()/fork_parent()/
// fork_child() only.
void shard_index_lock() noexcept;
void shard_index_unlock() noexcept;
void tcache_list_lock() noexcept;
void tcache_list_unlock() noexcept;
// Per-thread xorshift state for randomized bitmap scanning.
uint32_t thread_random() noexcept;

// Adds v to a counter of the calling thread's shard.
__attribute__((always_inline)) inline void bump(std::atomic<int64_t>& c, int64_t v,
                                                bool exclusive) noexcept {
  if (exclusive)
    c.store(c.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
  else
    c.fetch_add(v, std::memory_order_relaxed);
}

// A (class, epoch) bin: the current slab and the partial stack.
struct alignas(64) Bin {
  std::atomic<uint32_t> current{kNone};
  std::atomic<uint32_t> stack{kNone};      // MPSC: pushes lock-free, pops under mu
  std::atomic<uint32_t> empty_hint{0};     // empty slabs sitting in the stack
  std::atomic<uint32_t> stack_len{0};      // slabs on the stack (approximate while pushing)
  std::mutex mu;                           // slow path: refill, drain
};

// 128 bytes (alignas): the fast paths index epochs[e] with a shift.
struct alignas(128) EpochSlot {
  std::atomic<uint8_t> state{uint8_t(EpochState::kActive)};
  std::atomic<uint64_t> era{0};
  std::atomic<uint64_t> open_since_ns{0};
  std::atomic<int64_t> domain_refcount{0};
  std::atomic<uint64_t> rss_before_close{0}, rss_after_close{0};
  std::atomic<uint64_t> committed_slabs{0};  // backed slabs in this epoch's chunks
  std::atomic<uint64_t> access_ms{0};        // spill: coarse ms of the last deref/refill
  char label[32] = {};                       // guarded by Impl::epoch_mu
};

// Per-class adaptive scan controller (seed 002 "Adaptive Bitmap Scanning").
struct alignas(64) ScanCtl {
  std::atomic<uint8_t> mode{0};          // ScanMode
  std::atomic<bool> busy{false};         // single-writer controller
  std::atomic<uint64_t> checks{0}, switches{0};
  int64_t last_attempts = 0, last_retries = 0;  // guarded by busy
  uint32_t streak = 0;                          // consecutive votes to switch
};
inline constexpr int64_t kScanWindow = 4096;  // attempts per shard between checks

struct ReclaimResult {
  uint64_t bytes = 0, ranges = 0;
};

// ---- Thread cache (tcache.cpp; Options::thread_cache) ---------------------------
// Per thread and allocator, one magazine per (epoch, class): a LIFO stack of
// free slots that this thread holds CLAIMED (their bits are clear in the slab
// word, so no other thread can take them and their slab can never be
// detached) but whose sequence is even (free): a stale or double-freed
// handle to a cached slot still fails the sequence check, and deref refuses
// it. The owner allocates from its magazine with plain loads/stores (no
// atomic RMW) and frees into it after the sequence CAS (the ownership
// point, unchanged); a refill claims up to kMagCap slots of the bin's current
// slab with one CAS. Magazines carry the era of their epoch: a magazine of a
// CLOSING epoch or an older era is flushed (bits released) instead of used.
// Epoch close/advance/reopen bump Impl::tc_gen; every thread compares it on
// its next operation and flushes stale magazines; epoch_close flushes the
// calling thread's magazines of that epoch at once, thread exit flushes all.
// 30: a Mag is then exactly 256 bytes and the fast paths index mag[e][c]
// with a shift (was 32: 272-byte magazines, two multiplies per access).
inline constexpr uint32_t kMagCap = 30;
// Entry: [0,22) slab id, [22,30) slot, [30,54) the slot's current (even)
// generation counter.
inline constexpr uint64_t mag_entry(uint32_t s, uint32_t slot, uint32_t gen) {
  return uint64_t(s) | (uint64_t(slot) << 22) | (uint64_t(gen & kGenMask) << 30);
}
inline constexpr uint32_t mag_slab(uint64_t e) { return uint32_t(e & 0x3FFFFF); }
inline constexpr uint32_t mag_slot(uint64_t e) { return uint32_t(e >> 22) & 0xFF; }
inline constexpr uint32_t mag_gen(uint64_t e) { return uint32_t(e >> 30) & kGenMask; }
struct Mag {
  uint64_t era = 0;  // era of the epoch the cached slots were taken in
  uint32_t n = 0;
  uint64_t ent[kMagCap];
};
static_assert(sizeof(Mag) == 256);
static_assert(sizeof(EpochSlot) == 128);
struct ThreadCache {
  SlabAllocator::Impl* im = nullptr;  // nullptr once the allocator is gone (g_tc_mu)
  uint64_t im_id = 0;
  uint64_t seen_gen = 0;              // Impl::tc_gen last revalidated against
  // The owner's counter shard when it has an exclusive one (index <
  // kShards), else nullptr: the fast paths (slab.cpp) need it exclusive.
  Shard* sh = nullptr;
  ThreadCache* thr_next = nullptr;    // the thread's list (owner only / exit)
  ThreadCache* im_next = nullptr;     // the allocator's list (g_tc_mu)
  ThreadCache* im_prev = nullptr;
  // Odd while the owner is inside an operation that may touch its
  // magazines (OpGuard). epoch_close/advance steal the magazines of the
  // closing epoch from every thread: state CLOSING, then membarrier() (an
  // asymmetric full barrier: the owner pays only two plain stores per
  // operation), then wait for any odd op_seq to change, then flush. An
  // operation that begins after the barrier sees CLOSING and never touches
  // that epoch's magazines.
  std::atomic<uint64_t> op_seq{0};
  // Odd while the owner is inside a free/deref/pin that may touch SlabMeta
  // of a spilled slab (MetaGuard; spill mode with compaction only). The
  // compaction grace period (compact.cpp) waits for odd values to change.
  // Separate from op_seq: an allocation may block on the spill pass that
  // runs the compaction, a MetaGuard section never does.
  std::atomic<uint64_t> meta_seq{0};
  Mag mag[kEpochCount][kNumClasses];
};
// Brackets an owner-side magazine access (nesting-safe).
struct OpGuard {
  ThreadCache* tc;
  bool outer = false;
  explicit OpGuard(ThreadCache* t) noexcept : tc(t) {
    if (!tc) return;
    const uint64_t v = tc->op_seq.load(std::memory_order_relaxed);
    if (v & 1) return;  // nested
    outer = true;
    tc->op_seq.store(v + 1, std::memory_order_relaxed);
    // Compiler barrier: the later epoch-state load stays after this store;
    // the hardware order comes from the closer's membarrier().
    std::atomic_signal_fence(std::memory_order_seq_cst);
  }
  ~OpGuard() {
    if (outer) tc->op_seq.store(tc->op_seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  OpGuard(const OpGuard&) = delete;
  OpGuard& operator=(const OpGuard&) = delete;
};
// True once membarrier(PRIVATE_EXPEDITED) is registered for the process.
bool tc_steal_enabled() noexcept;
// The calling thread's cache for the allocator with id t_tc_id (0: none).
extern thread_local constinit ThreadCache* t_tc;  // constinit: no TLS init wrapper on the fast path
extern thread_local constinit uint64_t t_tc_id;

}  // namespace znslab::slab::detail

namespace znslab::slab {

struct SlabAllocator::Impl {
  Options opts;
  EventSink* sink = nullptr;

  pages::Reservation arena;  // slab memory
  pages::Reservation meta;   // SlabMeta[n_slabs] | ChunkMeta[n_chunks]
  detail::SlabMeta* slabs = nullptr;
  // SlabMeta tags (class, epoch, attached, incarnation, attach counter; see
  // make_tag), one 4-byte word per slab id, kept apart from SlabMeta so the
  // tags of all live slabs share a few cache lines. Never decommitted.
  std::atomic<uint32_t>* tags = nullptr;
  detail::ChunkMeta* chunks = nullptr;
  uint32_t n_slabs = 0, n_chunks = 0, spc = 0;  // spc: slabs per chunk
  uint64_t* unused_bits = nullptr;  // per slab: 1 = not attached (in a used chunk)
  uint64_t* backed_bits = nullptr;  // per slab: 1 = committed
  // Handle generations (see "Handle generation"): per slab id, the base its
  // slot entries start from in the current chunk incarnation (cumulative,
  // never decommitted); per slab, 1 = slot entries initialised in this
  // incarnation; 1 = retired. All guarded by arena_mu.
  uint32_t* gen_base = nullptr;
  uint64_t* init_bits = nullptr;
  uint64_t* retired_bits = nullptr;
  std::atomic<uint64_t> retired_slabs{0};
  // Options::populate_slabs: cleared once the kernel refuses MADV_POPULATE_WRITE.
  std::atomic<bool> populate_ok{true};
  std::atomic<uint64_t> populated_slabs{0};
  // The handle mask key (gen_mask): Options::handle_key, or random.
  uint64_t hkey_a = 1, hkey_b = 0;
  uint32_t hmask(uint32_t s, uint32_t slot, uint32_t g) const noexcept {
    return detail::gen_mask(hkey_a, hkey_b, s, slot, g);
  }

  detail::Bin bins[kEpochCount][kNumClasses];
  detail::EpochSlot epochs[kEpochCount];
  detail::ScanCtl scan[kNumClasses];
  detail::Shard* shards = nullptr;  // kShards + 1 (heap, cold)

  std::atomic<uint32_t> current_epoch{0};
  std::atomic<uint64_t> era_counter{0};
  std::atomic<uint32_t> det_head{detail::kNone};  // detached slabs (MPSC)
  std::atomic<uint32_t> reclaim_pressure{0};      // detached + hinted since last reclaim
  // Slab ids ever handed out (bound): read by every free/deref, written
  // once per new chunk; on its own cache line, away from the atomics frees
  // write (det_head, reclaim_pressure).
  alignas(64) std::atomic<uint32_t> hwm_slabs{0};
  char hwm_pad[60];

  // Spill (spill.cpp): null unless Options::dram_budget_bytes > 0 and a
  // spill target is set. chunks_in_use / meta_pages: the metadata part of
  // the DRAM budget (guarded by arena_mu for writes).
  detail::Spill* sp = nullptr;
  std::atomic<uint64_t> chunks_in_use{0}, meta_pages{0};

  // Cold counters (atomics updated off the fast path).
  std::atomic<uint64_t> committed_slabs{0}, pending_slabs{0};
  std::atomic<int64_t> attached[kNumClasses]{};
  std::atomic<int64_t> cold_empty[kNumClasses]{};
  std::atomic<uint64_t> madvise_calls{0}, madvise_bytes{0}, madvise_failures{0};
  std::atomic<uint64_t> epoch_advances{0}, epoch_closes{0}, domain_violations{0};
  std::atomic<uint64_t> decommit_ranges{0}, chunks_returned{0};

  // Solo free mode (Options::solo_free; slab.cpp, free()). `solo` is
  // kSoloNone until the first free, then the ThreadCache* of the thread that
  // made it (the solo thread: only it frees, with plain entry stores), then
  // kSoloEnding while another thread's first free ends the mode, then
  // kSoloMulti for good (every free CASes). Nothing else writes the entry of
  // an allocated slot (allocation writes entries of free slots it claimed,
  // the arena those of detached slabs), so a single freer needs no RMW.
  // Ending: solo = kSoloEnding; membarrier(); wait while solo_seq is odd
  // (the solo thread is inside a solo free that began before the barrier);
  // solo = kSoloMulti. The solo thread marks solo_seq odd, then re-reads
  // solo: the barrier orders it either before (the ender waits) or after
  // (it sees kSoloEnding and takes the CAS path). Frees that see
  // kSoloEnding wait for kSoloMulti.
  static constexpr uintptr_t kSoloNone = 0, kSoloEnding = 1, kSoloMulti = 2;
  bool solo_on = false;  // set by create(): solo_free && thread_cache && membarrier && no spill
  alignas(64) std::atomic<uintptr_t> solo{kSoloNone};
  std::atomic<uint64_t> solo_seq{0};  // written by the solo thread only
  char solo_pad[48];
  // The calling thread (cache `me`, 0 = none) is not the solo thread:
  // makes it the solo thread if nobody freed yet (returns true), else ends
  // solo mode (or waits for its end) and returns false. No lock held.
  bool solo_slow(uintptr_t me) noexcept;

  // Thread caches (tcache.cpp).
  uint64_t id = 0;                       // process-unique, never reused (> 0)
  std::atomic<uint64_t> tc_gen{0};       // bumped when an epoch closes/advances/reopens
  detail::ThreadCache* tc_head = nullptr;  // guarded by the global thread-cache mutex

  // Lock order: epoch_mu -> reclaim_mu -> bin.mu -> arena_mu.
  std::mutex epoch_mu, reclaim_mu, arena_mu;
  uint32_t fresh_chunk = 0;                // guarded by arena_mu
  uint32_t pool_p1 = 0;                    // free chunk pool (LIFO)
  uint32_t epoch_chunks_p1[kEpochCount] = {};
  uint32_t dirty_p1 = 0;
  uint32_t fresh_streak[kEpochCount] = {};  // Options::populate_slabs trigger

  // ---- arena.cpp ----
  Status init_arena();
  uint8_t* slab_addr(uint32_t id) const { return arena.base() + size_t(id) * kSlabBytes; }
  // Returns an unattached slab id for `epoch` (arena_mu taken inside), and
  // whether it was already committed (warm), and its chunk incarnation. Its
  // slot entries hold even (free) generation counters.
  Result<uint32_t> acquire_slab(uint32_t epoch, bool* warm, uint32_t* inc) noexcept;
  void push_detached(uint32_t id) noexcept;
  // Absorbs detached slabs and decommits: whole empty chunks always; runs of
  // empty slabs all (batch = false) or, for a batch pass (none with THP),
  // runs >= 64 KiB, then longest first down to a warm reserve of
  // reclaim_batch_slabs + 1/2 of committed slabs. Caller holds reclaim_mu.
  detail::ReclaimResult decommit_pending(bool batch) noexcept;

  // ---- tcache.cpp ----
  // The calling thread's cache for this allocator; nullptr when disabled,
  // during thread exit, or if it cannot be allocated (then: no caching).
  detail::ThreadCache* tcache() noexcept {
    if (detail::t_tc_id == id) return detail::t_tc;
    return opts.thread_cache ? tcache_slow() : nullptr;
  }
  detail::ThreadCache* tcache_slow() noexcept;
  // Releases the bottom k entries of magazine (e, c) to their slabs.
  void tc_flush(detail::ThreadCache& tc, uint32_t e, uint32_t c, uint32_t k) noexcept;
  // Flushes magazines of CLOSING epochs or older eras; records tc_gen.
  void tc_revalidate(detail::ThreadCache& tc) noexcept;
  // Flushes the calling thread's magazines of epoch e (all epochs if e >= 16).
  void tc_flush_self(uint32_t e = kEpochCount) noexcept;
  // Allocator teardown: thread caches forget it.
  void tc_detach_all() noexcept;
  // In a fork child, with the thread-cache list lock held: the caches of
  // threads that do not exist in the child leave the list. One whose owner
  // was between operations at the fork (even op_seq) is flushed first; one
  // whose owner was inside an operation (odd op_seq; its magazine may be
  // half-updated) is abandoned: its slots stay allocated in the child.
  void tc_fork_child() noexcept;
  // Epoch `e` was just marked CLOSING (caller holds epoch_mu): flushes every
  // thread's magazines of `e` (see ThreadCache::op_seq). No-op without
  // membarrier (then threads flush on their next operation or at exit).
  void tc_steal(uint32_t e) noexcept;
  // Runs a batch reclaim pass if pressure reached `threshold` and nobody else runs one.
  void maybe_batch(uint32_t threshold) noexcept;
  // Options::use_thp, full reclaim passes (arena_mu held): returns the
  // unused slabs of THP chunks still in use that gave out no slab since the
  // previous full pass (a huge page backs all 2 MiB on first touch, so a
  // partly used chunk holds its whole tail resident), once per chunk
  // incarnation. Adds the bytes and madvise ranges to r.
  void trim_thp_tails(detail::ReclaimResult& r) noexcept;

  // ---- compact.cpp (spill mode: compact records of spilled slabs) ----
  // Set by spill_init when compaction can run: a spill device, thread caches
  // on, membarrier available, 4 KiB pages, chunks of >= 16 slabs.
  bool compact_on = false;
  // free/deref/pin in flight by threads without a cache (MetaGuard).
  std::atomic<uint64_t> unguarded_ops{0};
  // Groups (16 slab ids, one SlabMeta page) currently held compact.
  std::atomic<uint32_t> compact_groups{0};
  // Spill pass, run_mu held and no other lock: compacts the SlabMeta pages
  // whose 16 ids are each unattached or spilled and floating.
  void compact_pass(uint64_t target) noexcept;
  // An operation saw kTagCompact on slab `id` (no lock held): its page is
  // expanded back (or a pending compaction of it cancelled). Then retry.
  void compact_touch(uint32_t id) noexcept;
  // arena_mu held: expands the group of slab id `id` if it is compact
  // (acquire_slab, before (re)initialising one of its ids).
  void compact_expand_for_attach(uint32_t id) noexcept;
  // arena_mu held: expands every compact group (verify).
  void compact_expand_all() noexcept;
  // Waits until every free/deref/pin that began before the call has
  // finished (membarrier + each thread cache's meta_seq + unguarded_ops);
  // false if it could not (no membarrier, or the thread-cache list is busy).
  bool tc_meta_grace() noexcept;  // tcache.cpp
  // arena_mu held, slab not attached: its gen_base once its entries are
  // dropped (arena.cpp; see "Handle generation").
  uint32_t folded_base(uint32_t id) const noexcept;

  // ---- spill.cpp ----
  Status spill_init(std::unique_ptr<zns::ZonedDevice> dev) noexcept;
  // DRAM the budget covers: committed slabs + touched SlabMeta pages + spill tables.
  uint64_t dram_used() const noexcept;
  uint64_t dram_meta() const noexcept;    // of which resident SlabMeta pages
  uint64_t dram_tables() const noexcept;  // of which spill tables and buffers
  // Allocation slow path (no lock held): spills when over the budget.
  void spill_check() noexcept;
  // Reads slab `id` back if it is spilled (waits if it is moving). With
  // `empty_ok`, an all-free slab's copy is dropped without a read. Caller
  // may hold its bin mutex (then `may_spill` must be false).
  Status fault_in(uint32_t id, bool may_spill, bool empty_ok) noexcept;
  // arena_mu held: slab `id` is being absorbed (unattached); forget its copy.
  void spill_forget(uint32_t id) noexcept;
  // Resets zones whose slabs all died (cold: reclaim, epoch_close, passes).
  void spill_housekeeping() noexcept;
  void note_access(uint32_t id, uint32_t e) noexcept;

  // ---- slab.cpp ----
  bool reclaim_now(uint32_t epoch) const noexcept;
  void push_partial(detail::Bin& b, uint32_t id) noexcept;
  void note_pressure() noexcept;

  // ---- epoch.cpp ----
  // Revokes the bin's current slab (if revoke) and drains its partial stack, detaching
  // empty slabs when `detach_empty`. Caller holds reclaim_mu.
  // keep_empty: empty slabs left on the stack (batch passes).
  void drain_bin(uint32_t e, uint32_t c, bool detach_empty, bool revoke,
                 uint32_t keep_empty = 0) noexcept;
  // Full reclaim: drain hinted bins per policy, then decommit. Caller holds
  // reclaim_mu.
  detail::ReclaimResult reclaim_locked(bool batch) noexcept;
  void scan_check(uint32_t c) noexcept;

  detail::Shard& shard(uint32_t idx) noexcept { return shards[idx < detail::kShards ? idx : detail::kShards]; }
};

}  // namespace znslab::slab

namespace znslab::slab::detail {
// Sets the free `bits` (one slab's slots) in slab `id` of class c, epoch e
// and moves the slab to the state its policy asks for (partial stack,
// detach). Returns true if the slab became empty and stays attached (the
// caller counts it in empty_slabs). slab.cpp.
bool release_bit(SlabAllocator::Impl& im, uint32_t id, uint64_t bits, uint32_t c, uint32_t e) noexcept;
// deref of a handle whose slab is spilled or moving: faults it back (spill.cpp).
Result<void*> deref_spilled(SlabAllocator::Impl& im, const SlabAllocator& a, Handle h, uint32_t id) noexcept;
}  // namespace znslab::slab::detail

namespace znslab::slab::detail {
// Brackets a free/deref/pin that reads SlabMeta of a possibly spilled slab
// when compaction is on (nesting-safe; no cost otherwise): the thread
// cache's meta_seq is odd inside, or, for a thread without a cache,
// Impl::unguarded_ops counts it. The compactor sets kTagCompact, runs
// membarrier() and waits for these, so an operation either sees the bit
// (and expands the page first) or finishes before the page goes.
struct MetaGuard {
  ThreadCache* tc = nullptr;
  std::atomic<uint64_t>* cnt = nullptr;
  explicit MetaGuard(SlabAllocator::Impl& im) noexcept {
    if (!im.compact_on) return;
    ThreadCache* t = im.tcache();
    if (t) {
      const uint64_t v = t->meta_seq.load(std::memory_order_relaxed);
      if (v & 1) return;  // nested
      tc = t;
      tc->meta_seq.store(v + 1, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);  // hardware order: membarrier
    } else {
      cnt = &im.unguarded_ops;
      cnt->fetch_add(1, std::memory_order_seq_cst);
    }
  }
  ~MetaGuard() {
    if (tc) tc->meta_seq.store(tc->meta_seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    else if (cnt) cnt->fetch_sub(1, std::memory_order_release);
  }
  MetaGuard(const MetaGuard&) = delete;
  MetaGuard& operator=(const MetaGuard&) = delete;
};
}  // namespace znslab::slab::detail
