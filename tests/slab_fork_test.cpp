// fork(2) support of the temporal slab allocator (SlabAllocator::
// fork_prepare/fork_parent/fork_child, used by the preload malloc's atfork
// handlers), tag [slab]. Each child runs under an alarm: a lock inherited
// from a thread that does not exist in the child ends it with SIGALRM.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "src/slab/slab.h"
#include "tests/skip.h"

using namespace znslab;
using namespace znslab::slab;

TEST_CASE("fork during slow paths: the child can allocate, free and close epochs (fork_prepare/parent/child)",
          "[slab]") {
  // A worker spends most of its time under the allocator's locks (refills,
  // drains, decommits in epoch_close); the main thread forks meanwhile, as
  // pthread_atfork handlers would bracket it. Every child must be able to
  // use the same bins, epochs and arena; a lock inherited from the worker
  // (which does not exist in the child) would hang it: SIGALRM ends it.
#if defined(__SANITIZE_THREAD__)
  ZNSLAB_SKIP("TSan build: its deadlock detector aborts when one thread holds more than 64 mutexes, "
              "and fork_prepare holds every bin's (16 epochs x size classes)");
#endif
  Options o;
  o.arena_bytes = size_t(256) << 20;
  auto r = SlabAllocator::create(o);
  REQUIRE(r.is_ok());
  SlabAllocator& al = **r;
  std::atomic<bool> stop{false};
  std::thread worker([&] {
    std::vector<Handle> hs;
    for (uint32_t round = 0; !stop.load(std::memory_order_relaxed); ++round) {
      const uint32_t e = 1 + round % 3;
      (void)al.epoch_reopen(e);
      for (int i = 0; i < 2000; ++i)
        if (auto a = al.allocate(96 + 64 * (i % 8), e)) hs.push_back(a->handle);
      for (Handle h : hs) (void)al.free(h);
      hs.clear();
      (void)al.epoch_close(e);
    }
  });
#ifdef ZNSLAB_SANITIZE
  constexpr int kForks = 20;
#else
  constexpr int kForks = 100;
#endif
  int hung = 0, failed = 0;
  for (int k = 0; k < kForks; ++k) {
    std::this_thread::sleep_for(std::chrono::microseconds(200 + 37 * k));
    al.fork_prepare();
    const pid_t pid = ::fork();
    if (pid == 0) {
      al.fork_child();
      ::alarm(20);
      int bad = 0;
      for (uint32_t e = 1; e <= 3; ++e) {
        if (Status rs = al.epoch_reopen(e); !rs) {
          std::fprintf(stderr, "fork child: epoch_reopen(%u): %s\n", e, rs.to_string().c_str());
          bad++;
        }
        std::vector<Handle> mine;
        for (int i = 0; i < 500; ++i) {
          auto a = al.allocate(96 + 64 * (i % 8), e);
          if (!a) {
            if (!bad++) std::fprintf(stderr, "fork child: allocate: %s\n", a.status().to_string().c_str());
            continue;
          }
          std::memset(a->ptr, uint8_t(mine.size() * 7 + 1), a->usable);
          mine.push_back(a->handle);
        }
        // Every object is the child's alone: a slot handed out twice (or
        // one a vanished thread still held) would show another fill.
        for (size_t i = 0; i < mine.size(); ++i) {
          auto p = al.deref(mine[i]);
          if (!p) {
            bad++;
            continue;
          }
          const auto* b = static_cast<const uint8_t*>(*p);
          const size_t usable = 96 + 64 * (i % 8);
          for (size_t j = 0; j < usable; ++j)
            if (b[j] != uint8_t(i * 7 + 1)) {
              bad++;
              break;
            }
        }
        for (Handle h : mine)
          if (!al.free(h)) bad++;
        if (!al.epoch_close(e)) bad++;
      }
      al.reclaim();
      if (bad) std::fprintf(stderr, "fork child: %d failed calls\n", bad);
      // (No verify() here: the per-thread statistics of an operation the
      // worker had in flight at the fork stay half-counted in the child.)
      ::_exit(bad == 0 ? 0 : 1);
    }
    al.fork_parent();
    REQUIRE(pid > 0);
    int st = 0;
    REQUIRE(::waitpid(pid, &st, 0) == pid);
    if (WIFSIGNALED(st)) hung++;
    else if (WEXITSTATUS(st) != 0) failed++;
  }
  stop.store(true);
  worker.join();
  CHECK(hung == 0);
  CHECK(failed == 0);
  REQUIRE(al.verify().is_ok());
}
