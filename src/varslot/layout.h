// src/varslot: the shared segment's layout (seed 000, "Extent Table Design",
// rules shm.varslot.extents and shm.varslot.extent-layout). Everything here
// lives in MAP_SHARED memory seen by several processes at different
// addresses: it holds offsets relative to the segment start, never pointers,
// and only address-free lock-free atomics (std::atomic<uint32_t/uint64_t>).
//
//   offset 0              SegmentHeader (kHeaderBytes, page-rounded)
//   offset kHeaderBytes   extents, one after another, in the order the host
//                         created them (any class); each is page-aligned:
//     ExtentHeader (64 B) | SlotMeta[slot_count] (16 B each) | pad to page |
//     slot data: slot_count x slot_size bytes
//
// In the extent_files growth mode each extent is instead its own file
// (<segment path>.c<class>.e<extent>) with the same extent layout at file
// offset 0; extent_offsets[] then hold logical offsets used only for
// accounting (current_size = header + all extents in both modes).
//
// Invariants (checked by Pool::verify()):
//  - extent_count <= max_extents; for e < extent_count, extent_offsets[e]
//    points at an extent whose header magic is kExtentMagic, whose class and
//    index are (c, e), and which ends at or before current_size;
//  - the host writes, in this order: file size, extent contents, offset,
//    current_size, map_generation, extent_count (release) -- so a reader
//    that acquires extent_count never sees an uninitialised extent and a
//    host killed at any step leaves extent_count pointing at initialised
//    extents only (rule "Growth atomically increments extent_count after
//    initializing new extent");
//  - a slot at index >= bump was never used (state word 0); below bump a
//    slot is either FREE (linked in its extent's Treiber stack, or lost by
//    a peer that died mid-operation: PeerEntry::pending names it) or ALLOC
//    (owner = the peer that holds it); its generation starts at 1 and
//    advances on every free.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace znslab::varslot {

inline constexpr uint64_t kSegmentMagic = 0x314c53524156535aull;  // "ZSVARSL1"
inline constexpr uint32_t kLayoutVersion = 1;
inline constexpr uint32_t kExtentMagic = 0x45585431u;  // "EXT1"
inline constexpr uint32_t kMaxClasses = 8;
inline constexpr uint32_t kMaxExtents = 16;             // seed: MAX_EXTENTS_PER_CLASS
inline constexpr uint32_t kMaxPeers = 64;               // peer 0 is the host
inline constexpr uint32_t kMaxSlotsPerExtent = 1u << 24;  // handle slot field
inline constexpr size_t kHeaderBytes = 16384;

// SegmentHeader::flags.
inline constexpr uint32_t kFlagExtentsEnabled = 1u << 0;  // seed segment_flags::EXTENTS_ENABLED

// SegmentHeader::mode.
enum class GrowthMode : uint32_t {
  kRemap = 0,        // one file; ftruncate + mremap (in place, else a new view)
  kExtentFiles = 1,  // one file per extent, each mapped on its own
  kFixed = 2,        // all extents created at open; never grows
};

// Per size class (seed ExtentSizeClassHeader).
struct alignas(64) ClassHeader {
  uint32_t slot_size;         // bytes per slot
  uint32_t slots_per_extent;  // slots in each extent of this class
  std::atomic<uint32_t> extent_count;  // published extents (release by the host)
  std::atomic<uint32_t> refused;       // 1: the host refused growth (limit/cap)
  std::atomic<uint32_t> grow_requests; // guests' requests since the last growth
  uint32_t pad_[3];
  std::atomic<uint64_t> extent_offsets[kMaxExtents];  // valid for [0, extent_count)
};

// Process registry entry. `pending` records the free-list operation a peer
// is in the middle of (PendingOp below) so that the host can finish or undo
// it when the peer dies.
struct alignas(64) PeerEntry {
  std::atomic<uint32_t> state;  // kPeerFree, kPeerActive, kPeerDead
  std::atomic<int32_t> pid;
  std::atomic<uint64_t> pending;
  uint8_t pad_[48];
};
inline constexpr uint32_t kPeerFree = 0, kPeerActive = 1, kPeerDead = 2;

// PeerEntry::pending: op (bits 0-7), class (8-15), extent (16-23), slot (32-63).
inline constexpr uint64_t kOpNone = 0, kOpPop = 1, kOpPush = 2;
inline uint64_t pack_pending(uint64_t op, uint32_t c, uint32_t e, uint32_t slot) noexcept {
  return op | (uint64_t(c) << 8) | (uint64_t(e) << 16) | (uint64_t(slot) << 32);
}

// Counters every process adds to (relaxed; error and slow paths only).
struct alignas(64) SharedCounters {
  std::atomic<uint64_t> growth_events;
  std::atomic<uint64_t> growth_refused;
  std::atomic<uint64_t> fallback_allocs;
  std::atomic<uint64_t> double_frees;
  std::atomic<uint64_t> stale_handles;
  std::atomic<uint64_t> invalid_handles;
  std::atomic<uint64_t> recovered_slots;
  std::atomic<uint64_t> dead_peers;
  std::atomic<uint64_t> host_recoveries;
  std::atomic<uint64_t> grow_ns_total;
};

struct SegmentHeader {
  uint64_t magic;            // kSegmentMagic, written last at creation
  uint32_t version;          // kLayoutVersion
  uint32_t flags;            // kFlag*
  uint32_t mode;             // GrowthMode
  uint32_t class_count;      // <= kMaxClasses
  uint32_t max_extents;      // <= kMaxExtents, per class
  uint32_t generation_bits;  // 1..32: handle generations wrap at 2^bits
  uint64_t extent_bytes;     // slot bytes per extent (data part)
  uint64_t max_bytes;        // size cap of the segment (current_size), bytes
  alignas(64) std::atomic<uint64_t> current_size;  // bytes; header + extents
  std::atomic<uint32_t> map_generation;  // futex word: +1 per growth
  std::atomic<uint32_t> doorbell;        // futex word: +1 per growth request
  std::atomic<int32_t> host_pid;
  std::atomic<uint32_t> growing;         // class+1 while the host grows, else 0
  std::atomic<uint32_t> waiters;         // guests sleeping on map_generation (wake only then)
  alignas(64) SharedCounters counters;
  ClassHeader classes[kMaxClasses];
  PeerEntry peers[kMaxPeers];
};
static_assert(sizeof(SegmentHeader) <= kHeaderBytes, "header must fit its region");

// Free-list head: bits 0-31 slot index + 1 (0 = empty, kLockedIdx = locked
// by the host's recovery walk), bits 32-63 a tag incremented by every
// successful exchange (so a stale head never matches: no ABA).
inline constexpr uint32_t kLockedIdx = 0xffffffffu;

struct alignas(64) ExtentHeader {
  std::atomic<uint32_t> magic;  // kExtentMagic once initialised
  uint32_t class_idx;
  uint32_t extent_idx;
  uint32_t slot_count;
  uint32_t slot_size;
  uint32_t pad0_;
  uint64_t data_offset;         // from the extent start, bytes (page-aligned)
  uint64_t total_bytes;         // whole extent, bytes
  uint64_t saved_head;          // head while locked by a recovery walk
  alignas(64) std::atomic<uint64_t> free_head;  // own cache line
  // Slots [bump, slot_count) were never handed out: their metadata is still
  // the zero page of a freshly grown file, so growth touches no metadata.
  std::atomic<uint32_t> bump;
  uint8_t pad1_[52];
};

// Slot state word: bit 0 ALLOC, bits 8-23 owner peer, bits 32-63 generation.
struct SlotMeta {
  std::atomic<uint64_t> word;
  std::atomic<uint32_t> next;  // free-list link: slot index + 1, 0 = end
  uint32_t pad_;
};
static_assert(sizeof(SlotMeta) == 16);
inline constexpr uint64_t kSlotAlloc = 1;
inline uint64_t slot_word(uint32_t gen, uint32_t owner, bool alloc) noexcept {
  return (uint64_t(gen) << 32) | (uint64_t(owner & 0xffffu) << 8) | (alloc ? kSlotAlloc : 0);
}
inline uint32_t word_gen(uint64_t w) noexcept { return uint32_t(w >> 32); }
inline uint32_t word_owner(uint64_t w) noexcept { return uint32_t(w >> 8) & 0xffffu; }
inline bool word_alloc(uint64_t w) noexcept { return (w & kSlotAlloc) != 0; }

}  // namespace znslab::varslot
