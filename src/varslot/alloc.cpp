// src/varslot/alloc.cpp: the allocation fast path (seed 000, "Allocation
// Strategy"): per extent a Treiber stack whose head packs (tag, index+1), so
// a head read before another process popped and pushed the same slot never
// matches again (no ABA); per slot a state word (generation, owner, ALLOC)
// changed by one CAS on free, which is what refuses double and stale frees.
//
// An extent's slots are handed out first from the list, then from a bump
// index over never-used slots, so growing needs no per-slot initialisation.
//
// Crash bookkeeping: before each exchange a peer stores the slot it is
// about to pop or push in its PeerEntry::pending, and clears it when the
// slot's state word and the list agree again. A peer killed in between
// leaves a slot that is FREE but in no list; the host finds it from
// `pending` (host.cpp, repair_lost_slot).
#include <sched.h>

#include "src/varslot/internal.h"

namespace znslab::varslot {

bool Pool::pop(uint32_t c, uint32_t e, uint8_t* base, Handle* out) noexcept {
  ExtentHeader* eh = ext_header(base);
  SlotMeta* meta = meta_of(base);
  PeerEntry& me = hdr_->peers[peer_];
  uint64_t head = eh->free_head.load(std::memory_order_acquire);
  for (;;) {
    const uint32_t idx1 = uint32_t(head);
    if (idx1 == 0 || idx1 == kLockedIdx || idx1 > cslots_[c]) break;
    const uint32_t s = idx1 - 1;
    me.pending.store(pack_pending(kOpPop, c, e, s), std::memory_order_relaxed);
    const uint32_t next = meta[s].next.load(std::memory_order_relaxed);
    const uint64_t nh = (((head >> 32) + 1) << 32) | next;
    if (eh->free_head.compare_exchange_weak(head, nh, std::memory_order_acq_rel,
                                            std::memory_order_acquire)) {
      // The slot is ours alone now: a store (not a CAS) marks it.
      const uint32_t gen = word_gen(meta[s].word.load(std::memory_order_relaxed));
      meta[s].word.store(slot_word(gen, peer_, true), std::memory_order_release);
      me.pending.store(0, std::memory_order_release);
      *out = Handle::make(c, e, s, gen);
      return true;
    }
  }
  // The list is empty: take a never-used slot (generation 1).
  uint32_t b = eh->bump.load(std::memory_order_relaxed);
  while (b < cslots_[c]) {
    me.pending.store(pack_pending(kOpPop, c, e, b), std::memory_order_relaxed);
    if (eh->bump.compare_exchange_weak(b, b + 1, std::memory_order_acq_rel, std::memory_order_relaxed)) {
      meta[b].word.store(slot_word(1, peer_, true), std::memory_order_release);
      me.pending.store(0, std::memory_order_release);
      *out = Handle::make(c, e, b, 1);
      return true;
    }
  }
  me.pending.store(0, std::memory_order_relaxed);
  return false;
}

void Pool::push(uint32_t c, uint32_t e, uint8_t* base, uint32_t slot) noexcept {
  (void)c;
  (void)e;
  ExtentHeader* eh = ext_header(base);
  SlotMeta* meta = meta_of(base);
  uint64_t head = eh->free_head.load(std::memory_order_relaxed);
  for (;;) {
    const uint32_t idx1 = uint32_t(head);
    if (idx1 == kLockedIdx) {  // the host's recovery walk: short, rare
      sched_yield();
      head = eh->free_head.load(std::memory_order_relaxed);
      continue;
    }
    meta[slot].next.store(idx1, std::memory_order_relaxed);
    const uint64_t nh = (((head >> 32) + 1) << 32) | (uint64_t(slot) + 1);
    if (eh->free_head.compare_exchange_weak(head, nh, std::memory_order_release,
                                            std::memory_order_relaxed))
      return;
  }
}

Result<Handle> Pool::alloc_in_class(uint32_t c) noexcept {
  ClassHeader& ch = hdr_->classes[c];
  for (;;) {
    const uint32_t n = ch.extent_count.load(std::memory_order_acquire);
    Handle h;
    for (uint32_t e = 0; e < n; ++e) {
      uint8_t* base = extent_base(c, e);
      if (base && pop(c, e, base, &h)) return h;
    }
    // Every published extent is full.
    if (mode() == GrowthMode::kFixed || ch.refused.load(std::memory_order_acquire))
      return Status(Code::kOutOfMemory, "varslot: class full");
    if (is_host() && !service_on_.load(std::memory_order_acquire)) {
      std::lock_guard<std::mutex> g(grow_mu_);
      if (ch.extent_count.load(std::memory_order_acquire) == n) {
        if (!grow_locked(c)) return Status(Code::kOutOfMemory, "varslot: growth refused");
      }
    } else if (!request_growth(c)) {
      return Status(Code::kOutOfMemory, "varslot: growth refused or host silent");
    }
  }
}

Result<Handle> Pool::alloc(uint32_t bytes) noexcept {
  if (bytes == 0) return Status(Code::kInvalidArgument, "varslot: alloc of 0 bytes");
  uint32_t first = 0;
  while (first < nclasses_ && csize_[first] < bytes) ++first;
  if (first == nclasses_) return Status(Code::kInvalidArgument, "varslot: larger than the largest class");
  for (uint32_t c = first; c < nclasses_; ++c) {
    auto r = alloc_in_class(c);
    if (r) {
      if (c != first) hdr_->counters.fallback_allocs.fetch_add(1, std::memory_order_relaxed);
      return r;
    }
  }
  return Status(Code::kOutOfMemory, "varslot: no slot in any class that fits");
}

namespace {
// Validates a handle's coordinates against the published extents.
inline bool coords_ok(const SegmentHeader* h, uint32_t nclasses, const uint32_t* cslots, Handle x) noexcept {
  const uint32_t c = x.class_idx();
  return c < nclasses && x.extent() < h->classes[c].extent_count.load(std::memory_order_acquire) &&
         x.slot() < cslots[c] && x.generation() != 0;
}
}  // namespace

Status Pool::free(Handle h) noexcept {
  uint8_t* base = coords_ok(hdr_, nclasses_, cslots_, h) ? extent_base(h.class_idx(), h.extent()) : nullptr;
  if (!base) {
    hdr_->counters.invalid_handles.fetch_add(1, std::memory_order_relaxed);
    return Status(Code::kInvalidHandle, "varslot free: class, extent or slot out of range");
  }
  const uint32_t c = h.class_idx(), e = h.extent(), s = h.slot(), gen = h.generation();
  SlotMeta& m = meta_of(base)[s];
  PeerEntry& me = hdr_->peers[peer_];
  uint64_t w = m.word.load(std::memory_order_acquire);
  for (;;) {
    if (!word_alloc(w) || word_gen(w) != gen) {
      if (!word_alloc(w) && word_gen(w) == next_gen(gen)) {
        hdr_->counters.double_frees.fetch_add(1, std::memory_order_relaxed);
        return Status(Code::kDoubleFree, "varslot free: slot already free");
      }
      hdr_->counters.stale_handles.fetch_add(1, std::memory_order_relaxed);
      return Status(Code::kStaleHandle, "varslot free: generation mismatch");
    }
    me.pending.store(pack_pending(kOpPush, c, e, s), std::memory_order_relaxed);
    if (m.word.compare_exchange_weak(w, slot_word(next_gen(gen), 0, false), std::memory_order_acq_rel,
                                     std::memory_order_acquire))
      break;
  }
  push(c, e, base, s);
  me.pending.store(0, std::memory_order_release);
  return Status::ok();
}

Status Pool::transfer(Handle h, uint32_t to_peer) noexcept {
  if (to_peer >= kMaxPeers) return Status(Code::kInvalidArgument, "varslot transfer: bad peer id");
  uint8_t* base = coords_ok(hdr_, nclasses_, cslots_, h) ? extent_base(h.class_idx(), h.extent()) : nullptr;
  if (!base) return Status(Code::kInvalidHandle, "varslot transfer: class, extent or slot out of range");
  SlotMeta& m = meta_of(base)[h.slot()];
  uint64_t w = m.word.load(std::memory_order_acquire);
  for (;;) {
    if (!word_alloc(w) || word_gen(w) != h.generation())
      return Status(Code::kStaleHandle, "varslot transfer: slot not allocated with this generation");
    if (m.word.compare_exchange_weak(w, slot_word(h.generation(), to_peer, true), std::memory_order_acq_rel,
                                     std::memory_order_acquire))
      return Status::ok();
  }
}

uint8_t* Pool::ptr(Handle h) noexcept {
  if (!coords_ok(hdr_, nclasses_, cslots_, h)) return nullptr;
  const uint32_t c = h.class_idx();
  uint8_t* base = extent_base(c, h.extent());
  if (!base) return nullptr;
  uint64_t w = meta_of(base)[h.slot()].word.load(std::memory_order_acquire);
  if (!word_alloc(w) || word_gen(w) != h.generation()) return nullptr;
  return base + cdata_[c] + uint64_t(h.slot()) * csize_[c];
}

int Pool::owner(Handle h) const noexcept {
  if (!coords_ok(hdr_, nclasses_, cslots_, h)) return -1;
  uint8_t* base = ext_[h.class_idx()][h.extent()].load(std::memory_order_acquire);
  if (!base) base = const_cast<Pool*>(this)->map_extent_slow(h.class_idx(), h.extent());
  if (!base) return -1;
  uint64_t w = meta_of(base)[h.slot()].word.load(std::memory_order_acquire);
  if (!word_alloc(w) || word_gen(w) != h.generation()) return -1;
  return int(word_owner(w));
}

}  // namespace znslab::varslot
