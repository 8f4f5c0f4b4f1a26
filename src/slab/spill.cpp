// Spill of cold slabs to zoned storage (issue 11; docs/spill.md).
//
// The slab registry (SlabMeta: bitmap word, slot entries), the tags and the
// chunk tables never leave DRAM; only the 4 KiB slab pages move. A spilled
// slab is attached as before, its tag carries kTagSpilled, its page is
// decommitted and Spill::loc[id] says where its copy lives (zone, slot). So
//   - free of an object in a spilled slab touches metadata only (no I/O);
//   - deref/pin of one reads the slab back first (fault_in, synchronous, on
//     the calling thread; other threads wait only for that same slab);
//   - a refill that pops a spilled slab off a partial stack reads it back
//     (or drops the copy if it is empty) before it becomes current.
// Only slabs that the lock-free fast path cannot claim from are spilled:
// not current (kCur), not detached, no slot held in a thread magazine, not
// pinned, chosen under their bin mutex (refills take it too). Marking uses
// kTagMoving; free re-reads the tag after its ownership CAS and does not
// cache a slot of a marked slab (Dekker pairing with the spiller's re-check).
//
// Zones: one open zone per spilling epoch (SpillUnit::kEpoch) or one shared
// zone (kPage), plus one for garbage collection; at most min(max_open,
// max_active) open. Slabs are staged into a 256 KiB aligned buffer and
// written sequentially with one write at the write pointer (or one zone
// append) per batch. A zone whose slabs all died (freed or read back) is
// reset with no copy; when free zones run out, the full zone with the least
// live data is garbage-collected (live slabs copied forward, zone reset).
//
// Lock order: Spill::run_mu -> reclaim_mu -> bin.mu -> arena_mu -> Spill::mu.
//
// Files: this one (spill passes, fault-back, pin/prefetch, stats),
// spill_zones.cpp (the zone table: writes, resets, garbage collection),
// spill_internal.h (the Spill state both share).
#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <thread>
#include <tuple>
#include <vector>

#include "src/common/crc32c.h"
#include "src/slab/spill_internal.h"

namespace znslab::slab {

using namespace detail;

const char* spill_target_name(SpillTarget t) noexcept {
  switch (t) {
    case SpillTarget::kNone: return "none";
    case SpillTarget::kZns: return "zns";
    case SpillTarget::kOverflow: return "overflow";
  }
  return "?";
}

Result<SpillTarget> parse_spill_target(std::string_view s) noexcept {
  if (s == "none") return SpillTarget::kNone;
  if (s == "zns") return SpillTarget::kZns;
  if (s == "overflow") return SpillTarget::kOverflow;
  return Status(Code::kInvalidArgument, "spill target must be one of none, zns, overflow");
}

const char* spill_unit_name(SpillUnit u) noexcept {
  return u == SpillUnit::kEpoch ? "epoch" : "page";
}

Result<SpillUnit> parse_spill_unit(std::string_view s) noexcept {
  if (s == "epoch") return SpillUnit::kEpoch;
  if (s == "page") return SpillUnit::kPage;
  return Status(Code::kInvalidArgument, "spill unit must be one of epoch, page");
}

namespace detail {

void spill_delete(Spill* sp) noexcept {
  if (!sp) return;
  {
    std::lock_guard<std::mutex> g(sp->wmu);
    sp->stop = true;
  }
  sp->wcv.notify_all();
  if (sp->worker.joinable()) sp->worker.join();
  delete sp;
}

void spill_count_meta_release(Spill* sp) noexcept {
  sp->meta_pages_released.fetch_add(1, std::memory_order_relaxed);
}

Status reserve_side_tables(Spill& s, uint32_t n_slabs) noexcept {
  const size_t n = n_slabs;
  const size_t bits = (n + 63) / 64 * sizeof(uint64_t);
  auto r = pages::Reservation::reserve(n * (sizeof(uint64_t) + sizeof(uint32_t)) + bits, pages::page_size());
  if (!r) return r.status();
  s.loc_res = std::move(*r);
  s.loc = reinterpret_cast<uint64_t*>(s.loc_res.base());
  s.dirty = reinterpret_cast<uint64_t*>(s.loc_res.base() + n * sizeof(uint64_t));
  s.crc = reinterpret_cast<uint32_t*>(s.loc_res.base() + n * sizeof(uint64_t) + bits);
  return Status::ok();
}

// arena_mu held: alive[j] = slab b[j] is still attached as marked (tag
// unchanged, not detached, committed) after its write; the pages of those
// slabs are returned (one process_madvise for the batch) and leave the
// committed counts. n <= 64. Shared by the zone and overflow batch paths.
// Returns slab pages in runs of consecutive ids, up to 64 runs per
// process_madvise (pages::decommit_ranges; counted in madvise_calls /
// _bytes / _failures). Ids are added in ascending order; the caller
// flushes before it drops the lock it holds.
class DecommitRuns {
 public:
  explicit DecommitRuns(SlabAllocator::Impl& im) noexcept : im_(im) {}
  DecommitRuns(const DecommitRuns&) = delete;
  DecommitRuns& operator=(const DecommitRuns&) = delete;
  ~DecommitRuns() { flush(); }
  void add(uint32_t id) noexcept {
    if (n_ && start_[n_ - 1] + len_[n_ - 1] == id) {
      ++len_[n_ - 1];
      return;
    }
    if (n_ == kMaxRuns) flush();
    start_[n_] = id;
    len_[n_++] = 1;
  }
  // One process_madvise for every run gathered (pages::decommit_ranges).
  void flush() noexcept {
    if (n_ == 0) return;
    pages::Range r[kMaxRuns];
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < n_; ++i) {
      r[i] = pages::Range{im_.slab_addr(start_[i]), size_t(len_[i]) * kSlabBytes};
      bytes += r[i].bytes;
    }
    uint64_t calls = 0;
    if (pages::decommit_ranges(r, n_, &calls))
      im_.madvise_bytes.fetch_add(bytes, std::memory_order_relaxed);
    else
      im_.madvise_failures.fetch_add(1, std::memory_order_relaxed);
    im_.madvise_calls.fetch_add(calls, std::memory_order_relaxed);
    n_ = 0;
  }

 private:
  static constexpr uint32_t kMaxRuns = 64;
  SlabAllocator::Impl& im_;
  uint32_t n_ = 0;
  uint32_t start_[kMaxRuns], len_[kMaxRuns];
};

void decommit_written(SlabAllocator::Impl& im, const SpillMark* b, uint32_t n, bool* alive) noexcept {
  uint32_t ids[64];
  uint32_t k = 0;
  for (uint32_t j = 0; j < n; ++j) {
    const uint32_t id = b[j].id;
    alive[j] = im.tags[id].load(std::memory_order_acquire) == b[j].tag &&
               !(im.slabs[id].word.load(std::memory_order_acquire) & kDet) && test_bit(im.backed_bits, id);
    if (!alive[j]) continue;
    ChunkMeta& ch = im.chunks[id / im.spc];
    clear_bit(im.backed_bits, id);
    ch.backed--;
    im.committed_slabs.fetch_sub(1, std::memory_order_relaxed);
    im.epochs[ch.epoch_p1 - 1].committed_slabs.fetch_sub(1, std::memory_order_relaxed);
    ids[k++] = id;
  }
  // A batch holds several classes of one epoch (spill_group): in id order
  // their pages form longer runs, fewer ranges for the kernel to walk.
  std::sort(ids, ids + k);
  DecommitRuns runs(im);
  for (uint32_t j = 0; j < k; ++j) runs.add(ids[j]);
  runs.flush();
}
}  // namespace detail


// ---- setup ---------------------------------------------------------------------------

Status SlabAllocator::Impl::spill_init(std::unique_ptr<zns::ZonedDevice> dev) noexcept {
  auto* s = new (std::nothrow) Spill();
  if (!s) return Status(Code::kOutOfMemory, "slab spill state");
  sp = s;
  s->tags = tags;
  s->slabs = slabs;
  s->mesh_on = opts.spill_mesh;
  // Compact records (either target) need the MetaGuard grace period
  // (thread caches and membarrier) and whole 16-id SlabMeta pages per chunk
  // (compact.cpp); off without a target (a budget only: nothing is spilled).
  const bool can_compact =
      opts.thread_cache && tc_steal_enabled() && pages::page_size() == kSlabBytes && spc % 16 == 0;
  if (opts.spill == SpillTarget::kOverflow) {
    compact_on = can_compact;
    return ovfl_init(*this);  // spill_overflow.cpp
  }
  if (!dev) return Status::ok();
  compact_on = can_compact;
  s->info = dev->info();
  const zns::DeviceInfo& in = s->info;
  if (in.lba_bytes == 0 || in.lba_bytes > kSlabBytes || kSlabBytes % in.lba_bytes != 0)
    return Status(Code::kNotSupported, "slab spill: device logical block must divide 4 KiB");
  s->spz = uint32_t(in.zone_capacity / kSlabBytes);
  if (s->spz == 0 || in.zone_count < 2)
    return Status(Code::kNotSupported, "slab spill: device needs >= 2 zones of >= 4 KiB capacity");
  uint32_t lim = 8;
  if (in.max_open) lim = std::min(lim, in.max_open);
  if (in.max_active) lim = std::min(lim, in.max_active);
  s->open_limit = lim > 1 ? lim - 1 : 1;
  if (opts.spill_append) {
    if (in.zone_append_max_bytes < kSlabBytes)
      return Status(Code::kNotSupported, "slab spill: spill_append needs zone append (ZASL >= 4 KiB)");
    s->append_max = in.zone_append_max_bytes / kSlabBytes * kSlabBytes;
  }
  // Batches of up to 256 KiB, smaller under small budgets (the buffers count
  // in the budget): budget / 32, at least 4 slabs.
  s->stage_slabs = std::clamp<size_t>(opts.dram_budget_bytes / 32 / kSlabBytes, 4, 64);
  auto buf = pages::Reservation::reserve(s->stage_slabs * kSlabBytes, pages::page_size());
  if (!buf) return buf.status();
  s->stage = std::move(*buf);
  auto gbuf = pages::Reservation::reserve(s->stage_slabs * kSlabBytes, pages::page_size());
  if (!gbuf) return gbuf.status();
  s->gc_stage = std::move(*gbuf);
  if (Status st = reserve_side_tables(*s, n_slabs); !st) return st;
  // Scratch space: every zone starts empty.
  auto zr = dev->report_zones(0, in.zone_count);
  if (!zr) return zr.status();
  for (const zns::Zone& z : *zr) {
    if (z.state == zns::ZoneState::kEmpty) continue;
    if (z.state == zns::ZoneState::kOffline || z.state == zns::ZoneState::kReadOnly) continue;
    if (Status st = dev->reset(z.index); !st) return st;
  }
  try {
    s->zones.resize(in.zone_count);
    for (uint32_t z = in.zone_count; z-- > 0;) {
      bool usable = true;
      for (const zns::Zone& r2 : *zr)
        if (r2.index == z && (r2.state == zns::ZoneState::kOffline || r2.state == zns::ZoneState::kReadOnly))
          usable = false;
      if (usable) s->free_zones.push_back(z);
    }
  } catch (...) {
    return Status(Code::kOutOfMemory, "slab spill zone table");
  }
  if (s->mesh_on) {
    try {
      s->mesh_bins.reserve(s->spz);
    } catch (...) {
      return Status(Code::kOutOfMemory, "slab spill mesh scratch");
    }
  }
  s->table_bytes = uint64_t(in.zone_count) * (sizeof(SZone) + 4) + s->stage.size() + s->gc_stage.size() +
                   s->mesh_bins.capacity() * sizeof(MeshBin);
  s->dev = std::move(dev);
  return Status::ok();
}

uint64_t SlabAllocator::Impl::dram_used() const noexcept {
  return committed_slabs.load(std::memory_order_relaxed) * kSlabBytes + dram_meta() + dram_tables();
}

uint64_t SlabAllocator::Impl::dram_meta() const noexcept {
  return meta_pages.load(std::memory_order_relaxed) * kSlabBytes;
}

uint64_t SlabAllocator::Impl::dram_tables() const noexcept {
  if (!sp) return 0;
  // Slab-id-indexed side tables (loc + crc + dirty bits) as far as ids were handed out,
  // the zone tables and staging buffers, and the zone slot maps (4 B per
  // slot of every zone written since its last reset).
  return side_table_bytes(hwm_slabs.load(std::memory_order_relaxed)) + sp->table_bytes +
         sp->slot_map_bytes.load(std::memory_order_relaxed) +
         sp->compact_bytes.load(std::memory_order_relaxed);
}

void SlabAllocator::Impl::note_access(uint32_t id, uint32_t e) noexcept {
  if (opts.spill_unit == SpillUnit::kEpoch) {
    // Epoch unit: the pass orders epochs by Spill::heat (no clock read here).
    if (id != kNone && sp) {
      std::atomic<uint64_t>& h = sp->heat[e];
      h.store(h.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    return;
  }
  const uint64_t ms = coarse_ms();
  std::atomic<uint64_t>& a = epochs[e].access_ms;
  if (a.load(std::memory_order_relaxed) != ms) a.store(ms, std::memory_order_relaxed);
  if (id != kNone) {
    std::atomic<uint32_t>& t = slabs[id].access_tick;
    if (t.load(std::memory_order_relaxed) != uint32_t(ms)) t.store(uint32_t(ms), std::memory_order_relaxed);
  }
}

// ---- the spill of groups of slabs (one bin at a time under its mutex) -------------------

namespace {

using Impl = SlabAllocator::Impl;

using Marked = SpillMark;  // spill_internal.h (shared with spill_overflow.cpp)

void unmark(Impl& im, uint32_t id) {
  {
    std::lock_guard<std::mutex> g(im.sp->mu);
    im.tags[id].fetch_and(~kTagSpillBits, std::memory_order_seq_cst);
  }
  im.sp->cv.notify_all();
}

// Claims slab `id` of bin (e, c) for spilling; false if it must stay.
bool mark(Impl& im, uint32_t id, uint32_t e, uint32_t c, uint32_t exclude, Marked* out) {
  if (id == exclude) return false;
  const uint32_t t = im.tags[id].load(std::memory_order_acquire);
  if ((t & 0x1FF) != (c | (e << 4) | kTagAttached) || (t & kTagSpillBits)) return false;
  SlabMeta& m = im.slabs[id];
  uint64_t w = m.word.load(std::memory_order_acquire);
  if ((w & (kCur | kDet)) || (w & kFreeMask) == all_free(c)) return false;
  if (m.pins.load(std::memory_order_acquire) != 0) return false;
  const uint32_t tm = im.tags[id].fetch_or(kTagSpilled | kTagMoving, std::memory_order_seq_cst);
  if (tm != t) {  // changed under us
    if (!(tm & kTagSpillBits)) unmark(im, id);
    return false;
  }
  // Dekker re-checks after publishing the mark: pins, states, and slots held
  // claimed-but-free (thread magazines, or a free between its CAS and its
  // bit release).
  bool ok = m.pins.load(std::memory_order_seq_cst) == 0;
  w = m.word.load(std::memory_order_seq_cst);
  if (w & (kCur | kDet)) ok = false;
  for (uint32_t k = 0; ok && k < kSlots[c]; ++k)
    if (!((w >> k) & 1) && !(slot_gen(m.slot[k].load(std::memory_order_seq_cst)) & 1)) ok = false;
  if (!ok) {
    unmark(im, id);
    return false;
  }
  *out = Marked{id, t | kTagSpilled | kTagMoving};
  return true;
}

// The batch `b` (staged) was written to zone z slots [slot, slot+n) or
// failed (st). Decommits the pages of slabs still attached as marked.
void finish_batch(Impl& im, const Marked* b, uint32_t n, uint32_t z, uint32_t slot, const Status& st) {
  Spill& s = *im.sp;
  if (!st) {
    s.spill_write_errors.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> g(s.mu);
      set_error(s, "spill write", st);
      for (uint32_t j = 0; j < n; ++j) im.tags[b[j].id].fetch_and(~kTagSpillBits, std::memory_order_seq_cst);
    }
    s.cv.notify_all();
    return;
  }
  bool alive[64];
  {
    std::lock_guard<std::mutex> ag(im.arena_mu);
    decommit_written(im, b, n, alive);
    std::lock_guard<std::mutex> g(s.mu);
    SZone& zn = s.zones[z];
    ensure_map(s, zn);
    for (uint32_t j = 0; j < n; ++j) {
      const uint32_t id = b[j].id;
      if (alive[j]) {
        s.loc[id] = (uint64_t(z + 1) << 32) | (slot + j);
        zn.slab_at[slot + j] = id;
        zn.live++;
        s.spilled_now_bytes.fetch_add(kSlabBytes, std::memory_order_relaxed);
        im.tags[id].fetch_and(~kTagMoving, std::memory_order_seq_cst);
      } else if (im.tags[id].load(std::memory_order_relaxed) == b[j].tag) {
        im.tags[id].fetch_and(~kTagSpillBits, std::memory_order_seq_cst);
      }
    }
    s.spilled_bytes.fetch_add(uint64_t(n) * kSlabBytes, std::memory_order_relaxed);
    s.device_bytes_written.fetch_add(uint64_t(n) * kSlabBytes, std::memory_order_relaxed);
    if (zn.live == 0 && zn.state == kZFull) s.dead_zones.push_back(z);
  }
  s.cv.notify_all();
}

// Writes the staged batch; splits at zone ends. Returns false on failure.
bool flush_batch(Impl& im, std::vector<Marked>& batch, uint32_t owner) {
  Spill& s = *im.sp;
  if (s.ov) {  // the overflow region: one blob per slab (spill_overflow.cpp)
    const bool ok = ovfl_flush_batch(im, batch.data(), uint32_t(batch.size()));
    batch.clear();
    return ok;
  }
  uint32_t done = 0;
  bool ok = true;
  while (done < batch.size()) {
    const uint32_t n_left = uint32_t(batch.size()) - done;
    uint32_t z, slot, n;
    {
      uint32_t closing = 0;
      for (uint32_t e = 0; e < kEpochCount; ++e)
        if (im.epochs[e].state.load(std::memory_order_acquire) != uint8_t(EpochState::kActive)) closing |= 1u << e;
      std::lock_guard<std::mutex> g(s.mu);
      z = pick_zone(s, owner, closing);
      if (z == kNone) {
        Status st(Code::kOutOfSpace, "slab spill: no free zone (device full of live slabs)");
        set_error(s, "spill", st);
        slot = n = 0;
      } else {
        slot = s.zones[z].written;
        n = std::min(n_left, s.spz - slot);
      }
    }
    if (z == kNone) {
      std::lock_guard<std::mutex> g(s.mu);
      for (uint32_t j = done; j < batch.size(); ++j)
        im.tags[batch[j].id].fetch_and(~kTagSpillBits, std::memory_order_seq_cst);
      s.cv.notify_all();
      ok = false;
      break;
    }
    uint32_t landed = slot;
    Status st = write_slabs(s, z, slot, s.stage.base() + size_t(done) * kSlabBytes, n, &landed);
    {
      std::lock_guard<std::mutex> g(s.mu);
      SZone& zn = s.zones[z];
      if (st) {
        zn.written = std::max(zn.written, landed + n);
      } else {
        // Unknown write pointer: the zone takes no more writes (finished,
        // releasing its open resource); its live slabs stay readable until
        // it dies or is collected.
        (void)s.dev->finish(z);
        zn.state = kZFull;
        s.open_of[owner] = -1;
        s.n_open--;
        if (zn.live == 0) s.dead_zones.push_back(z);
      }
    }
    finish_batch(im, batch.data() + done, n, z, landed, st);
    {
      std::lock_guard<std::mutex> g(s.mu);
      SZone& zn = s.zones[z];
      if (st && zn.state == kZOpen && zn.written >= s.spz) {
        zn.state = kZFull;
        s.open_of[owner] = -1;
        s.n_open--;
        if (zn.live == 0) s.dead_zones.push_back(z);
      }
    }
    if (!st) ok = false;
    done += n;
  }
  batch.clear();
  return ok;
}

// Slabs whose device copy is still good: decommit only (no write). Sorts
// `v` by id (runs of consecutive pages) and clears it.
void evict_clean(Impl& im, std::vector<Marked>& v) {
  if (v.empty()) return;
  std::sort(v.begin(), v.end(), [](const Marked& a, const Marked& b) { return a.id < b.id; });
  Spill& s = *im.sp;
  {
    std::lock_guard<std::mutex> ag(im.arena_mu);
    std::lock_guard<std::mutex> g(s.mu);
    DecommitRuns runs(im);
    for (const Marked& mk : v) {
      const uint32_t id = mk.id;
      const bool alive = im.tags[id].load(std::memory_order_acquire) == mk.tag &&
                         !(im.slabs[id].word.load(std::memory_order_acquire) & kDet) &&
                         test_bit(im.backed_bits, id) && s.loc[id] != 0;
      if (!alive) {
        if (im.tags[id].load(std::memory_order_relaxed) == mk.tag)
          im.tags[id].fetch_and(~kTagSpillBits, std::memory_order_seq_cst);
        continue;
      }
      ChunkMeta& ch = im.chunks[id / im.spc];
      // Consecutive ids share a range, the batch one process_madvise.
      runs.add(id);
      clear_bit(im.backed_bits, id);
      ch.backed--;
      im.committed_slabs.fetch_sub(1, std::memory_order_relaxed);
      im.epochs[ch.epoch_p1 - 1].committed_slabs.fetch_sub(1, std::memory_order_relaxed);
      s.spilled_now_bytes.fetch_add(kSlabBytes, std::memory_order_relaxed);
      s.clean_evictions.fetch_add(1, std::memory_order_relaxed);
      // Spilled from here on; a fault-back needs Spill::mu, which is held
      // until the page is returned below.
      im.tags[id].fetch_and(~kTagMoving, std::memory_order_seq_cst);
    }
    runs.flush();
  }
  v.clear();
  s.cv.notify_all();
}

// Which resident slabs spill_group takes: all, all but dirty re-faulted
// slabs (a device copy whose CRC no longer matches), or only those.
enum class Pick { kAll, kNoDirty, kOnlyDirty };

// Stages the slabs `ids` of bin (e, c) picked by `pick` for owner's zone,
// appending to `batch`, which is written whenever the staging buffer is
// full; clean ones (device copy still good) go to `clean`, which the
// caller evicts (evict_clean: no write, whatever `pick`). The bin
// mutex is held only while this group is marked and staged: the caller
// goes on with the next class of the same owner and writes the rest with
// flush_batch, so one write carries the slabs of several classes (one
// io_uring write per staging buffer instead of one per class; docs/tiered.md
// "Fewer, larger spill writes"). Marked slabs left in `batch` or `clean` are safe
// without the bin mutex: refills skip or wait on them (kTagMoving), frees
// do not cache their slots, and a slab detached and re-attached meanwhile
// is not decommitted (finish_batch checks its tag; its staged copy is
// what was written). Returns false when the target refused (stop the
// pass; `batch` is then empty).
bool spill_group(Impl& im, uint32_t e, uint32_t c, const std::vector<uint32_t>& ids, uint32_t owner,
                 uint32_t exclude, std::vector<Marked>& batch, std::vector<Marked>& clean,
                 Pick pick = Pick::kAll) {
  Spill& s = *im.sp;
  std::lock_guard<std::mutex> g(im.bins[e][c].mu);
  for (uint32_t id : ids) {
    Marked mk;
    if (!mark(im, id, e, c, exclude, &mk)) continue;
    bool skip = false;
    {
      std::lock_guard<std::mutex> lg(s.mu);
      if (const uint64_t l = s.loc[id]) {
        // A slab already found dirty stays dirty: no CRC (Spill::dirty).
        if (!test_bit(s.dirty, id)) {
          s.crc_checks.fetch_add(1, std::memory_order_relaxed);
          if (crc32c(im.slab_addr(id), kSlabBytes) == s.crc[id]) {
            clean.push_back(mk);  // unchanged since read back: its copy is still good
            continue;
          }
          set_bit(s.dirty, id);
        } else {
          s.crc_skips.fetch_add(1, std::memory_order_relaxed);
        }
        if (pick == Pick::kNoDirty) {
          skip = true;
        } else {
          drop_loc(s, l, false);  // stale copy
          s.loc[id] = 0;
        }
      } else if (pick == Pick::kOnlyDirty) {
        skip = true;
      }
    }
    if (skip) {
      unmark(im, id);
      continue;
    }
    std::memcpy(s.stage.base() + batch.size() * kSlabBytes, im.slab_addr(id), kSlabBytes);
    batch.push_back(mk);
    if (batch.size() == s.stage_slabs && !flush_batch(im, batch, owner)) return false;
  }
  return true;
}

struct Cand {
  uint64_t key;
  uint32_t id;
  uint32_t tag;
};

// Resident, attached slabs of epoch e (all epochs if e >= 16), arena_mu taken.
void candidates(Impl& im, uint32_t e, std::vector<Cand>& out) {
  std::lock_guard<std::mutex> g(im.arena_mu);
  for (uint32_t ep = 0; ep < kEpochCount; ++ep) {
    if (e < kEpochCount && ep != e) continue;
    for (uint32_t ci_p1 = im.epoch_chunks_p1[ep]; ci_p1; ci_p1 = im.chunks[ci_p1 - 1].next_p1) {
      const uint32_t lo = (ci_p1 - 1) * im.spc;
      for (uint32_t id = lo; id < lo + im.spc; ++id) {
        if (test_bit(im.unused_bits, id) || !test_bit(im.backed_bits, id) || test_bit(im.retired_bits, id))
          continue;
        const uint32_t t = im.tags[id].load(std::memory_order_acquire);
        if (!(t & kTagAttached) || (t & kTagSpillBits)) continue;
        out.push_back(Cand{im.slabs[id].access_tick.load(std::memory_order_relaxed), id, t});
      }
    }
  }
}

}  // namespace

// ---- spill passes --------------------------------------------------------------------

namespace {
// A pass starts when the accounted DRAM comes within budget/8 (at most
// 1 MiB) of the budget and spills down to a further budget/16 below: the
// margin covers what grows between passes (pages expanded by frees, slabs
// faulted back) and the process memory the gauge does not see (heap of
// the compact records, page tables), so RSS stays within the budget.
uint64_t trigger_slack(uint64_t budget) { return std::min<uint64_t>(budget / 8, 256 * kSlabBytes); }

void spill_pass(Impl& im, uint32_t exclude) {
  Spill& s = *im.sp;
  const uint64_t budget = im.opts.dram_budget_bytes;
  std::lock_guard<std::mutex> run(s.run_mu);
  if (im.dram_used() + trigger_slack(budget) <= budget) return;  // another thread did it
  s.spill_runs.fetch_add(1, std::memory_order_relaxed);
  if (s.dev) {
    std::lock_guard<std::mutex> g(s.mu);
    reset_dead(s);
  }
  ReclaimResult r;
  if (im.pending_slabs.load(std::memory_order_relaxed) > 0) {
    std::lock_guard<std::mutex> g(im.reclaim_mu);
    im.reclaim_pressure.store(0, std::memory_order_relaxed);
    r = im.reclaim_locked(false);
  }
  const uint64_t low = budget - trigger_slack(budget) - budget / 16;
  if ((s.dev || s.ov) && im.dram_used() > low) {
    std::vector<Cand> cands;
    if (im.opts.spill_unit == SpillUnit::kEpoch) {
      // Coldest first: CLOSING before ACTIVE, then fewest recent accesses
      // (Spill::heat: deref/pin hits and refills, decayed by a quarter per
      // pass), then older era. (A last-access time in coarse ms, used
      // before, ties nearly every live epoch when a pass runs every few ms,
      // so the order was close to arbitrary: docs/tiered.md "Speed".)
      uint32_t order[kEpochCount];
      for (uint32_t e = 0; e < kEpochCount; ++e) order[e] = e;
      // Keys are read once: other threads change them while we sort, and a
      // comparator that changes its mind breaks std::sort (it read past the
      // array under ASan in the two-thread budget test).
      std::tuple<bool, uint64_t, uint64_t> keys[kEpochCount];
      for (uint32_t e = 0; e < kEpochCount; ++e) {
        const bool active = im.epochs[e].state.load(std::memory_order_acquire) == uint8_t(EpochState::kActive);
        const uint64_t h = s.heat[e].load(std::memory_order_relaxed);
        s.heat[e].store(h - (h + 3) / 4, std::memory_order_relaxed);
        keys[e] = std::make_tuple(active, h, im.epochs[e].era.load(std::memory_order_relaxed));
      }
      std::sort(order, order + kEpochCount, [&](uint32_t a, uint32_t b) { return keys[a] < keys[b]; });
      // dirty == false: first-time and clean slabs only (Pick::kNoDirty);
      // true: dirty re-faulted slabs only (read back, then modified: their
      // device copy is stale and becomes a hole when they are re-spilled).
      uint32_t n_closing = 0;
      while (n_closing < kEpochCount && !std::get<0>(keys[order[n_closing]])) ++n_closing;
      uint32_t k_lo = 0, k_hi = kEpochCount;
      auto pass = [&](bool dirty) {
        for (uint32_t k = k_lo; k < k_hi && im.dram_used() > low; ++k) {
          const uint32_t e = order[k];
          if (im.epochs[e].committed_slabs.load(std::memory_order_relaxed) == 0) continue;
          cands.clear();
          try {
            candidates(im, e, cands);
          } catch (...) {
            return false;
          }
          std::vector<uint32_t> by_class[kNumClasses];
          uint64_t used = 0, slots = 0;
          for (const Cand& cd : cands) {
            by_class[tag_class(cd.tag)].push_back(cd.id);
            used += uint64_t(__builtin_popcountll(~im.slabs[cd.id].word.load(std::memory_order_relaxed) &
                                                 all_free(tag_class(cd.tag))));
            slots += kSlots[tag_class(cd.tag)];
          }
          // A CLOSING epoch whose resident slabs are less than half allocated
          // (survivors of mispredicted lifetimes, and their rewrites) spills
          // into the shared sparse zone (kOwnerSparse) instead of an epoch
          // zone: those slabs outlive their epoch, and GC meshes them there.
          uint32_t owner = e;
          if (used * 2 < slots &&
              im.epochs[e].state.load(std::memory_order_acquire) != uint8_t(EpochState::kActive))
            owner = kOwnerSparse;
          bool ok = true;
          std::vector<Marked> batch, clean;
          batch.reserve(s.stage_slabs);
          for (uint32_t c = 0; c < kNumClasses && ok; ++c)
            if (!by_class[c].empty())
              ok = spill_group(im, e, c, by_class[c], owner, exclude, batch, clean,
                               dirty ? Pick::kOnlyDirty : Pick::kNoDirty);
          if (ok && !batch.empty()) ok = flush_batch(im, batch, owner);
          evict_clean(im, clean);
          if (!ok) return false;
        }
        return true;
      };
      // Dirty re-faulted slabs stay resident while the pass can make room
      // with first-time and clean slabs (several rewrites then cost one
      // re-spill, one hole), but only against slabs of their own kind of
      // epoch: the CLOSING epochs first (first-time/clean, then dirty, coldest
      // first), the ACTIVE ones (same two steps) only when that was not
      // enough. Holding a dirty slab of a CLOSING epoch while slabs of the
      // ACTIVE epoch (most accesses) were spilled cost ~20 % more fault-backs
      // at live_multiple 2 (docs/tiered.md "Speed").
      for (const auto& [lo, hi] : {std::pair<uint32_t, uint32_t>{0, n_closing}, {n_closing, kEpochCount}}) {
        k_lo = lo;
        k_hi = hi;
        if (!pass(false) || im.dram_used() <= low || !pass(true) || im.dram_used() <= low) break;
      }
    } else {
      // Page unit: least recently used slabs first, whatever their epoch.
      try {
        candidates(im, kEpochCount, cands);
        std::sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) {
          return a.key != b.key ? a.key < b.key : a.id < b.id;
        });
      } catch (...) {
        cands.clear();
      }
      size_t i = 0;
      while (i < cands.size() && im.dram_used() > low) {
        // The next slice of LRU slabs, just enough for the deficit.
        const uint64_t need = (im.dram_used() - low + kSlabBytes - 1) / kSlabBytes;
        const size_t end = std::min(cands.size(), i + size_t(std::max<uint64_t>(need, 16)));
        std::vector<uint32_t> groups[kEpochCount][kNumClasses];
        for (size_t j = i; j < end; ++j)
          groups[tag_epoch(cands[j].tag)][tag_class(cands[j].tag)].push_back(cands[j].id);
        bool ok = true;
        std::vector<Marked> batch, clean;
        batch.reserve(s.stage_slabs);
        for (uint32_t e = 0; e < kEpochCount && ok; ++e)
          for (uint32_t c = 0; c < kNumClasses && ok; ++c)
            if (!groups[e][c].empty())
              ok = spill_group(im, e, c, groups[e][c], kOwnerPage, exclude, batch, clean);
        if (ok && !batch.empty()) ok = flush_batch(im, batch, kOwnerPage);
        evict_clean(im, clean);
        if (!ok) break;
        i = end;
      }
    }
  }
  // Metadata of spilled slabs: compact records free their SlabMeta pages.
  if (im.compact_on && im.dram_used() > low) im.compact_pass(budget - budget / 4);
  if (im.dram_used() > budget) s.over_budget_events.fetch_add(1, std::memory_order_relaxed);
  if (im.sink && r.bytes) im.sink->on_decommit(r.bytes, r.ranges);
}
}  // namespace

void SlabAllocator::Impl::spill_check() noexcept {
  const uint64_t budget = opts.dram_budget_bytes;
  if (dram_used() + trigger_slack(budget) <= budget) return;
  spill_pass(*this, kNone);
}

void SlabAllocator::Impl::spill_housekeeping() noexcept {
  if (!sp || !sp->dev) return;
  std::lock_guard<std::mutex> run(sp->run_mu);
  std::lock_guard<std::mutex> g(sp->mu);
  reset_dead(*sp);
}

void SlabAllocator::Impl::spill_forget(uint32_t id) noexcept {
  Spill& s = *sp;
  std::lock_guard<std::mutex> g(s.mu);
  const uint64_t l = s.loc ? s.loc[id] : 0;
  if (l) {
    drop_loc(s, l, (tags[id].load(std::memory_order_relaxed) & kTagSpilled) != 0);
    s.loc[id] = 0;
  }
  tags[id].fetch_and(~kTagSpillBits, std::memory_order_seq_cst);
}

// ---- fault-back ----------------------------------------------------------------------

Status SlabAllocator::Impl::fault_in(uint32_t id, bool may_spill, bool empty_ok) noexcept {
  Spill& s = *sp;
  std::unique_lock<std::mutex> lk(s.mu);
  uint32_t t;
  for (;;) {
    t = tags[id].load(std::memory_order_acquire);
    if (t & kTagCompact) {  // its SlabMeta page back first (compact.cpp)
      compact_touch_locked(*this, id);
      continue;
    }
    if (!(t & kTagSpillBits)) return Status::ok();
    if (!(t & kTagMoving)) break;
    s.cv.wait(lk);
  }
  const uint64_t l = s.loc[id];
  const bool ov = loc_is_overflow(l);  // a blob of the overflow region, not a zone slot
  const uint32_t z = uint32_t(l >> 32) - 1, k = uint32_t(l);
  const bool empty = empty_ok && (slabs[id].word.load(std::memory_order_acquire) & kFreeMask) ==
                                     all_free(tag_class(t));
  tags[id].fetch_or(kTagMoving, std::memory_order_seq_cst);
  if (!empty && !ov) s.zones[z].reading++;
  const uint32_t want_crc = s.crc[id];
  lk.unlock();
  const uint64_t t0 = mono_ns();
  Status st;
  if (!empty) {
    st = ov ? ovfl_read(s, l, slab_addr(id), want_crc)
            : s.dev->read(z, uint64_t(k) * kSlabBytes, slab_addr(id), kSlabBytes);
  }
  if (!st) {
    // Whatever a failed read left in the page is not data: drop it.
    (void)pages::decommit(slab_addr(id), kSlabBytes);
    s.faultback_errors.fetch_add(1, std::memory_order_relaxed);
    lk.lock();
    set_error(s, "spill fault-back read", st);
    if (!ov) s.zones[z].reading--;
    tags[id].fetch_and(~kTagMoving, std::memory_order_seq_cst);
    lk.unlock();
    s.cv.notify_all();
    return Status(st.code(), "slab: fault-back read of a spilled slab failed", st.sys_errno());
  }
  {
    std::lock_guard<std::mutex> ag(arena_mu);
    ChunkMeta& ch = chunks[id / spc];
    set_bit(backed_bits, id);
    ch.backed++;
    committed_slabs.fetch_add(1, std::memory_order_relaxed);
    epochs[ch.epoch_p1 - 1].committed_slabs.fetch_add(1, std::memory_order_relaxed);
  }
  const uint32_t sum = empty ? 0 : crc32c(slab_addr(id), kSlabBytes);
  lk.lock();
  if (!empty) {
    // The copy stays (clean) until the page changes or the slab dies.
    s.crc[id] = sum;
    clear_bit(s.dirty, id);
    s.spilled_now_bytes.fetch_sub(kSlabBytes, std::memory_order_relaxed);
    if (!ov) {
      s.zones[z].reading--;
      if (s.zones[z].live == 0 && s.zones[z].state == kZFull) s.dead_zones.push_back(z);
    }
  } else {
    // GC may have moved the copy meanwhile (the slab was kTagMoving): its
    // current place, not the one read above.
    const uint64_t l2 = s.loc[id];
    if (l2) drop_loc(s, l2, true);
    s.loc[id] = 0;
  }
  slabs[id].access_tick.store(uint32_t(coarse_ms()), std::memory_order_relaxed);
  tags[id].fetch_and(~kTagSpillBits, std::memory_order_seq_cst);
  lk.unlock();
  s.cv.notify_all();
  if (!empty) {
    s.faultbacks.fetch_add(1, std::memory_order_relaxed);
    s.faultback_bytes.fetch_add(kSlabBytes, std::memory_order_relaxed);
    s.lat.add(mono_ns() - t0);
  }
  if (may_spill) {
    const uint64_t budget = opts.dram_budget_bytes;
    if (dram_used() + trigger_slack(budget) > budget) spill_pass(*this, id);
  }
  return Status::ok();
}

// ---- public API ---------------------------------------------------------------------

void SlabAllocator::PinGuard::reset() noexcept {
  if (!im_) return;
  im_->slabs[slab_].pins.fetch_sub(1, std::memory_order_release);
  im_ = nullptr;
  ptr_ = nullptr;
}

SlabAllocator::PinGuard& SlabAllocator::PinGuard::operator=(PinGuard&& o) noexcept {
  if (this != &o) {
    reset();
    im_ = o.im_;
    slab_ = o.slab_;
    ptr_ = o.ptr_;
    o.im_ = nullptr;
  }
  return *this;
}

Result<SlabAllocator::PinGuard> SlabAllocator::pin(Handle h) noexcept {
  Impl& im = *impl_;
  const HandleFields f = handle_unpack(h.raw);
  for (;;) {
    Result<void*> p = deref(h);
    if (!p) return p.status();
    // With compact records the pin count is touched inside a MetaGuard,
    // only while the slab's SlabMeta page is resident (compact.cpp).
    MetaGuard mg(im);
    if (im.compact_on && (im.tags[f.slab_id].load(std::memory_order_acquire) & kTagCompact)) {
      im.compact_touch(f.slab_id);  // Spill::mu only: safe inside the guard
      continue;
    }
    SlabMeta& m = im.slabs[f.slab_id];
    m.pins.fetch_add(1, std::memory_order_seq_cst);
    // Pairs with the spiller's mark: either it sees the pin, or we see its mark.
    const uint32_t t = im.tags[f.slab_id].load(std::memory_order_seq_cst);
    if (!(t & kTagSpillBits)) {
      Result<void*> q = deref(h);  // still this handle's (not freed meanwhile)
      if (q) {
        PinGuard g;
        g.im_ = &im;
        g.slab_ = f.slab_id;
        g.ptr_ = *q;
        return g;
      }
      m.pins.fetch_sub(1, std::memory_order_release);
      return q.status();
    }
    m.pins.fetch_sub(1, std::memory_order_release);
  }
}

Result<void*> detail::deref_spilled(SlabAllocator::Impl& im, const SlabAllocator& a, Handle h, uint32_t id) noexcept {
  if (Status st = im.fault_in(id, true, false); !st) return st;
  return a.deref(h);
}

namespace {
void prefetch_worker(Impl* im) {
  Spill& s = *im->sp;
  std::unique_lock<std::mutex> lk(s.wmu);
  for (;;) {
    s.wcv.wait(lk, [&] { return s.stop || s.want_mask != 0; });
    if (s.stop) return;
    const uint32_t mask = s.want_mask;
    s.want_mask = 0;
    lk.unlock();
    std::vector<uint32_t> ids;
    {
      std::lock_guard<std::mutex> g(s.mu);
      try {
        uint32_t here[kMeshMax];
        for (uint32_t z = 0; z < s.zones.size(); ++z)
          for (uint32_t k = 0; k < s.zones[z].slab_at.size(); ++k)
            for (uint32_t i = 0, n = slot_ids(s, z, k, here); i < n; ++i)
              if ((mask >> tag_epoch(im->tags[here[i]].load(std::memory_order_relaxed))) & 1) ids.push_back(here[i]);
        for (const SZone& zn : s.zones)
          for (uint32_t id : zn.slab_at)
            if (id != kNone && ((mask >> tag_epoch(im->tags[id].load(std::memory_order_relaxed))) & 1))
              ids.push_back(id);
        if (s.ov) ovfl_spilled_ids(*im, mask, ids);
      } catch (...) {
      }
    }
    // The epochs asked for count as just accessed: the last access time
    // (page unit) and, for the epoch unit's order, the heat of the hottest
    // epoch.
    uint64_t hot = 0;
    for (uint32_t e = 0; e < kEpochCount; ++e) hot = std::max(hot, s.heat[e].load(std::memory_order_relaxed));
    for (uint32_t e = 0; e < kEpochCount; ++e)
      if ((mask >> e) & 1) {
        im->epochs[e].access_ms.store(coarse_ms(), std::memory_order_relaxed);
        if (s.heat[e].load(std::memory_order_relaxed) < hot) s.heat[e].store(hot, std::memory_order_relaxed);
      }
    std::sort(ids.begin(), ids.end());
    for (uint32_t id : ids) (void)im->fault_in(id, false, false);
    const uint64_t budget = im->opts.dram_budget_bytes;
    if (im->dram_used() + trigger_slack(budget) > budget) spill_pass(*im, kNone);
    lk.lock();
  }
}
}  // namespace

Status SlabAllocator::prefetch(uint32_t epoch) noexcept {
  if (epoch >= kEpochCount)
    return Status(Code::kInvalidArgument, "slab prefetch: epoch must be a ring index < 16");
  Impl& im = *impl_;
  if (!im.sp || (!im.sp->dev && !im.sp->ov)) return Status::ok();
  Spill& s = *im.sp;
  {
    std::lock_guard<std::mutex> g(s.wmu);
    s.want_mask |= 1u << epoch;
    if (!s.worker.joinable()) {
      try {
        s.worker = std::thread(prefetch_worker, &im);
      } catch (...) {
        return Status(Code::kOutOfMemory, "slab prefetch: cannot start the spill worker thread");
      }
    }
  }
  s.wcv.notify_all();
  return Status::ok();
}

SpillStats SlabAllocator::stats_spill() const noexcept {
  const Impl& im = *impl_;
  SpillStats st;
  st.dram_budget_bytes = im.opts.dram_budget_bytes;
  if (im.sp) {
    Spill& s = *im.sp;
#define X(n, kind) st.n = s.n.load(std::memory_order_relaxed);
    ZNSLAB_SLAB_SPILL_COUNTERS(X)
#undef X
    st.faultback_ns = s.lat.snapshot();
    std::lock_guard<std::mutex> g(s.mu);
    st.zones_total = uint32_t(s.zones.size());
    st.zones_free = uint32_t(s.free_zones.size());
    st.zones_open = s.n_open;
    try {
      st.last_error = s.last_error;
    } catch (...) {
    }
  }
  st.dram_committed_bytes = im.dram_used();
  st.dram_meta_bytes = im.dram_meta();
  st.dram_table_bytes = im.dram_tables();
  st.write_amplification = st.spilled_bytes ? double(st.device_bytes_written) / double(st.spilled_bytes) : 0.0;
  return st;
}

}  // namespace znslab::slab
