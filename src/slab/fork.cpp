// fork(2) support: every lock of one allocator taken in its global order
// before fork and released after it in both processes (pthread_atfork).
//
// The order is the one the allocator itself nests them in: epoch_mu
// (epoch_close) -> reclaim_mu (reclaim, epoch_close) -> a bin's mu (drain,
// slow-path refill; bins never nest) -> arena_mu (slab acquisition and
// decommit under a bin or reclaim) -> the thread-cache list lock (taken
// under epoch_mu by the thread-cache steal; a leaf but for) -> the shard
// index lock (taken under the list lock when an exiting thread flushes).
#include "src/pages/pages.h"
#include "src/slab/slab_internal.h"

namespace znslab::slab {

void SlabAllocator::fork_prepare() noexcept {
  Impl& im = *impl_;
  // Function-local statics another thread may be initializing right now:
  // their guard would stay taken in the child. Waiting for them here (the
  // guard blocks until the initializer is done) completes them first.
  (void)detail::tc_steal_enabled();
  (void)pages::page_size();
  (void)pages::huge_page_size();
  im.epoch_mu.lock();
  im.reclaim_mu.lock();
  for (uint32_t e = 0; e < kEpochCount; ++e)
    for (uint32_t c = 0; c < kNumClasses; ++c) im.bins[e][c].mu.lock();
  im.arena_mu.lock();
  detail::tcache_list_lock();
  detail::shard_index_lock();
}

namespace {
void release_all(SlabAllocator::Impl& im) noexcept {
  detail::shard_index_unlock();
  detail::tcache_list_unlock();
  im.arena_mu.unlock();
  for (uint32_t e = kEpochCount; e-- > 0;)
    for (uint32_t c = kNumClasses; c-- > 0;) im.bins[e][c].mu.unlock();
  im.reclaim_mu.unlock();
  im.epoch_mu.unlock();
}
}  // namespace

void SlabAllocator::fork_parent() noexcept { release_all(*impl_); }

// The child's only thread is the one that forked, which owns every lock
// (glibc's pthread mutexes may be unlocked by their owner in the child).
// The other threads' caches go first: a closer would otherwise wait forever
// for an operation of a thread that is not there (tc_steal). Their flush may
// assign this thread a shard index, so that lock is released before it.
//
// Solo free mode starts over: the child's only thread is the only freer. A
// solo thread caught inside a solo free (odd solo_seq) or an ender caught
// between kSoloEnding and kSoloMulti does not exist here and would make the
// child's first free wait forever.
void SlabAllocator::fork_child() noexcept {
  Impl& im = *impl_;
  const uint64_t seq = im.solo_seq.load(std::memory_order_relaxed);
  im.solo_seq.store(seq + (seq & 1), std::memory_order_relaxed);
  im.solo.store(SlabAllocator::Impl::kSoloNone, std::memory_order_release);
  detail::shard_index_unlock();
  im.tc_fork_child();
  detail::shard_index_lock();
  release_all(im);
}

}  // namespace znslab::slab
