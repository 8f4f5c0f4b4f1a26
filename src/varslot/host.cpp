// src/varslot/host.cpp: what only the host does (seed 000, "Growth
// Protocol"): growing a class by one extent, answering the doorbell,
// reclaiming the slots of dead guests, and taking over a segment whose host
// died. Guests' side of the doorbell (request_growth) is here too.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "src/varslot/internal.h"

namespace znslab::varslot {
namespace {

uint64_t now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

uint64_t thread_cpu_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

void maybe_crash(CrashPoint at, CrashPoint here) noexcept {
  if (at == here) ::kill(::getpid(), SIGKILL);
}

long thread_nivcsw() noexcept {
  rusage ru;
  return ::getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_nivcsw : 0;
}

// Set on a service thread that runs under SCHED_FIFO: its growths need no
// per-growth priority change.
thread_local bool t_thread_rt = false;

bool pid_alive(int32_t pid) noexcept { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

}  // namespace

Status Pool::init_extent(uint8_t* base, uint32_t c, uint32_t e) noexcept {
  ExtentHeader* eh = ext_header(base);
  eh->magic.store(0, std::memory_order_relaxed);
  eh->class_idx = c;
  eh->extent_idx = e;
  eh->slot_count = cslots_[c];
  eh->slot_size = csize_[c];
  eh->data_offset = cdata_[c];
  eh->total_bytes = ctotal_[c];
  eh->saved_head = 0;
  // Metadata stays untouched (zero pages of the freshly grown file: every
  // slot is above bump). The head and bump share the header's cache line.
  eh->free_head.store(0, std::memory_order_relaxed);
  eh->bump.store(0, std::memory_order_relaxed);
  eh->magic.store(kExtentMagic, std::memory_order_release);
  return Status::ok();
}

// Host, grow_mu_ held (or during create). The publication order is the
// crash-consistency argument of layout.h.
Status Pool::grow_locked(uint32_t c) noexcept {
  if (!is_host()) return Status(Code::kInvalidArgument, "varslot: only the host grows");
  ClassHeader& ch = hdr_->classes[c];
  SharedCounters& k = hdr_->counters;
  const uint32_t n = ch.extent_count.load(std::memory_order_acquire);
  const uint64_t total = ctotal_[c];
  const uint64_t off = hdr_->current_size.load(std::memory_order_acquire);
  if (n >= hdr_->max_extents || off + total > hdr_->max_bytes) {
    ch.refused.store(1, std::memory_order_release);
    k.growth_refused.fetch_add(1, std::memory_order_relaxed);
    hdr_->map_generation.fetch_add(1, std::memory_order_release);
    futex_wake_all(&hdr_->map_generation);
    return Status(Code::kOutOfMemory, "varslot: growth refused (max_extents or max_bytes)");
  }
  const long cs0 = thread_nivcsw();
  const uint64_t t0 = now_ns(), c0 = thread_cpu_ns();
  // Real-time priority for the growth (grow_rt_priority): raised first,
  // inside the timed interval; restored after the wake, outside it.
  int old_policy = -1;
  sched_param old_param{};
  if (grow_rt_priority_ > 0 && !t_thread_rt) {
    old_policy = ::sched_getscheduler(0);
    (void)::sched_getparam(0, &old_param);
    sched_param rt{};
    rt.sched_priority = grow_rt_priority_;
    if (old_policy == SCHED_FIFO || old_policy == SCHED_RR ||
        ::sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &rt) != 0) {
      if (old_policy != SCHED_FIFO && old_policy != SCHED_RR) grow_rt_refused_.fetch_add(1, std::memory_order_relaxed);
      old_policy = -1;
    }
  }
  struct RestorePriority {
    int policy;
    sched_param param;
    void now() noexcept {
      if (policy >= 0) (void)::sched_setscheduler(0, policy, &param);
      policy = -1;
    }
    ~RestorePriority() { now(); }
  } restore{old_policy, old_param};
  uint64_t tp[kGrowPhases + 1] = {t0};
  hdr_->growing.store(c + 1, std::memory_order_release);
  uint8_t* base = nullptr;
  if (mode() == GrowthMode::kExtentFiles) {
    std::string ep;
    try {
      ep = extent_path(c, n);
    } catch (...) {
      return Status(Code::kOutOfMemory, "varslot: extent path");
    }
    int fd = ::open(ep.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return Status::from_errno(errno, "varslot: create extent file");
    Status s = pages::truncate_file(fd, total);
    tp[1] = now_ns();
    maybe_crash(crash_at_, CrashPoint::kAfterTruncate);
    Result<void*> m = s ? pages::map_file(fd, 0, total, true) : Result<void*>(s);
    ::close(fd);
    if (!m) return m.status();
    base = static_cast<uint8_t*>(*m);
    std::lock_guard<std::mutex> g(mu_);
    try {
      maps_.push_back(View{base, total});
    } catch (...) {
      (void)pages::unmap(base, total);
      return Status(Code::kOutOfMemory, "varslot: mapping list");
    }
    mapped_bytes_.fetch_add(total, std::memory_order_relaxed);
    remaps_.fetch_add(1, std::memory_order_relaxed);
  } else {
    // A staged file (stage_next) is already long enough: no ftruncate.
    if (off + total > staged_bytes_) {
      if (Status s = pages::truncate_file(fd_, off + total); !s) return s;
      staged_bytes_ = off + total;
    }
    tp[1] = now_ns();
    maybe_crash(crash_at_, CrashPoint::kAfterTruncate);
    std::lock_guard<std::mutex> g(mu_);
    // ensure_view maps up to max(need, current_size): here need.
    if (Status s = ensure_view(off + total); !s) return s;
    base = res_.base() + off;
  }
  tp[2] = now_ns();
  (void)init_extent(base, c, n);
  tp[3] = now_ns();
  maybe_crash(crash_at_, CrashPoint::kAfterInit);
  ch.extent_offsets[n].store(off, std::memory_order_release);
  maybe_crash(crash_at_, CrashPoint::kAfterOffset);
  hdr_->current_size.store(off + total, std::memory_order_release);
  maybe_crash(crash_at_, CrashPoint::kAfterSize);
  ext_[c][n].store(base, std::memory_order_release);
  hdr_->map_generation.fetch_add(1, std::memory_order_seq_cst);  // seq_cst: pairs with `waiters`
  ch.extent_count.store(n + 1, std::memory_order_release);
  hdr_->growing.store(0, std::memory_order_release);
  tp[4] = now_ns();
  // Only a guest asleep in request_growth needs the syscall (it announces
  // itself in `waiters` before sleeping; both sides are seq_cst, so either
  // the host sees it or it sees the new generation and does not sleep).
  if (hdr_->waiters.load(std::memory_order_seq_cst) != 0) futex_wake_all(&hdr_->map_generation);
  tp[5] = now_ns();
  k.growth_events.fetch_add(1, std::memory_order_relaxed);
  k.grow_ns_total.fetch_add(now_ns() - t0, std::memory_order_relaxed);
  GrowPhases& ph = grow_phase_log_[grow_log_n_ % kGrowLog];
  for (uint32_t i = 0; i < kGrowPhases; ++i) ph.ns[i] = tp[i + 1] - tp[i];
  ph.preemptions = uint64_t(thread_nivcsw() - cs0);
  grow_cpu_log_[grow_log_n_ % kGrowLog] = thread_cpu_ns() - c0;
  grow_log_[grow_log_n_++ % kGrowLog] = now_ns() - t0;
  restore.now();
  stage_next();
  return Status::ok();
}

// Off the critical section of the growth just done: the file grows by one
// more largest extent and the next extent's header page is faulted in, so
// the next growth neither ftruncates nor takes a page fault. Failures are
// harmless (the next growth then truncates and faults as before).
void Pool::stage_next() noexcept {
  if (!stage_growth_ || mode() != GrowthMode::kRemap || !is_host()) return;
  const uint64_t cur = hdr_->current_size.load(std::memory_order_acquire);
  uint64_t biggest = 0;
  for (uint32_t c = 0; c < nclasses_; ++c) biggest = std::max(biggest, ctotal_[c]);
  const uint64_t want = std::min(cur + biggest, hdr_->max_bytes);
  if (want <= cur || want > res_.size()) return;
  if (want > staged_bytes_) {
    if (!pages::truncate_file(fd_, want)) return;
    staged_bytes_ = want;
  }
  // The host's view covers its whole reservation (map_header), so the
  // staged page is mapped; it is inside the file now.
  (void)pages::advise(res_.base() + cur, pages::page_size(), pages::Advice::kPopulateWrite);
}

Status Pool::grow(uint32_t c) noexcept {
  if (!is_host()) return Status(Code::kInvalidArgument, "varslot: only the host grows");
  if (c >= nclasses_) return Status(Code::kInvalidArgument, "varslot: class out of range");
  if (mode() == GrowthMode::kFixed) return Status(Code::kNotSupported, "varslot: fixed mode never grows");
  std::lock_guard<std::mutex> g(grow_mu_);
  return grow_locked(c);
}

std::vector<uint64_t> Pool::grow_durations_ns() {
  std::lock_guard<std::mutex> g(grow_mu_);
  std::vector<uint64_t> v;
  const uint64_t n = std::min<uint64_t>(grow_log_n_, kGrowLog);
  for (uint64_t i = grow_log_n_ - n; i < grow_log_n_; ++i) v.push_back(grow_log_[i % kGrowLog]);
  return v;
}

std::vector<uint64_t> Pool::grow_cpu_ns() {
  std::lock_guard<std::mutex> g(grow_mu_);
  std::vector<uint64_t> v;
  const uint64_t n = std::min<uint64_t>(grow_log_n_, kGrowLog);
  for (uint64_t i = grow_log_n_ - n; i < grow_log_n_; ++i) v.push_back(grow_cpu_log_[i % kGrowLog]);
  return v;
}

std::vector<GrowPhases> Pool::grow_phases() {
  std::lock_guard<std::mutex> g(grow_mu_);
  std::vector<GrowPhases> v;
  const uint64_t n = std::min<uint64_t>(grow_log_n_, kGrowLog);
  for (uint64_t i = grow_log_n_ - n; i < grow_log_n_; ++i) v.push_back(grow_phase_log_[i % kGrowLog]);
  return v;
}

bool Pool::class_full(uint32_t c) noexcept {
  const uint32_t n = hdr_->classes[c].extent_count.load(std::memory_order_acquire);
  for (uint32_t e = 0; e < n; ++e) {
    uint8_t* b = extent_base(c, e);
    if (!b) continue;
    uint32_t idx = uint32_t(ext_header(b)->free_head.load(std::memory_order_acquire));
    if (idx != 0 && idx != kLockedIdx) return false;
    if (ext_header(b)->bump.load(std::memory_order_acquire) < cslots_[c]) return false;
  }
  return true;
}

// Guest: rings the doorbell and waits until the host answered (the map
// generation moved), then returns to the caller's allocation loop, which
// re-reads extent_count. A guest that was not waiting (missed the wake)
// sees the growth on its next allocation anyway: extent_count is read there.
bool Pool::request_growth(uint32_t c) noexcept {
  ClassHeader& ch = hdr_->classes[c];
  const uint64_t deadline = now_ns() + uint64_t(grow_wait_ms_) * 1000000ull;
  const uint32_t n0 = ch.extent_count.load(std::memory_order_acquire);
  const uint32_t gen0 = hdr_->map_generation.load(std::memory_order_acquire);
  ch.grow_requests.fetch_add(1, std::memory_order_acq_rel);
  hdr_->doorbell.fetch_add(1, std::memory_order_acq_rel);
  futex_wake_all(&hdr_->doorbell);
  doorbells_.fetch_add(1, std::memory_order_relaxed);
  for (;;) {
    if (ch.extent_count.load(std::memory_order_acquire) != n0) return true;
    if (ch.refused.load(std::memory_order_acquire)) return false;
    if (hdr_->map_generation.load(std::memory_order_acquire) != gen0) return true;  // answered
    const uint64_t t = now_ns();
    if (t >= deadline) return false;
    int ms = int(std::min<uint64_t>((deadline - t) / 1000000ull + 1, 50));
    hdr_->waiters.fetch_add(1, std::memory_order_seq_cst);
    if (hdr_->map_generation.load(std::memory_order_seq_cst) == gen0 &&
        ch.extent_count.load(std::memory_order_seq_cst) == n0 && !ch.refused.load(std::memory_order_seq_cst))
      futex_wait(&hdr_->map_generation, gen0, ms);
    hdr_->waiters.fetch_sub(1, std::memory_order_seq_cst);
  }
}

uint32_t Pool::serve(int timeout_ms) noexcept {
  if (!is_host()) return 0;
  uint32_t db = hdr_->doorbell.load(std::memory_order_acquire);
  if (db == last_doorbell_ && timeout_ms > 0) futex_wait(&hdr_->doorbell, db, timeout_ms);
  last_doorbell_ = hdr_->doorbell.load(std::memory_order_acquire);
  uint32_t actions = 0;
  for (uint32_t c = 0; c < nclasses_; ++c) {
    ClassHeader& ch = hdr_->classes[c];
    if (ch.grow_requests.exchange(0, std::memory_order_acq_rel) == 0) continue;
    ++actions;
    std::lock_guard<std::mutex> g(grow_mu_);
    if (mode() != GrowthMode::kFixed && !ch.refused.load(std::memory_order_acquire) && class_full(c)) {
      (void)grow_locked(c);  // wakes the waiters (growth or refusal)
    } else {
      // Nothing to grow (a slot was freed meanwhile, or fixed): answer.
      if (mode() == GrowthMode::kFixed) ch.refused.store(1, std::memory_order_release);
      hdr_->map_generation.fetch_add(1, std::memory_order_release);
      futex_wake_all(&hdr_->map_generation);
    }
  }
  // Liveness of the guests: pidfd when the kernel has it, else kill(pid, 0).
  for (uint32_t p = 1; p < kMaxPeers; ++p) {
    PeerEntry& pe = hdr_->peers[p];
    if (pe.state.load(std::memory_order_acquire) != kPeerActive) continue;
    const int32_t pid = pe.pid.load(std::memory_order_acquire);
    if (pid <= 0) continue;  // registering
    bool dead = false;
    if (pidfd_pid_[p] != pid) {
      if (pidfds_[p] >= 0) ::close(pidfds_[p]);
      pidfds_[p] = int(::syscall(SYS_pidfd_open, pid, 0));
      pidfd_pid_[p] = pid;
      if (pidfds_[p] < 0 && errno == ESRCH) dead = true;
    }
    if (!dead && pidfds_[p] >= 0) {
      pollfd pfd{pidfds_[p], POLLIN, 0};
      dead = ::poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN);
    } else if (!dead) {
      dead = !pid_alive(pid);
    }
    if (dead) {
      reclaim_peer(p);
      ++actions;
    }
  }
  return actions;
}

void Pool::start_service(int poll_ms, int nice_value, int rt_priority) {
  if (!is_host() || service_.joinable()) return;
  service_stop_.store(false, std::memory_order_release);
  service_nice_ok_.store(nice_value == 0, std::memory_order_release);
  service_rt_ok_.store(rt_priority == 0, std::memory_order_release);
  service_ = std::thread([this, poll_ms, nice_value, rt_priority] {
    if (nice_value != 0)
      service_nice_ok_.store(::setpriority(PRIO_PROCESS, ::gettid(), nice_value) == 0, std::memory_order_release);
    if (rt_priority > 0) {
      sched_param rt{};
      rt.sched_priority = rt_priority;
      t_thread_rt = ::sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &rt) == 0;
      service_rt_ok_.store(t_thread_rt, std::memory_order_release);
    }
    while (!service_stop_.load(std::memory_order_acquire)) serve(poll_ms);
  });
  service_on_.store(true, std::memory_order_release);
}

void Pool::stop_service() {
  if (!service_.joinable()) return;
  service_on_.store(false, std::memory_order_release);
  service_stop_.store(true, std::memory_order_release);
  hdr_->doorbell.fetch_add(1, std::memory_order_acq_rel);
  futex_wake_all(&hdr_->doorbell);
  service_.join();
}

// With the extent's list locked: is `slot` on it? The list cannot change
// while locked (pops see an empty list, pushes wait).
bool Pool::in_free_list_locked(uint8_t* base, uint32_t slot) noexcept {
  ExtentHeader* eh = ext_header(base);
  SlotMeta* m = meta_of(base);
  const uint32_t n = eh->slot_count;
  uint32_t i = uint32_t(eh->saved_head);
  for (uint32_t steps = 0; i != 0 && i <= n && steps <= n; ++steps) {
    if (i - 1 == slot) return true;
    i = m[i - 1].next.load(std::memory_order_relaxed);
  }
  return false;
}

// The dead peer's pending operation named (c, e, slot). If the slot is FREE
// but on no list and no live peer is in the middle of an operation on it,
// the dead peer lost it between its two exchanges: put it back.
void Pool::repair_lost_slot(uint32_t c, uint32_t e, uint32_t slot) noexcept {
  if (c >= nclasses_ || e >= hdr_->classes[c].extent_count.load(std::memory_order_acquire) ||
      slot >= cslots_[c])
    return;
  uint8_t* base = extent_base(c, e);
  if (!base) return;
  ExtentHeader* eh = ext_header(base);
  SlotMeta* m = meta_of(base);
  // Lock the list: save the head, swap in the locked marker.
  uint64_t head = eh->free_head.load(std::memory_order_acquire);
  for (;;) {
    if (uint32_t(head) == kLockedIdx) {
      sched_yield();
      head = eh->free_head.load(std::memory_order_acquire);
      continue;
    }
    eh->saved_head = uint32_t(head);
    const uint64_t locked = (((head >> 32) + 1) << 32) | kLockedIdx;
    if (eh->free_head.compare_exchange_weak(head, locked, std::memory_order_acq_rel, std::memory_order_acquire)) {
      head = locked;
      break;
    }
  }
  bool busy = word_alloc(m[slot].word.load(std::memory_order_acquire));
  for (uint32_t p = 0; !busy && p < kMaxPeers; ++p) {
    if (hdr_->peers[p].state.load(std::memory_order_acquire) != kPeerActive) continue;
    const uint64_t pd = hdr_->peers[p].pending.load(std::memory_order_acquire);
    busy = (pd & 0xff) != kOpNone && (pd >> 8 & 0xff) == c && (pd >> 16 & 0xff) == e && (pd >> 32) == slot;
  }
  // A slot at or above bump was never handed out: nothing was lost.
  if (slot >= eh->bump.load(std::memory_order_acquire)) busy = true;
  if (!busy && !in_free_list_locked(base, slot)) {
    // Lost by a bump allocation cut short: give it its first generation.
    if (m[slot].word.load(std::memory_order_relaxed) == 0)
      m[slot].word.store(slot_word(1, 0, false), std::memory_order_relaxed);
    m[slot].next.store(uint32_t(eh->saved_head), std::memory_order_relaxed);
    eh->saved_head = uint64_t(slot) + 1;
    hdr_->counters.recovered_slots.fetch_add(1, std::memory_order_relaxed);
  }
  eh->free_head.store((((head >> 32) + 1) << 32) | uint32_t(eh->saved_head), std::memory_order_release);
}

uint64_t Pool::reclaim_peer(uint32_t p) noexcept {
  if (!is_host() || p >= kMaxPeers) return 0;
  PeerEntry& pe = hdr_->peers[p];
  const uint32_t me = peer_;
  if (p != me) pe.state.store(kPeerDead, std::memory_order_release);
  const uint64_t before = hdr_->counters.recovered_slots.load(std::memory_order_relaxed);
  const uint64_t pd = pe.pending.load(std::memory_order_acquire);
  pe.pending.store(0, std::memory_order_release);
  if ((pd & 0xff) != kOpNone) repair_lost_slot(uint32_t(pd >> 8 & 0xff), uint32_t(pd >> 16 & 0xff), uint32_t(pd >> 32));
  // Every slot the dead peer owns goes back to its list.
  for (uint32_t c = 0; c < nclasses_; ++c) {
    const uint32_t n = hdr_->classes[c].extent_count.load(std::memory_order_acquire);
    for (uint32_t e = 0; e < n; ++e) {
      uint8_t* base = extent_base(c, e);
      if (!base) continue;
      SlotMeta* m = meta_of(base);
      const uint32_t used = std::min(ext_header(base)->bump.load(std::memory_order_acquire), cslots_[c]);
      for (uint32_t s = 0; s < used; ++s) {
        uint64_t w = m[s].word.load(std::memory_order_acquire);
        while (word_alloc(w) && word_owner(w) == p) {
          if (m[s].word.compare_exchange_weak(w, slot_word(next_gen(word_gen(w)), 0, false),
                                              std::memory_order_acq_rel, std::memory_order_acquire)) {
            push(c, e, base, s);
            hdr_->counters.recovered_slots.fetch_add(1, std::memory_order_relaxed);
            break;
          }
        }
      }
    }
  }
  if (p != me) {
    hdr_->counters.dead_peers.fetch_add(1, std::memory_order_relaxed);
    pe.pid.store(0, std::memory_order_relaxed);
    pe.state.store(kPeerFree, std::memory_order_release);
  }
  if (pidfds_[p] >= 0) ::close(pidfds_[p]);
  pidfds_[p] = -1;
  pidfd_pid_[p] = 0;
  return hdr_->counters.recovered_slots.load(std::memory_order_relaxed) - before;
}

Result<std::unique_ptr<Pool>> Pool::take_over(const std::string& path, const PoolOptions& opts) {
  std::unique_ptr<Pool> p(new Pool());
  if (Status s = p->open_existing(path, true); !s) return s;
  return finish_take_over(std::move(p), opts);
}

Result<std::unique_ptr<Pool>> Pool::take_over_fd(int fd, const PoolOptions& opts) {
  std::unique_ptr<Pool> p(new Pool());
  if (Status s = p->open_existing_fd(fd, true); !s) return s;
  return finish_take_over(std::move(p), opts);
}

Result<std::unique_ptr<Pool>> Pool::finish_take_over(std::unique_ptr<Pool> p, const PoolOptions& opts) {
  SegmentHeader* h = p->hdr_;
  const int32_t old = h->host_pid.load(std::memory_order_acquire);
  if (old > 0 && old != int32_t(::getpid()) && pid_alive(old))
    return Status(Code::kBusy, "varslot take_over: the host is alive");
  p->grow_wait_ms_ = opts.grow_wait_ms;
  p->crash_at_ = opts.crash_at;
  p->stage_growth_ = opts.stage_growth;
  p->grow_rt_priority_ = opts.grow_rt_priority;
  p->peer_ = 0;
  h->host_pid.store(int32_t(::getpid()), std::memory_order_release);
  h->peers[0].pid.store(int32_t(::getpid()), std::memory_order_release);
  h->peers[0].state.store(kPeerActive, std::memory_order_release);
  h->counters.host_recoveries.fetch_add(1, std::memory_order_relaxed);
  // A growth the old host did not finish: nothing of it is published
  // (extent_count was not incremented). If it had already bumped
  // current_size past the unpublished extent, roll that back.
  const uint32_t growing = h->growing.load(std::memory_order_acquire);
  if (growing != 0 && growing <= p->nclasses_) {
    const uint32_t c = growing - 1;
    const uint32_t n = h->classes[c].extent_count.load(std::memory_order_acquire);
    const uint64_t cur = h->current_size.load(std::memory_order_acquire);
    if (n < kMaxExtents) {
      const uint64_t off = h->classes[c].extent_offsets[n].load(std::memory_order_acquire);
      if (off >= kHeaderBytes && off + p->ctotal_[c] == cur)
        h->current_size.store(off, std::memory_order_release);
    }
  }
  h->growing.store(0, std::memory_order_release);
  const uint64_t cur = h->current_size.load(std::memory_order_acquire);
  if (p->mode() != GrowthMode::kExtentFiles) {
    struct stat st;
    if (::fstat(p->fd_, &st) == 0 && uint64_t(st.st_size) > cur)
      if (Status s = pages::truncate_file(p->fd_, cur); !s) return s;
    p->staged_bytes_ = cur;
  }
  // A free list the old host left locked by a recovery walk: unlock it.
  for (uint32_t c = 0; c < p->nclasses_; ++c) {
    const uint32_t n = h->classes[c].extent_count.load(std::memory_order_acquire);
    for (uint32_t e = 0; e < n; ++e) {
      uint8_t* b = p->extent_base(c, e);
      if (!b) return Status(Code::kCorrupt, "varslot take_over: a published extent cannot be mapped");
      ExtentHeader* eh = ext_header(b);
      uint64_t head = eh->free_head.load(std::memory_order_acquire);
      if (uint32_t(head) == kLockedIdx)
        eh->free_head.store((((head >> 32) + 1) << 32) | uint32_t(eh->saved_head), std::memory_order_release);
    }
  }
  // The old host's own slots and half-done operation (it was peer 0).
  p->reclaim_peer(0);
  return p;
}

}  // namespace znslab::varslot
