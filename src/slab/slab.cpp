// The lock-free paths of the temporal slab allocator: allocate, free, deref.
//
// Fast path of allocate (no lock, no syscall, no heap, no atomic RMW): pop a
// claimed free slot from the thread's magazine for (epoch, class) (see
// slab_internal.h, "Thread cache") and publish its odd sequence. When the
// magazine is empty, the shared path loads the bin's current slab, validates
// its tag, CASes up to kMagCap + 1 free bits out of the slab word (which must
// carry kCur), re-validates the tag and keeps the extra slots in the
// magazine. Free: validate the handle, CAS the slot sequence (odd -> even:
// the single ownership point), then push the slot on the thread's magazine
// (epoch ACTIVE) or set its bit in the slab word; the word's state decides
// whether the slab goes back on the partial stack (lock-free push) or is
// detached for the arena (lock-free push). Syscalls (madvise) happen only in
// the batched reclaim, which runs on the allocation slow path (bin refill)
// and, as a backstop for free-only phases, in a free that queues the
// Options::reclaim_batch_slabs-th empty slab.
#include <pthread.h>
#include <linux/membarrier.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bit>
#include <cstring>
#include <ctime>

#include "src/slab/slab_internal.h"
#include "zns/zoned_device.h"

namespace znslab::slab {

using namespace detail;

// ---- size classes, names ------------------------------------------------------

namespace {
struct ClassTable {
  uint8_t cls[kMaxObjectBytes + 1];
  constexpr ClassTable() : cls() {
    cls[0] = kNumClasses;
    uint32_t c = 0;
    for (uint32_t b = 1; b <= kMaxObjectBytes; ++b) {
      while (kSizeClasses[c] < b) ++c;
      cls[b] = uint8_t(c);
    }
  }
};
// Built at compile time: no initialisation race (seed 002 issue 4).
constexpr ClassTable kClassTable;
}  // namespace

uint32_t size_class_of(size_t bytes) noexcept {
  return bytes <= kMaxObjectBytes ? kClassTable.cls[bytes] : kNumClasses;
}

const char* epoch_state_name(EpochState s) noexcept {
  return s == EpochState::kActive ? "ACTIVE" : "CLOSING";
}

const char* reclaim_policy_name(ReclaimPolicy p) noexcept {
  switch (p) {
    case ReclaimPolicy::kImmediate: return "immediate";
    case ReclaimPolicy::kOnClose: return "on_close";
    case ReclaimPolicy::kOff: return "off";
  }
  return "?";
}

Result<ReclaimPolicy> parse_reclaim_policy(std::string_view s) noexcept {
  if (s == "immediate") return ReclaimPolicy::kImmediate;
  if (s == "on_close") return ReclaimPolicy::kOnClose;
  if (s == "off") return ReclaimPolicy::kOff;
  return Status(Code::kInvalidArgument,
                "reclaim policy must be one of immediate, on_close, off");
}

// ---- thread shard index ---------------------------------------------------------

namespace detail {
namespace {
std::mutex g_idx_mu;
uint64_t g_idx_used = 0;  // bit i: shard index i held by a live thread
thread_local uint32_t t_idx = kNone;
thread_local uint32_t t_rng = 0;

struct IdxGuard {
  uint32_t idx = kNone;
  ~IdxGuard() {
    if (idx < kShards) {
      std::lock_guard<std::mutex> g(g_idx_mu);
      g_idx_used &= ~(uint64_t(1) << idx);
    }
    t_idx = kShards;  // late frees during thread teardown use the overflow shard
  }
};

uint32_t assign_idx() noexcept {
  static thread_local IdxGuard guard;
  uint32_t idx = kShards;
  {
    std::lock_guard<std::mutex> g(g_idx_mu);
    if (~g_idx_used) {
      idx = uint32_t(std::countr_zero(~g_idx_used));
      g_idx_used |= uint64_t(1) << idx;
    }
  }
  guard.idx = idx;
  t_idx = idx;
  return idx;
}
}  // namespace

uint32_t thread_shard_index() noexcept {
  uint32_t i = t_idx;
  return i != kNone ? i : assign_idx();
}

void shard_index_lock() noexcept { g_idx_mu.lock(); }
void shard_index_unlock() noexcept { g_idx_mu.unlock(); }

uint32_t thread_random() noexcept {
  uint32_t x = t_rng;
  if (x == 0) x = uint32_t(reinterpret_cast<uintptr_t>(&t_rng) >> 4) | 1u;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  t_rng = x;
  return x;
}
}  // namespace detail

// ---- create / destroy -------------------------------------------------------------

namespace {
uint64_t now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}
}  // namespace

Result<std::unique_ptr<SlabAllocator>> SlabAllocator::create(const Options& opts, EventSink* sink) {
  std::unique_ptr<zns::ZonedDevice> dev;
  if (opts.spill == SpillTarget::kZns && opts.dram_budget_bytes > 0) {
    if (opts.spill_device.empty())
      return Status(Code::kInvalidArgument, "slab Options::spill = zns needs spill_device (a device URI)");
#ifdef ZNSLAB_SLAB_WITHOUT_ZNS
    // Builds that link the slab without zns/ (the libFuzzer target).
    return Status(Code::kNotSupported, "slab spill: built without zns (ZNSLAB_SLAB_WITHOUT_ZNS)");
#else
    auto d = zns::open_device(opts.spill_device);
    if (!d) return d.status();
    dev = std::move(*d);
#endif
  }
  return create(opts, sink, std::move(dev));
}

Result<std::unique_ptr<SlabAllocator>> SlabAllocator::create(const Options& opts, EventSink* sink,
                                                             std::unique_ptr<zns::ZonedDevice> spill_dev) {
  const size_t cb = opts.chunk_bytes;
  if (cb < kSlabBytes || (cb & (cb - 1)) != 0)
    return Status(Code::kInvalidArgument, "slab Options::chunk_bytes must be a power of two >= 4096");
  if (opts.arena_bytes < cb || opts.arena_bytes % cb != 0 ||
      opts.arena_bytes > size_t(kMaxSlabIds) * kSlabBytes)
    return Status(Code::kInvalidArgument,
                  "slab Options::arena_bytes must be a multiple of chunk_bytes and <= 16 GiB");
  if (opts.reclaim_batch_pct > 100)
    return Status(Code::kInvalidArgument, "slab Options::reclaim_batch_pct must be <= 100 (percent)");
  if (!(opts.scan_retry_threshold > 0.0 && opts.scan_retry_threshold < 1.0))
    return Status(Code::kInvalidArgument, "slab Options::scan_retry_threshold must be in (0, 1)");
  if (opts.spill == SpillTarget::kOverflow && opts.dram_budget_bytes > 0 && opts.spill_device.empty())
    return Status(Code::kInvalidArgument, "slab Options::spill = overflow needs spill_device (the region file path)");
  if (spill_dev && (opts.spill != SpillTarget::kZns || opts.dram_budget_bytes == 0))
    return Status(Code::kInvalidArgument, "slab create: a spill device needs spill = zns and dram_budget_bytes > 0");
  auto im = std::make_unique<Impl>();
  im->opts = opts;
  im->sink = sink;
  static std::atomic<uint64_t> next_id{0};
  im->id = next_id.fetch_add(1, std::memory_order_relaxed) + 1;
  if (Status s = im->init_arena(); !s) return s;
  // Handle mask key (multiply-add-shift: a odd). A given key is spread over
  // both 64-bit words (splitmix64), so a small key is not a weak multiplier.
  uint64_t seed = opts.handle_key;
  if (seed == 0 && getrandom(&seed, sizeof(seed), 0) != ssize_t(sizeof(seed)))
    seed = now_ns() ^ reinterpret_cast<uintptr_t>(im.get());  // fallback
  uint64_t key[2];
  for (auto& k : key) {
    seed += 0x9E3779B97F4A7C15ull;  // splitmix64
    uint64_t z = seed;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    k = z ^ (z >> 31);
  }
  im->hkey_a = key[0] | 1;
  im->hkey_b = key[1];
  im->shards = new (std::nothrow) Shard[kShards + 1];
  if (!im->shards) return Status(Code::kOutOfMemory, "slab counter shards");
  if (opts.dram_budget_bytes > 0) {
    if (Status s = im->spill_init(std::move(spill_dev)); !s) {
      spill_delete(im->sp);
      delete[] im->shards;
      return s;
    }
  }
  // Solo free mode: only where its handshake (membarrier) works and no
  // spill pairs its mark with the free's CAS (see Impl::solo).
  im->solo_on = opts.solo_free && opts.thread_cache && !im->sp && tc_steal_enabled();
  const uint64_t t0 = now_ns();
  for (auto& e : im->epochs) e.open_since_ns.store(t0, std::memory_order_relaxed);
  return std::unique_ptr<SlabAllocator>(new SlabAllocator(std::move(im)));
}

SlabAllocator::SlabAllocator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SlabAllocator::~SlabAllocator() {
  if (!impl_) return;
  impl_->tc_detach_all();
  spill_delete(impl_->sp);
  impl_->sp = nullptr;
  delete[] impl_->shards;
}

const Options& SlabAllocator::options() const noexcept { return impl_->opts; }

// ---- slab state transitions ---------------------------------------------------------

bool SlabAllocator::Impl::reclaim_now(uint32_t e) const noexcept {
  switch (opts.reclaim) {
    case ReclaimPolicy::kImmediate: return true;
    case ReclaimPolicy::kOnClose:
      return epochs[e].state.load(std::memory_order_relaxed) == uint8_t(EpochState::kClosing);
    case ReclaimPolicy::kOff: return false;
  }
  return false;
}

void SlabAllocator::Impl::push_partial(Bin& b, uint32_t id) noexcept {
  uint32_t h = b.stack.load(std::memory_order_relaxed);
  do {
    slabs[id].next_stk.store(h, std::memory_order_relaxed);
  } while (!b.stack.compare_exchange_weak(h, id, std::memory_order_release,
                                          std::memory_order_relaxed));
  b.stack_len.fetch_add(1, std::memory_order_relaxed);
}

// Counts an empty-slab event. The batch pass runs on the allocation slow
// path (maybe_batch() before a bin refill, at half the batch) and on
// epoch_close()/reclaim(); a free only queues, except as a backstop when the
// queue reaches a whole batch without any allocation slow path in between
// (a free-only phase; the "[slab] immediate" test relies on memory dropping
// before close without further allocations).
void SlabAllocator::Impl::note_pressure() noexcept {
  const uint32_t batch = opts.reclaim_batch_slabs;
  if (batch == 0) return;
  if (reclaim_pressure.fetch_add(1, std::memory_order_relaxed) + 1 < batch) return;
  maybe_batch(batch);
}

void SlabAllocator::Impl::maybe_batch(uint32_t threshold) noexcept {
  if (opts.reclaim_batch_slabs == 0) return;
  const uint64_t pressure = reclaim_pressure.load(std::memory_order_relaxed);
  if (pressure < threshold) return;
  // Options::reclaim_batch_pct: large heaps batch in proportion to their size.
  if (opts.reclaim_batch_pct &&
      pressure * 100 < committed_slabs.load(std::memory_order_relaxed) * opts.reclaim_batch_pct)
    return;
  if (!reclaim_mu.try_lock()) return;
  reclaim_pressure.store(0, std::memory_order_relaxed);
  ReclaimResult r = reclaim_locked(true);
  reclaim_mu.unlock();
  if (sink && r.bytes) sink->on_decommit(r.bytes, r.ranges);
}

namespace {
enum Action { kNothing, kPush, kPushHint, kDetach, kHint };
}  // namespace

// Sets `bit` (one or more slots) free in slab `id` of class c, epoch e and
// moves the slab to the state its policy asks for. Returns true if the slab
// became empty and stays attached (the caller counts it in empty_slabs).
bool detail::release_bit(SlabAllocator::Impl& im, uint32_t id, uint64_t bit, uint32_t c, uint32_t e) noexcept {
  SlabMeta& m = im.slabs[id];
  const uint64_t full = all_free(c);
  uint64_t w = m.word.load(std::memory_order_relaxed), nw;
  Action a;
  do {
    if (w & bit) return false;  // already free: cannot happen after the sequence CAS
    nw = w | bit;
    a = kNothing;
    const uint64_t fr = nw & kFreeMask;
    const uint64_t st = w & kStateMask;
    if (st == 0) {  // floating
      if (fr == full) {
        const bool now = im.reclaim_now(e);
        if (now && im.bins[e][c].empty_hint.load(std::memory_order_relaxed) >= kKeepEmptyPerBin) {
          nw |= kDet;
          a = kDetach;
        } else {
          // Kept hot on the partial stack (a few per bin, so a steady-state
          // workload reuses it with a pop instead of an arena round trip).
          nw |= kStk;
          a = now ? kPushHint : kPush;
        }
      } else if (uint32_t(std::popcount(fr)) >= kRelistMin[c]) {  // floating slabs only
        nw |= kStk;
        a = kPush;
      }
    } else if (st == kStk && fr == full && im.reclaim_now(e)) {
      a = kHint;
    }
  } while (!m.word.compare_exchange_weak(w, nw, std::memory_order_acq_rel,
                                         std::memory_order_relaxed));
  switch (a) {
    case kPush: im.push_partial(im.bins[e][c], id); break;
    case kPushHint:
      im.push_partial(im.bins[e][c], id);
      im.bins[e][c].empty_hint.fetch_add(1, std::memory_order_relaxed);
      break;
    case kDetach:
      im.attached[c].fetch_sub(1, std::memory_order_relaxed);
      im.push_detached(id);
      im.note_pressure();
      return false;
    case kHint:
      im.bins[e][c].empty_hint.fetch_add(1, std::memory_order_relaxed);
      im.note_pressure();
      break;
    case kNothing: break;
  }
  return (nw & kFreeMask) == full;
}

// ---- allocate -------------------------------------------------------------------------

namespace {
// Picks up to `k` (>= 1) free bits of `fr` (non-zero): sequential mode takes
// the lowest ones, randomized mode the first ones at or after a per-thread
// random offset (seed 002 adaptive scanning). k == 1 without a thread cache.
inline uint64_t pick_bits(uint64_t fr, uint8_t mode, uint32_t k) noexcept {
  const uint32_t r = mode == uint8_t(ScanMode::kSequential) ? 0 : (thread_random() & 63);
  uint64_t rot = std::rotr(fr, int(r)), take = 0;
  if (uint32_t(std::popcount(rot)) <= k) {
    take = rot;
  } else {
    for (uint32_t i = 0; i < k; ++i) {
      const uint64_t low = rot & (~rot + 1);
      take |= low;
      rot ^= low;
    }
  }
  return std::rotl(take, int(r));
}

// Common tail of every successful allocation: publish the odd sequence,
// bump the counters, build the handle.
__attribute__((always_inline)) inline Allocation finish_alloc(SlabAllocator::Impl& im, Shard& sh,
                                                              ClassCounters& cc, bool ex, uint32_t s,
                                                              uint32_t slot, uint32_t q, uint32_t c,
                                                              uint32_t epoch, size_t bytes) noexcept {
  const uint32_t size = kSizeClasses[c];
  im.slabs[s].slot[slot].store(slot_entry(q, uint32_t(size - bytes)), std::memory_order_release);
  const int64_t n = cc.allocs.load(std::memory_order_relaxed);
  bump(cc.allocs, 1, ex);
  bump(cc.requested_bytes, int64_t(bytes), ex);
  bump(sh.epoch_live[epoch], 1, ex);
  // Allocation-triggered controller heartbeat (no clock reads).
  if ((uint64_t(n + 1) & uint64_t(kScanWindow - 1)) == 0) im.scan_check(c);
  HandleFields f;
  f.slab_id = s;
  f.generation = im.hmask(s, slot, q);
  f.slot = slot;
  f.size_class = c;
  f.version = kHandleVersion;
  return Allocation{Handle{handle_pack(f)}, im.slab_addr(s) + size_t(slot) * size, size};
}
}  // namespace

[[gnu::noinline]] Result<Allocation> allocate_shared(SlabAllocator::Impl& im, size_t bytes,
                                                    uint32_t epoch, uint32_t c, Shard& sh, bool ex,
                                                    Mag* mg) noexcept;

namespace {
// allocate() when the fast path below does not apply: the general path.
[[gnu::noinline]] Result<Allocation> allocate_general(SlabAllocator::Impl& im, size_t bytes,
                                                      uint32_t epoch) noexcept {
  const uint32_t c = size_class_of(bytes);
  if (c >= kNumClasses)
    return Status(Code::kInvalidArgument, "slab allocate: size must be 1..768 bytes");
  if (epoch >= kEpochCount)
    return Status(Code::kInvalidArgument, "slab allocate: epoch must be a ring index < 16");
  const uint32_t idx = thread_shard_index();
  const bool ex = idx < kShards;
  Shard& sh = im.shard(idx);
  EpochSlot& ep = im.epochs[epoch];
  ThreadCache* tc = im.tcache();
  OpGuard op(tc);  // before the state check (see ThreadCache::op_seq)
  if (ep.state.load(std::memory_order_acquire) != uint8_t(EpochState::kActive)) {
    bump(sh.slow_path_epoch_closed, 1, ex);
    return Status(Code::kEpochClosed, "slab allocate: epoch is CLOSING");
  }
  ClassCounters& cc = sh.cls[c];
  // ---- fast path: the thread's magazine (plain loads and stores) ----
  Mag* mg = nullptr;
  if (tc) {
    if (tc->seen_gen != im.tc_gen.load(std::memory_order_acquire)) im.tc_revalidate(*tc);
    mg = &tc->mag[epoch][c];
    const uint64_t era = ep.era.load(std::memory_order_relaxed);
    if (mg->n) {
      if (mg->era == era) {
        const uint64_t en = mg->ent[--mg->n];
        bump(cc.cached, -1, ex);
        return finish_alloc(im, sh, cc, ex, mag_slab(en), mag_slot(en), mag_gen(en) + 1, c, epoch,
                            bytes);
      }
      im.tc_flush(*tc, epoch, c, mg->n);  // an older incarnation of the epoch
    }
    mg->era = era;
  }
  return allocate_shared(im, bytes, epoch, c, sh, ex, mg);
}
}  // namespace

// ---- The fast paths (issue 14) ----------------------------------------------------
// allocate() and free() first try the thread-cache hit as straight-line
// code: the calling thread has a cache for this allocator and an exclusive
// counter shard, the epoch is ACTIVE, the magazine matches the epoch's era,
// nothing to revalidate. Every condition is checked before anything is
// changed; if one does not hold, the general path runs from the start
// (allocate_general, free_general: the same checks, plus the slow cases
// and the refusals with their counters). Same protocol as the general
// path: the OpGuard section (op_seq odd) opens before the epoch state is
// read, the free's ownership point is the CAS of the slot entry, or in solo
// free mode a plain store inside the solo_seq section.
Result<Allocation> SlabAllocator::allocate(size_t bytes, uint32_t epoch) noexcept {
  Impl& im = *impl_;
  if (detail::t_tc_id == im.id && bytes - 1 < kMaxObjectBytes && epoch < kEpochCount) [[likely]] {
    ThreadCache* tc = detail::t_tc;
    Shard* sh = tc->sh;
    const uint64_t v = tc->op_seq.load(std::memory_order_relaxed);
    if (sh && !(v & 1)) [[likely]] {
      const uint32_t c = size_class_of(bytes);
      EpochSlot& ep = im.epochs[epoch];
      Mag& mg = tc->mag[epoch][c];
      tc->op_seq.store(v + 1, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);  // see OpGuard
      if (ep.state.load(std::memory_order_acquire) == uint8_t(EpochState::kActive) &&
          tc->seen_gen == im.tc_gen.load(std::memory_order_acquire) && mg.n != 0 &&
          mg.era == ep.era.load(std::memory_order_relaxed)) [[likely]] {
        const uint64_t en = mg.ent[--mg.n];
        const uint32_t s = mag_slab(en), slot = mag_slot(en), q = (mag_gen(en) + 1) & kGenMask;
        const uint32_t size = kSizeClasses[c];
        im.slabs[s].slot[slot].store(slot_entry(q, uint32_t(size - bytes)), std::memory_order_release);
        ClassCounters& cc = sh->cls[c];
        const int64_t n = cc.allocs.load(std::memory_order_relaxed) + 1;
        cc.allocs.store(n, std::memory_order_relaxed);
        bump(cc.requested_bytes, int64_t(bytes), true);
        bump(sh->epoch_live[epoch], 1, true);
        bump(cc.cached, -1, true);
        if ((uint64_t(n) & uint64_t(kScanWindow - 1)) == 0) im.scan_check(c);  // controller heartbeat
        tc->op_seq.store(v + 2, std::memory_order_release);
        return Allocation{Handle{(uint64_t(s) << 42) | (uint64_t(im.hmask(s, slot, q)) << 18) |
                                 (uint64_t(slot) << 10) | (uint64_t(c) << 2) | kHandleVersion},
                          im.slab_addr(s) + size_t(slot) * size, size};
      }
      tc->op_seq.store(v + 2, std::memory_order_release);
    }
  }
  return allocate_general(im, bytes, epoch);
}

// The shared path: claims from the bin's current slab (for the thread's
// magazine, up to kMagCap more slots in the same CAS), refills the bin.
Result<Allocation> allocate_shared(SlabAllocator::Impl& im, size_t bytes, uint32_t epoch, uint32_t c,
                                   Shard& sh, bool ex, Mag* mg) noexcept {
  EpochSlot& ep = im.epochs[epoch];
  ClassCounters& cc = sh.cls[c];
  Bin& b = im.bins[epoch][c];
  const uint8_t mode = im.scan[c].mode.load(std::memory_order_relaxed);
  const uint32_t want_tag = c | (epoch << 4) | kTagAttached;
  const uint32_t want = mg ? kMagCap + 1 : 1;  // one for the caller, the rest cached
  int64_t retries = 0;
  for (;;) {
    const uint32_t s = b.current.load(std::memory_order_acquire);
    if (s != kNone) {
      SlabMeta& m = im.slabs[s];
      const uint32_t t = im.tags[s].load(std::memory_order_acquire);
      if ((t & 0x1FF) == want_tag) {
        uint64_t w = m.word.load(std::memory_order_acquire);
        while (w & kCur) {
          const uint64_t fr = w & kFreeMask;
          if (fr == 0) {  // full: it floats until frees re-list it
            if (m.word.compare_exchange_weak(w, w & ~kCur, std::memory_order_acq_rel,
                                             std::memory_order_acquire))
              break;
            continue;
          }
          const uint64_t bits = pick_bits(fr, mode, want);
          if (!m.word.compare_exchange_weak(w, w & ~bits, std::memory_order_acq_rel,
                                            std::memory_order_acquire)) {
            ++retries;
            continue;
          }
          const uint32_t t2 = im.tags[s].load(std::memory_order_acquire);
          if (t2 != t) {
            // The slab was detached and re-attached between our loads (ABA):
            // give the slots back to its new owner and retry.
            // Counting rule: whoever moves a slab out of / into all-free
            // counts -1 / +1 in empty_slabs.
            const uint32_t c2 = tag_class(t2);
            const bool was_empty = (w & kFreeMask) == all_free(c2);
            const bool now_empty = release_bit(im, s, bits, c2, tag_epoch(t2));
            if (was_empty) im.cold_empty[c2].fetch_sub(1, std::memory_order_relaxed);
            if (now_empty) im.cold_empty[c2].fetch_add(1, std::memory_order_relaxed);
            bump(cc.cas_rollbacks, 1, ex);
            break;
          }
          if ((fr & ~bits) == 0) {
            // We took the last free slot: warm the next partial slab's
            // metadata so the coming refill does not wait on a cache miss.
            const uint32_t nxt = b.stack.load(std::memory_order_relaxed);
            if (nxt != kNone) {
              __builtin_prefetch(&im.slabs[nxt], 1);
              __builtin_prefetch(&im.slabs[nxt].slot[0], 1);
            }
          }
          if (fr == all_free(c)) bump(cc.empty_slabs, -1, ex);
          if (retries) bump(cc.cas_retries, retries, ex);
          // The caller gets the first slot picked; the others go to the
          // magazine (highest first, so it pops them in pick order).
          const uint32_t slot = uint32_t(std::countr_zero(bits));
          uint64_t rest = bits & (bits - 1);
          if (rest) {
            uint32_t k = 0;
            while (rest) {
              const uint32_t i = 63 - uint32_t(std::countl_zero(rest));
              rest &= ~(uint64_t(1) << i);
              // Free slot claimed by us: nobody else writes its entry.
              mg->ent[mg->n++] = mag_entry(s, i, slot_gen(m.slot[i].load(std::memory_order_relaxed)));
              ++k;
            }
            bump(cc.cached, int64_t(k), ex);
          }
          const uint32_t q = slot_gen(m.slot[slot].load(std::memory_order_relaxed)) + 1;
          return finish_alloc(im, sh, cc, ex, s, slot, q, c, epoch, bytes);
        }
      }
    }
    // ---- slow path: refill the bin under its mutex ----
    // The batched reclaim runs here (not in free) once half a batch of empty
    // slabs is queued, before the bin mutex is taken.
    im.maybe_batch((im.opts.reclaim_batch_slabs + 1) / 2);
    if (im.sp) [[unlikely]] {
      im.spill_check();  // the DRAM budget: spill cold slabs before taking more
      im.note_access(kNone, epoch);  // allocation counts as access (epoch recency)
    }
    std::lock_guard<std::mutex> g(b.mu);
    if (ep.state.load(std::memory_order_acquire) != uint8_t(EpochState::kActive)) {
      bump(sh.slow_path_epoch_closed, 1, ex);
      return Status(Code::kEpochClosed, "slab allocate: epoch is CLOSING");
    }
    const uint32_t cur = b.current.load(std::memory_order_relaxed);
    if (cur != s) continue;  // another thread refilled meanwhile
    if (cur != kNone) {
      SlabMeta& m = im.slabs[cur];
      uint64_t w = m.word.load(std::memory_order_acquire);
      if ((w & kCur) && (w & kFreeMask)) continue;  // usable after all
      while ((w & kCur) && !m.word.compare_exchange_weak(w, w & ~kCur, std::memory_order_acq_rel,
                                                         std::memory_order_acquire)) {
        if (w & kFreeMask) break;
      }
      if ((w & kCur) && (w & kFreeMask)) continue;
      bump(cc.slow_path_partial_full, 1, ex);
    } else {
      bump(cc.slow_path_partial_null, 1, ex);
    }
    // Pop a partial slab (single popper: we hold b.mu, so no ABA).
    uint32_t p = b.stack.load(std::memory_order_acquire);
    for (;;) {
      if (p == kNone) break;
      // A compact SlabMeta page (compact.cpp) comes back before its
      // next_stk is read; with b.mu held it cannot be compacted again.
      if (im.compact_groups.load(std::memory_order_relaxed) &&
          (im.tags[p].load(std::memory_order_acquire) & kTagCompact)) [[unlikely]]
        im.compact_touch(p);
      if (b.stack.compare_exchange_weak(p, im.slabs[p].next_stk.load(std::memory_order_relaxed),
                                        std::memory_order_acquire, std::memory_order_acquire))
        break;
    }
    if (p != kNone) {
      b.stack_len.fetch_sub(1, std::memory_order_relaxed);
      SlabMeta& m = im.slabs[p];
      if (im.tags[p].load(std::memory_order_acquire) & kTagSpillBits) [[unlikely]] {
        // A spilled slab: read it back (an empty one only drops its copy)
        // before it becomes current. On a read error it floats off-list
        // (frees re-list it) and the refill goes on.
        if (!im.fault_in(p, false, true)) {
          uint64_t w = m.word.load(std::memory_order_relaxed);
          while (!m.word.compare_exchange_weak(w, w & ~kStk, std::memory_order_acq_rel,
                                               std::memory_order_relaxed)) {
          }
          continue;
        }
        im.note_access(p, epoch);
      }
      uint64_t w = m.word.load(std::memory_order_relaxed);
      while (!m.word.compare_exchange_weak(w, (w & ~kStk) | kCur, std::memory_order_acq_rel,
                                           std::memory_order_relaxed)) {
      }
      if ((w & kFreeMask) == all_free(c)) {
        uint32_t h = b.empty_hint.load(std::memory_order_relaxed);
        while (h && !b.empty_hint.compare_exchange_weak(h, h - 1, std::memory_order_relaxed)) {
        }
      }
      b.current.store(p, std::memory_order_release);
      continue;
    }
    // A new slab from the arena (warm if one is pending, else fresh).
    bump(cc.slow_path_cache_miss, 1, ex);
    bool warm = false;
    uint32_t inc = 0;
    Result<uint32_t> got = im.acquire_slab(epoch, &warm, &inc);
    if (!got) return got.status();
    p = *got;
    bump(warm ? cc.slabs_recycled : cc.slabs_fresh, 1, ex);
    SlabMeta& m = im.slabs[p];
    const uint32_t attach = (im.tags[p].load(std::memory_order_relaxed) >> 24) + 1;
    m.era.store(ep.era.load(std::memory_order_relaxed), std::memory_order_relaxed);
    if (im.sp) im.note_access(p, epoch);
    im.tags[p].store(make_tag(c, epoch, inc, attach), std::memory_order_release);
    m.word.store(all_free(c) | kCur, std::memory_order_release);
    im.attached[c].fetch_add(1, std::memory_order_relaxed);
    bump(cc.empty_slabs, 1, ex);
    b.current.store(p, std::memory_order_release);
  }
}

// ---- free / deref ---------------------------------------------------------------------

namespace {
// Validates the static fields of a handle; kOk or kInvalidHandle.
inline bool well_formed(const SlabAllocator::Impl& im, const HandleFields& f) noexcept {
  return f.version == kHandleVersion && f.size_class < kNumClasses &&
         f.slot < kSlots[f.size_class] &&
         f.slab_id < im.hwm_slabs.load(std::memory_order_acquire);
}
}  // namespace

namespace {
template <bool kSolo>
inline Status free_body(SlabAllocator::Impl& im, uint32_t sid, uint32_t slot, uint32_t fc, uint32_t hseq,
                        Shard& sh, bool ex) noexcept;
}  // namespace

bool SlabAllocator::Impl::solo_slow(uintptr_t me) noexcept {
  uintptr_t s = solo.load(std::memory_order_acquire);
  for (;;) {
    if (s == kSoloMulti) return false;
    if (s == kSoloEnding) {  // another thread is ending it: wait for the end
      __builtin_ia32_pause();
      s = solo.load(std::memory_order_acquire);
      continue;
    }
    if (s == kSoloNone && me != 0) {
      // The first free of all: this thread becomes the solo thread.
      if (solo.compare_exchange_strong(s, me, std::memory_order_acq_rel, std::memory_order_acquire))
        return true;
      continue;
    }
    if (s == me) return true;  // (a previous call made it solo)
    // Another thread is (or was) the solo thread, or this thread has no
    // cache: end the mode.
    if (!solo.compare_exchange_strong(s, kSoloEnding, std::memory_order_acq_rel, std::memory_order_acquire))
      continue;
    if (s != kSoloNone) {
      // After the barrier, a solo free that began before it has published
      // its odd solo_seq; one that begins after it sees kSoloEnding.
      // (Registered at create(): tc_steal_enabled() is a precondition of
      // solo_on, and the expedited command does not fail once registered.)
      (void)syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
      const uint64_t v = solo_seq.load(std::memory_order_acquire);
      if (v & 1)
        while (solo_seq.load(std::memory_order_acquire) == v) __builtin_ia32_pause();
    }
    solo.store(kSoloMulti, std::memory_order_release);
    return false;
  }
}

namespace {
// free() when the fast path does not apply: the general path.
[[gnu::noinline]] Status free_general(SlabAllocator::Impl& im, Handle h) noexcept {
  const uint32_t idx = thread_shard_index();
  const bool ex = idx < kShards;
  Shard& sh = im.shard(idx);
  // The fields as scalars (not a HandleFields in memory: GCC assembles that
  // with one vector store and reads it back with scalar loads, a
  // store-forwarding stall of ~20 % of a free).
  const uint64_t raw = h.raw;
  const uint32_t sid = uint32_t(raw >> 42) & 0x3FFFFFu, slot = uint32_t(raw >> 10) & 0xFFu,
                 fc = uint32_t(raw >> 2) & 0xFFu, gen = uint32_t(raw >> 18) & 0xFFFFFFu;
  static_assert(handle_unpack(uint64_t(0x3FFFFF) << 42).slab_id == 0x3FFFFF &&
                handle_unpack(uint64_t(0xFF) << 10).slot == 0xFF &&
                handle_unpack(uint64_t(0xFF) << 2).size_class == 0xFF &&
                handle_unpack(uint64_t(0xFFFFFF) << 18).generation == 0xFFFFFF);
  if ((raw & 3) != kHandleVersion || fc >= kNumClasses || slot >= kSlots[fc] ||
      sid >= im.hwm_slabs.load(std::memory_order_acquire)) {
    bump(sh.invalid_handle_frees, 1, ex);
    return Status(Code::kInvalidHandle, "slab free: malformed handle (version, class, slot or slab id)");
  }
  // The counter value this handle was issued with (see gen_mask); a genuine
  // handle always unmasks to an odd (allocated) value.
  const uint32_t hseq = im.hmask(sid, slot, gen);
  if (!(hseq & 1)) {
    bump(sh.invalid_handle_frees, 1, ex);
    return Status(Code::kInvalidHandle, "slab free: forged handle (generation check failed)");
  }
  if (im.compact_on) [[unlikely]] {
    // Spill with compact records: the body runs inside a MetaGuard, after
    // any compact SlabMeta page of this slab was expanded (compact.cpp).
    for (;;) {
      {
        MetaGuard mg(im);
        if (!(im.tags[sid].load(std::memory_order_acquire) & kTagCompact))
          return free_body<false>(im, sid, slot, fc, hseq, sh, ex);
      }
      im.compact_touch(sid);
    }
  }
  if (im.solo_on) {
    // Solo free mode (Impl::solo): the only freer takes the slot with a
    // plain store, inside a solo_seq section (odd) that the ender waits for.
    const uintptr_t me = reinterpret_cast<uintptr_t>(im.tcache());
    for (;;) {
      if (me != 0 && im.solo.load(std::memory_order_relaxed) == me) {
        const uint64_t v = im.solo_seq.load(std::memory_order_relaxed);
        im.solo_seq.store(v + 1, std::memory_order_relaxed);
        // Compiler barrier: the re-read of `solo` stays after the store;
        // the hardware order comes from the ender's membarrier().
        std::atomic_signal_fence(std::memory_order_seq_cst);
        if (im.solo.load(std::memory_order_relaxed) == me) {
          const Status st = free_body<true>(im, sid, slot, fc, hseq, sh, ex);
          im.solo_seq.store(v + 2, std::memory_order_release);
          return st;
        }
        im.solo_seq.store(v + 2, std::memory_order_release);
      }
      if (!im.solo_slow(me)) break;  // solo mode is over: the CAS path
    }
  }
  return free_body<false>(im, sid, slot, fc, hseq, sh, ex);
}
}  // namespace

Status SlabAllocator::free(Handle h) noexcept {
  Impl& im = *impl_;
  const uint64_t raw = h.raw;
  if (detail::t_tc_id == im.id && im.sp == nullptr) [[likely]] {  // (spill: its mark pairs with free_body)
    ThreadCache* tc = detail::t_tc;
    Shard* sh = tc->sh;
    const uint32_t sid = uint32_t(raw >> 42) & 0x3FFFFFu, slot = uint32_t(raw >> 10) & 0xFFu,
                   fc = uint32_t(raw >> 2) & 0xFFu;
    const uint64_t v = tc->op_seq.load(std::memory_order_relaxed);
    if (sh && !(v & 1) && (raw & 3) == kHandleVersion && fc < kNumClasses && slot < kSlots[fc] &&
        sid < im.hwm_slabs.load(std::memory_order_acquire)) [[likely]] {
      const uint32_t hseq = im.hmask(sid, slot, uint32_t(raw >> 18) & kGenMask);
      const uint32_t t = im.tags[sid].load(std::memory_order_acquire);
      const uintptr_t so = im.solo.load(std::memory_order_relaxed);
      const bool solo = so == reinterpret_cast<uintptr_t>(tc);
      // Attached, of the handle's class, not spilled; the free mode known.
      if ((hseq & 1) && (t & (kTagAttached | 0xF | kTagSpillBits)) == (kTagAttached | fc) &&
          (solo || !im.solo_on || so == Impl::kSoloMulti)) [[likely]] {
        const uint32_t e = tag_epoch(t);
        EpochSlot& ep = im.epochs[e];
        Mag& mg = tc->mag[e][fc];
        tc->op_seq.store(v + 1, std::memory_order_relaxed);
        uint64_t sv = 0;
        if (solo) {
          sv = im.solo_seq.load(std::memory_order_relaxed);
          im.solo_seq.store(sv + 1, std::memory_order_relaxed);
        }
        std::atomic_signal_fence(std::memory_order_seq_cst);  // see OpGuard and free_general
        bool done = false;
        if (ep.state.load(std::memory_order_acquire) == uint8_t(EpochState::kActive) &&
            tc->seen_gen == im.tc_gen.load(std::memory_order_acquire) && mg.n < kMagCap &&
            (mg.n == 0 || mg.era == ep.era.load(std::memory_order_relaxed)) &&
            (!solo || im.solo.load(std::memory_order_relaxed) == so)) [[likely]] {
          std::atomic<uint32_t>& entry = im.slabs[sid].slot[slot];
          uint32_t cur = entry.load(std::memory_order_acquire);
          const uint32_t hnext = (hseq + 1) & kGenMask;
          if (slot_gen(cur) == hseq) [[likely]] {
            // The ownership point (see free_body).
            bool owned;
            if (solo) {
              entry.store((cur & ~kGenMask) | hnext, std::memory_order_release);
              owned = true;
            } else {
              owned = entry.compare_exchange_strong(cur, (cur & ~kGenMask) | hnext, std::memory_order_acq_rel,
                                                    std::memory_order_acquire);
            }
            // seq_cst: pairs with the spiller's mark (free_body).
            if (owned && im.tags[sid].load(std::memory_order_seq_cst) == t) [[likely]] {
              ClassCounters& cc = sh->cls[fc];
              bump(cc.frees, 1, true);
              bump(cc.requested_bytes, -int64_t(kSizeClasses[fc] - slot_slack(cur)), true);
              bump(sh->epoch_live[e], -1, true);
              mg.era = ep.era.load(std::memory_order_relaxed);
              mg.ent[mg.n++] = mag_entry(sid, slot, hnext);
              bump(cc.cached, 1, true);
              done = true;
            } else if (owned) {
              // The slab was recycled meanwhile (without spill nothing else
              // changes a tag): give the slot back untouched; the general
              // path refuses the handle as stale.
              uint32_t back = (cur & ~kGenMask) | hnext;
              entry.compare_exchange_strong(back, cur, std::memory_order_acq_rel);
            }
          }
        }
        if (solo) im.solo_seq.store(sv + 2, std::memory_order_release);
        tc->op_seq.store(v + 2, std::memory_order_release);
        if (done) return Status::ok();
      }
    }
  }
  return free_general(im, h);
}

namespace {
// free() after the handle's static checks: validation against the slab,
// the ownership point (the sequence CAS; with kSolo, in solo free mode, a
// plain store: this thread is the only freer) and the slot's release.
template <bool kSolo>
__attribute__((always_inline)) inline Status free_body(SlabAllocator::Impl& im, uint32_t sid, uint32_t slot,
                                                      uint32_t fc, uint32_t hseq, Shard& sh, bool ex) noexcept {
  SlabMeta& m = im.slabs[sid];
  const uint32_t t = im.tags[sid].load(std::memory_order_acquire);
  const uint32_t hnext = (hseq + 1) & kGenMask;
  if (!(t & kTagAttached)) {
    bump(sh.stale_handle_frees, 1, ex);
    return Status(Code::kStaleHandle, "slab free: slab was recycled since the handle was issued");
  }
  std::atomic<uint32_t>& entry = m.slot[slot];
  uint32_t cur = entry.load(std::memory_order_acquire);
  if (tag_class(t) != fc) {
    if (slot_gen(cur) == hseq) {
      bump(sh.invalid_handle_frees, 1, ex);
      return Status(Code::kInvalidHandle, "slab free: size class does not match the slab");
    }
    bump(sh.stale_handle_frees, 1, ex);
    return Status(Code::kStaleHandle, "slab free: slab was recycled since the handle was issued");
  }
  for (;;) {
    if (slot_gen(cur) == hseq) {
      // The single ownership point of a free: odd -> next even counter.
      if constexpr (kSolo) {
        // The only freer: no other thread writes an allocated slot's entry.
        entry.store((cur & ~kGenMask) | hnext, std::memory_order_release);
        break;
      } else {
        if (entry.compare_exchange_weak(cur, (cur & ~kGenMask) | hnext,
                                        std::memory_order_acq_rel, std::memory_order_acquire))
          break;
        continue;
      }
    }
    if (slot_gen(cur) == hnext) {
      bump(sh.double_frees, 1, ex);
      return Status(Code::kDoubleFree, "slab free: slot already free (double free)");
    }
    bump(sh.stale_handle_frees, 1, ex);
    return Status(Code::kStaleHandle, "slab free: slot was reused since the handle was issued");
  }
  // seq_cst: pairs with the spiller's mark (spill.cpp, mark()): a slot of a
  // slab being spilled is never cached in a magazine.
  const uint32_t tnow = im.tags[sid].load(std::memory_order_seq_cst);
  if ((tnow ^ t) & ~kTagSpillBits) {
    // The chunk was returned and reused while we validated: undo.
    uint32_t back = (cur & ~kGenMask) | hnext;
    entry.compare_exchange_strong(back, cur, std::memory_order_acq_rel);
    bump(sh.stale_handle_frees, 1, ex);
    return Status(Code::kStaleHandle, "slab free: slab was recycled since the handle was issued");
  }
  const uint32_t c = fc, e = tag_epoch(t);
  const uint32_t size = kSizeClasses[c];
  const uint32_t slack = slot_slack(cur);
  ClassCounters& cc = sh.cls[c];
  bump(cc.frees, 1, ex);
  bump(cc.requested_bytes, -int64_t(size - slack), ex);
  bump(sh.epoch_live[e], -1, ex);
  // The thread's magazine keeps the slot claimed (its sequence is now even:
  // stale and double frees of it still fail above) if its epoch is ACTIVE.
  ThreadCache* tc = im.tcache();
  if (tc && !(tnow & kTagSpillBits)) {
    OpGuard op(tc);  // before the state check (see ThreadCache::op_seq)
    if (tc->seen_gen != im.tc_gen.load(std::memory_order_acquire)) im.tc_revalidate(*tc);
    EpochSlot& ep = im.epochs[e];
    if (ep.state.load(std::memory_order_acquire) == uint8_t(EpochState::kActive)) {
      Mag& mg = tc->mag[e][c];
      const uint64_t era = ep.era.load(std::memory_order_relaxed);
      if (mg.n && mg.era != era) im.tc_flush(*tc, e, c, mg.n);
      if (mg.n == kMagCap) im.tc_flush(*tc, e, c, kMagCap / 2);
      mg.era = era;
      mg.ent[mg.n++] = mag_entry(sid, slot, hnext);
      bump(cc.cached, 1, ex);
      return Status::ok();
    }
  }
  if (release_bit(im, sid, uint64_t(1) << slot, c, e)) bump(cc.empty_slabs, 1, ex);
  return Status::ok();
}
}  // namespace

Result<void*> SlabAllocator::deref(Handle h) const noexcept {
  Impl& im = *impl_;
  const HandleFields f = handle_unpack(h.raw);
  const uint32_t idx = thread_shard_index();
  Shard& sh = im.shard(idx);
  if (!well_formed(im, f)) {
    bump(sh.stale_derefs, 1, idx < kShards);
    return Status(Code::kInvalidHandle, "slab deref: malformed handle");
  }
  const uint32_t hseq = im.hmask(f.slab_id, f.slot, f.generation);
  if (!(hseq & 1)) {
    bump(sh.stale_derefs, 1, idx < kShards);
    return Status(Code::kInvalidHandle, "slab deref: forged handle (generation check failed)");
  }
  if (im.compact_on) [[unlikely]] {
    // Spill with compact records: validate inside a MetaGuard, after any
    // compact SlabMeta page of this slab was expanded (compact.cpp).
    for (;;) {
      bool spilled = false;
      {
        MetaGuard mg(im);
        const uint32_t t = im.tags[f.slab_id].load(std::memory_order_acquire);
        if (!(t & kTagCompact)) {
          if (!(t & kTagAttached) || tag_class(t) != f.size_class ||
              slot_gen(im.slabs[f.slab_id].slot[f.slot].load(std::memory_order_acquire)) != hseq) {
            bump(sh.stale_derefs, 1, idx < kShards);
            return Status(Code::kStaleHandle, "slab deref: handle is stale (freed or recycled)");
          }
          spilled = (t & kTagSpillBits) != 0;
          if (!spilled) {
            im.note_access(f.slab_id, tag_epoch(t));
            return static_cast<void*>(im.slab_addr(f.slab_id) +
                                      size_t(f.slot) * kSizeClasses[f.size_class]);
          }
        }
      }
      // Outside the guard: fault-back may run a spill pass (and a compaction).
      if (spilled) return deref_spilled(im, *this, h, f.slab_id);
      im.compact_touch(f.slab_id);
    }
  }
  const SlabMeta& m = im.slabs[f.slab_id];
  const uint32_t t = im.tags[f.slab_id].load(std::memory_order_acquire);
  if (!(t & kTagAttached) || tag_class(t) != f.size_class ||
      slot_gen(m.slot[f.slot].load(std::memory_order_acquire)) != hseq) {
    bump(sh.stale_derefs, 1, idx < kShards);
    return Status(Code::kStaleHandle, "slab deref: handle is stale (freed or recycled)");
  }
  if (im.sp) [[unlikely]] {
    if (t & kTagSpillBits) return deref_spilled(im, *this, h, f.slab_id);
    im.note_access(f.slab_id, tag_epoch(t));
  }
  return static_cast<void*>(im.slab_addr(f.slab_id) + size_t(f.slot) * kSizeClasses[f.size_class]);
}

}  // namespace znslab::slab
