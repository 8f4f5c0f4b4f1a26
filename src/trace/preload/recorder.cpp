// libznstrace.so: the LD_PRELOAD allocation recorder (issue 12; format in
// src/trace/trace_format.h and docs/trace.md).
//
// Environment:
//   ZNSTRACE_OUT    output path; "%p" is replaced by the pid. Unset: the
//                   library only forwards to the next malloc.
//   ZNSTRACE_DEPTH  return addresses hashed into the call-site id (1..8,
//                   default 3; 1 = the direct caller only, cheapest).
//   ZNSTRACE_LEVEL  zstd level (default 3).
// If the path exists (an exec'd image of the same pid, a second run), the
// first free "PATH.N" (N = 1..999) is used instead: a file is never
// overwritten.
//
// Design: every hooked call forwards to the next definition (dlsym
// RTLD_NEXT; calls made while resolving it are served from a static
// bootstrap buffer), maps the pointer to a dense object id in a striped
// hash table, and appends one 56-byte event to a per-thread buffer. Full
// buffers go to a writer thread that compresses (zstd) and writes them,
// off the hot path. Work the recorder does itself (unwinding, the writer
// thread, zstd) runs with a thread-local "internal" flag: its allocations
// are forwarded untracked, and frees of pointers the table does not know
// are forwarded unrecorded.
// Lifecycle: exit (library destructor) and exec (execve & co. hooked)
// flush every thread's buffer and write the end frame. fork: with "%p" in
// ZNSTRACE_OUT the child records to its own file (fresh ids, only objects
// it allocates); without, the child stops recording cleanly (forwards
// only). A vfork child (pid differs, no atfork) never touches the state.
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <unwind.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <string>

#include "src/trace/trace_format.h"

using znslab::trace::Op;
using znslab::trace::TraceEvent;

namespace {

#define TLS __attribute__((tls_model("initial-exec"))) thread_local

using malloc_fn = void* (*)(size_t);
using calloc_fn = void* (*)(size_t, size_t);
using realloc_fn = void* (*)(void*, size_t);
using free_fn = void (*)(void*);
using memalign_fn = void* (*)(size_t, size_t);
using posix_memalign_fn = int (*)(void**, size_t, size_t);
using valloc_fn = void* (*)(size_t);
using usable_fn = size_t (*)(void*);
using execve_fn = int (*)(const char*, char* const[], char* const[]);
using execvpe_fn = int (*)(const char*, char* const[], char* const[]);
using fexecve_fn = int (*)(int, char* const[], char* const[]);

malloc_fn real_malloc;
calloc_fn real_calloc;
realloc_fn real_realloc;
free_fn real_free;
memalign_fn real_memalign, real_aligned_alloc;
posix_memalign_fn real_posix_memalign;
valloc_fn real_valloc, real_pvalloc;
usable_fn real_usable;

// ---- bootstrap buffer (dlsym may allocate before real_* exist) ------------
alignas(64) char g_boot[1 << 16];
std::atomic<size_t> g_boot_used{0};
bool in_boot(const void* p) { return p >= g_boot && p < g_boot + sizeof g_boot; }
void* boot_alloc(size_t n, size_t align = 16) {
  if (align < 16) align = 16;
  n = (n + 15) & ~size_t(15);
  size_t cur = g_boot_used.load();
  for (;;) {
    size_t start = (cur + 16 + align - 1) & ~(align - 1);  // 16 header bytes before
    if (start + n > sizeof g_boot) return nullptr;
    if (g_boot_used.compare_exchange_weak(cur, start + n)) {
      std::memcpy(g_boot + start - 16, &n, sizeof n);
      return g_boot + start;
    }
  }
}
size_t boot_size(const void* p) {
  size_t n;
  std::memcpy(&n, static_cast<const char*>(p) - 16, sizeof n);
  return n;
}

// ---- state ------------------------------------------------------------------
enum : int { kUninit = 0, kInitializing, kOff, kRecording, kFinished };
std::atomic<int> g_state{kUninit};
pid_t g_pid;
int g_fd = -1;
int g_depth = 3, g_level = 3;
std::string* g_pattern;  // ZNSTRACE_OUT (internal heap)
bool g_follow_fork = false;
std::atomic<uint64_t> g_seq{0}, g_next_id{1};
uint64_t g_mono0;
std::atomic<uint64_t> g_written{0};  // events written to the current file

TLS int t_internal = 0;
struct Internal {
  Internal() { ++t_internal; }
  ~Internal() { --t_internal; }
};

uint64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// ---- pointer -> object id: striped open-addressing tables --------------------
constexpr unsigned kStripes = 256;
constexpr uintptr_t kTomb = 1;
struct Stripe {
  std::atomic_flag lock = ATOMIC_FLAG_INIT;
  uintptr_t* keys = nullptr;
  uint64_t* vals = nullptr;
  size_t cap = 0, used = 0, live = 0;  // used counts tombstones too
  char pad[16];
};
Stripe g_map[kStripes];
inline uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}
inline Stripe& stripe_of(uintptr_t k) { return g_map[mix(k) & (kStripes - 1)]; }
inline void lock(Stripe& s) {
  while (s.lock.test_and_set(std::memory_order_acquire)) {
  }
}
inline void unlock(Stripe& s) { s.lock.clear(std::memory_order_release); }

void stripe_grow(Stripe& s) {
  size_t ncap = 64;  // a power of two (the probe mask)
  while (ncap < s.live * 4) ncap *= 2;
  auto* nk = static_cast<uintptr_t*>(real_calloc(ncap, sizeof(uintptr_t)));
  auto* nv = static_cast<uint64_t*>(real_malloc(ncap * sizeof(uint64_t)));
  if (!nk || !nv) std::abort();
  for (size_t i = 0; i < s.cap; ++i) {
    uintptr_t k = s.keys[i];
    if (k <= kTomb) continue;
    size_t j = (mix(k) >> 8) & (ncap - 1);
    while (nk[j]) j = (j + 1) & (ncap - 1);
    nk[j] = k;
    nv[j] = s.vals[i];
  }
  real_free(s.keys);
  real_free(s.vals);
  s.keys = nk;
  s.vals = nv;
  s.cap = ncap;
  s.used = s.live;
}
// Inserts or overwrites.
void map_put(uintptr_t k, uint64_t id) {
  Stripe& s = stripe_of(k);
  lock(s);
  if ((s.used + 1) * 2 > s.cap) stripe_grow(s);
  size_t j = (mix(k) >> 8) & (s.cap - 1), tomb = SIZE_MAX;
  for (;; j = (j + 1) & (s.cap - 1)) {
    if (s.keys[j] == k) {
      s.vals[j] = id;
      unlock(s);
      return;
    }
    if (s.keys[j] == kTomb && tomb == SIZE_MAX) tomb = j;
    if (s.keys[j] == 0) break;
  }
  if (tomb != SIZE_MAX) {
    j = tomb;
  } else {
    ++s.used;
  }
  s.keys[j] = k;
  s.vals[j] = id;
  ++s.live;
  unlock(s);
}
// Removes and returns the id (0 = unknown pointer). `peek` keeps it.
uint64_t map_take(uintptr_t k, bool peek = false) {
  Stripe& s = stripe_of(k);
  lock(s);
  uint64_t id = 0;
  if (s.cap) {
    for (size_t j = (mix(k) >> 8) & (s.cap - 1);; j = (j + 1) & (s.cap - 1)) {
      if (s.keys[j] == 0) break;
      if (s.keys[j] == k) {
        id = s.vals[j];
        if (!peek) {
          s.keys[j] = kTomb;
          --s.live;
        }
        break;
      }
    }
  }
  unlock(s);
  return id;
}
void map_clear() {
  for (auto& s : g_map) {
    if (s.keys) std::memset(s.keys, 0, s.cap * sizeof(uintptr_t));
    s.used = s.live = 0;
  }
}

// ---- per-thread buffers and the writer --------------------------------------
constexpr uint32_t kBufEvents = 8192;
struct Buf {
  TraceEvent ev[kBufEvents];
  uint32_t n = 0;
  Buf* next = nullptr;  // queue link
};
struct ThreadRec {
  Buf* buf = nullptr;
  uint32_t tid = 0;
  std::atomic<int> busy{0};
  ThreadRec* prev = nullptr;
  ThreadRec* next = nullptr;
};
TLS ThreadRec* t_rec = nullptr;
pthread_key_t g_key;
pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;  // queue, registry, file
pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
ThreadRec* g_threads = nullptr;
Buf* g_q_head = nullptr;
Buf* g_q_tail = nullptr;
Buf* g_pool = nullptr;
bool g_writer_running = false, g_writer_stop = false;
pthread_t g_writer;

Buf* buf_new() {  // g_mu held
  Buf* b = g_pool;
  if (b) {
    g_pool = b->next;
  } else {
    b = static_cast<Buf*>(real_malloc(sizeof(Buf)));
    if (!b) return nullptr;
  }
  b->n = 0;
  b->next = nullptr;
  return b;
}
void enqueue(Buf* b) {  // g_mu held
  b->next = nullptr;
  if (g_q_tail) g_q_tail->next = b; else g_q_head = b;
  g_q_tail = b;
}
bool write_all(const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t w = ::write(g_fd, s.data() + off, s.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    off += size_t(w);
  }
  return true;
}
// Compresses and writes one buffer (caller holds no lock or g_mu: the fd
// has one writer at a time).
void write_buf(Buf* b) {
  if (b->n == 0 || g_fd < 0) return;
  std::string f = znslab::trace::encode_frame(b->ev, b->n, g_level);
  if (!f.empty() && write_all(f)) g_written.fetch_add(b->n);
}
void* writer_main(void*) {
  t_internal = 1;
  pthread_mutex_lock(&g_mu);
  for (;;) {
    while (!g_q_head && !g_writer_stop) pthread_cond_wait(&g_cv, &g_mu);
    if (!g_q_head && g_writer_stop) break;
    Buf* b = g_q_head;
    g_q_head = b->next;
    if (!g_q_head) g_q_tail = nullptr;
    pthread_mutex_unlock(&g_mu);
    write_buf(b);
    pthread_mutex_lock(&g_mu);
    b->next = g_pool;
    g_pool = b;
  }
  pthread_mutex_unlock(&g_mu);
  return nullptr;
}
// Hands a full buffer to the writer and returns a fresh one (internal).
Buf* hand_off(Buf* full) {
  pthread_mutex_lock(&g_mu);
  enqueue(full);
  if (!g_writer_running) {
    g_writer_stop = false;
    if (pthread_create(&g_writer, nullptr, writer_main, nullptr) == 0) g_writer_running = true;
  }
  pthread_cond_signal(&g_cv);
  Buf* b = buf_new();
  pthread_mutex_unlock(&g_mu);
  return b;
}

void thread_exit(void* p) {
  auto* r = static_cast<ThreadRec*>(p);
  Internal in;
  pthread_mutex_lock(&g_mu);
  if (g_state.load() == kRecording && r->buf) {
    enqueue(r->buf);
    pthread_cond_signal(&g_cv);
  } else if (r->buf) {
    r->buf->next = g_pool;
    g_pool = r->buf;
  }
  r->buf = nullptr;
  if (r->prev) r->prev->next = r->next; else if (g_threads == r) g_threads = r->next;
  if (r->next) r->next->prev = r->prev;
  pthread_mutex_unlock(&g_mu);
  if (t_rec == r) t_rec = nullptr;
  real_free(r);
}

ThreadRec* thread_rec() {
  if (t_rec) return t_rec;
  auto* r = static_cast<ThreadRec*>(real_calloc(1, sizeof(ThreadRec)));
  if (!r) return nullptr;
  new (r) ThreadRec();
  r->tid = uint32_t(syscall(SYS_gettid));
  pthread_mutex_lock(&g_mu);
  r->buf = buf_new();
  r->next = g_threads;
  if (g_threads) g_threads->prev = r;
  g_threads = r;
  pthread_mutex_unlock(&g_mu);
  pthread_setspecific(g_key, r);
  t_rec = r;
  return r;
}

// ---- call sites ---------------------------------------------------------------
struct Unwind {
  uint64_t h = 0xcbf29ce484222325ull;
  int skip, left;
};
_Unwind_Reason_Code unwind_cb(_Unwind_Context* ctx, void* arg) {
  auto* u = static_cast<Unwind*>(arg);
  if (u->skip > 0) {
    --u->skip;
    return _URC_NO_REASON;
  }
  u->h = mix(u->h ^ uint64_t(_Unwind_GetIP(ctx)));
  return --u->left > 0 ? _URC_NO_REASON : _URC_END_OF_STACK;
}
__attribute__((noinline)) uint32_t callsite(void* ret0) {
  if (g_depth <= 1) return uint32_t(mix(uintptr_t(ret0)));
  // Frames: unwind_cb's caller chain = callsite, hook, caller...; skip 2.
  Unwind u{0xcbf29ce484222325ull, 2, g_depth};
  _Unwind_Backtrace(unwind_cb, &u);
  uint32_t h = uint32_t(u.h ^ (u.h >> 32));
  return h ? h : 1;
}

// ---- files --------------------------------------------------------------------
std::string expand(const std::string& pat, pid_t pid) {
  std::string out;
  for (size_t i = 0; i < pat.size(); ++i) {
    if (pat[i] == '%' && i + 1 < pat.size() && pat[i + 1] == 'p') {
      out += std::to_string(pid);
      ++i;
    } else {
      out += pat[i];
    }
  }
  return out;
}
std::string read_file(const char* path) {
  std::string s;
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return s;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, size_t(n));
  ::close(fd);
  return s;
}
// Opens a fresh file for this process and writes the header. internal.
bool open_output() {
  std::string base = expand(*g_pattern, g_pid);
  std::string path = base;
  int fd = -1;
  for (int i = 0; i < 1000; ++i) {
    if (i) path = base + "." + std::to_string(i);
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0 || errno != EEXIST) break;
  }
  if (fd < 0) return false;
  znslab::trace::TraceHeader h;
  h.pid = uint32_t(g_pid);
  h.ppid = uint32_t(getppid());
  timespec rt;
  clock_gettime(CLOCK_REALTIME, &rt);
  h.start_unix_ns = uint64_t(rt.tv_sec) * 1000000000ull + uint64_t(rt.tv_nsec);
  g_mono0 = mono_ns();
  h.start_mono_ns = g_mono0;
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  h.program.assign(exe, n > 0 ? size_t(n) : 0);
  std::string cmd = read_file("/proc/self/cmdline");
  for (size_t i = 0; i < cmd.size();) {
    size_t e = cmd.find('\0', i);
    if (e == std::string::npos) e = cmd.size();
    h.args.push_back(cmd.substr(i, e - i));
    i = e + 1;
  }
  g_fd = fd;
  g_written = 0;
  return write_all(znslab::trace::encode_header(h));
}

// Flushes every thread's buffer, stops the writer, writes the end frame and
// closes the file. `next` is the state afterwards.
void finalize(int next) {
  Internal in;
  int expect = kRecording;
  if (!g_state.compare_exchange_strong(expect, next)) return;
  // Wait until no thread is inside emit() (a busy thread may need g_mu to
  // hand off a full buffer, so never spin while holding it).
  for (;;) {
    pthread_mutex_lock(&g_mu);
    bool busy = false;
    for (ThreadRec* r = g_threads; r && !busy; r = r->next) busy = r->busy.load() != 0;
    if (!busy) break;
    pthread_mutex_unlock(&g_mu);
    sched_yield();
  }
  for (ThreadRec* r = g_threads; r; r = r->next) {
    if (r->buf && r->buf->n) {
      enqueue(r->buf);
      r->buf = buf_new();
    }
  }
  g_writer_stop = true;
  pthread_cond_signal(&g_cv);
  bool running = g_writer_running;
  pthread_mutex_unlock(&g_mu);
  if (running) {
    pthread_join(g_writer, nullptr);
    g_writer_running = false;
  }
  // Whatever is left (no writer thread ever started).
  pthread_mutex_lock(&g_mu);
  while (g_q_head) {
    Buf* b = g_q_head;
    g_q_head = b->next;
    write_buf(b);
    b->next = g_pool;
    g_pool = b;
  }
  g_q_tail = nullptr;
  g_writer_stop = false;
  pthread_mutex_unlock(&g_mu);
  write_all(znslab::trace::encode_end(g_written.load()));
  ::close(g_fd);
  g_fd = -1;
}

// ---- fork ------------------------------------------------------------------------
void atfork_prepare() {
  pthread_mutex_lock(&g_mu);
  for (auto& s : g_map) lock(s);
}
void atfork_parent() {
  for (auto& s : g_map) unlock(s);
  pthread_mutex_unlock(&g_mu);
}
void atfork_child() {
  for (auto& s : g_map) unlock(s);
  pthread_mutex_init(&g_mu, nullptr);
  pthread_cond_init(&g_cv, nullptr);
  g_pid = pid_t(syscall(SYS_getpid));
  g_writer_running = false;
  g_writer_stop = false;
  // The parent's queued and partial buffers are the parent's events.
  while (g_q_head) {
    Buf* b = g_q_head;
    g_q_head = b->next;
    b->next = g_pool;
    g_pool = b;
  }
  g_q_tail = nullptr;
  // Only this thread survives.
  ThreadRec* me = t_rec;
  for (ThreadRec* r = g_threads; r;) {
    ThreadRec* nx = r->next;
    if (r != me) {
      if (r->buf) {
        r->buf->next = g_pool;
        g_pool = r->buf;
      }
      real_free(r);
    }
    r = nx;
  }
  g_threads = me;
  if (me) {
    me->prev = me->next = nullptr;
    if (me->buf) me->buf->n = 0;
  }
  if (g_state.load() != kRecording) return;
  if (g_fd >= 0) ::close(g_fd);
  g_fd = -1;
  if (!g_follow_fork) {
    g_state = kOff;
    return;
  }
  Internal in;
  map_clear();
  if (!open_output()) g_state = kOff;
}

// ---- init ----------------------------------------------------------------------------
template <typename F>
void resolve(F& f, const char* name) {
  f = reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}
void init() {
  int expect = kUninit;
  if (!g_state.compare_exchange_strong(expect, kInitializing)) return;
  {
    Internal in;
    // calloc first: dlsym itself may call calloc (served from g_boot).
    resolve(real_calloc, "calloc");
    resolve(real_malloc, "malloc");
    resolve(real_realloc, "realloc");
    resolve(real_free, "free");
    resolve(real_memalign, "memalign");
    resolve(real_aligned_alloc, "aligned_alloc");
    resolve(real_posix_memalign, "posix_memalign");
    resolve(real_valloc, "valloc");
    resolve(real_pvalloc, "pvalloc");
    resolve(real_usable, "malloc_usable_size");
  }
  const char* out = getenv("ZNSTRACE_OUT");
  if (!out || !*out || !real_malloc || !real_free || !real_calloc || !real_realloc) {
    g_state = kOff;
    return;
  }
  Internal in;
  if (const char* d = getenv("ZNSTRACE_DEPTH")) g_depth = atoi(d) < 1 ? 1 : atoi(d) > 8 ? 8 : atoi(d);
  if (const char* l = getenv("ZNSTRACE_LEVEL")) g_level = atoi(l);
  g_pattern = new std::string(out);
  g_follow_fork = g_pattern->find("%p") != std::string::npos;
  g_pid = pid_t(syscall(SYS_getpid));
  pthread_key_create(&g_key, thread_exit);
  pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
  if (!open_output()) {
    g_state = kOff;
    return;
  }
  if (g_depth > 1) {  // first unwind loads what it needs, untracked
    callsite(nullptr);
  }
  g_state = kRecording;
}

// Entry of a recorded call: the thread's record with busy set, or nullptr
// (forward only).
inline ThreadRec* enter() {
  int st = g_state.load(std::memory_order_acquire);
  if (st == kUninit) {
    init();
    st = g_state.load();
  }
  if (st != kRecording || t_internal) return nullptr;
  Internal in;
  ThreadRec* r = thread_rec();
  if (!r || !r->buf) return nullptr;
  r->busy.store(1);
  if (g_state.load() != kRecording) {
    r->busy.store(0);
    return nullptr;
  }
  return r;
}
inline void emit(ThreadRec* r, Op op, uint64_t size, uint64_t obj, uint64_t old, uint32_t align,
                 uint32_t site, uint64_t seq) {
  TraceEvent& e = r->buf->ev[r->buf->n++];
  e.seq = seq;
  e.ts_ns = mono_ns() - g_mono0;
  e.size = size;
  e.obj = obj;
  e.old_obj = old;
  e.tid = r->tid;
  e.callsite = site;
  e.align = align;
  e.op = uint8_t(op);
  e.reserved[0] = e.reserved[1] = e.reserved[2] = 0;
  if (r->buf->n == kBufEvents) {
    Internal in;
    Buf* nb = hand_off(r->buf);
    r->buf = nb;
  }
  r->busy.store(0, std::memory_order_release);
}
// An allocation that returned `p`.
inline void* record_alloc(ThreadRec* r, Op op, void* p, uint64_t size, uint32_t align, void* ret) {
  uint32_t site;
  {
    Internal in;
    site = callsite(ret);
  }
  uint64_t id = 0;
  if (p) {
    id = g_next_id.fetch_add(1);
    map_put(uintptr_t(p), id);
  }
  emit(r, op, size, id, 0, align, site, g_seq.fetch_add(1));
  return p;
}

void ensure_real() {
  if (!real_malloc && g_state.load() == kUninit) init();
}

}  // namespace

// ---- the hooked family ---------------------------------------------------------------
#pragma GCC visibility push(default)
extern "C" {

void* malloc(size_t n) {
  ensure_real();
  if (!real_malloc) return boot_alloc(n);
  ThreadRec* r = enter();
  void* p = real_malloc(n);
  if (!r) return p;
  return record_alloc(r, Op::kMalloc, p, n, 0, __builtin_return_address(0));
}

void* calloc(size_t a, size_t b) {
  ensure_real();
  if (!real_calloc) {
    if (b && a > SIZE_MAX / b) return nullptr;
    void* p = boot_alloc(a * b);  // static storage: already zero
    return p;
  }
  ThreadRec* r = enter();
  void* p = real_calloc(a, b);
  if (!r) return p;
  return record_alloc(r, Op::kCalloc, p, uint64_t(a) * b, 0, __builtin_return_address(0));
}

void free(void* p) {
  if (!p || in_boot(p)) return;
  ensure_real();
  ThreadRec* r = enter();
  if (!r) return real_free(p);
  uint64_t id = map_take(uintptr_t(p));
  if (id == 0) {  // not ours (internal or before recording): forward unrecorded
    r->busy.store(0);
    return real_free(p);
  }
  uint32_t site;
  {
    Internal in;
    site = callsite(__builtin_return_address(0));
  }
  uint64_t seq = g_seq.fetch_add(1);  // before the real free: the address may be reused at once
  emit(r, Op::kFree, 0, id, 0, 0, site, seq);
  real_free(p);
}

void* realloc(void* old, size_t n) {
  ensure_real();
  if (!real_realloc) return boot_alloc(n);
  if (in_boot(old)) {
    void* p = malloc(n);
    if (p) std::memcpy(p, old, boot_size(old) < n ? boot_size(old) : n);
    return p;
  }
  ThreadRec* r = enter();
  if (!r) return real_realloc(old, n);
  uint64_t old_id = old ? map_take(uintptr_t(old)) : 0;
  uint32_t site;
  {
    Internal in;
    site = callsite(__builtin_return_address(0));
  }
  uint64_t seq = g_seq.fetch_add(1);
  void* p = real_realloc(old, n);
  uint64_t id = 0;
  if (p) {
    id = g_next_id.fetch_add(1);
    map_put(uintptr_t(p), id);
  } else if (n != 0 && old_id) {  // failed: the old block stays
    map_put(uintptr_t(old), old_id);
    old_id = 0;
  }
  emit(r, Op::kRealloc, n, id, old_id, 0, site, seq);
  return p;
}

int posix_memalign(void** out, size_t align, size_t n) {
  ensure_real();
  if (!real_posix_memalign) {
    *out = boot_alloc(n, align);
    return *out ? 0 : ENOMEM;
  }
  ThreadRec* r = enter();
  int rc = real_posix_memalign(out, align, n);
  if (!r) return rc;
  record_alloc(r, Op::kPosixMemalign, rc == 0 ? *out : nullptr, n, uint32_t(align), __builtin_return_address(0));
  return rc;
}

void* aligned_alloc(size_t align, size_t n) {
  ensure_real();
  if (!real_aligned_alloc) return boot_alloc(n, align);
  ThreadRec* r = enter();
  void* p = real_aligned_alloc(align, n);
  if (!r) return p;
  return record_alloc(r, Op::kAlignedAlloc, p, n, uint32_t(align), __builtin_return_address(0));
}

void* memalign(size_t align, size_t n) {
  ensure_real();
  if (!real_memalign) return boot_alloc(n, align);
  ThreadRec* r = enter();
  void* p = real_memalign(align, n);
  if (!r) return p;
  return record_alloc(r, Op::kMemalign, p, n, uint32_t(align), __builtin_return_address(0));
}

void* valloc(size_t n) {
  ensure_real();
  if (!real_valloc) return boot_alloc(n, 4096);
  ThreadRec* r = enter();
  void* p = real_valloc(n);
  if (!r) return p;
  return record_alloc(r, Op::kValloc, p, n, 4096, __builtin_return_address(0));
}

void* pvalloc(size_t n) {
  ensure_real();
  if (!real_pvalloc) return boot_alloc((n + 4095) & ~size_t(4095), 4096);
  ThreadRec* r = enter();
  void* p = real_pvalloc(n);
  if (!r) return p;
  return record_alloc(r, Op::kValloc, p, n, 4096, __builtin_return_address(0));
}

size_t malloc_usable_size(void* p) {
  if (!p) return 0;
  if (in_boot(p)) return boot_size(p);
  ensure_real();
  ThreadRec* r = enter();
  size_t u = real_usable(p);
  if (!r) return u;
  uint64_t id = map_take(uintptr_t(p), /*peek=*/true);
  if (id == 0) {
    r->busy.store(0);
    return u;
  }
  emit(r, Op::kUsableSize, u, id, 0, 0, 0, g_seq.fetch_add(1));
  return u;
}

// ---- exec: flush and close before the image is replaced ----------------------------
static bool same_process() {  // false in a vfork child
  return g_pid == pid_t(syscall(SYS_getpid));
}
static void before_exec() {
  if (g_state.load() == kRecording && same_process()) finalize(kOff);
}

int execve(const char* path, char* const argv[], char* const envp[]) {
  static execve_fn real = reinterpret_cast<execve_fn>(dlsym(RTLD_NEXT, "execve"));
  before_exec();
  return real(path, argv, envp);
}
int execvpe(const char* file, char* const argv[], char* const envp[]) {
  static execvpe_fn real = reinterpret_cast<execvpe_fn>(dlsym(RTLD_NEXT, "execvpe"));
  before_exec();
  return real(file, argv, envp);
}
int fexecve(int fd, char* const argv[], char* const envp[]) {
  static fexecve_fn real = reinterpret_cast<fexecve_fn>(dlsym(RTLD_NEXT, "fexecve"));
  before_exec();
  return real(fd, argv, envp);
}
int execv(const char* path, char* const argv[]) { return execve(path, argv, environ); }
int execvp(const char* file, char* const argv[]) { return execvpe(file, argv, environ); }

// The variadic forms collect their arguments (at most 4096) on the stack.
#define COLLECT_ARGS(first, last_out)                       \
  char* argv[4096];                                         \
  int argc = 0;                                             \
  argv[argc++] = const_cast<char*>(first);                  \
  va_list ap;                                               \
  va_start(ap, first);                                      \
  while (argc < 4095 && (argv[argc] = va_arg(ap, char*))) ++argc; \
  argv[argc] = nullptr;                                     \
  last_out;                                                 \
  va_end(ap)

int execl(const char* path, const char* arg, ...) {
  COLLECT_ARGS(arg, (void)0);
  return execve(path, argv, environ);
}
int execlp(const char* file, const char* arg, ...) {
  COLLECT_ARGS(arg, (void)0);
  return execvpe(file, argv, environ);
}
int execle(const char* path, const char* arg, ...) {
  char** envp = nullptr;
  COLLECT_ARGS(arg, envp = va_arg(ap, char**));
  return execve(path, argv, envp);
}

}  // extern "C"
#pragma GCC visibility pop

__attribute__((constructor)) static void znstrace_ctor() {
  if (g_state.load() == kUninit) init();
}
__attribute__((destructor)) static void znstrace_dtor() {
  if (same_process()) finalize(kFinished);
}
