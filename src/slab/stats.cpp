// Stats snapshots of the temporal slab allocator (seed 002 "Phase 2.0 Core
// Stats API") and their JSON export, schema "znslab.slab-stats/1".
// Snapshots sum the per-thread counter shards; they are consistent per
// counter, not across counters, while other threads run.
#include <bit>
#include <mutex>

#include <nlohmann/json.hpp>

#include "src/slab/slab_internal.h"

namespace znslab::slab {

using namespace detail;

namespace {
struct ClassSums {
#define X(n) int64_t n = 0;
  ZNSLAB_SLAB_CLASS_COUNTERS(X)
#undef X
};

ClassSums sum_class(const SlabAllocator::Impl& im, uint32_t c) noexcept {
  ClassSums s;
  for (uint32_t i = 0; i <= kShards; ++i) {
    const ClassCounters& cc = im.shards[i].cls[c];
#define X(n) s.n += cc.n.load(std::memory_order_relaxed);
    ZNSLAB_SLAB_CLASS_COUNTERS(X)
#undef X
  }
  return s;
}

uint64_t pos(int64_t v) { return v > 0 ? uint64_t(v) : 0; }
double rate(uint64_t recycled, uint64_t fresh) {
  return recycled + fresh ? 100.0 * double(recycled) / double(recycled + fresh) : 0.0;
}
}  // namespace

GlobalStats SlabAllocator::stats_global() const noexcept {
  impl_->tc_flush_self();  // the caller's own cached slots count as free slots
  const Impl& im = *impl_;
  GlobalStats g;
  for (uint32_t c = 0; c < kNumClasses; ++c) {
    const ClassSums s = sum_class(im, c);
    g.live_bytes += pos(s.allocs - s.frees) * kSizeClasses[c];
    g.requested_bytes += pos(s.requested_bytes);
    g.live_objects += pos(s.allocs - s.frees);
    g.empty_slabs += pos(s.empty_slabs + im.cold_empty[c].load(std::memory_order_relaxed));
    g.total_slabs += pos(im.attached[c].load(std::memory_order_relaxed));
    g.allocs += pos(s.allocs);
    g.frees += pos(s.frees);
    g.slow_path_cache_miss += pos(s.slow_path_cache_miss);
    g.slow_path_partial_null += pos(s.slow_path_partial_null);
    g.slow_path_partial_full += pos(s.slow_path_partial_full);
    g.slabs_recycled += pos(s.slabs_recycled);
    g.slabs_fresh += pos(s.slabs_fresh);
    g.scan_cas_attempts += pos(s.allocs + s.cas_rollbacks + s.cas_retries);
    g.scan_cas_retries += pos(s.cas_retries);
    g.scan_adapt_checks += im.scan[c].checks.load(std::memory_order_relaxed);
    g.scan_adapt_switches += im.scan[c].switches.load(std::memory_order_relaxed);
    g.thread_cached_slots += pos(s.cached);
  }
  for (uint32_t i = 0; i <= kShards; ++i) {
    const Shard& sh = im.shards[i];
    g.stale_handle_frees += pos(sh.stale_handle_frees.load(std::memory_order_relaxed));
    g.double_frees += pos(sh.double_frees.load(std::memory_order_relaxed));
    g.invalid_handle_frees += pos(sh.invalid_handle_frees.load(std::memory_order_relaxed));
    g.stale_derefs += pos(sh.stale_derefs.load(std::memory_order_relaxed));
    g.slow_path_epoch_closed += pos(sh.slow_path_epoch_closed.load(std::memory_order_relaxed));
  }
  g.pending_slabs = im.pending_slabs.load(std::memory_order_relaxed);
  g.empty_slabs += g.pending_slabs;
  g.total_slabs += g.pending_slabs;
  g.committed_bytes = im.committed_slabs.load(std::memory_order_relaxed) * kSlabBytes;
  g.madvise_calls = im.madvise_calls.load(std::memory_order_relaxed);
  g.madvise_bytes = im.madvise_bytes.load(std::memory_order_relaxed);
  g.madvise_failures = im.madvise_failures.load(std::memory_order_relaxed);
  g.recycle_rate_pct = rate(g.slabs_recycled, g.slabs_fresh);
  g.epoch_advances = im.epoch_advances.load(std::memory_order_relaxed);
  g.epoch_closes = im.epoch_closes.load(std::memory_order_relaxed);
  g.chunks_returned = im.chunks_returned.load(std::memory_order_relaxed);
  g.retired_slab_ids = im.retired_slabs.load(std::memory_order_relaxed);
  g.populated_slabs = im.populated_slabs.load(std::memory_order_relaxed);
  g.decommit_ranges = im.decommit_ranges.load(std::memory_order_relaxed);
  g.domain_violations = im.domain_violations.load(std::memory_order_relaxed);
  return g;
}

ClassStats SlabAllocator::stats_class(uint32_t c) const noexcept {
  impl_->tc_flush_self();  // the caller's own cached slots count as free slots
  const Impl& im = *impl_;
  ClassStats cs;
  if (c >= kNumClasses) return cs;
  const ClassSums s = sum_class(im, c);
  cs.size_class = c;
  cs.object_bytes = kSizeClasses[c];
  cs.slots_per_slab = kSlots[c];
  cs.total_slabs = pos(im.attached[c].load(std::memory_order_relaxed));
  cs.committed_bytes = cs.total_slabs * kSlabBytes;
  cs.live_objects = pos(s.allocs - s.frees);
  cs.live_bytes = cs.live_objects * kSizeClasses[c];
  cs.empty_slabs = pos(s.empty_slabs + im.cold_empty[c].load(std::memory_order_relaxed));
  cs.slow_path_cache_miss = pos(s.slow_path_cache_miss);
  cs.slow_path_partial_null = pos(s.slow_path_partial_null);
  cs.slow_path_partial_full = pos(s.slow_path_partial_full);
  cs.recycle_rate_pct = rate(pos(s.slabs_recycled), pos(s.slabs_fresh));
  cs.scan_mode = ScanMode(im.scan[c].mode.load(std::memory_order_relaxed));
  cs.scan_adapt_checks = im.scan[c].checks.load(std::memory_order_relaxed);
  cs.scan_adapt_switches = im.scan[c].switches.load(std::memory_order_relaxed);
  return cs;
}

EpochStats SlabAllocator::stats_epoch(uint32_t e) const noexcept {
  impl_->tc_flush_self();  // the caller's own cached slots count as free slots
  Impl& im = *impl_;
  EpochStats es;
  if (e >= kEpochCount) return es;
  const EpochSlot& ep = im.epochs[e];
  es.epoch = e;
  es.state = EpochState(ep.state.load(std::memory_order_acquire));
  es.era = ep.era.load(std::memory_order_acquire);
  es.open_since_ns = ep.open_since_ns.load(std::memory_order_relaxed);
  int64_t live = 0;
  for (uint32_t i = 0; i <= kShards; ++i) live += im.shards[i].epoch_live[e].load(std::memory_order_relaxed);
  es.live_objects = pos(live);
  es.committed_bytes = ep.committed_slabs.load(std::memory_order_relaxed) * kSlabBytes;
  for (uint32_t c = 0; c < kNumClasses; ++c)
    es.reclaimable_slabs += im.bins[e][c].empty_hint.load(std::memory_order_relaxed);
  es.domain_refcount = pos(ep.domain_refcount.load(std::memory_order_relaxed));
  es.rss_before_close = ep.rss_before_close.load(std::memory_order_relaxed);
  es.rss_after_close = ep.rss_after_close.load(std::memory_order_relaxed);
  try {
    std::lock_guard<std::mutex> g(im.epoch_mu);
    es.label.assign(ep.label, strnlen(ep.label, sizeof ep.label));
  } catch (...) {
    // label left empty: no memory for the string
  }
  return es;
}

// Field lists, declared once for the JSON export (the global counters: slab.h).
#define ZNSLAB_CLASS_STATS_FIELDS(X)                                                          \
  X(size_class) X(object_bytes) X(slots_per_slab) X(committed_bytes) X(live_bytes)           \
  X(live_objects) X(empty_slabs) X(total_slabs) X(slow_path_cache_miss)                      \
  X(slow_path_partial_null) X(slow_path_partial_full) X(recycle_rate_pct) X(scan_adapt_checks) \
  X(scan_adapt_switches)
#define ZNSLAB_EPOCH_STATS_FIELDS(X)                                                         \
  X(epoch) X(era) X(open_since_ns) X(live_objects) X(committed_bytes) X(reclaimable_slabs) \
  X(domain_refcount) X(rss_before_close) X(rss_after_close) X(label)

std::string SlabAllocator::stats_json() const {
  using nlohmann::json;
  json doc;
  doc["schema"] = "znslab.slab-stats/1";
  const Options& o = impl_->opts;
  doc["options"] = {{"reclaim", reclaim_policy_name(o.reclaim)},
                    {"arena_bytes", o.arena_bytes},
                    {"chunk_bytes", o.chunk_bytes},
                    {"use_thp", o.use_thp},
                    {"reclaim_batch_slabs", o.reclaim_batch_slabs},
                    {"reclaim_batch_pct", o.reclaim_batch_pct},
                    {"scan_retry_threshold", o.scan_retry_threshold},
                    {"scan_dwell_checks", o.scan_dwell_checks},
                    {"thread_cache", o.thread_cache},
                    {"solo_free", o.solo_free},
                    {"populate_slabs", o.populate_slabs}};
  const GlobalStats g = stats_global();
  json& gj = doc["global"];
  gj["version"] = g.version;
  for_each_counter(g, [&](const char* key, const auto& v) { gj[key] = v; });
  json classes = json::array();
  for (uint32_t c = 0; c < kNumClasses; ++c) {
    const ClassStats s = stats_class(c);
    json j;
#define X(n) j[#n] = s.n;
    ZNSLAB_CLASS_STATS_FIELDS(X)
#undef X
    j["scan_mode"] = s.scan_mode == ScanMode::kRandomized ? "randomized" : "sequential";
    classes.push_back(std::move(j));
  }
  doc["classes"] = std::move(classes);
  json epochs = json::array();
  for (uint32_t e = 0; e < kEpochCount; ++e) {
    const EpochStats s = stats_epoch(e);
    json j;
#define X(n) j[#n] = s.n;
    ZNSLAB_EPOCH_STATS_FIELDS(X)
#undef X
    j["state"] = epoch_state_name(s.state);
    epochs.push_back(std::move(j));
  }
  doc["epochs"] = std::move(epochs);
  return doc.dump();
}

// ---- invariants -------------------------------------------------------------------

Status SlabAllocator::verify() const noexcept {
  Impl& im = *impl_;
  im.tc_flush_self();
  std::lock_guard<std::mutex> g(im.arena_mu);
  // Compact SlabMeta pages come back first (the next spill pass compacts
  // them again).
  if (im.compact_groups.load(std::memory_order_relaxed)) im.compact_expand_all();
  int64_t live[kNumClasses] = {};
  int64_t held[kNumClasses] = {};  // claimed, not allocated: in thread caches
  uint64_t attached_slabs = 0;
  const uint32_t hwm = im.hwm_slabs.load(std::memory_order_acquire);
  for (uint32_t ci = 0; ci * im.spc < hwm; ++ci) {
    const ChunkMeta& ch = im.chunks[ci];
    if (!ch.epoch_p1) continue;
    uint32_t used = 0;
    for (uint32_t id = ci * im.spc; id < (ci + 1) * im.spc; ++id) {
      const bool unused = (im.unused_bits[id >> 6] >> (id & 63)) & 1;
      const bool retired = (im.retired_bits[id >> 6] >> (id & 63)) & 1;
      if (unused || retired) continue;
      ++used;
      const SlabMeta& m = im.slabs[id];
      const uint32_t t = im.tags[id].load(std::memory_order_acquire);
      const uint64_t w = m.word.load(std::memory_order_acquire);
      if (w & kDet) continue;  // detached, not yet absorbed: counted as pending
      const bool backed = (im.backed_bits[id >> 6] >> (id & 63)) & 1;
      if (!backed && !(t & kTagSpilled))
        return Status(Code::kCorrupt, "slab verify: attached slab neither committed nor spilled");
      if (!(t & kTagAttached)) return Status(Code::kCorrupt, "slab verify: used slab not attached");
      const uint32_t c = tag_class(t);
      if (c >= kNumClasses) return Status(Code::kCorrupt, "slab verify: bad class in tag");
      if ((w & kFreeMask) & ~all_free(c))
        return Status(Code::kCorrupt, "slab verify: free bit beyond slab capacity");
      uint32_t allocated = 0;
      for (uint32_t s = 0; s < kSlots[c]; ++s)
        if (m.slot[s].load(std::memory_order_acquire) & 1) ++allocated;
      const uint32_t free_slots = uint32_t(std::popcount(w & kFreeMask));
      if (allocated + free_slots > kSlots[c])
        return Status(Code::kCorrupt, "slab verify: live + free > capacity");
      live[c] += allocated;
      held[c] += kSlots[c] - allocated - free_slots;
      if (backed) ++attached_slabs;  // spilled slabs are not committed
    }
    if (used != ch.used) return Status(Code::kCorrupt, "slab verify: chunk used count mismatch");
  }
  for (uint32_t c = 0; c < kNumClasses; ++c) {
    const ClassSums s = sum_class(im, c);
    if (s.allocs - s.frees != live[c])
      return Status(Code::kCorrupt, "slab verify: class live_objects != allocated slots");
    if (s.cached != held[c])
      return Status(Code::kCorrupt, "slab verify: live + free + thread-cached != capacity");
  }
  const uint64_t committed = im.committed_slabs.load(std::memory_order_relaxed);
  const uint64_t pending = im.pending_slabs.load(std::memory_order_relaxed);
  // Detached-not-absorbed slabs were skipped above but are still committed.
  uint64_t det_unabsorbed = 0, det_backed = 0;
  for (uint32_t id = im.det_head.load(std::memory_order_acquire); id != kNone;
       id = im.slabs[id].next_det.load(std::memory_order_relaxed)) {
    ++det_unabsorbed;
    det_backed += (im.backed_bits[id >> 6] >> (id & 63)) & 1;
  }
  // Detached spilled slabs were counted in pending but are not committed.
  const uint64_t absorbed_pending = pending - det_unabsorbed;
  if (committed != attached_slabs + det_backed + absorbed_pending)
    return Status(Code::kCorrupt, "slab verify: committed != attached + pending slabs");
  return Status::ok();
}

}  // namespace znslab::slab
