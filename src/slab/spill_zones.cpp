// Zone table of the slab spill (issue 11; docs/spill.md): which slabs live
// in which zone, writes at the write pointer or zone appends, resets of dead
// zones (no copy) and garbage collection (live slabs copied forward, then
// the zone reset). Every function here runs with Spill::mu held.
#include <algorithm>
#include <cstring>
#include <vector>

#include "src/common/crc32c.h"
#include "src/slab/spill_internal.h"

namespace znslab::slab::detail {

// ---- zone bookkeeping (Spill::mu held) ------------------------------------------------

void set_error(Spill& s, const char* what, const Status& st) {
  try {
    s.last_error = std::string(what) + ": " + st.to_string();
  } catch (...) {
  }
}

void unref_copy(Spill& s, uint32_t z, uint32_t k) {
  SZone& zn = s.zones[z];
  if (k >= zn.slab_at.size() || zn.slab_at[k] == kNone) return;
  const uint32_t v = zn.slab_at[k];
  if (v & kMeshBit) {
    MeshBlock& b = s.mesh[v & ~kMeshBit];
    if (b.refs && --b.refs) return;
    b.n = 0;
    s.mesh_free.push_back(v & ~kMeshBit);  // reserved at creation: no throw
  }
  zn.slab_at[k] = kNone;
  if (zn.live) zn.live--;
}

uint32_t slot_ids(const Spill& s, uint32_t z, uint32_t k, uint32_t* out) {
  const SZone& zn = s.zones[z];
  if (k >= zn.slab_at.size() || zn.slab_at[k] == kNone) return 0;
  const uint32_t v = zn.slab_at[k];
  if (!(v & kMeshBit)) {
    out[0] = v;
    return 1;
  }
  const MeshBlock& b = s.mesh[v & ~kMeshBit];
  const uint64_t here = (uint64_t(z + 1) << 32) | k;
  uint32_t n = 0;
  for (uint32_t i = 0; i < b.n; ++i)
    if (s.loc[b.ids[i]] == here) out[n++] = b.ids[i];
  return n;
}

// A slab's copy in zone z slot k is no longer needed; `spilled`: the slab
// was not resident (its only copy).
void drop_copy(Spill& s, uint32_t z, uint32_t k, bool spilled) {
  SZone& zn = s.zones[z];
  unref_copy(s, z, k);
  if (spilled) s.spilled_now_bytes.fetch_sub(kSlabBytes, std::memory_order_relaxed);
  if (zn.live == 0 && zn.reading == 0 && zn.state == kZFull) s.dead_zones.push_back(z);
}

// The slot map of a zone being written (spz entries, counted in the budget).
void ensure_map(Spill& s, SZone& zn) {
  if (zn.slab_at.size() >= s.spz) return;
  const size_t before = zn.slab_at.capacity();
  zn.slab_at.resize(s.spz, kNone);
  s.slot_map_bytes.fetch_add((zn.slab_at.capacity() - before) * sizeof(uint32_t), std::memory_order_relaxed);
}

static Status reset_zone(Spill& s, uint32_t z, bool no_copy) {
  SZone& zn = s.zones[z];
  Status st = s.dev->reset(z);
  if (!st) {
    set_error(s, "spill zone reset", st);
    return st;
  }
  s.zone_resets.fetch_add(1, std::memory_order_relaxed);
  if (no_copy) s.zone_resets_no_copy.fetch_add(1, std::memory_order_relaxed);
  if (zn.state == kZOpen) {
    s.open_of[zn.owner] = -1;
    s.n_open--;
  }
  zn.state = kZFree;
  zn.written = zn.live = 0;
  for (uint32_t v : zn.slab_at)  // (none left when the zone died; a failed GC may leave some)
    if (v != kNone && (v & kMeshBit)) {
      s.mesh[v & ~kMeshBit] = MeshBlock{};
      s.mesh_free.push_back(v & ~kMeshBit);
    }
  s.slot_map_bytes.fetch_sub(zn.slab_at.capacity() * sizeof(uint32_t), std::memory_order_relaxed);
  zn.slab_at.clear();
  zn.slab_at.shrink_to_fit();
  s.free_zones.push_back(z);
  return Status::ok();
}

// Resets every zone with no live slab (run_mu and mu held).
void reset_dead(Spill& s) {
  for (uint32_t z : s.dead_zones) {
    SZone& zn = s.zones[z];
    if (zn.state == kZFull && zn.live == 0 && zn.reading == 0) (void)reset_zone(s, z, true);
  }
  s.dead_zones.clear();
  // Open zones whose slabs all died go too (their epoch died while spilling).
  for (uint32_t o = 0; o < kOwners; ++o) {
    const int32_t z = s.open_of[o];
    if (z >= 0 && s.zones[z].live == 0 && s.zones[z].reading == 0 && s.zones[z].written > 0)
      (void)reset_zone(s, uint32_t(z), true);
  }
}

Status write_slabs(Spill& s, uint32_t z, uint32_t slot, const uint8_t* buf, uint32_t n, uint32_t* landed) {
  if (s.append_max) {
    uint32_t done = 0;
    while (done < n) {
      const uint32_t k = std::min<uint32_t>(n - done, uint32_t(s.append_max / kSlabBytes));
      Result<uint64_t> off = s.dev->append(z, buf + size_t(done) * kSlabBytes, size_t(k) * kSlabBytes);
      s.spill_ios.fetch_add(1, std::memory_order_relaxed);
      if (!off) return off.status();
      if (done == 0) *landed = uint32_t(*off / kSlabBytes);
      else if (*off / kSlabBytes != *landed + done)
        return Status(Code::kCorrupt, "slab spill: zone append landed out of order");
      done += k;
    }
    return Status::ok();
  }
  *landed = slot;
  s.spill_ios.fetch_add(1, std::memory_order_relaxed);
  return s.dev->write(z, uint64_t(slot) * kSlabBytes, buf, size_t(n) * kSlabBytes);
}


// A copy of slab `id` whose slab is resident (no spill bit: a clean copy
// kept after a fault-back) costs nothing to drop: the page is in DRAM and is
// written again only if it is spilled again.
static bool resident_copy(const Spill& s, uint32_t id) {
  return !(s.tags[id].load(std::memory_order_acquire) & kTagSpillBits);
}

// The allocated slots of slab `id` (bitmap, from the DRAM slab word) and
// its class. A spilled slab's set only shrinks (frees) until it is read back.
static uint64_t used_slots(const Spill& s, uint32_t id, uint32_t* cls) {
  const uint32_t c = tag_class(s.tags[id].load(std::memory_order_relaxed));
  *cls = c;
  uint64_t w;
  if (!compact_word(s, id, &w)) w = s.slabs[id].word.load(std::memory_order_acquire);
  return ~w & all_free(c);
}

// A spilled slab that GC packs with others: meshing on and at most half of
// its slots allocated.
static bool sparse(const Spill& s, uint32_t id) {
  if (!s.mesh_on) return false;
  uint32_t c;
  const uint64_t u = used_slots(s, id, &c);
  return uint32_t(__builtin_popcountll(u)) * 2 <= kSlots[c];
}

// Zone dz (owner's open zone) is done when its write pointer reached the end.
static void close_if_full(Spill& s, uint32_t dz, uint32_t owner) {
  SZone& d = s.zones[dz];
  if (d.written >= s.spz && d.state == kZOpen) {
    d.state = kZFull;
    s.open_of[owner] = -1;
    s.n_open--;
  }
}

// A write into owner's zone dz failed: its write pointer is unknown, so the
// zone takes no more writes (finished, releasing its open/active resource;
// its earlier slabs stay readable).
static void abandon(Spill& s, uint32_t dz, uint32_t owner, const Status& st) {
  set_error(s, "spill GC write", st);
  (void)s.dev->finish(dz);
  s.zones[dz].state = kZFull;
  s.open_of[owner] = -1;
  s.n_open--;
}

// Reads the copies of n slabs (zone `victim`, slots from[j]) into
// gc_stage page j: one read per run of consecutive slots; a slot equal to
// the previous one (members of one shared block) is copied, not re-read.
static bool gc_read(Spill& s, uint32_t victim, const uint32_t* from, uint32_t n) {
  uint8_t* base = s.gc_stage.base();
  for (uint32_t j = 0; j < n;) {
    if (j && from[j] == from[j - 1]) {
      std::memcpy(base + size_t(j) * kSlabBytes, base + size_t(j - 1) * kSlabBytes, kSlabBytes);
      ++j;
      continue;
    }
    uint32_t run = 1;
    while (j + run < n && from[j + run] == from[j] + run) ++run;
    Status st = s.dev->read(victim, uint64_t(from[j]) * kSlabBytes, base + size_t(j) * kSlabBytes,
                            size_t(run) * kSlabBytes);
    if (!st) {
      set_error(s, "spill GC read", st);
      return false;
    }
    j += run;
  }
  return true;
}

// Copies `n` live slabs (ids, source slots `from`) of zone `victim` into
// zone dz at its write pointer. False on a device error (dz abandoned if
// its write failed).
static bool gc_copy(Spill& s, uint32_t victim, uint32_t dz, uint32_t owner, const uint32_t* ids, const uint32_t* from,
                    uint32_t n) {
  SZone& d = s.zones[dz];
  if (!gc_read(s, victim, from, n)) return false;
  uint32_t landed = 0;
  Status st = write_slabs(s, dz, d.written, s.gc_stage.base(), n, &landed);
  if (!st) {
    abandon(s, dz, owner, st);
    return false;
  }
  ensure_map(s, d);
  for (uint32_t j = 0; j < n; ++j) {
    d.slab_at[landed + j] = ids[j];
    unref_copy(s, victim, from[j]);
    s.loc[ids[j]] = (uint64_t(dz + 1) << 32) | (landed + j);
  }
  d.live += n;
  d.written = std::max(d.written, landed + n);
  s.gc_copied_bytes.fetch_add(uint64_t(n) * kSlabBytes, std::memory_order_relaxed);
  s.device_bytes_written.fetch_add(uint64_t(n) * kSlabBytes, std::memory_order_relaxed);
  close_if_full(s, dz, owner);
  return true;
}

// Makes sure `need` unused MeshBlock entries exist (the table grows by
// doubling; its bytes count in the DRAM budget). False when out of memory.
static bool mesh_reserve(Spill& s, uint32_t need) {
  while (s.mesh_free.size() < need) {
    const size_t old = s.mesh.size(), cap0 = s.mesh.capacity(), fcap0 = s.mesh_free.capacity();
    const size_t want = std::max<size_t>(64, old * 2);
    if (want >= kMeshBit) return false;
    try {
      s.mesh.resize(want);
      s.mesh_free.reserve(want);
    } catch (...) {
      return false;
    }
    for (size_t i = want; i-- > old;) s.mesh_free.push_back(uint32_t(i));
    s.slot_map_bytes.fetch_add((s.mesh.capacity() - cap0) * sizeof(MeshBlock) +
                                   (s.mesh_free.capacity() - fcap0) * sizeof(uint32_t),
                               std::memory_order_relaxed);
  }
  return true;
}

// Packs n sparse spilled slabs (copies in zone `victim` at slots from[j],
// sorted by class, fullest first) into as few 4 KiB blocks as possible
// (first fit decreasing: same class, allocated slots disjoint, <= kMeshMax
// per block), each slab's allocated slots at their own offsets, the rest
// zero, and writes the blocks into the GC zone, stage_slabs - 1 at a time. A
// slab that shares with no other is left to the caller (alone_ids/from:
// copied like a dense slab, into its epoch's zone when it has one). False
// on a device error or when no zone is left (slabs not yet written keep
// their copies in the victim).
static bool gc_mesh(Spill& s, uint32_t victim, const uint32_t* ids, const uint32_t* from, uint32_t n,
                    std::vector<uint32_t>& alone_ids, std::vector<uint32_t>& alone_from) {
  std::vector<MeshBin>& bins = s.mesh_bins;  // reserved at init (spz), counted in the budget
  bins.clear();
  try {
    bins.reserve(n);
  } catch (...) {
    return false;
  }
  size_t class_start = 0;
  for (uint32_t j = 0; j < n; ++j) {
    uint32_t c;
    const uint64_t u = used_slots(s, ids[j], &c);
    if (!bins.empty() && bins.back().cls != c) class_start = bins.size();
    size_t b = class_start;
    while (b < bins.size() && !(bins[b].n < kMeshMax && !(bins[b].used & u))) ++b;
    if (b == bins.size()) bins.push_back(MeshBin{0, c, 0, {}});  // reserved: no throw
    bins[b].used |= u;
    bins[b].member[bins[b].n++] = j;
  }
  size_t kept = 0;
  for (size_t b = 0; b < bins.size(); ++b) {
    if (bins[b].n == 1) {
      try {
        alone_ids.push_back(ids[bins[b].member[0]]);
        alone_from.push_back(from[bins[b].member[0]]);
        continue;
      } catch (...) {
      }
    }
    bins[kept++] = bins[b];
  }
  bins.resize(kept);
  uint8_t* page = s.gc_stage.base();
  uint64_t page_of = ~uint64_t(0);  // source slot in `page`
  for (size_t done = 0; done < bins.size();) {
    // gc_stage page 0 holds the slab being read, pages 1.. the blocks.
    const uint32_t chunk = uint32_t(std::min<size_t>(bins.size() - done, s.stage_slabs - 1));
    uint32_t multi = 0;
    for (uint32_t i = 0; i < chunk; ++i) multi += bins[done + i].n > 1;
    if (!mesh_reserve(s, multi)) return false;
    for (uint32_t i = 0; i < chunk; ++i) {
      const MeshBin& bn = bins[done + i];
      uint8_t* blk = s.gc_stage.base() + size_t(1 + i) * kSlabBytes;
      std::memset(blk, 0, kSlabBytes);  // free slots: unspecified (zero here)
      const size_t sz = kSizeClasses[bn.cls];
      for (uint32_t m = 0; m < bn.n; ++m) {
        const uint32_t j = bn.member[m];
        if (page_of != from[j]) {
          Status st = s.dev->read(victim, uint64_t(from[j]) * kSlabBytes, page, kSlabBytes);
          if (!st) {
            set_error(s, "spill GC read", st);
            return false;
          }
          page_of = from[j];
        }
        // The slab's allocated set now (it can only have shrunk since packing).
        uint32_t c;
        for (uint64_t u = used_slots(s, ids[j], &c); u; u &= u - 1) {
          const size_t k = size_t(__builtin_ctzll(u));
          std::memcpy(blk + k * sz, page + k * sz, sz);
        }
      }
    }
    for (uint32_t w = 0; w < chunk;) {
      const uint32_t dz = pick_zone(s, kOwnerGc);
      if (dz == kNone || dz == victim) return false;
      SZone& d = s.zones[dz];
      const uint32_t k = std::min(chunk - w, s.spz - d.written);
      uint32_t landed = 0;
      Status st = write_slabs(s, dz, d.written, s.gc_stage.base() + size_t(1 + w) * kSlabBytes, k, &landed);
      if (!st) {
        abandon(s, dz, kOwnerGc, st);
        return false;
      }
      ensure_map(s, d);
      for (uint32_t i = 0; i < k; ++i) {
        const MeshBin& bn = bins[done + w + i];
        const uint32_t slot = landed + i;
        if (bn.n == 1) {
          d.slab_at[slot] = ids[bn.member[0]];
        } else {
          const uint32_t mi = s.mesh_free.back();
          s.mesh_free.pop_back();
          MeshBlock& mb = s.mesh[mi];
          mb.refs = mb.n = bn.n;
          for (uint32_t m = 0; m < bn.n; ++m) mb.ids[m] = ids[bn.member[m]];
          d.slab_at[slot] = kMeshBit | mi;
          s.gc_mesh_blocks.fetch_add(1, std::memory_order_relaxed);
          s.gc_meshed_slabs.fetch_add(bn.n, std::memory_order_relaxed);
        }
        for (uint32_t m = 0; m < bn.n; ++m) {
          const uint32_t j = bn.member[m];
          unref_copy(s, victim, from[j]);
          s.loc[ids[j]] = (uint64_t(dz + 1) << 32) | slot;
        }
      }
      d.live += k;
      d.written = std::max(d.written, landed + k);
      s.gc_copied_bytes.fetch_add(uint64_t(k) * kSlabBytes, std::memory_order_relaxed);
      s.device_bytes_written.fetch_add(uint64_t(k) * kSlabBytes, std::memory_order_relaxed);
      close_if_full(s, dz, kOwnerGc);
      w += k;
    }
    done += chunk;
  }
  return true;
}

// GC cost of zone z in quarter slabs: a spilled slab to copy costs 4, a
// sparse one (meshed with others) 1, a resident slab's clean copy 0 (dropped).
// Stops counting at `bound` (returns a value >= bound): the caller only
// looks for a zone cheaper than the best so far.
static uint64_t gc_cost(const Spill& s, uint32_t z, uint64_t bound) {
  const SZone& zn = s.zones[z];
  uint64_t cost = 0;
  if (!zn.live) return 0;
  uint32_t ids[kMeshMax];
  for (uint32_t k = 0; k < zn.slab_at.size() && cost < bound; ++k) {
    const uint32_t n = slot_ids(s, z, k, ids);
    for (uint32_t i = 0; i < n; ++i)
      if (!resident_copy(s, ids[i])) cost += sparse(s, ids[i]) ? 1 : 4;
  }
  return cost;
}

// Collects the full zone that costs the fewest copies: copies of resident
// slabs are dropped (no write); sparse slabs only on the device are meshed
// into shared blocks in the GC zone; other slabs only on the device are
// copied forward, each into the open zone of its own epoch when that zone
// has room (so the copy dies with its epoch's zones instead of mixing
// epochs in the GC zone), else into the GC zone; then the zone is reset.
// Returns false when nothing can be freed.
static bool gc_one(Spill& s) {
  int32_t victim = -1;
  uint64_t best_cost = 0;
  for (uint32_t z = 0; z < s.zones.size(); ++z) {
    const SZone& zn = s.zones[z];
    if (zn.state != kZFull || zn.reading) continue;
    const uint64_t cost = gc_cost(s, z, victim < 0 ? UINT64_MAX : best_cost);
    if (victim < 0 || cost < best_cost) {
      victim = int32_t(z);
      best_cost = cost;
    }
  }
  if (victim < 0) return false;
  SZone& v = s.zones[victim];
  if (v.live == 0) return reset_zone(s, uint32_t(victim), true).is_ok();
  if (best_cost >= uint64_t(s.spz) * 4) return false;  // nothing to gain
  std::vector<uint32_t> moved_ids, moved_from, sp_ids, sp_from;
  try {
    moved_ids.reserve(best_cost);
    moved_from.reserve(best_cost);
  } catch (...) {
    return false;
  }
  uint32_t here[kMeshMax];
  for (uint32_t k = 0; k < v.slab_at.size(); ++k) {
    const uint32_t n = slot_ids(s, uint32_t(victim), k, here);
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t id = here[i];
      if (resident_copy(s, id)) {
        unref_copy(s, uint32_t(victim), k);
        s.loc[id] = 0;
        s.gc_dropped_clean.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      try {
        if (sparse(s, id)) {
          sp_ids.push_back(id);
          sp_from.push_back(k);
        } else {
          moved_ids.push_back(id);
          moved_from.push_back(k);
        }
      } catch (...) {
        return false;
      }
    }
  }
  const bool copied = !moved_ids.empty() || !sp_ids.empty();
  // Sparse slabs: meshed, first fit decreasing (by class, fullest first).
  if (!sp_ids.empty()) {
    std::vector<uint32_t> oi, of;
    try {
      oi.resize(sp_ids.size());
      of.resize(sp_ids.size());
    } catch (...) {
      return false;
    }
    std::vector<std::pair<uint64_t, uint32_t>> key;
    try {
      key.reserve(sp_ids.size());
    } catch (...) {
      return false;
    }
    for (uint32_t i = 0; i < sp_ids.size(); ++i) {
      uint32_t c;
      const uint64_t u = used_slots(s, sp_ids[i], &c);
      key.emplace_back((uint64_t(c) << 32) | (64 - uint32_t(__builtin_popcountll(u))), i);
    }
    std::sort(key.begin(), key.end());
    for (uint32_t i = 0; i < key.size(); ++i) {
      oi[i] = sp_ids[key[i].second];
      of[i] = sp_from[key[i].second];
    }
    if (!gc_mesh(s, uint32_t(victim), oi.data(), of.data(), uint32_t(oi.size()), moved_ids, moved_from))
      return false;
  }
  // Into each epoch's open zone first (in slot order within an epoch).
  std::vector<uint32_t> rest_ids, rest_from;
  rest_ids.reserve(moved_ids.size());
  rest_from.reserve(moved_ids.size());
  std::vector<uint32_t> ids, from;
  for (uint32_t e = 0; e < kEpochCount; ++e) {
    const int32_t oz = s.open_of[e];
    ids.clear();
    from.clear();
    for (size_t i = 0; i < moved_ids.size(); ++i)
      if (tag_epoch(s.tags[moved_ids[i]].load(std::memory_order_relaxed)) == e) {
        ids.push_back(moved_ids[i]);
        from.push_back(moved_from[i]);
      }
    if (ids.empty()) continue;
    size_t i = 0;
    if (oz >= 0 && uint32_t(oz) != uint32_t(victim) && s.zones[oz].state == kZOpen) {
      while (i < ids.size() && s.open_of[e] == oz) {
        const uint32_t room = s.spz - s.zones[oz].written;
        const uint32_t n = uint32_t(std::min<size_t>({ids.size() - i, room, s.stage_slabs}));
        if (n == 0) break;
        if (!gc_copy(s, uint32_t(victim), uint32_t(oz), e, ids.data() + i, from.data() + i, n)) return false;
        s.zones[oz].last_use = ++s.use_clock;
        i += n;
      }
    }
    rest_ids.insert(rest_ids.end(), ids.begin() + long(i), ids.end());
    rest_from.insert(rest_from.end(), from.begin() + long(i), from.end());
  }
  size_t i = 0;
  while (i < rest_ids.size()) {
    const uint32_t dz = pick_zone(s, kOwnerGc);
    if (dz == kNone || dz == uint32_t(victim)) return false;
    const uint32_t room = s.spz - s.zones[dz].written;
    const uint32_t n = uint32_t(std::min<size_t>({rest_ids.size() - i, room, s.stage_slabs}));
    if (!gc_copy(s, uint32_t(victim), dz, kOwnerGc, rest_ids.data() + i, rest_from.data() + i, n)) return false;
    i += n;
  }
  s.gc_runs.fetch_add(1, std::memory_order_relaxed);
  return reset_zone(s, uint32_t(victim), !copied).is_ok();
}

// The open zone of `owner`, opening a free one (finishing the least
// recently used open zone of another owner at the open limit; collecting
// garbage when free zones run out: one stays reserved for GC). kNone when
// the device is full of live data.
uint32_t pick_zone(Spill& s, uint32_t owner, uint32_t closing_mask) {
  const int32_t cur = s.open_of[owner];
  if (cur >= 0) {
    s.zones[cur].last_use = ++s.use_clock;
    return uint32_t(cur);
  }
  // Handoff: an epoch's zone is adopted by the next epoch to spill once its
  // owner is CLOSING (a CLOSING epoch that was spilled is done writing), so
  // the zone fills up instead of being finished half empty. A zone then
  // holds the tail of one epoch and the head of the next (epochs spill in
  // age order and die in about that order). Bit e of closing_mask: epoch e
  // is CLOSING.
  if (owner < kEpochCount) {
    int32_t best = -1;
    for (uint32_t o = 0; o < kEpochCount; ++o) {
      const int32_t z = s.open_of[o];
      if (z < 0 || o == owner || !((closing_mask >> o) & 1)) continue;
      if (best < 0 || s.zones[z].last_use < s.zones[best].last_use) best = z;
    }
    if (best >= 0) {
      SZone& zn = s.zones[best];
      s.open_of[zn.owner] = -1;
      zn.owner = uint8_t(owner);
      s.open_of[owner] = best;
      zn.last_use = ++s.use_clock;
      s.zone_handoffs.fetch_add(1, std::memory_order_relaxed);
      return uint32_t(best);
    }
  }
  const uint32_t limit = owner == kOwnerGc ? s.open_limit + 1 : s.open_limit;
  uint32_t owners_open = 0;
  for (uint32_t o = 0; o < kOwners; ++o)
    if (s.open_of[o] >= 0 && (owner == kOwnerGc || o != kOwnerGc)) ++owners_open;
  if (owners_open >= limit) {
    int32_t lru = -1;
    for (uint32_t o = 0; o < kOwners; ++o) {
      const int32_t z = s.open_of[o];
      if (z < 0 || o == owner || (owner != kOwnerGc && o == kOwnerGc)) continue;
      if (lru < 0 || s.zones[z].last_use < s.zones[lru].last_use) lru = z;
    }
    if (lru >= 0) {
      SZone& zn = s.zones[lru];
      Status st = s.dev->finish(uint32_t(lru));
      if (!st) set_error(s, "spill zone finish", st);
      s.zone_finishes.fetch_add(1, std::memory_order_relaxed);
      s.open_of[zn.owner] = -1;
      s.n_open--;
      zn.state = kZFull;
      if (zn.live == 0 && zn.reading == 0) s.dead_zones.push_back(uint32_t(lru));
    }
  }
  const size_t reserve = owner == kOwnerGc ? 0 : 1;
  if (s.free_zones.size() <= reserve) reset_dead(s);
  if (owner != kOwnerGc) {
    for (int guard = 0; s.free_zones.size() <= reserve && guard < 64; ++guard)
      if (!gc_one(s)) break;
  }
  if (s.free_zones.size() <= reserve) return kNone;
  const uint32_t z = s.free_zones.back();
  s.free_zones.pop_back();
  SZone& zn = s.zones[z];
  zn.state = kZOpen;
  zn.owner = uint8_t(owner);
  zn.written = zn.live = zn.reading = 0;
  zn.last_use = ++s.use_clock;
  s.open_of[owner] = int32_t(z);
  s.n_open++;
  return z;
}

}  // namespace znslab::slab::detail
