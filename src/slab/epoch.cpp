// Epochs of the temporal slab allocator: the ring of 16 (ACTIVE/CLOSING), the
// 64-bit era counter, epoch_close with RSS before/after (seed 002 Phases 1.0,
// 2.2-2.4, and the 2025-02-07 fixes), reclamation passes, the adaptive scan
// controller, and EpochDomain (seed 002 Phase 3 with bugs 1-5 and issues
// 1-3 fixed).
#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "src/slab/slab_internal.h"

namespace znslab::slab {

using namespace detail;

namespace {
uint64_t now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}
}  // namespace

// ---- reclamation passes --------------------------------------------------------

void SlabAllocator::Impl::drain_bin(uint32_t e, uint32_t c, bool detach_empty, bool revoke,
                                    uint32_t keep_empty) noexcept {
  Bin& b = bins[e][c];
  std::lock_guard<std::mutex> g(b.mu);
  const uint64_t full = all_free(c);
  if (revoke) {
    const uint32_t s = b.current.exchange(kNone, std::memory_order_acq_rel);
    if (s != kNone) {
      SlabMeta& m = slabs[s];
      uint64_t w = m.word.load(std::memory_order_acquire), nw;
      bool detach = false;
      do {
        if (!(w & kCur)) break;  // already dropped by the fast path
        detach = detach_empty && (w & kFreeMask) == full;
        nw = (w & ~kCur) | (detach ? kDet : kStk);
      } while (!m.word.compare_exchange_weak(w, nw, std::memory_order_acq_rel,
                                             std::memory_order_acquire));
      if (w & kCur) {
        if (detach) {
          attached[c].fetch_sub(1, std::memory_order_relaxed);
          cold_empty[c].fetch_sub(1, std::memory_order_relaxed);
          push_detached(s);
        } else {
          push_partial(b, s);
        }
      }
    }
  }
  // Pop the whole stack (we are its only popper), detach what is empty and
  // push the rest back.
  uint32_t s = b.stack.exchange(kNone, std::memory_order_acquire);
  uint32_t keep = kNone, keep_tail = kNone, popped = 0, kept = 0, kept_empty = 0;
  while (s != kNone) {
    ++popped;
    SlabMeta& m = slabs[s];
    // A compact SlabMeta page (compact.cpp) comes back before it is read;
    // with b.mu held it cannot be compacted again.
    if (compact_groups.load(std::memory_order_relaxed) &&
        (tags[s].load(std::memory_order_acquire) & kTagCompact)) [[unlikely]]
      compact_touch(s);
    const uint32_t next = m.next_stk.load(std::memory_order_relaxed);
    uint64_t w = m.word.load(std::memory_order_acquire);
    bool detached = false;
    // A stacked slab is never claimed from (no kCur); only frees change it,
    // and an all-free slab has nothing left to free, so this CAS is stable.
    const bool empty = (w & kFreeMask) == full;
    if (empty && kept_empty < keep_empty) {
      ++kept_empty;
    } else if (detach_empty && empty &&
        m.word.compare_exchange_strong(w, (w & ~kStk) | kDet, std::memory_order_acq_rel)) {
      attached[c].fetch_sub(1, std::memory_order_relaxed);
      cold_empty[c].fetch_sub(1, std::memory_order_relaxed);
      push_detached(s);
      detached = true;
    }
    if (!detached) {
      ++kept;
      m.next_stk.store(keep, std::memory_order_relaxed);
      if (keep == kNone) keep_tail = s;
      keep = s;
    }
    s = next;
  }
  b.stack_len.fetch_sub(popped - kept, std::memory_order_relaxed);
  if (keep != kNone) {
    // Splice the kept chain back under concurrent lock-free pushes.
    uint32_t h = b.stack.load(std::memory_order_relaxed);
    do {
      slabs[keep_tail].next_stk.store(h, std::memory_order_relaxed);
    } while (!b.stack.compare_exchange_weak(h, keep, std::memory_order_release,
                                            std::memory_order_relaxed));
  }
  if (detach_empty) b.empty_hint.store(kept_empty, std::memory_order_relaxed);
}

ReclaimResult SlabAllocator::Impl::reclaim_locked(bool batch) noexcept {
  for (uint32_t e = 0; e < kEpochCount; ++e) {
    if (!reclaim_now(e)) continue;
    for (uint32_t c = 0; c < kNumClasses; ++c) {
      // A drain walks the whole stack: in a batch pass, drain a bin only
      // when at least a quarter of its stack is empty, so the walk costs
      // O(1) per slab it returns (empty slabs beyond that wait for the
      // ratio, epoch_close() or reclaim()).
      const Bin& b = bins[e][c];
      const uint32_t hint = b.empty_hint.load(std::memory_order_relaxed);
      if (!batch || (hint > kKeepEmptyPerBin &&
                     uint64_t(hint) * 4 >= b.stack_len.load(std::memory_order_relaxed)))
        drain_bin(e, c, true, false, batch ? kKeepEmptyPerBin : 0);
    }
  }
  // A batch pass keeps a warm reserve (and, with THP, returns whole chunks
  // only); epoch_close()/reclaim() return everything.
  return decommit_pending(batch);
}

uint64_t SlabAllocator::reclaim() noexcept {
  Impl& im = *impl_;
  im.tc_flush_self();  // the calling thread's cached slots go back first
  ReclaimResult r;
  {
    std::lock_guard<std::mutex> g(im.reclaim_mu);
    im.reclaim_pressure.store(0, std::memory_order_relaxed);
    r = im.reclaim_locked(false);
  }
  if (im.sink && r.bytes) im.sink->on_decommit(r.bytes, r.ranges);
  im.spill_housekeeping();  // zones whose slabs all died are reset (no copy)
  return r.bytes;
}

// ---- epoch ring ----------------------------------------------------------------------

uint32_t SlabAllocator::epoch_current() const noexcept {
  return impl_->current_epoch.load(std::memory_order_acquire);
}

uint32_t SlabAllocator::epoch_advance() noexcept {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> g(im.epoch_mu);
  const uint32_t cur = im.current_epoch.load(std::memory_order_relaxed);
  im.epochs[cur].state.store(uint8_t(EpochState::kClosing), std::memory_order_release);
  // A ring index, never the monotonic count (seed 002 bug 1).
  const uint32_t next = (cur + 1) % kEpochCount;
  EpochSlot& ep = im.epochs[next];
  const uint64_t era = im.era_counter.fetch_add(1, std::memory_order_relaxed) + 1;
  ep.era.store(era, std::memory_order_release);
  ep.open_since_ns.store(now_ns(), std::memory_order_relaxed);
  ep.rss_before_close.store(0, std::memory_order_relaxed);
  ep.rss_after_close.store(0, std::memory_order_relaxed);
  std::memset(ep.label, 0, sizeof ep.label);
  ep.state.store(uint8_t(EpochState::kActive), std::memory_order_release);
  im.current_epoch.store(next, std::memory_order_release);
  im.epoch_advances.fetch_add(1, std::memory_order_relaxed);
  im.tc_gen.fetch_add(1, std::memory_order_acq_rel);  // thread caches revalidate
  im.tc_steal(cur);  // every thread's cached slots of the now CLOSING epoch
  return next;
}

Status SlabAllocator::epoch_close(uint32_t epoch) noexcept {
  Impl& im = *impl_;
  if (epoch >= kEpochCount)
    return Status(Code::kInvalidArgument, "slab epoch_close: epoch must be a ring index < 16");
  // The calling thread's cached slots of this epoch go back now; other
  // threads flush theirs on their next operation (tc_gen) or at exit.
  im.tc_flush_self(epoch);
  ReclaimResult r;
  {
    std::lock_guard<std::mutex> g(im.epoch_mu);
    EpochSlot& ep = im.epochs[epoch];
    ep.rss_before_close.store(pages::rss_bytes(), std::memory_order_relaxed);
    ep.state.store(uint8_t(EpochState::kClosing), std::memory_order_seq_cst);
    im.tc_gen.fetch_add(1, std::memory_order_acq_rel);
    im.tc_steal(epoch);  // every thread's cached slots of this epoch go back
    {
      std::lock_guard<std::mutex> rg(im.reclaim_mu);
      const bool detach = im.opts.reclaim != ReclaimPolicy::kOff;
      for (uint32_t c = 0; c < kNumClasses; ++c) im.drain_bin(epoch, c, detach, true);
      r = im.decommit_pending(false);
      im.reclaim_pressure.store(0, std::memory_order_relaxed);
    }
    ep.rss_after_close.store(pages::rss_bytes(), std::memory_order_relaxed);
    im.epoch_closes.fetch_add(1, std::memory_order_relaxed);
  }
  im.spill_housekeeping();
  if (im.sink) {
    if (r.bytes) im.sink->on_decommit(r.bytes, r.ranges);
    im.sink->on_epoch_close(stats_epoch(epoch));
  }
  return Status::ok();
}

Status SlabAllocator::epoch_reopen(uint32_t epoch) noexcept {
  Impl& im = *impl_;
  if (epoch >= kEpochCount)
    return Status(Code::kInvalidArgument, "slab epoch_reopen: epoch must be a ring index < 16");
  std::lock_guard<std::mutex> g(im.epoch_mu);
  EpochSlot& ep = im.epochs[epoch];
  if (ep.state.load(std::memory_order_relaxed) == uint8_t(EpochState::kActive)) return Status::ok();
  ep.era.store(im.era_counter.fetch_add(1, std::memory_order_relaxed) + 1, std::memory_order_release);
  ep.open_since_ns.store(now_ns(), std::memory_order_relaxed);
  std::memset(ep.label, 0, sizeof ep.label);
  ep.state.store(uint8_t(EpochState::kActive), std::memory_order_release);
  im.tc_gen.fetch_add(1, std::memory_order_acq_rel);
  return Status::ok();
}

Status SlabAllocator::epoch_set_label(uint32_t epoch, std::string_view label) noexcept {
  Impl& im = *impl_;
  if (epoch >= kEpochCount)
    return Status(Code::kInvalidArgument, "slab epoch_set_label: epoch must be a ring index < 16");
  if (label.size() > 31)
    return Status(Code::kInvalidArgument, "slab epoch_set_label: label longer than 31 bytes");
  std::lock_guard<std::mutex> g(im.epoch_mu);
  char* dst = im.epochs[epoch].label;
  std::memset(dst, 0, 32);
  std::memcpy(dst, label.data(), label.size());
  return Status::ok();
}

// ---- adaptive bitmap scanning (seed 002, 2026-02-08) -------------------------------
// Allocation-triggered (no clock reads): every kScanWindow CAS attempts of a
// thread's shard, one thread (single writer, `busy` flag) compares the
// class's CAS retry rate over the window with the threshold (0.30). The mode
// switches only after the opposite verdict held for `scan_dwell_checks`
// consecutive checks (3): the dwell that prevents flapping.
void SlabAllocator::Impl::scan_check(uint32_t c) noexcept {
  ScanCtl& sc = scan[c];
  bool expected = false;
  if (!sc.busy.compare_exchange_strong(expected, true, std::memory_order_acquire)) return;
  int64_t att = 0, ret = 0;  // attempts = successful claims + rollbacks + retries
  for (uint32_t i = 0; i <= kShards; ++i) {
    const ClassCounters& cc = shards[i].cls[c];
    ret += cc.cas_retries.load(std::memory_order_relaxed);
    att += cc.allocs.load(std::memory_order_relaxed) + cc.cas_rollbacks.load(std::memory_order_relaxed);
  }
  att += ret;
  const int64_t da = att - sc.last_attempts, dr = ret - sc.last_retries;
  sc.last_attempts = att;
  sc.last_retries = ret;
  sc.checks.fetch_add(1, std::memory_order_relaxed);
  if (da > 0) {
    const double rate = double(dr) / double(da);
    const uint8_t want = rate > opts.scan_retry_threshold ? uint8_t(ScanMode::kRandomized)
                                                          : uint8_t(ScanMode::kSequential);
    if (want != sc.mode.load(std::memory_order_relaxed)) {
      if (++sc.streak >= std::max<uint32_t>(1, opts.scan_dwell_checks)) {
        sc.mode.store(want, std::memory_order_relaxed);
        sc.switches.fetch_add(1, std::memory_order_relaxed);
        sc.streak = 0;
      }
    } else {
      sc.streak = 0;
    }
  }
  sc.busy.store(false, std::memory_order_release);
}

// ---- EpochDomain ------------------------------------------------------------------------

namespace detail {
// Entries are atomic so that a refused destruction on another thread can
// clear its own entry without racing with the owner.
struct DomainStack {
  std::atomic<EpochDomain*> e[kMaxDomainDepth] = {};
  uint32_t n = 0;  // owner thread only
  void trim() noexcept {
    while (n > 0 && e[n - 1].load(std::memory_order_acquire) == nullptr) --n;
  }
};
}  // namespace detail

namespace {
thread_local std::shared_ptr<DomainStack> t_domains;
DomainStack& my_stack() {
  if (!t_domains) t_domains = std::make_shared<DomainStack>();
  return *t_domains;
}
}  // namespace

EpochDomain::EpochDomain(SlabAllocator& alloc, uint32_t epoch, bool auto_close) noexcept
    : alloc_(&alloc), epoch_(epoch), auto_close_(auto_close), owner_(pthread_self()) {
  SlabAllocator::Impl& im = *alloc.impl_;
  if (epoch >= kEpochCount) {
    status_ = Status(Code::kInvalidArgument, "EpochDomain: epoch must be a ring index < 16");
    return;
  }
  DomainStack* st;
  try {
    st = &my_stack();  // one heap allocation per thread, on its first domain
  } catch (...) {
    status_ = Status(Code::kOutOfMemory, "EpochDomain: thread domain stack");
    return;
  }
  st->trim();
  if (st->n >= kMaxDomainDepth) {
    im.domain_violations.fetch_add(1, std::memory_order_relaxed);
    status_ = Status(Code::kDomainViolation, "EpochDomain: nesting deeper than 32");
    return;
  }
  slot_ = st->n++;
  st->e[slot_].store(this, std::memory_order_release);
  stack_ = t_domains;
  // Remember the era: auto-close must not close a later incarnation of the
  // ring slot (seed 002 bug 4, issue 2).
  era_ = im.epochs[epoch].era.load(std::memory_order_acquire);
  im.epochs[epoch].domain_refcount.fetch_add(1, std::memory_order_acq_rel);
  entered_ = true;
}

EpochDomain::~EpochDomain() {
  if (!entered_) return;
  SlabAllocator::Impl& im = *alloc_->impl_;
  bool in_order = false;
  const bool owner = pthread_equal(pthread_self(), pthread_t(owner_)) != 0;
  if (!owner) {
    // Refused: counted; only our own entry is cleared so the owner's stack
    // stays consistent (the owner skips cleared entries).
    im.domain_violations.fetch_add(1, std::memory_order_relaxed);
    stack_->e[slot_].store(nullptr, std::memory_order_release);
  } else {
    DomainStack& st = *stack_;
    st.trim();
    if (st.n > 0 && st.n - 1 == slot_ && st.e[slot_].load(std::memory_order_relaxed) == this) {
      in_order = true;
    } else {
      im.domain_violations.fetch_add(1, std::memory_order_relaxed);  // not LIFO
    }
    st.e[slot_].store(nullptr, std::memory_order_release);
    st.trim();
  }
  const int64_t left = im.epochs[epoch_].domain_refcount.fetch_sub(1, std::memory_order_acq_rel) - 1;
  if (auto_close_ && owner && in_order && left == 0 &&
      im.epochs[epoch_].era.load(std::memory_order_acquire) == era_) {
    (void)alloc_->epoch_close(epoch_);
  }
}

Result<Allocation> EpochDomain::allocate(size_t bytes) noexcept {
  if (!status_) return status_;
  if (!pthread_equal(pthread_self(), pthread_t(owner_))) {
    alloc_->impl_->domain_violations.fetch_add(1, std::memory_order_relaxed);
    return Status(Code::kDomainViolation, "EpochDomain::allocate: called off the owner thread");
  }
  return alloc_->allocate(bytes, epoch_);
}

EpochDomain* EpochDomain::current() noexcept {
  if (!t_domains) return nullptr;
  DomainStack& st = *t_domains;
  st.trim();
  return st.n ? st.e[st.n - 1].load(std::memory_order_acquire) : nullptr;
}

uint32_t EpochDomain::depth() noexcept {
  if (!t_domains) return 0;
  DomainStack& st = *t_domains;
  st.trim();
  uint32_t live = 0;  // entries refused out of order are cleared, not counted
  for (uint32_t i = 0; i < st.n; ++i) live += st.e[i].load(std::memory_order_acquire) != nullptr;
  return live;
}

}  // namespace znslab::slab
