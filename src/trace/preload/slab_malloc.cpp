// libznsslab-malloc.so: an LD_PRELOAD malloc backed by the temporal slab
// (src/slab, through its public API only), for running unmodified programs
// on it (issue 12). docs/trace.md "Programs on the temporal slab".
//
// Environment:
//   ZNSSLAB_EPOCH_POLICY  time (default) | callsite
//   ZNSSLAB_EPOCH_MS      window length, ms (default 100)
//   ZNSSLAB_STATS         path: write a stats JSON there at exit ("%p" = pid)
//
// Placement: a request of n bytes with alignment <= 16 and n + 16 <= 768
// takes a slab slot; the 16 bytes before the returned pointer hold its
// header (handle, allocation time, usable bytes, call site). Everything
// else (larger, more aligned, valloc/pvalloc, and calls made while the slab
// itself allocates) goes to the fallback: the next malloc in the link order
// (glibc's), with a 16-byte header of its own. Slab pointers are told apart
// by address: the slab reserves one arena, and its lowest and highest slot
// addresses seen bound it.
// Epochs: ring slot 0 is the long-lived epoch; windows use slots 1..15 in
// turn. Every ZNSSLAB_EPOCH_MS (checked by allocating threads every 64
// allocations, coarse clock) the current window's slot is closed (its
// empty slabs go back to the OS) and the next one (re)opened.
//   time:     every slab object goes to the current window.
//   callsite: per direct caller (return address hashed into 4096 sites), a
//             lifetime learned from frees (a decaying maximum, in ms); an
//             object whose predicted end falls after the window's end goes
//             to the long-lived epoch, else to the window (unseen: window).
// Fork: the prepare handler holds the epoch lock (all epoch work and every
// decommit run under it: reclaim_batch_slabs = 0), then every lock of the
// slab (SlabAllocator::fork_prepare), so the child never inherits a
// half-done epoch change or a lock held by a thread it does not have.
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "src/slab/slab.h"

namespace {

namespace slab = znslab::slab;

#define TLS __attribute__((tls_model("initial-exec"))) thread_local

using malloc_fn = void* (*)(size_t);
using calloc_fn = void* (*)(size_t, size_t);
using realloc_fn = void* (*)(void*, size_t);
using free_fn = void (*)(void*);
using memalign_fn = void* (*)(size_t, size_t);
using usable_fn = size_t (*)(void*);
malloc_fn real_malloc;
calloc_fn real_calloc;
realloc_fn real_realloc;
free_fn real_free;
memalign_fn real_memalign;
usable_fn real_usable;

alignas(64) char g_boot[1 << 16];
std::atomic<size_t> g_boot_used{0};
bool in_boot(const void* p) { return p >= g_boot && p < g_boot + sizeof g_boot; }
void* boot_alloc(size_t n) {
  n = (n + 15) & ~size_t(15);
  size_t off = g_boot_used.fetch_add(n + 16);
  if (off + n + 16 > sizeof g_boot) return nullptr;
  std::memcpy(g_boot + off, &n, sizeof n);
  return g_boot + off + 16;
}
size_t boot_size(const void* p) {
  size_t n;
  std::memcpy(&n, static_cast<const char*>(p) - 16, sizeof n);
  return n;
}

constexpr size_t kHdr = 16;
constexpr uint32_t kFallbackMagic = 0x5a46424bu;
struct SlabHdr {     // before a slab object
  uint64_t handle;
  uint32_t alloc_ms;
  uint16_t usable;   // bytes usable after the header
  uint16_t site;
};
struct FbHdr {       // before a fallback object
  uint64_t base;     // what the fallback allocator returned
  uint32_t magic;
  uint32_t pad;
};
static_assert(sizeof(SlabHdr) == kHdr && sizeof(FbHdr) == kHdr);

enum : int { kUninit, kInitializing, kReady, kBroken };
std::atomic<int> g_state{kUninit};
slab::SlabAllocator* g_slab = nullptr;
std::atomic<uintptr_t> g_lo{UINTPTR_MAX}, g_hi{0};
bool g_callsite = false;
uint32_t g_epoch_ms = 100;
std::string* g_stats_path = nullptr;
pthread_mutex_t g_epoch_mu = PTHREAD_MUTEX_INITIALIZER;
std::atomic<uint32_t> g_window_slot{1};
std::atomic<uint64_t> g_window_end_ms{0};
uint64_t g_t0_ms = 0;
constexpr uint32_t kSites = 4096;
std::atomic<uint32_t> g_site_pred[kSites];
// Counters.
std::atomic<uint64_t> c_slab_ops{0}, c_fb_ops{0}, c_fb_bytes{0}, c_windows{0}, c_long{0}, c_win{0},
    c_refused{0}, c_unaligned{0};

TLS int t_busy = 0;  // inside our own/slab code: serve from the fallback
TLS uint32_t t_tick = 0;
struct Busy {
  Busy() { ++t_busy; }
  ~Busy() { --t_busy; }
};

uint64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

template <typename F>
void resolve(F& f, const char* name) {
  f = reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

// The epoch lock first (epoch work nests the slab's locks inside it), then
// every lock of the slab (SlabAllocator::fork_prepare): a thread in the
// slab's slow path at the moment of fork finishes it first.
void atfork_prepare() {
  pthread_mutex_lock(&g_epoch_mu);
  g_slab->fork_prepare();
}
void atfork_parent() {
  g_slab->fork_parent();
  pthread_mutex_unlock(&g_epoch_mu);
}
void atfork_child() {
  g_slab->fork_child();
  pthread_mutex_unlock(&g_epoch_mu);
}

void init() {
  int expect = kUninit;
  if (!g_state.compare_exchange_strong(expect, kInitializing)) return;
  Busy b;
  resolve(real_calloc, "calloc");
  resolve(real_malloc, "malloc");
  resolve(real_realloc, "realloc");
  resolve(real_free, "free");
  resolve(real_memalign, "memalign");
  resolve(real_usable, "malloc_usable_size");
  if (!real_malloc || !real_free || !real_calloc || !real_realloc || !real_memalign || !real_usable) {
    g_state = kBroken;
    return;
  }
  if (const char* p = getenv("ZNSSLAB_EPOCH_POLICY")) g_callsite = std::strcmp(p, "callsite") == 0;
  if (const char* m = getenv("ZNSSLAB_EPOCH_MS")) {
    long v = atol(m);
    g_epoch_ms = v < 1 ? 1 : uint32_t(v);
  }
  if (const char* s = getenv("ZNSSLAB_STATS")) g_stats_path = new std::string(s);
  slab::Options o;
  o.reclaim_batch_slabs = 0;  // decommit only in epoch work (under g_epoch_mu)
  auto r = slab::SlabAllocator::create(o);
  if (!r) {
    g_state = kBroken;
    return;
  }
  g_slab = r.value().release();
  g_t0_ms = now_ms();
  g_window_end_ms = g_t0_ms + g_epoch_ms;
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
  g_state = kReady;
}

// Closes the current window and opens the next (cold; try-lock).
void epoch_tick(uint64_t now) {
  if (pthread_mutex_trylock(&g_epoch_mu) != 0) return;
  if (now >= g_window_end_ms.load()) {
    Busy b;
    const uint32_t old = g_window_slot.load();
    const uint32_t next = old % 15 + 1;
    (void)g_slab->epoch_reopen(next);
    g_window_slot.store(next);
    g_window_end_ms.store(now + g_epoch_ms);
    (void)g_slab->epoch_close(old);
    g_slab->reclaim();
    c_windows.fetch_add(1, std::memory_order_relaxed);
  }
  pthread_mutex_unlock(&g_epoch_mu);
}

bool is_slab(const void* p) {
  const uintptr_t u = uintptr_t(p);
  return u >= g_lo.load(std::memory_order_relaxed) && u <= g_hi.load(std::memory_order_relaxed);
}

void* fb_alloc(size_t n, size_t align, bool zero) {
  if (n > SIZE_MAX - 2 * kHdr - align) return nullptr;
  char* base;
  char* user;
  if (align <= 16) {
    base = static_cast<char*>(zero ? real_calloc(1, n + kHdr) : real_malloc(n + kHdr));
    if (!base) return nullptr;
    user = base + kHdr;
  } else {
    base = static_cast<char*>(real_memalign(align, n + align));
    if (!base) return nullptr;
    user = base + align;
    if (zero) std::memset(user, 0, n);
  }
  FbHdr h{uint64_t(uintptr_t(base)), kFallbackMagic, 0};
  std::memcpy(user - kHdr, &h, kHdr);
  if (!t_busy) {
    c_fb_ops.fetch_add(1, std::memory_order_relaxed);
    c_fb_bytes.fetch_add(n, std::memory_order_relaxed);
  }
  return user;
}

uint16_t site_of(void* ret) {
  uint64_t x = uintptr_t(ret);
  x ^= x >> 29;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 32;
  return uint16_t(x % kSites);
}

void* zmalloc(size_t n, size_t align, bool zero, void* ret) {
  const int st = g_state.load(std::memory_order_acquire);
  if (st != kReady) {
    if (st == kUninit) init();
    if (g_state.load() != kReady) {
      if (!real_malloc) return boot_alloc(n);
      return fb_alloc(n, align, zero);
    }
  }
  if (t_busy || align > 16 || n + kHdr > slab::kMaxObjectBytes) return fb_alloc(n, align, zero);
  Busy b;
  const uint64_t now = now_ms();
  if ((++t_tick & 63) == 0 && now >= g_window_end_ms.load(std::memory_order_relaxed)) epoch_tick(now);
  const uint16_t site = g_callsite ? site_of(ret) : 0;
  uint32_t epoch = g_window_slot.load(std::memory_order_relaxed);
  if (g_callsite) {
    const uint64_t pred = g_site_pred[site].load(std::memory_order_relaxed);
    if (now + pred >= g_window_end_ms.load(std::memory_order_relaxed)) epoch = 0;
  }
  auto r = g_slab->allocate(n + kHdr, epoch);
  if (!r && epoch != 0) {  // the window closed under us: the next one
    c_refused.fetch_add(1, std::memory_order_relaxed);
    r = g_slab->allocate(n + kHdr, g_window_slot.load());
  }
  if (!r) return fb_alloc(n, align, zero);
  char* p = static_cast<char*>(r->ptr);
  if (uintptr_t(p) % 16 != 0) {  // never seen; keeps the contract if slots change
    (void)g_slab->free(r->handle);
    c_unaligned.fetch_add(1, std::memory_order_relaxed);
    return fb_alloc(n, align, zero);
  }
  const uintptr_t user = uintptr_t(p) + kHdr;  // the bounds are of user pointers
  uintptr_t lo = g_lo.load(std::memory_order_relaxed), hi = g_hi.load(std::memory_order_relaxed);
  while (user < lo && !g_lo.compare_exchange_weak(lo, user)) {
  }
  while (user > hi && !g_hi.compare_exchange_weak(hi, user)) {
  }
  SlabHdr h{r->handle.raw, uint32_t(now - g_t0_ms), uint16_t(r->usable - kHdr), site};
  std::memcpy(p, &h, kHdr);
  c_slab_ops.fetch_add(1, std::memory_order_relaxed);
  (epoch == 0 ? c_long : c_win).fetch_add(1, std::memory_order_relaxed);
  if (zero) std::memset(p + kHdr, 0, n);
  return p + kHdr;
}

void zfree(void* p) {
  if (!p || in_boot(p)) return;
  if (is_slab(p)) {
    SlabHdr h;
    std::memcpy(&h, static_cast<char*>(p) - kHdr, kHdr);
    if (g_callsite) {
      const uint32_t life = uint32_t(now_ms() - g_t0_ms) - h.alloc_ms;
      auto& pr = g_site_pred[h.site];
      const uint32_t old = pr.load(std::memory_order_relaxed);
      pr.store(life > old - old / 8 ? life : old - old / 8, std::memory_order_relaxed);
    }
    Busy b;
    (void)g_slab->free(slab::Handle{h.handle});
    return;
  }
  FbHdr h;
  std::memcpy(&h, static_cast<char*>(p) - kHdr, kHdr);
  if (h.magic == kFallbackMagic) {
    real_free(reinterpret_cast<void*>(uintptr_t(h.base)));
  } else if (real_free) {
    real_free(p);  // not ours: allocated through the next malloc directly
  }
}

size_t zusable(const void* p) {
  if (!p) return 0;
  if (in_boot(p)) return boot_size(p);
  if (is_slab(p)) {
    SlabHdr h;
    std::memcpy(&h, static_cast<const char*>(p) - kHdr, kHdr);
    return h.usable;
  }
  FbHdr h;
  std::memcpy(&h, static_cast<const char*>(p) - kHdr, kHdr);
  if (h.magic != kFallbackMagic) return real_usable ? real_usable(const_cast<void*>(p)) : 0;
  void* base = reinterpret_cast<void*>(uintptr_t(h.base));
  return real_usable(base) - size_t(static_cast<const char*>(p) - static_cast<char*>(base));
}

void write_stats() {
  if (!g_stats_path || g_state.load() != kReady) return;
  std::string path;
  for (size_t i = 0; i < g_stats_path->size(); ++i) {
    if ((*g_stats_path)[i] == '%' && i + 1 < g_stats_path->size() && (*g_stats_path)[i + 1] == 'p') {
      path += std::to_string(getpid());
      ++i;
    } else {
      path += (*g_stats_path)[i];
    }
  }
  std::string slab_json = g_slab->stats_json();
  char head[1024];
  std::snprintf(head, sizeof head,
                "{\"schema\":\"znslab.slab-malloc-stats/1\",\"pid\":%d,\"epoch_policy\":\"%s\",\"epoch_ms\":%u,"
                "\"slab_ops\":%lu,\"fallback_ops\":%lu,\"fallback_bytes\":%lu,\"windows_closed\":%lu,"
                "\"window_objects\":%lu,\"long_epoch_objects\":%lu,\"epoch_refusals\":%lu,\"unaligned_slots\":%lu,"
                "\"slab\":",
                int(getpid()), g_callsite ? "callsite" : "time", g_epoch_ms, (unsigned long)c_slab_ops.load(),
                (unsigned long)c_fb_ops.load(), (unsigned long)c_fb_bytes.load(), (unsigned long)c_windows.load(),
                (unsigned long)c_win.load(), (unsigned long)c_long.load(), (unsigned long)c_refused.load(),
                (unsigned long)c_unaligned.load());
  std::string out = std::string(head) + slab_json + "}\n";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t w = ::write(fd, out.data(), out.size());
  (void)w;
  ::close(fd);
}

}  // namespace

#pragma GCC visibility push(default)
extern "C" {

void* malloc(size_t n) { return zmalloc(n, 0, false, __builtin_return_address(0)); }
void free(void* p) { zfree(p); }
void* calloc(size_t a, size_t b) {
  if (b && a > SIZE_MAX / b) {
    errno = ENOMEM;
    return nullptr;
  }
  if (!real_calloc && g_state.load() != kReady && g_state.load() != kUninit) return boot_alloc(a * b);
  return zmalloc(a * b, 0, true, __builtin_return_address(0));
}
void* realloc(void* old, size_t n) {
  if (!old) return zmalloc(n, 0, false, __builtin_return_address(0));
  if (n == 0) {
    zfree(old);
    return nullptr;
  }
  const size_t have = zusable(old);
  if (n <= have && (is_slab(old) || in_boot(old) || n + 4096 > have)) return old;
  if (!is_slab(old) && !in_boot(old) && n + kHdr > slab::kMaxObjectBytes) {
    // A fallback object staying in the fallback: its own realloc (in place
    // when it can), when it was not over-aligned.
    FbHdr h;
    std::memcpy(&h, static_cast<char*>(old) - kHdr, kHdr);
    if (h.magic == kFallbackMagic && h.base + kHdr == uintptr_t(old)) {
      char* base = static_cast<char*>(real_realloc(reinterpret_cast<void*>(uintptr_t(h.base)), n + kHdr));
      if (!base) return nullptr;
      h.base = uintptr_t(base);
      std::memcpy(base, &h, kHdr);
      c_fb_ops.fetch_add(1, std::memory_order_relaxed);
      c_fb_bytes.fetch_add(n, std::memory_order_relaxed);
      return base + kHdr;
    }
  }
  void* p = zmalloc(n, 0, false, __builtin_return_address(0));
  if (!p) return nullptr;
  std::memcpy(p, old, have < n ? have : n);
  zfree(old);
  return p;
}
int posix_memalign(void** out, size_t align, size_t n) {
  if (align < sizeof(void*) || (align & (align - 1))) return EINVAL;
  void* p = zmalloc(n, align, false, __builtin_return_address(0));
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}
void* aligned_alloc(size_t align, size_t n) {
  if (align == 0 || (align & (align - 1))) {
    errno = EINVAL;
    return nullptr;
  }
  return zmalloc(n, align, false, __builtin_return_address(0));
}
void* memalign(size_t align, size_t n) {
  if (align & (align - 1)) {
    errno = EINVAL;
    return nullptr;
  }
  return zmalloc(n, align, false, __builtin_return_address(0));
}
void* valloc(size_t n) { return zmalloc(n, 4096, false, nullptr); }
void* pvalloc(size_t n) { return zmalloc((n + 4095) & ~size_t(4095), 4096, false, nullptr); }
size_t malloc_usable_size(void* p) { return zusable(p); }

}  // extern "C"
#pragma GCC visibility pop

__attribute__((constructor)) static void znsslab_malloc_ctor() {
  if (g_state.load() == kUninit) init();
}
__attribute__((destructor)) static void znsslab_malloc_dtor() { write_stats(); }
