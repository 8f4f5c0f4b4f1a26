// Compact records of spilled slabs (issue 11, target "RSS held";
// docs/spill.md, "Compact SlabMeta").
//
// With spill, most live slabs of a large workload are spilled and sparse
// (a few mispredicted objects keep a slab alive), yet each keeps 256 B of
// SlabMeta resident, 16 per 4 KiB page. A compaction pass moves the SlabMeta
// of spilled, floating slabs into a compact record (their word, era, access
// tick, the entries of allocated slots, and the free slots' counters as
// 8-bit distances below the largest one, with exact escapes) and returns a
// SlabMeta page once each of its 16 ids is either such a slab or
// unattached. Slot bitmaps and generations stay in DRAM (in the record), so
// a free never needs I/O; every counter is restored exactly.
//
// Protocol (the race with lock-free frees/derefs that read the tag before
// the compaction):
//   1. under arena_mu + Spill::mu: pick groups whose ids are all unattached
//      or spilled and floating (no kCur/kStk/kDet, no pin, no slot claimed
//      but free); set kTagCompact (seq_cst) on their spilled ids;
//   2. no lock but run_mu: grace period (Impl::tc_meta_grace): membarrier()
//      then wait for every thread cache's odd meta_seq to change and for
//      unguarded_ops to drain. free/deref/pin run inside a MetaGuard: an
//      operation that began before step 1 is finished now; one that began
//      after sees kTagCompact;
//   3. under arena_mu + Spill::mu: re-check every id (bits still set, still
//      floating or unattached), build the records, decommit the page.
// An operation that sees kTagCompact calls compact_touch() (Spill::mu): a
// compact group is expanded (page rewritten from the records, bits
// cleared); a group still pending loses the bit of that id, so step 3
// cancels it. Fault-back (fault_in) and attach (acquire_slab) expand first
// too; verify() expands everything.
#include <algorithm>
#include <bit>
#include <cstring>
#include <vector>

#include "src/slab/spill_internal.h"

namespace znslab::slab {

using namespace detail;

namespace {

using Impl = SlabAllocator::Impl;
constexpr uint32_t kGroup = 16;  // slab ids per SlabMeta page
static_assert(kGroup * sizeof(SlabMeta) == kSlabBytes);
// Bytes per compact group besides its record words (hash node, allocation
// headers): an estimate, so the budget does not ignore them.
constexpr uint64_t kRecOverhead = 64;

uint64_t rec_bytes(const std::vector<uint32_t>& v) { return uint64_t(v.capacity()) * 4 + kRecOverhead; }

enum Kind { kBad, kUnattached, kFloating };

// What slab id `id` is for compaction (arena_mu + Spill::mu held). `marked`:
// a floating slab must carry kTagCompact (step 3), else must not (step 1).
Kind classify(const Impl& im, uint32_t id, bool marked) noexcept {
  if (test_bit(im.unused_bits, id) || test_bit(im.retired_bits, id)) return kUnattached;
  const uint32_t t = im.tags[id].load(std::memory_order_seq_cst);
  const uint32_t want = kTagAttached | kTagSpilled | (marked ? kTagCompact : 0);
  if ((t & (kTagAttached | kTagSpillBits)) != want) return kBad;
  const SlabMeta& m = im.slabs[id];
  const uint64_t w = m.word.load(std::memory_order_seq_cst);
  if (w & (kCur | kDet)) return kBad;  // floating or on its bin's partial stack
  if (m.pins.load(std::memory_order_seq_cst) != 0) return kBad;
  const uint32_t c = tag_class(t);
  for (uint32_t k = 0; k < kSlots[c]; ++k)
    if (!((w >> k) & 1) && !(slot_gen(m.slot[k].load(std::memory_order_seq_cst)) & 1)) return kBad;
  return kFloating;
}

// Record of one slab, appended to `out` (uint32 words):
//   [0] index in group | allocated slots << 8 | escapes << 16
//   [1,2] word  [3,4] era  [5] access_tick  [6] G, the counter farthest
//   from gen_base among all 56 entries  [7] next_stk
//   per allocated slot (slot < kSlots[c] with a clear bit), ascending, 16
//   bits: the distance G - counter (8 bits, kEscA = escaped) | slack << 8;
//   two per word
//   per free slot (all 56 entries minus the allocated), ascending, 4 bits:
//   the distance G - counter (kEscF = escaped); eight per word
//   escapes: (slot, entry) pairs, exact.
// Counters of one slab stay close to each other (a slab filled and
// emptied once differs by 1-3 steps), so escapes are rare; every counter
// and slack comes back exactly.
constexpr uint32_t kEscA = 255, kEscF = 15;

uint32_t record_words(uint32_t nalloc, uint32_t nesc) {
  return 8 + (nalloc + 1) / 2 + (kMaxSlots - nalloc + 7) / 8 + 2 * nesc;
}

void encode(const Impl& im, uint32_t id, std::vector<uint32_t>& out) {
  const uint32_t t = im.tags[id].load(std::memory_order_relaxed);
  const uint32_t n = kSlots[tag_class(t)];
  const SlabMeta& m = im.slabs[id];
  const uint64_t w = m.word.load(std::memory_order_relaxed);
  const uint64_t era = m.era.load(std::memory_order_relaxed);
  const uint32_t base = im.gen_base[id] & kGenMask;
  uint32_t ent[kMaxSlots];
  bool alloc[kMaxSlots];
  uint32_t nalloc = 0, G = base, far = 0;
  for (uint32_t k = 0; k < kMaxSlots; ++k) {
    ent[k] = m.slot[k].load(std::memory_order_relaxed);
    alloc[k] = k < n && !((w >> k) & 1);
    nalloc += alloc[k] ? 1 : 0;
    const uint32_t d = (slot_gen(ent[k]) - base) & kGenMask;
    if (d >= far) {
      far = d;
      G = slot_gen(ent[k]);
    }
  }
  const size_t head = out.size();
  out.push_back(0);
  out.push_back(uint32_t(w));
  out.push_back(uint32_t(w >> 32));
  out.push_back(uint32_t(era));
  out.push_back(uint32_t(era >> 32));
  out.push_back(m.access_tick.load(std::memory_order_relaxed));
  out.push_back(G);
  out.push_back(m.next_stk.load(std::memory_order_relaxed));
  uint32_t esc[2 * kMaxSlots], nesc = 0;
  uint32_t acc = 0, nacc = 0;
  for (uint32_t k = 0; k < kMaxSlots; ++k) {  // allocated: 16 bits each
    if (!alloc[k]) continue;
    uint32_t lag = (G - slot_gen(ent[k])) & kGenMask;
    if (lag >= kEscA) {
      lag = kEscA;
      esc[2 * nesc] = k;
      esc[2 * nesc + 1] = ent[k];
      ++nesc;
    }
    acc |= (lag | (slot_slack(ent[k]) << 8)) << (16 * nacc);
    if (++nacc == 2) {
      out.push_back(acc);
      acc = nacc = 0;
    }
  }
  if (nacc) out.push_back(acc);
  acc = nacc = 0;
  for (uint32_t k = 0; k < kMaxSlots; ++k) {  // free: 4 bits each
    if (alloc[k]) continue;
    uint32_t lag = (G - slot_gen(ent[k])) & kGenMask;
    if (lag >= kEscF) {
      lag = kEscF;
      esc[2 * nesc] = k;
      esc[2 * nesc + 1] = ent[k];
      ++nesc;
    }
    acc |= lag << (4 * nacc);
    if (++nacc == 8) {
      out.push_back(acc);
      acc = nacc = 0;
    }
  }
  if (nacc) out.push_back(acc);
  for (uint32_t j = 0; j < 2 * nesc; ++j) out.push_back(esc[j]);
  out[head] = (id % kGroup) | (nalloc << 8) | (nesc << 16);
}

// Writes one record back into its (re-faulted, zero) SlabMeta; returns the
// words consumed and the slab id.
size_t decode(Impl& im, const uint32_t* r, uint32_t lo, uint32_t* id_out) {
  const uint32_t id = lo + (r[0] & 0xFF), nalloc = (r[0] >> 8) & 0xFF, nesc = (r[0] >> 16) & 0xFF;
  const uint32_t n = kSlots[tag_class(im.tags[id].load(std::memory_order_relaxed))];
  SlabMeta& m = im.slabs[id];
  const uint64_t w = uint64_t(r[1]) | (uint64_t(r[2]) << 32);
  const uint32_t G = r[6];
  const uint32_t* al = r + 8;
  const uint32_t* fr = al + (nalloc + 1) / 2;
  const uint32_t* es = fr + (kMaxSlots - nalloc + 7) / 8;
  auto escaped = [&](uint32_t k) {
    for (uint32_t j = 0; j < nesc; ++j)
      if (es[2 * j] == k) return es[2 * j + 1];
    return uint32_t(0);
  };
  uint32_t a = 0, f = 0;
  for (uint32_t k = 0; k < kMaxSlots; ++k) {
    uint32_t e;
    if (k < n && !((w >> k) & 1)) {
      const uint32_t v = (al[a / 2] >> (16 * (a % 2))) & 0xFFFF;
      ++a;
      const uint32_t lag = v & 0xFF;
      e = lag == kEscA ? escaped(k) : slot_entry((G - lag) & kGenMask, v >> 8);
    } else {
      const uint32_t lag = (fr[f / 8] >> (4 * (f % 8))) & 0xF;
      ++f;
      e = lag == kEscF ? escaped(k) : slot_entry((G - lag) & kGenMask, 0);
    }
    m.slot[k].store(e, std::memory_order_relaxed);
  }
  m.word.store(w, std::memory_order_relaxed);
  m.era.store(uint64_t(r[3]) | (uint64_t(r[4]) << 32), std::memory_order_relaxed);
  m.access_tick.store(r[5], std::memory_order_relaxed);
  m.pins.store(0, std::memory_order_relaxed);
  m.next_stk.store(r[7], std::memory_order_relaxed);
  m.next_det.store(kNone, std::memory_order_relaxed);
  *id_out = id;
  return record_words(nalloc, nesc);
}

// Spill::mu held: group g back in its page (no-op if not compact).
void expand_locked(Impl& im, uint32_t g) noexcept {
  Spill& s = *im.sp;
  auto it = s.compact.find(g);
  if (it == s.compact.end()) return;
  const std::vector<uint32_t>& v = it->second;
  uint32_t ids[kGroup];
  uint32_t nid = 0;
  for (size_t i = 0; i < v.size();) i += decode(im, v.data() + i, g * kGroup, &ids[nid++]);
  // The tag's release (seq_cst RMW) publishes the rewritten entries to an
  // operation that then loads the tag without kTagCompact (acquire).
  for (uint32_t j = 0; j < nid; ++j) im.tags[ids[j]].fetch_and(~kTagCompact, std::memory_order_seq_cst);
  im.meta_pages.fetch_add(1, std::memory_order_relaxed);
  s.compact_bytes.fetch_sub(rec_bytes(v), std::memory_order_relaxed);
  s.compact.erase(it);
  im.compact_groups.fetch_sub(1, std::memory_order_relaxed);
  s.meta_pages_expanded.fetch_add(1, std::memory_order_relaxed);
}

// arena_mu + Spill::mu held: clears kTagCompact on the ids of group g.
void cancel_locked(Impl& im, uint32_t g) noexcept {
  for (uint32_t k = 0; k < kGroup; ++k) {
    std::atomic<uint32_t>& t = im.tags[g * kGroup + k];
    if (t.load(std::memory_order_relaxed) & kTagCompact) t.fetch_and(~kTagCompact, std::memory_order_seq_cst);
  }
}

// Step 3 of a compaction for group grp of epoch e (bins of e, arena_mu
// and Spill::mu held).
void compact_group(Impl& im, uint32_t grp, uint32_t e, bool graced) noexcept;

}  // namespace

namespace detail {
bool compact_word(const Spill& s, uint32_t id, uint64_t* word) noexcept {
  const auto it = s.compact.find(id / kGroup);
  if (it == s.compact.end()) return false;
  const std::vector<uint32_t>& v = it->second;
  for (size_t i = 0; i < v.size();) {
    const uint32_t* r = v.data() + i;
    if ((r[0] & 0xFF) == id % kGroup) {
      *word = uint64_t(r[1]) | (uint64_t(r[2]) << 32);
      return true;
    }
    i += record_words((r[0] >> 8) & 0xFF, (r[0] >> 16) & 0xFF);
  }
  return false;
}

void compact_touch_locked(SlabAllocator::Impl& im, uint32_t id) noexcept {
  Spill& s = *im.sp;
  if (s.compact.count(id / kGroup)) expand_locked(im, id / kGroup);
  else im.tags[id].fetch_and(~kTagCompact, std::memory_order_seq_cst);  // pending: cancel
}
}  // namespace detail

void SlabAllocator::Impl::compact_touch(uint32_t id) noexcept {
  std::lock_guard<std::mutex> g(sp->mu);
  compact_touch_locked(*this, id);
}

void SlabAllocator::Impl::compact_expand_for_attach(uint32_t id) noexcept {
  std::lock_guard<std::mutex> g(sp->mu);
  expand_locked(*this, id / kGroup);
}

void SlabAllocator::Impl::compact_expand_all() noexcept {
  if (!sp) return;
  std::lock_guard<std::mutex> g(sp->mu);
  while (!sp->compact.empty()) expand_locked(*this, sp->compact.begin()->first);
}

void SlabAllocator::Impl::compact_pass(uint64_t target) noexcept {
  if (!compact_on) return;
  Spill& s = *sp;
  std::vector<uint32_t> cand, cand_ep;
  // Step 1: choose and mark. Groups whose record would be small, largest
  // saving first, until the pass target is met (3/4 of the budget: the
  // pages a later deref or free brings back have room before the next pass).
  {
    std::lock_guard<std::mutex> ag(arena_mu);
    std::lock_guard<std::mutex> g(s.mu);
    const uint64_t used = dram_used();
    if (used <= target) return;
    struct Pick {
      uint32_t saving, grp, ep;
    };
    std::vector<Pick> picks;
    try {
      for (uint32_t ep = 0; ep < kEpochCount; ++ep) {
        for (uint32_t ci_p1 = epoch_chunks_p1[ep]; ci_p1; ci_p1 = chunks[ci_p1 - 1].next_p1) {
          const uint32_t lo = (ci_p1 - 1) * spc;
          for (uint32_t gi = lo; gi < lo + spc; gi += kGroup) {
            if (s.compact.count(gi / kGroup)) continue;
            if (((init_bits[gi >> 6] >> (gi & 63)) & 0xFFFF) == 0) continue;  // not resident
            bool any = false, ok = true;
            uint64_t est = kRecOverhead;
            for (uint32_t k = 0; k < kGroup && ok; ++k) {
              const Kind kd = classify(*this, gi + k, false);
              ok = kd != kBad;
              if (kd != kFloating) continue;
              any = true;
              const uint32_t c = tag_class(tags[gi + k].load(std::memory_order_relaxed));
              const uint64_t w = slabs[gi + k].word.load(std::memory_order_relaxed);
              const uint32_t nalloc = kSlots[c] - uint32_t(std::popcount(w & kFreeMask));
              est += 4 * record_words(nalloc, 0);
            }
            if (!ok || !any || est > kSlabBytes * 3 / 4) continue;
            picks.push_back(Pick{uint32_t(kSlabBytes - est), gi / kGroup, ep});
          }
        }
      }
      std::sort(picks.begin(), picks.end(), [](const Pick& a, const Pick& b) {
        return a.saving != b.saving ? a.saving > b.saving : a.grp < b.grp;
      });
      uint64_t saved = 0;
      size_t n = 0;
      while (n < picks.size() && used - saved > target) saved += picks[n++].saving;
      picks.resize(n);
      std::sort(picks.begin(), picks.end(), [](const Pick& a, const Pick& b) {
        return a.ep != b.ep ? a.ep < b.ep : a.grp < b.grp;
      });
      cand.reserve(n);
      cand_ep.reserve(n);
    } catch (...) {
      return;
    }
    for (const Pick& pk : picks) {
      cand.push_back(pk.grp);
      cand_ep.push_back(pk.ep);
      const uint32_t gi = pk.grp * kGroup;
      for (uint32_t k = 0; k < kGroup; ++k)
        if (!test_bit(unused_bits, gi + k) && !test_bit(retired_bits, gi + k))
          tags[gi + k].fetch_or(kTagCompact, std::memory_order_seq_cst);
    }
  }
  if (cand.empty()) return;
  // Step 2: every operation that could have read a tag without the bit ends.
  const bool graced = tc_meta_grace();
  // Step 3: re-check, record, decommit; one epoch at a time, holding its
  // bins' mutexes (class order) so that no refill pop or drain walks a
  // partial stack (next_stk) across a page being decommitted.
  for (size_t i0 = 0; i0 < cand.size();) {
    const uint32_t e = cand_ep[i0];
    size_t i1 = i0;
    while (i1 < cand.size() && cand_ep[i1] == e) ++i1;
    std::unique_lock<std::mutex> bl[kNumClasses];
    for (uint32_t c = 0; c < kNumClasses; ++c) bl[c] = std::unique_lock<std::mutex>(bins[e][c].mu);
    std::lock_guard<std::mutex> ag(arena_mu);
    std::lock_guard<std::mutex> g(s.mu);
    for (size_t i = i0; i < i1; ++i) compact_group(*this, cand[i], e, graced);
    i0 = i1;
  }
}

namespace {
void compact_group(Impl& im, uint32_t grp, uint32_t e, bool graced) noexcept {
  Spill& s = *im.sp;
  {
    const uint32_t lo = grp * kGroup;
    bool ok = graced && im.chunks[lo / im.spc].epoch_p1 == e + 1, any = false;
    Kind kinds[kGroup];
    for (uint32_t k = 0; k < kGroup && ok; ++k) {
      kinds[k] = classify(im, lo + k, true);
      ok = kinds[k] != kBad;
      any |= kinds[k] == kFloating;
    }
    // The page must still be resident and counted (an id may have died and
    // step 1 of the dead-id release may have taken the page meanwhile).
    ok = ok && any && ((im.init_bits[lo >> 6] >> (lo & 63)) & 0xFFFF) != 0;
    uint32_t nb[kGroup];
    std::vector<uint32_t> rec;
    if (ok) {
      for (uint32_t k = 0; k < kGroup && ok; ++k) {
        if (kinds[k] == kUnattached && test_bit(im.init_bits, lo + k)) {
          nb[k] = im.folded_base(lo + k);
          ok = nb[k] < kRetireBase;
        }
      }
    }
    uint64_t bytes = 0;
    if (ok) {
      try {
        for (uint32_t k = 0; k < kGroup; ++k)
          if (kinds[k] == kFloating) encode(im, lo + k, rec);
        rec.shrink_to_fit();
        bytes = rec_bytes(rec);
        s.compact.emplace(grp, std::move(rec));  // nobody looks before we unlock
      } catch (...) {
        ok = false;
      }
    }
    if (ok) {
      im.madvise_calls.fetch_add(1, std::memory_order_relaxed);
      if (pages::decommit(&im.slabs[lo], kSlabBytes)) {
        im.madvise_bytes.fetch_add(kSlabBytes, std::memory_order_relaxed);
      } else {
        im.madvise_failures.fetch_add(1, std::memory_order_relaxed);
        s.compact.erase(grp);
        ok = false;
      }
    }
    if (!ok) {
      cancel_locked(im, grp);
      return;
    }
    for (uint32_t k = 0; k < kGroup; ++k) {
      if (kinds[k] == kUnattached && test_bit(im.init_bits, lo + k)) {
        im.gen_base[lo + k] = nb[k];
        clear_bit(im.init_bits, lo + k);
      }
    }
    im.meta_pages.fetch_sub(1, std::memory_order_relaxed);
    s.compact_bytes.fetch_add(bytes, std::memory_order_relaxed);
    im.compact_groups.fetch_add(1, std::memory_order_relaxed);
    s.meta_pages_compacted.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace

}  // namespace znslab::slab
