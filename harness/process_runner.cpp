// The multi-process runner (harness/process_runner.h).
#include "harness/process_runner.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <mutex>
#include <type_traits>

#include "harness/counters.h"
#include "harness/sampler.h"
#include "src/pages/pages.h"

namespace znslab::harness {

using nlohmann::json;
using varslot::Handle;
using varslot::Pool;

static_assert(std::is_trivially_copyable_v<LatencyHistogram>);

namespace {

inline uint64_t mix(uint64_t raw, uint64_t i) noexcept {
  uint64_t x = raw * 0x9E3779B97F4A7C15ull + i * 0xBF58476D1CE4E5B9ull;
  return x ^ (x >> 29);
}

uint64_t file_blocks_bytes(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? uint64_t(st.st_blocks) * 512 : 0;
}
uint64_t fd_blocks_bytes(int fd) {
  struct stat st;
  return ::fstat(fd, &st) == 0 ? uint64_t(st.st_blocks) * 512 : 0;
}

}  // namespace

void write_payload(uint8_t* p, uint32_t bytes, Handle h) noexcept {
  const uint32_t words = bytes / 8, stride = std::max<uint32_t>(1, words / 8);
  std::memcpy(p, &h.raw, 8);
  for (uint32_t w = 1; w < words; w += stride) {
    uint64_t v = mix(h.raw, w);
    std::memcpy(p + 8 * size_t(w), &v, 8);
  }
  uint64_t v = mix(h.raw, words - 1);
  std::memcpy(p + 8 * size_t(words - 1), &v, 8);
}

bool verify_payload(const uint8_t* p, uint32_t bytes, Handle h) noexcept {
  const uint32_t words = bytes / 8, stride = std::max<uint32_t>(1, words / 8);
  uint64_t v;
  std::memcpy(&v, p, 8);
  if (v != h.raw) return false;
  for (uint32_t w = 1; w < words; w += stride) {
    std::memcpy(&v, p + 8 * size_t(w), 8);
    if (v != mix(h.raw, w)) return false;
  }
  std::memcpy(&v, p + 8 * size_t(words - 1), 8);
  return v == mix(h.raw, words - 1);
}

// ---- ProcessExec -------------------------------------------------------------

void ProcessExec::free_verified(Handle h) noexcept {
  const uint8_t* p = pool_.ptr(h);
  if (!p) {
    ps().handle_errors.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (!verify_payload(p, pool_.slot_size(h), h)) ps().corruptions.fetch_add(1, std::memory_order_relaxed);
  if (!pool_.free(h)) ps().handle_errors.fetch_add(1, std::memory_order_relaxed);
}

// Transfers ownership to a live process and enqueues; false if not possible.
bool ProcessExec::pass_to(Handle h, uint32_t to) noexcept {
  ProcShared& dst = ctl_.proc[to];
  if (dst.dead.load(std::memory_order_acquire) || dst.done.load(std::memory_order_acquire)) return false;
  ProcRing& r = ctl_.ring[me_][to];
  const uint32_t hd = r.head.load(std::memory_order_relaxed);
  if (hd - r.tail.load(std::memory_order_acquire) >= kProcRing) return false;
  if (!pool_.transfer(h, dst.peer.load(std::memory_order_acquire))) return false;
  dst.inflight_bytes.fetch_add(pool_.slot_size(h), std::memory_order_relaxed);
  r.h[hd % kProcRing] = h.raw;
  r.head.store(hd + 1, std::memory_order_release);
  ps().passed.fetch_add(1, std::memory_order_relaxed);
  return true;
}

uint32_t ProcessExec::drain() noexcept {
  uint32_t n = 0;
  for (uint32_t from = 0; from < nprocs_; ++from) {
    ProcRing& r = ctl_.ring[from][me_];
    uint32_t t = r.tail.load(std::memory_order_relaxed);
    const uint32_t hd = r.head.load(std::memory_order_acquire);
    while (t != hd) {
      Handle h{r.h[t % kProcRing]};
      ++t;
      r.tail.store(t, std::memory_order_release);
      free_verified(h);
      ps().inflight_bytes.fetch_sub(pool_.slot_size(h), std::memory_order_relaxed);
      ++n;
    }
  }
  return n;
}

void ProcessExec::note_global_live() noexcept {
  uint64_t sum = 0;
  for (uint32_t i = 0; i < nprocs_; ++i)
    if (!ctl_.proc[i].dead.load(std::memory_order_relaxed))
      sum += ctl_.proc[i].live_bytes.load(std::memory_order_relaxed) +
             ctl_.proc[i].inflight_bytes.load(std::memory_order_relaxed);
  uint64_t cur = ctl_.live_peak.load(std::memory_order_relaxed);
  while (sum > cur && !ctl_.live_peak.compare_exchange_weak(cur, sum, std::memory_order_relaxed)) {
  }
}

void ProcessExec::finish() noexcept {
  // Stop passing, wait for everyone (dead guests count), then drain and free all.
  ps().done.store(1, std::memory_order_release);
  for (;;) {
    if (tick_) tick_(tick_arg_);
    ops_ += drain();
    uint32_t finished = 0;
    for (uint32_t i = 0; i < nprocs_; ++i)
      finished += ctl_.proc[i].done.load(std::memory_order_acquire) | ctl_.proc[i].dead.load(std::memory_order_acquire);
    if (finished >= nprocs_ && !ctl_.hold.load(std::memory_order_acquire)) break;
    ::usleep(200);
  }
  ops_ += drain();
  for (auto& v : held_) {
    for (Handle h : v) {
      sub_live(pool_.slot_size(h));
      free_verified(h);
      ++ops_;
    }
    v.clear();
  }
  ops_ += drain();
  ps().ops.store(ops_, std::memory_order_relaxed);
  std::memcpy(static_cast<void*>(&ps().alloc_free), &hist_, sizeof hist_);
}

// ---- run_processes -------------------------------------------------------------

namespace {

// The host's per-1024-steps duty: reap guests that exited on their own,
// and kill guest 1 once half the ops are done (kill_guest).
struct HostTick {
  ProcControl* ctl;
  const std::vector<pid_t>* pids;
  std::vector<int> reaped;  // wait status of guests that exited early (-1: running)
  uint32_t nprocs;
  uint64_t ops;
  bool kill_guest, progress;
  bool killed = false;
  uint32_t killed_peer = 0;
  uint64_t ticks = 0;

  static void call(void* self) { static_cast<HostTick*>(self)->run(); }
  void run() {
    ProcControl& c = *ctl;
    // A guest that exited on its own (failure) must not keep the others
    // waiting for it at the end.
    if ((++ticks & 15) == 0)
      for (uint32_t i = 1; i < nprocs; ++i) {
        int st = 0;
        if (reaped[i] < 0 && ::waitpid((*pids)[i], &st, WNOHANG) == (*pids)[i]) {
          reaped[i] = st;
          c.proc[i].dead.store(1, std::memory_order_release);
          if (i == 1) c.hold.store(0, std::memory_order_release);
        }
      }
    if (!kill_guest || killed) return;
    uint64_t done_ops = 0;
    for (uint32_t i = 0; i < nprocs; ++i) done_ops += c.proc[i].ops.load(std::memory_order_relaxed);
    // Half the ops done (or the host's share done: the others may be
    // behind), and guest 1 holds slots.
    if ((done_ops < ops / 2 && !c.proc[0].done.load(std::memory_order_acquire)) ||
        c.proc[1].live_bytes.load(std::memory_order_relaxed) == 0)
      return;
    killed_peer = c.proc[1].peer.load();
    c.proc[1].dead.store(1, std::memory_order_release);
    ::kill((*pids)[1], SIGKILL);
    killed = true;
    c.hold.store(0, std::memory_order_release);
    if (progress)
      std::fprintf(stderr, "varslot-growth: killed guest 1 (pid %d) at %" PRIu64 " ops\n", int((*pids)[1]), done_ops);
  }
};

}  // namespace

void run_processes(RunContext& ctx, const ProcessPlan& plan, const ProcessRunOptions& opt) {
  const uint32_t nprocs = opt.guests + 1;
  const varslot::PoolOptions& po = opt.pool;
  ResultDoc& doc = *ctx.result;
  const uint32_t nclasses = uint32_t(po.class_sizes.size());

  timer_calibration();
  doc.doc()["timer"] = timer_json();
  auto ctl_mem = pages::map_shared_anonymous(sizeof(ProcControl));
  if (!ctl_mem) throw RunError("varslot-growth: control block: " + ctl_mem.status().to_string());
  ProcControl& ctl = *new (*ctl_mem) ProcControl();
  struct Unmap {
    void* p;
    ~Unmap() { (void)pages::unmap(p, sizeof(ProcControl)); }
  } unmap_ctl{*ctl_mem};

  auto hr = Pool::create(po);
  if (!hr) throw RunError("varslot-growth: creating the pool at " + po.path + ": " + hr.status().to_string());
  Pool& host = **hr;
  struct Unlink {
    Pool& p;
    ~Unlink() { (void)p.unlink_files(); }
  } unlink_files{host};
  const uint64_t initial_segment = host.stats().segment_bytes;
  doc.set_allocator({{"name", "varslot-" + opt.growth},
                     {"version", "1"},
                     {"options",
                      {{"growth", opt.growth},
                       {"segment", opt.segment},
                       {"path", po.path},
                       {"class_sizes", po.class_sizes},
                       {"extent_bytes", po.extent_bytes},
                       {"max_extents", po.max_extents},
                       {"fixed_extents", po.fixed_extents},
                       {"initial_segment_bytes", initial_segment},
                       {"live_slot_targets_per_process", opt.live_targets}}}});

  const uint64_t share_ops = opt.ops / nprocs;

  // Guests: fork before any thread starts in this process. A memfd
  // segment is reached through the host's descriptor, inherited.
  std::vector<pid_t> pids(nprocs, 0);
  for (uint32_t i = 1; i < nprocs; ++i) {
    std::fflush(nullptr);  // a child must not repeat buffered output
    pid_t pid = ::fork();
    if (pid < 0) throw RunError(std::string("varslot-growth: fork: ") + std::strerror(errno));
    if (pid == 0) {
      {
        auto g = po.memfd ? Pool::attach_fd(host.segment_fd()) : Pool::attach(po.path);
        if (!g) _exit(2);
        ctl.proc[i].peer.store((*g)->peer_id(), std::memory_order_release);
        ctl.proc[i].ready.store(1, std::memory_order_release);
        while (!ctl.start.load(std::memory_order_acquire)) ::usleep(100);
        ProcessExec ex(**g, ctl, i, nprocs, nclasses);
        ex.share_ops_ = share_ops;
        ex.timed_every_ = opt.timed_every;
        plan.run_process(i, ex);
        ctl.proc[i].remaps.store((*g)->stats().remaps, std::memory_order_relaxed);
      }
      _exit(0);
    }
    pids[i] = pid;
  }
  ctl.proc[0].peer.store(host.peer_id());
  for (uint32_t i = 1; i < nprocs; ++i)
    while (!ctl.proc[i].ready.load(std::memory_order_acquire)) {
      int st;
      if (::waitpid(pids[i], &st, WNOHANG) == pids[i])
        throw RunError("varslot-growth: guest " + std::to_string(i) + " exited before starting");
      ::usleep(200);
    }
  // grow_rt_priority: the service thread (which then does every growth)
  // runs under SCHED_FIFO.
  host.start_service(1, opt.service_nice, opt.grow_rt_priority);

  // Samples: segment size, extents, live bytes (sum over processes).
  std::mutex smu;
  std::vector<json> samples;
  uint64_t live_peak_sampled = 0;
  const uint64_t t0 = monotonic_ns();
  auto take_sample = [&] {
    uint64_t live = 0, done_ops = 0;
    for (uint32_t i = 0; i < nprocs; ++i) {
      if (!ctl.proc[i].dead.load(std::memory_order_relaxed))
        live += ctl.proc[i].live_bytes.load(std::memory_order_relaxed) +
                ctl.proc[i].inflight_bytes.load(std::memory_order_relaxed);
      done_ops += ctl.proc[i].ops.load(std::memory_order_relaxed);
    }
    varslot::PoolStats s = host.stats();
    json j{{"t_ns", doc.elapsed_ns()}, {"phase", "run"}, {"live_bytes", live}, {"segment_bytes", s.segment_bytes},
           {"growth_events", s.growth_events}, {"ops", done_ops}};
    std::lock_guard<std::mutex> g(smu);
    live_peak_sampled = std::max(live_peak_sampled, live);
    samples.push_back(std::move(j));
  };
  PeriodicSampler sampler;
  sampler.start(opt.sample_ms, take_sample);

  HostTick tick{&ctl, &pids, std::vector<int>(nprocs, -1), nprocs, opt.ops, opt.kill_guest, ctx.progress};
  ctl.hold.store(opt.kill_guest ? 1 : 0, std::memory_order_release);
  ctl.start.store(1, std::memory_order_release);
  {
    ProcessExec ex(host, ctl, 0, nprocs, nclasses);
    ex.share_ops_ = share_ops;
    ex.timed_every_ = opt.timed_every;
    ex.tick_ = &HostTick::call;
    ex.tick_arg_ = &tick;
    plan.run_process(0, ex);
  }
  const bool killed = tick.killed;
  std::string child_errors;
  for (uint32_t i = 1; i < nprocs; ++i) {
    int st = tick.reaped[i];
    if (st < 0) ::waitpid(pids[i], &st, 0);
    const bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!ok && !(killed && i == 1)) child_errors += " guest " + std::to_string(i) + " status " + std::to_string(st);
  }
  const uint64_t t_run = monotonic_ns() - t0;
  sampler.stop();
  take_sample();
  host.stop_service();
  host.serve(0);  // a guest that died at the very end
  if (killed) host.reclaim_peer(tick.killed_peer);  // handles passed to it after its reclaim
  for (auto& s : samples) doc.add_sample(std::move(s));

  // Aggregate.
  LatencyHistogram af;
  uint64_t total_ops = 0, corruptions = 0, handle_errors = 0, alloc_failures = 0, passed = 0, remaps = 0,
           peak_sum_own = 0;
  for (uint32_t i = 0; i < nprocs; ++i) {
    ProcShared& p = ctl.proc[i];
    total_ops += p.ops.load();
    corruptions += p.corruptions.load();
    handle_errors += p.handle_errors.load();
    alloc_failures += p.alloc_failures.load();
    passed += p.passed.load();
    remaps += i == 0 ? host.stats().remaps : p.remaps.load();
    peak_sum_own = std::max(peak_sum_own, p.live_peak.load());
    if (!(killed && i == 1)) af.merge(p.alloc_free);
  }
  LatencyHistogram grow;
  for (uint64_t ns : host.grow_durations_ns()) grow.record(ns);
  LatencyHistogram grow_cpu;
  for (uint64_t ns : host.grow_cpu_ns()) grow_cpu.record(ns);
  // Where the growths' wall time went (outside the summary: diagnostics).
  {
    static const char* const kPhase[varslot::kGrowPhases] = {"truncate", "map", "init", "publish", "wake"};
    LatencyHistogram ph[varslot::kGrowPhases];
    uint64_t preempted = 0;
    const auto phases = host.grow_phases();
    for (const auto& g : phases) {
      for (uint32_t i = 0; i < varslot::kGrowPhases; ++i) ph[i].record(std::max<uint64_t>(1, g.ns[i]));
      preempted += g.preemptions ? 1 : 0;
    }
    json j;
    for (uint32_t i = 0; i < varslot::kGrowPhases; ++i) j[kPhase[i]] = ph[i].to_json();
    j["growths_preempted"] = preempted;
    j["growths"] = phases.size();
    j["rt_refused"] = host.grow_rt_refused();
    j["service_rt_applied"] = host.service_rt_ok();
    doc.doc()["grow_phases_ns"] = std::move(j);
  }
  varslot::PoolStats s = host.stats();
  uint64_t leaked = 0;
  for (uint32_t k = 0; k < host.class_count(); ++k) {
    uint64_t f = 0, a = 0;
    host.count_slots(k, &f, &a);
    leaked += a;
  }
  uint64_t allocated = po.memfd ? fd_blocks_bytes(host.segment_fd()) : file_blocks_bytes(po.path);
  if (po.mode == varslot::GrowthMode::kExtentFiles)
    for (uint32_t k = 0; k < host.class_count(); ++k)
      for (uint32_t e = 0; e < s.extents[k]; ++e)
        allocated += file_blocks_bytes(po.path + ".c" + std::to_string(k) + ".e" + std::to_string(e));
  const uint64_t live_peak = std::max({live_peak_sampled, peak_sum_own, ctl.live_peak.load()});
  uint64_t fixed_bytes = varslot::kHeaderBytes;
  for (uint32_t sz : po.class_sizes) {
    uint64_t slots = po.extent_bytes / sz, d = 0;
    fixed_bytes += uint64_t(po.fixed_extents) * varslot::extent_layout_bytes(sz, uint32_t(slots), &d);
  }

  doc.set_latency("alloc_free", af);
  json& sum = doc.summary();
  sum["growth"] = opt.growth;
  sum["processes"] = nprocs;
  sum["growth_events"] = s.growth_events;
  sum["growth_refused"] = s.growth_refused;
  sum["remaps"] = remaps;
  sum["grow_ns"] = grow.to_json();
  sum["grow_cpu_ns"] = grow_cpu.to_json();
  sum["service_nice_applied"] = host.service_nice_ok();
  sum["alloc_free_ns"] = af.to_json();
  sum["segment_bytes_initial"] = initial_segment;
  sum["segment_bytes_final"] = s.segment_bytes;
  sum["segment_allocated_bytes"] = allocated;
  sum["live_bytes_peak"] = live_peak;
  sum["segment_over_peak"] = live_peak ? double(s.segment_bytes) / double(live_peak) : 0.0;
  sum["fixed_segment_bytes"] = fixed_bytes;
  sum["fixed_over_peak"] = live_peak ? double(fixed_bytes) / double(live_peak) : 0.0;
  sum["fallback_allocs"] = s.fallback_allocs;
  sum["corruptions"] = corruptions;
  sum["handle_errors"] = handle_errors;
  sum["alloc_failures"] = alloc_failures;
  sum["double_frees"] = s.double_frees;
  sum["stale_handles"] = s.stale_handles;
  sum["recovered_slots"] = s.recovered_slots;
  sum["killed_guests"] = killed ? 1 : 0;
  sum["leaked_slots"] = leaked;
  sum["passed_handles"] = passed;
  sum["extents"] = std::vector<uint32_t>(s.extents, s.extents + host.class_count());
  sum["pool_stats"] = counters_json(s);  // every PoolStats counter of the host (src/varslot/pool.h)
  sum["ops"] = total_ops;
  sum["run_seconds"] = double(t_run) / 1e9;
  sum["ops_per_sec"] = t_run ? double(total_ops) * 1e9 / double(t_run) : 0.0;
  if (ctx.progress)
    std::fprintf(stderr,
                 "varslot-growth %s: %u processes, %" PRIu64 " ops in %.2f s (%.2f Mops/s); growths %" PRIu64
                 " (grow p99 %" PRIu64 " us), alloc+free p50 %" PRIu64 " ns p99 %" PRIu64
                 " ns; segment %.1f MiB / live peak %.1f MiB = %.3f (fixed %.3f); corruptions %" PRIu64
                 ", recovered %" PRIu64 ", leaked %" PRIu64 "\n",
                 opt.growth.c_str(), nprocs, total_ops, double(t_run) / 1e9, double(total_ops) / double(t_run) * 1e3,
                 s.growth_events, grow.percentile(0.99) / 1000, af.percentile(0.5), af.percentile(0.99),
                 double(s.segment_bytes) / 1048576.0, double(live_peak) / 1048576.0,
                 sum["segment_over_peak"].get<double>(), sum["fixed_over_peak"].get<double>(), corruptions,
                 s.recovered_slots, leaked);
  if (!child_errors.empty()) throw RunError("varslot-growth: guests failed:" + child_errors);
  if (corruptions || handle_errors)
    throw RunError("varslot-growth: " + std::to_string(corruptions) + " corrupted payloads, " +
                   std::to_string(handle_errors) + " held handles refused");
}

}  // namespace znslab::harness
