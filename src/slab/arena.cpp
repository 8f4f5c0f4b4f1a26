// Arena layer of the temporal slab allocator: chunks and slabs carved from
// one pages::Reservation, the off-page slab registry, and batched, coalesced
// decommit (seed 002 "Immediate Empty Slab Reclamation", without its
// one-mmap-per-slab layout).
//
// Chunk life cycle (all under arena_mu):
//   fresh (never used) --assign--> owned by an epoch (on its chunk list)
//     --all slabs detached + decommit pass--> decommitted whole (one madvise
//     for the slabs, one for their metadata), incarnation++, free pool
//     --assign--> owned by any epoch.
// Slab bits per chunk: unused (not attached) and backed (committed).
// Invariants: used + popcount(unused) == spc for an owned chunk;
// unused_backed == popcount(unused & backed); committed_slabs == sum of
// popcount(backed) over all chunks.
#include <algorithm>
#include <bit>
#include <cstring>

#include "src/slab/slab_internal.h"

namespace znslab::slab {

using namespace detail;

namespace {
size_t round_up(size_t v, size_t a) { return (v + a - 1) & ~(a - 1); }
}  // namespace

Status SlabAllocator::Impl::init_arena() {
  n_slabs = uint32_t(opts.arena_bytes / kSlabBytes);
  n_chunks = uint32_t(opts.arena_bytes / opts.chunk_bytes);
  spc = uint32_t(opts.chunk_bytes / kSlabBytes);
  auto a = pages::Reservation::reserve(opts.arena_bytes, std::max<size_t>(opts.chunk_bytes, pages::page_size()));
  if (!a) return a.status();
  arena = std::move(*a);
  const size_t ps = pages::page_size();
  const size_t slab_meta_bytes = round_up(size_t(n_slabs) * sizeof(SlabMeta), ps);
  const size_t chunk_meta_bytes = round_up(size_t(n_chunks) * sizeof(ChunkMeta), ps);
  const size_t bits_bytes = round_up(size_t((n_slabs + 63) / 64) * 8, ps);
  const size_t tag_bytes = round_up(size_t(n_slabs) * sizeof(uint32_t), ps);
  // + gen_base (like the tags) and the init / retired bitmaps.
  auto m = pages::Reservation::reserve(
      slab_meta_bytes + chunk_meta_bytes + 4 * bits_bytes + 2 * tag_bytes, ps);
  if (!m) return m.status();
  meta = std::move(*m);
  uint8_t* p = meta.base();
  slabs = reinterpret_cast<SlabMeta*>(p);
  chunks = reinterpret_cast<ChunkMeta*>(p + slab_meta_bytes);
  unused_bits = reinterpret_cast<uint64_t*>(p + slab_meta_bytes + chunk_meta_bytes);
  backed_bits = reinterpret_cast<uint64_t*>(p + slab_meta_bytes + chunk_meta_bytes + bits_bytes);
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
  // Zero-filled pages: every tag reads 0 (not attached) until first attach.
  tags = reinterpret_cast<std::atomic<uint32_t>*>(p + slab_meta_bytes + chunk_meta_bytes + 2 * bits_bytes);
  uint8_t* q = p + slab_meta_bytes + chunk_meta_bytes + 2 * bits_bytes + tag_bytes;
  gen_base = reinterpret_cast<uint32_t*>(q);
  init_bits = reinterpret_cast<uint64_t*>(q + tag_bytes);
  retired_bits = reinterpret_cast<uint64_t*>(q + tag_bytes + bits_bytes);
  return Status::ok();
}

namespace {
inline bool test_bit(const uint64_t* b, uint32_t i) { return (b[i >> 6] >> (i & 63)) & 1; }
inline void set_bit(uint64_t* b, uint32_t i) { b[i >> 6] |= uint64_t(1) << (i & 63); }
inline void clear_bit(uint64_t* b, uint32_t i) { b[i >> 6] &= ~(uint64_t(1) << (i & 63)); }

// First slab index i in [lo, hi) with want(i); kNone if none. Word-at-a-time.
template <typename F>
uint32_t find_first(uint32_t lo, uint32_t hi, F word_of) {
  for (uint32_t i = lo; i < hi;) {
    uint32_t w = i >> 6, off = i & 63;
    uint64_t v = word_of(w) >> off;
    uint32_t span = std::min<uint32_t>(64 - off, hi - i);
    if (span < 64) v &= (uint64_t(1) << span) - 1;
    if (v) return i + uint32_t(std::countr_zero(v));
    i += span;
  }
  return kNone;
}
}  // namespace

// The persistent generation base slab `i` gets when its slot entries are
// dropped (see "Handle generation" in slab_internal.h): the old base plus
// the largest distance any of its slots moved, rounded to even (every slot
// of an unattached slab is free).
uint32_t SlabAllocator::Impl::folded_base(uint32_t i) const noexcept {
  const uint32_t base = gen_base[i];
  uint32_t far = 0;
  for (const auto& e : slabs[i].slot) {
    const uint32_t d = (slot_gen(e.load(std::memory_order_relaxed)) - base) & kGenMask;
    far = d > far ? d : far;
  }
  return base + ((far + 1) & ~1u);
}

void SlabAllocator::Impl::push_detached(uint32_t id) noexcept {
  pending_slabs.fetch_add(1, std::memory_order_relaxed);
  uint32_t h = det_head.load(std::memory_order_relaxed);
  do {
    slabs[id].next_det.store(h, std::memory_order_relaxed);
  } while (!det_head.compare_exchange_weak(h, id, std::memory_order_release,
                                           std::memory_order_relaxed));
}

namespace {
bool do_decommit(SlabAllocator::Impl& im, void* addr, size_t bytes);

// Spill mode (the budget counts SlabMeta pages), arena_mu held: returns the
// SlabMeta page of slab id `id`'s 16-id group to the OS as soon as none of
// its ids is attached (each unused or retired), without waiting for the
// whole chunk to come back. As the chunk-return path does, each initialised
// id's base is folded first and its init bit cleared, so a re-attach
// re-initialises the entries above every earlier counter (no generation
// restart) and its tag carries a new attach counter (free's re-check).
// A group in which some id would reach kRetireBase is left to the chunk
// return (which retires it). On a madvise failure nothing changes.
void release_dead_meta(SlabAllocator::Impl& im, uint32_t id) noexcept {
  constexpr uint32_t kGroup = 16;
  static_assert(kGroup * sizeof(SlabMeta) == kSlabBytes);
  if (pages::page_size() != kSlabBytes) return;
  const uint32_t lo = id & ~(kGroup - 1), sh = lo & 63;
  const uint64_t init = (im.init_bits[lo >> 6] >> sh) & 0xFFFF;
  if (!init) return;  // not resident (or never used in this incarnation)
  if (((im.unused_bits[lo >> 6] | im.retired_bits[lo >> 6]) >> sh & 0xFFFF) != 0xFFFF) return;
  uint32_t nb[kGroup];
  for (uint32_t k = 0; k < kGroup; ++k) {
    if (!((init >> k) & 1)) continue;
    nb[k] = im.folded_base(lo + k);
    if (nb[k] >= kRetireBase) return;
  }
  if (!do_decommit(im, &im.slabs[lo], kSlabBytes)) return;
  for (uint32_t k = 0; k < kGroup; ++k)
    if ((init >> k) & 1) im.gen_base[lo + k] = nb[k];
  im.init_bits[lo >> 6] &= ~(uint64_t(0xFFFF) << sh);
  im.meta_pages.fetch_sub(1, std::memory_order_relaxed);
  spill_count_meta_release(im.sp);
}

// arena_mu held: detached slabs become unused (still backed, i.e. warm).
void absorb_detached(SlabAllocator::Impl& im) noexcept {
  uint32_t id = im.det_head.exchange(kNone, std::memory_order_acquire);
  while (id != kNone) {
    SlabMeta& m = im.slabs[id];
    uint32_t next = m.next_det.load(std::memory_order_relaxed);
    if (im.sp) im.spill_forget(id);  // its copy on the spill target (if any) dies
    im.tags[id].fetch_and(~(kTagAttached | kTagSpillBits), std::memory_order_acq_rel);
    ChunkMeta& ch = im.chunks[id / im.spc];
    set_bit(im.unused_bits, id);
    ch.used--;
    if (test_bit(im.backed_bits, id)) ch.unused_backed++;
    else im.pending_slabs.fetch_sub(1, std::memory_order_relaxed);  // spilled: not committed
    if (!(ch.flags & kChunkDirty)) {
      ch.flags |= kChunkDirty;
      ch.dirty_next_p1 = im.dirty_p1;
      im.dirty_p1 = id / im.spc + 1;
    }
    if (im.sp) release_dead_meta(im, id);
    id = next;
  }
}

void list_remove(SlabAllocator::Impl& im, uint32_t ci) {
  ChunkMeta& ch = im.chunks[ci];
  uint32_t& head = im.epoch_chunks_p1[ch.epoch_p1 - 1];
  if (ch.prev_p1) im.chunks[ch.prev_p1 - 1].next_p1 = ch.next_p1;
  else head = ch.next_p1;
  if (ch.next_p1) im.chunks[ch.next_p1 - 1].prev_p1 = ch.prev_p1;
  ch.next_p1 = ch.prev_p1 = 0;
  ch.epoch_p1 = 0;
}

void list_push_front(SlabAllocator::Impl& im, uint32_t ci, uint32_t epoch) {
  ChunkMeta& ch = im.chunks[ci];
  uint32_t& head = im.epoch_chunks_p1[epoch];
  ch.epoch_p1 = epoch + 1;
  ch.prev_p1 = 0;
  ch.next_p1 = head;
  if (head) im.chunks[head - 1].prev_p1 = ci + 1;
  head = ci + 1;
}

bool do_decommit(SlabAllocator::Impl& im, void* addr, size_t bytes) {
  im.madvise_calls.fetch_add(1, std::memory_order_relaxed);
  Status s = pages::decommit(addr, bytes);
  if (!s) {
    im.madvise_failures.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  im.madvise_bytes.fetch_add(bytes, std::memory_order_relaxed);
  return true;
}
}  // namespace

Result<uint32_t> SlabAllocator::Impl::acquire_slab(uint32_t epoch, bool* warm, uint32_t* inc) noexcept {
  std::lock_guard<std::mutex> g(arena_mu);
  if (det_head.load(std::memory_order_relaxed) != kNone) absorb_detached(*this);
  // 1. A warm slab of this epoch's chunks, else any unused one of them.
  uint32_t pick = kNone;
  for (int pass = 0; pass < 2 && pick == kNone; ++pass) {
    for (uint32_t ci_p1 = epoch_chunks_p1[epoch]; ci_p1; ci_p1 = chunks[ci_p1 - 1].next_p1) {
      ChunkMeta& ch = chunks[ci_p1 - 1];
      if (ch.used + ch.retired == spc) continue;
      if (pass == 0 && ch.unused_backed == 0) continue;
      uint32_t lo = (ci_p1 - 1) * spc, hi = lo + spc;
      if (pass == 0)
        pick = find_first(lo, hi, [&](uint32_t w) { return unused_bits[w] & backed_bits[w]; });
      else
        pick = find_first(lo, hi, [&](uint32_t w) { return unused_bits[w]; });
      if (pick != kNone) break;
    }
  }
  // 2. A chunk from the free pool, else a fresh one.
  if (pick == kNone) {
    uint32_t ci;
    if (pool_p1) {
      ci = pool_p1 - 1;
      pool_p1 = chunks[ci].next_p1;
    } else if (fresh_chunk < n_chunks) {
      ci = fresh_chunk++;
      hwm_slabs.store(fresh_chunk * spc, std::memory_order_release);
    } else {
      return Status(Code::kOutOfMemory, "slab arena exhausted (Options::arena_bytes)");
    }
    ChunkMeta& ch = chunks[ci];
    ch.used = 0;
    ch.unused_backed = 0;
    ch.backed = 0;
    ch.flags &= uint8_t(~(kChunkGrew | kChunkTrimmed));  // whole again: a huge page on first touch
    list_push_front(*this, ci, epoch);
    pick = kNone;
    for (uint32_t i = ci * spc; i < (ci + 1) * spc; ++i) {
      if (test_bit(retired_bits, i)) continue;  // retired slab ids stay out of use
      set_bit(unused_bits, i);
      if (pick == kNone) pick = i;
    }
    if (opts.use_thp && !(ch.flags & kChunkThp)) {
      // MADV_HUGEPAGE persists across MADV_DONTNEED: advise once per chunk.
      madvise_calls.fetch_add(1, std::memory_order_relaxed);
      if (pages::advise_hugepage(slab_addr(ci * spc), opts.chunk_bytes, true))
        ch.flags |= kChunkThp;
      else
        madvise_failures.fetch_add(1, std::memory_order_relaxed);
    }
    // (a chunk goes back to the pool only if some slab id is not retired)
  }
  ChunkMeta& ch = chunks[pick / spc];
  clear_bit(unused_bits, pick);
  ch.used++;
  if (ch.flags & kChunkThp) ch.flags |= kChunkGrew;  // trim_thp_tails() waits
  *warm = test_bit(backed_bits, pick);
  *inc = ch.inc;
  // Consecutive acquisitions of uncommitted slabs by this epoch.
  const uint32_t streak = *warm ? 0 : fresh_streak[epoch] + 1;
  fresh_streak[epoch] = streak;
  if (!*warm && streak >= 3 && opts.populate_slabs > 1 && !opts.use_thp) {
    // Batch the first-touch faults once an epoch is growing (third
    // uncommitted slab in a row): back the run of unused, uncommitted slabs
    // that starts here (up to populate_slabs, same chunk) in one
    // madvise(MADV_POPULATE_WRITE); the others become warm slabs that the
    // next acquisitions take first (pass 0 above). Not counted in
    // madvise_calls (which counts returns to the OS).
    const uint32_t end = (pick / spc + 1) * spc;
    uint32_t n = 1;
    while (n < opts.populate_slabs && pick + n < end && test_bit(unused_bits, pick + n) &&
           !test_bit(backed_bits, pick + n))
      ++n;
    if (n > 1 && populate_ok.load(std::memory_order_relaxed)) {
      Status ps = pages::populate_write(slab_addr(pick), size_t(n) * kSlabBytes);
      if (ps) {
        for (uint32_t i = pick + 1; i < pick + n; ++i) set_bit(backed_bits, i);
        ch.backed += n - 1;
        ch.unused_backed += n - 1;
        committed_slabs.fetch_add(n - 1, std::memory_order_relaxed);
        pending_slabs.fetch_add(n - 1, std::memory_order_relaxed);
        epochs[ch.epoch_p1 - 1].committed_slabs.fetch_add(n - 1, std::memory_order_relaxed);
        populated_slabs.fetch_add(n, std::memory_order_relaxed);
      } else {
        // Not fatal: the slabs fault in on first touch as before.
        if (ps.code() == Code::kNotSupported) populate_ok.store(false, std::memory_order_relaxed);
      }
    }
  }
  // A group held compact (spilled neighbours) gets its page back first.
  if (compact_groups.load(std::memory_order_relaxed)) compact_expand_for_attach(pick);
  if (!test_bit(init_bits, pick)) {
    // First attach in this chunk incarnation: the slot entries (fresh zero
    // pages after a chunk return) start at the slab's persistent base, so
    // generation counters continue where the last incarnation left them.
    const uint32_t base = gen_base[pick] & kGenMask;
    // First slab of its 16-slab group (one 4 KiB page of SlabMeta): a page
    // of metadata becomes resident (the DRAM budget counts it).
    if (((init_bits[pick >> 6] >> (pick & 48)) & 0xFFFF) == 0)
      meta_pages.fetch_add(1, std::memory_order_relaxed);
    for (auto& e : slabs[pick].slot) e.store(slot_entry(base, 0), std::memory_order_relaxed);
    set_bit(init_bits, pick);
  }
  if (*warm) {
    ch.unused_backed--;
    pending_slabs.fetch_sub(1, std::memory_order_relaxed);
  } else {
    set_bit(backed_bits, pick);
    ch.backed++;
    committed_slabs.fetch_add(1, std::memory_order_relaxed);
    epochs[ch.epoch_p1 - 1].committed_slabs.fetch_add(1, std::memory_order_relaxed);
  }
  return pick;
}

ReclaimResult SlabAllocator::Impl::decommit_pending(bool batch) noexcept {
  ReclaimResult r;
  std::lock_guard<std::mutex> g(arena_mu);
  absorb_detached(*this);
  const size_t ps = pages::page_size();
  const size_t chunk_meta_bytes = size_t(spc) * sizeof(SlabMeta);
  // Pass 1: every entirely empty chunk goes back whole (one madvise for its
  // slabs, one for its metadata) and returns to the free-chunk pool.
  uint32_t keep_dirty = 0;
  while (dirty_p1) {
    const uint32_t ci = dirty_p1 - 1;
    ChunkMeta& ch = chunks[ci];
    dirty_p1 = ch.dirty_next_p1;
    if (ch.used != 0) {
      ch.dirty_next_p1 = keep_dirty;
      keep_dirty = ci + 1;
      continue;
    }
    ch.flags &= uint8_t(~kChunkDirty);
    const uint32_t lo = ci * spc, hi = lo + spc;
    EpochSlot& ep = epochs[ch.epoch_p1 - 1];
    if (ch.backed && do_decommit(*this, slab_addr(lo), opts.chunk_bytes)) {
      r.bytes += uint64_t(ch.backed) * kSlabBytes;
      r.ranges++;
    }
    // Its metadata too, after folding each slab's generation counters into
    // its persistent base (see "Handle generation" in slab_internal.h): the
    // base advances by the largest distance any slot moved, so no counter
    // restarts; a slab id whose base reaches kRetireBase is retired.
    uint32_t retired = 0;
    if (chunk_meta_bytes % ps == 0)
      for (uint32_t i = lo; i < hi; i += 16)
        if ((init_bits[i >> 6] >> (i & 48)) & 0xFFFF) meta_pages.fetch_sub(1, std::memory_order_relaxed);
    for (uint32_t i = lo; i < hi; ++i) {
      if (test_bit(init_bits, i)) {
        clear_bit(init_bits, i);
        gen_base[i] = folded_base(i);
        if (gen_base[i] >= kRetireBase && !test_bit(retired_bits, i)) {
          set_bit(retired_bits, i);
          retired_slabs.fetch_add(1, std::memory_order_relaxed);
        }
      }
      retired += test_bit(retired_bits, i) ? 1 : 0;
    }
    ch.retired = uint16_t(retired);
    if (chunk_meta_bytes % ps == 0) do_decommit(*this, &slabs[lo], chunk_meta_bytes);
    committed_slabs.fetch_sub(ch.backed, std::memory_order_relaxed);
    pending_slabs.fetch_sub(ch.unused_backed, std::memory_order_relaxed);
    ep.committed_slabs.fetch_sub(ch.backed, std::memory_order_relaxed);
    for (uint32_t i = lo; i < hi; ++i) {
      clear_bit(backed_bits, i);
      clear_bit(unused_bits, i);
    }
    ch.backed = ch.unused_backed = 0;
    // Tags (Impl::tags, never decommitted) stay "not attached" (cleared when
    // the slabs were absorbed); re-attached slabs carry the new incarnation.
    ch.inc++;
    list_remove(*this, ci);
    if (retired < spc) {  // else the chunk's address range is retired with its slabs
      ch.next_p1 = pool_p1;
      pool_p1 = ci + 1;
    }
    chunks_returned.fetch_add(1, std::memory_order_relaxed);
  }
  dirty_p1 = keep_dirty;
  // Pass 2: runs of empty slabs inside chunks still in use. A batch pass
  // keeps a warm reserve of Options::reclaim_batch_slabs slabs for reuse
  // (so steady-state churn does not madvise-and-refault scattered single
  // slabs) and returns the longest runs first; with THP it leaves runs alone
  // (a 4 KiB madvise splits the huge page). A full pass returns every run.
  const uint64_t keep = batch ? opts.reclaim_batch_slabs : 0;
  auto decommit_run = [&](uint32_t start, uint32_t len) {
    if (!do_decommit(*this, slab_addr(start), size_t(len) * kSlabBytes)) return;
    ChunkMeta& ch = chunks[start / spc];
    EpochSlot& ep = epochs[ch.epoch_p1 - 1];
    for (uint32_t i = start; i < start + len; ++i) clear_bit(backed_bits, i);
    ch.backed -= len;
    ch.unused_backed -= len;
    committed_slabs.fetch_sub(len, std::memory_order_relaxed);
    pending_slabs.fetch_sub(len, std::memory_order_relaxed);
    ep.committed_slabs.fetch_sub(len, std::memory_order_relaxed);
    r.bytes += uint64_t(len) * kSlabBytes;
    r.ranges++;
  };
  // Calls f(start, len) for each run of warm (unused & backed) slabs.
  auto for_each_run = [&](uint32_t ci, auto f) {
    const uint32_t lo = ci * spc, hi = lo + spc;
    for (uint32_t i = lo; i < hi;) {
      const uint32_t s = find_first(i, hi, [&](uint32_t w) { return unused_bits[w] & backed_bits[w]; });
      if (s == kNone) break;
      uint32_t e = find_first(s, hi, [&](uint32_t w) { return ~(unused_bits[w] & backed_bits[w]); });
      if (e == kNone) e = hi;
      f(s, e - s);
      i = e;
    }
  };
  if (!batch) {
    for (uint32_t ci_p1 = dirty_p1; ci_p1; ci_p1 = chunks[ci_p1 - 1].dirty_next_p1)
      for_each_run(ci_p1 - 1, decommit_run);
  } else if (!opts.use_thp && pending_slabs.load(std::memory_order_relaxed) > keep) {
    // (a) Runs of at least kMinRun slabs (64 KiB) go back at once.
    constexpr uint32_t kMinRun = 16;
    for (uint32_t ci_p1 = dirty_p1; ci_p1; ci_p1 = chunks[ci_p1 - 1].dirty_next_p1)
      for_each_run(ci_p1 - 1, [&](uint32_t start, uint32_t len) {
        if (len >= kMinRun) decommit_run(start, len);
      });
    // (b) Scattered empty slabs wait to coalesce (or for epoch_close() /
    // reclaim()) unless they exceed the warm reserve plus half of the
    // committed slabs (a safety valve: random-order frees leave short runs
    // until most of an epoch is free); then the longest runs go first down
    // to that bound.
    const uint64_t bound = keep + committed_slabs.load(std::memory_order_relaxed) / 2;
    if (pending_slabs.load(std::memory_order_relaxed) > bound) {
      struct Run {
        uint32_t start, len;
      };
      constexpr size_t kMaxRuns = 256;
      Run runs[kMaxRuns];
      size_t nruns = 0;
      // Keeps the kMaxRuns longest runs in a min-heap on length (the
      // shortest kept run at runs[0]): O(log kMaxRuns) per run.
      auto longer = [](const Run& a, const Run& b) { return a.len > b.len; };
      for (uint32_t ci_p1 = dirty_p1; ci_p1; ci_p1 = chunks[ci_p1 - 1].dirty_next_p1) {
        for_each_run(ci_p1 - 1, [&](uint32_t start, uint32_t len) {
          if (nruns < kMaxRuns) {
            runs[nruns++] = Run{start, len};
            std::push_heap(runs, runs + nruns, longer);
            return;
          }
          if (runs[0].len >= len) return;
          std::pop_heap(runs, runs + nruns, longer);
          runs[nruns - 1] = Run{start, len};
          std::push_heap(runs, runs + nruns, longer);
        });
      }
      std::sort(runs, runs + nruns, [](const Run& a, const Run& b) { return a.len > b.len; });
      for (size_t k = 0; k < nruns && pending_slabs.load(std::memory_order_relaxed) > bound; ++k)
        decommit_run(runs[k].start, runs[k].len);
    }
  }
  if (!batch && opts.use_thp) trim_thp_tails(r);
  // Chunks without warm slabs leave the dirty list.
  uint32_t* link = &dirty_p1;
  while (*link) {
    ChunkMeta& ch = chunks[*link - 1];
    if (ch.unused_backed == 0) {
      ch.flags &= uint8_t(~kChunkDirty);
      *link = ch.dirty_next_p1;
    } else {
      link = &ch.dirty_next_p1;
    }
  }
  decommit_ranges.fetch_add(r.ranges, std::memory_order_relaxed);
  return r;
}

void SlabAllocator::Impl::trim_thp_tails(ReclaimResult& r) noexcept {
  // One full pass of grace: a chunk that gave out a slab since the last
  // full pass may still be growing (its epoch allocating), and splitting
  // its huge page would turn the rest of its growth into 4 KiB faults.
  for (uint32_t e = 0; e < kEpochCount; ++e) {
    for (uint32_t ci_p1 = epoch_chunks_p1[e]; ci_p1; ci_p1 = chunks[ci_p1 - 1].next_p1) {
      ChunkMeta& ch = chunks[ci_p1 - 1];
      if (!(ch.flags & kChunkThp) || (ch.flags & kChunkTrimmed) || ch.used == 0) continue;
      if (ch.flags & kChunkGrew) {
        ch.flags &= uint8_t(~kChunkGrew);
        continue;
      }
      const uint32_t lo = (ci_p1 - 1) * spc, hi = lo + spc;
      uint32_t i = find_first(lo, hi, [&](uint32_t w) { return unused_bits[w]; });
      if (i == kNone) continue;  // full: nothing resident beyond its slabs
      EpochSlot& ep = epochs[ch.epoch_p1 - 1];
      while (i != kNone) {
        uint32_t end = find_first(i, hi, [&](uint32_t w) { return ~unused_bits[w]; });
        if (end == kNone) end = hi;
        // Unused slabs, committed (warm) or not: the huge page backs both.
        if (do_decommit(*this, slab_addr(i), size_t(end - i) * kSlabBytes)) {
          uint32_t nb = 0;
          for (uint32_t k = i; k < end; ++k)
            if (test_bit(backed_bits, k)) {
              clear_bit(backed_bits, k);
              ++nb;
            }
          ch.backed -= nb;
          ch.unused_backed -= nb;
          committed_slabs.fetch_sub(nb, std::memory_order_relaxed);
          pending_slabs.fetch_sub(nb, std::memory_order_relaxed);
          ep.committed_slabs.fetch_sub(nb, std::memory_order_relaxed);
          r.bytes += uint64_t(end - i) * kSlabBytes;
          r.ranges++;
        }
        i = end < hi ? find_first(end, hi, [&](uint32_t w) { return unused_bits[w]; }) : kNone;
      }
      // The huge page is now mapped in part only: MADV_COLD on one page
      // still in use makes the kernel split it now, so the tail's frames
      // are freed, not only unmapped (pages::advise_cold). Best effort:
      // on failure RSS has dropped all the same and the kernel's deferred
      // split frees them later.
      const uint32_t head = find_first(lo, hi, [&](uint32_t w) { return ~unused_bits[w]; });
      if (head != kNone) (void)pages::advise_cold(slab_addr(head), kSlabBytes);
      ch.flags |= kChunkTrimmed;
    }
  }
}

}  // namespace znslab::slab
