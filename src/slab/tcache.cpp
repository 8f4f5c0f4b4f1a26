// Thread caches of the temporal slab allocator (Options::thread_cache): one
// magazine of claimed free slots per (epoch, class) per thread, see
// slab_internal.h. This file holds their cold paths: creation and lookup,
// flushes (overflow, stale era, epoch close, stats, thread exit) and
// teardown. The hot paths (pop in allocate, push in free) are in slab.cpp.
//
// Lifetime: a ThreadCache is linked into its thread's list and into its
// allocator's list (under g_tc_mu). Thread exit flushes every cache whose
// allocator is still alive and frees it; allocator destruction marks its
// caches dead (im = nullptr) and the owning threads free them later.
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <new>

#include "src/slab/slab_internal.h"

namespace znslab::slab {

using namespace detail;

namespace detail {
constinit thread_local ThreadCache* t_tc = nullptr;
constinit thread_local uint64_t t_tc_id = 0;
}  // namespace detail

namespace {
std::mutex g_tc_mu;  // guards ThreadCache::im and the allocators' lists
thread_local bool t_tc_dead = false;  // this thread's list was torn down

void unlink_im(SlabAllocator::Impl& im, ThreadCache* x) {
  if (x->im_prev) x->im_prev->im_next = x->im_next;
  else im.tc_head = x->im_next;
  if (x->im_next) x->im_next->im_prev = x->im_prev;
  x->im_next = x->im_prev = nullptr;
}

void flush_all(SlabAllocator::Impl& im, ThreadCache& tc) noexcept {
  for (uint32_t e = 0; e < kEpochCount; ++e)
    for (uint32_t c = 0; c < kNumClasses; ++c)
      if (tc.mag[e][c].n) im.tc_flush(tc, e, c, tc.mag[e][c].n);
}

struct ThreadList {
  ThreadCache* head = nullptr;
  ~ThreadList() {
    // Thread exit: the thread's cached slots go back to their slabs.
    t_tc_dead = true;
    t_tc = nullptr;
    t_tc_id = 0;
    std::lock_guard<std::mutex> g(g_tc_mu);
    while (head) {
      ThreadCache* x = head;
      head = x->thr_next;
      if (x->im) {
        flush_all(*x->im, *x);
        unlink_im(*x->im, x);
      }
      delete x;
    }
  }
};
thread_local ThreadList t_list;
}  // namespace

namespace detail {
void tcache_list_lock() noexcept { g_tc_mu.lock(); }
void tcache_list_unlock() noexcept { g_tc_mu.unlock(); }
}  // namespace detail

ThreadCache* SlabAllocator::Impl::tcache_slow() noexcept {
  if (t_tc_dead) return nullptr;
  // The shard index guard is constructed first, so it is destroyed after
  // t_list: the exit flush still counts into this thread's shard.
  const uint32_t idx = thread_shard_index();
  std::lock_guard<std::mutex> g(g_tc_mu);
  ThreadCache* found = nullptr;
  for (ThreadCache** link = &t_list.head; *link;) {
    ThreadCache* x = *link;
    if (!x->im) {  // its allocator is gone
      *link = x->thr_next;
      delete x;
      continue;
    }
    if (x->im_id == id) found = x;
    link = &x->thr_next;
  }
  if (!found) {
    found = new (std::nothrow) ThreadCache();
    if (!found) return nullptr;  // no cache: the shared path serves
    found->im = this;
    found->im_id = id;
    found->seen_gen = tc_gen.load(std::memory_order_acquire);
    found->sh = idx < kShards ? &shard(idx) : nullptr;
    found->thr_next = t_list.head;
    t_list.head = found;
    found->im_next = tc_head;
    if (tc_head) tc_head->im_prev = found;
    tc_head = found;
  }
  t_tc = found;
  t_tc_id = id;
  return found;
}

void SlabAllocator::Impl::tc_flush(ThreadCache& tc, uint32_t e, uint32_t c, uint32_t k) noexcept {
  Mag& mg = tc.mag[e][c];
  if (k > mg.n) k = mg.n;
  if (k == 0) return;
  const uint32_t idx = thread_shard_index();
  const bool ex = idx < kShards;
  ClassCounters& cc = shard(idx).cls[c];
  // Consecutive entries of one slab are released with one CAS.
  uint32_t cur = kNone;
  uint64_t bits = 0;
  for (uint32_t i = 0; i <= k; ++i) {
    const uint32_t s = i < k ? uint32_t(mg.ent[i] & 0x3FFFFF) : kNone;
    if (s != cur && bits) {
      if (release_bit(*this, cur, bits, c, e)) bump(cc.empty_slabs, 1, ex);
      bits = 0;
    }
    if (i == k) break;
    cur = s;
    bits |= uint64_t(1) << ((mg.ent[i] >> 22) & 0xFF);
  }
  std::memmove(mg.ent, mg.ent + k, size_t(mg.n - k) * sizeof(mg.ent[0]));
  mg.n -= k;
  bump(cc.cached, -int64_t(k), ex);
}

bool detail::tc_steal_enabled() noexcept {
  static const bool ok = [] {
    const long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return false;
    return syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
  }();
  return ok;
}

void SlabAllocator::Impl::tc_steal(uint32_t e) noexcept {
  if (!opts.thread_cache || !tc_steal_enabled()) return;
  // Every thread now runs a full barrier: an operation that began before
  // this point has published its odd op_seq; one that begins after it sees
  // the epoch CLOSING and leaves its magazines of `e` alone.
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) return;
  std::lock_guard<std::mutex> g(g_tc_mu);
  for (ThreadCache* x = tc_head; x; x = x->im_next) {
    const uint64_t v = x->op_seq.load(std::memory_order_acquire);
    if (v & 1)
      while (x->op_seq.load(std::memory_order_acquire) == v) __builtin_ia32_pause();
    for (uint32_t c = 0; c < kNumClasses; ++c)
      if (x->mag[e][c].n) tc_flush(*x, e, c, x->mag[e][c].n);
  }
}

bool SlabAllocator::Impl::tc_meta_grace() noexcept {
  if (!tc_steal_enabled()) return false;
  // After this every thread has run a full barrier: a MetaGuard section
  // that began before it has published its odd meta_seq (or its
  // unguarded_ops increment); one that begins after it sees kTagCompact.
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) return false;
  {
    // try_lock: a closer in tc_steal() holds the list while it waits for
    // the op_seq of threads that may be blocked on our spill pass.
    std::unique_lock<std::mutex> g(g_tc_mu, std::try_to_lock);
    if (!g.owns_lock()) return false;
    const ThreadCache* self = t_tc_id == id ? t_tc : nullptr;
    for (ThreadCache* x = tc_head; x; x = x->im_next) {
      if (x == self) continue;  // the caller is between operations
      const uint64_t v = x->meta_seq.load(std::memory_order_acquire);
      if (v & 1)
        while (x->meta_seq.load(std::memory_order_acquire) == v) __builtin_ia32_pause();
    }
  }
  for (uint32_t spins = 0; unguarded_ops.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins > (1u << 20)) return false;  // threads without a cache keep coming: give up
    __builtin_ia32_pause();
  }
  return true;
}

void SlabAllocator::Impl::tc_revalidate(ThreadCache& tc) noexcept {
  const uint64_t gen = tc_gen.load(std::memory_order_acquire);
  const bool steal = tc_steal_enabled();
  for (uint32_t e = 0; e < kEpochCount; ++e) {
    const EpochSlot& ep = epochs[e];
    const bool active = ep.state.load(std::memory_order_acquire) == uint8_t(EpochState::kActive);
    // With stealing, a CLOSING epoch's magazines belong to its closer.
    if (!active && steal) continue;
    const uint64_t era = ep.era.load(std::memory_order_acquire);
    for (uint32_t c = 0; c < kNumClasses; ++c) {
      Mag& mg = tc.mag[e][c];
      if (mg.n && (!active || mg.era != era)) tc_flush(tc, e, c, mg.n);
    }
  }
  tc.seen_gen = gen;
}

void SlabAllocator::Impl::tc_flush_self(uint32_t e) noexcept {
  if (t_tc_id != id || !t_tc) return;
  ThreadCache& tc = *t_tc;
  OpGuard op(&tc);
  const bool steal = tc_steal_enabled();
  for (uint32_t ep = 0; ep < kEpochCount; ++ep) {
    if (e < kEpochCount && ep != e) continue;
    // With stealing, a CLOSING epoch's magazines belong to its closer.
    if (steal && epochs[ep].state.load(std::memory_order_acquire) != uint8_t(EpochState::kActive))
      continue;
    for (uint32_t c = 0; c < kNumClasses; ++c)
      if (tc.mag[ep][c].n) tc_flush(tc, ep, c, tc.mag[ep][c].n);
  }
}

void SlabAllocator::Impl::tc_fork_child() noexcept {
  for (ThreadCache* x = tc_head; x;) {
    ThreadCache* next = x->im_next;
    bool mine = false;  // on the forking (the child's only) thread's own list
    for (ThreadCache* y = t_list.head; y && !mine; y = y->thr_next) mine = y == x;
    if (!mine) {
      if ((x->op_seq.load(std::memory_order_acquire) & 1) == 0) flush_all(*this, *x);
      unlink_im(*this, x);
      x->im = nullptr;  // its owner does not exist here: never freed
    }
    x = next;
  }
}

void SlabAllocator::Impl::tc_detach_all() noexcept {
  std::lock_guard<std::mutex> g(g_tc_mu);
  while (tc_head) {
    ThreadCache* x = tc_head;
    tc_head = x->im_next;
    x->im = nullptr;  // freed by its thread (next lookup or exit)
    x->im_next = x->im_prev = nullptr;
  }
  if (t_tc_id == id) {
    t_tc = nullptr;
    t_tc_id = 0;
  }
}

}  // namespace znslab::slab
