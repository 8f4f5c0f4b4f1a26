// The replay runner (harness/replay_runner.h): threads, pacing, epoch ring,
// sampling, summary and result of trace replays; the operations come from
// the generator (workloads/trace_replay_gen.h).
#include "harness/replay_runner.h"

#include <dlfcn.h>
#include <sched.h>
#include <time.h>

#include <cstdio>
#include <exception>
#include <thread>

#include "harness/result.h"
#include "harness/sampler.h"

namespace znslab::harness {

ReplayShared::ReplayShared(AllocatorAdapter& alloc, uint64_t max_obj, uint32_t threads)
    : a(alloc), slab(alloc.has_epochs()), objs(max_obj + 1), state(new std::atomic<uint8_t>[max_obj + 1]),
      cur_window(threads) {
  for (uint64_t i = 0; i <= max_obj; ++i) state[i].store(kNone, std::memory_order_relaxed);
  for (auto& w : cur_window) w.store(0);
  for (auto& s : slot_window) s.store(-1);
}

void ReplayShared::fail(const char* what) {
  std::lock_guard<std::mutex> g(mu);
  if (error.empty()) error = what;
  failed.store(true);
}

void ReplayExec::at(uint64_t ts_ns) const noexcept {
  const uint64_t t = s_.t0_ns + ts_ns;
  for (;;) {
    const uint64_t now = monotonic_ns();
    if (now >= t) return;
    if (t - now > 200'000) {
      timespec ts{0, long(t - now - 100'000)};
      nanosleep(&ts, nullptr);
    }
  }
}

void ReplayExec::enter_window(uint64_t w) {
  s_.cur_window[t_].store(w);
  maybe_close();
}

void ReplayExec::thread_done() {
  s_.cur_window[t_].store(UINT64_MAX);
  if (s_.slab) maybe_close();
}

void ReplayExec::wait_slow(uint32_t id) {
  s_.cross_waits.fetch_add(1, std::memory_order_relaxed);
  for (unsigned spins = 0; s_.state[id].load(std::memory_order_acquire) == ReplayShared::kNone; ++spins) {
    if (s_.failed.load(std::memory_order_relaxed)) throw RunError("aborted");
    if (spins > 64) sched_yield();
  }
}

// The ring slot of window w, (re)opened for it; the long-lived epoch when
// the slot was already recycled for a later window (a lagging thread).
uint32_t ReplayExec::window_epoch(uint32_t w) {
  const uint32_t slot = trace::window_slot(w);
  if (s_.slot_window[slot] == int64_t(w)) return slot;
  std::lock_guard<std::mutex> g(s_.mu);
  const int64_t cur = s_.slot_window[slot];
  if (cur == int64_t(w)) return slot;
  if (cur > int64_t(w)) {
    s_.epoch_fallbacks.fetch_add(1, std::memory_order_relaxed);
    return trace::kLongEpoch;
  }
  if (cur >= 0 && cur >= int64_t(s_.closed_upto.load())) {  // recycled before every thread passed it
    s_.a.epoch_close(slot);
    s_.forced_closes.fetch_add(1, std::memory_order_relaxed);
  }
  s_.a.epoch_open(slot, "window " + std::to_string(w));
  s_.slot_window[slot] = w;
  return slot;
}

// Closes every window all threads have passed. A refused close fails the
// replay (no throw: called between operations).
void ReplayExec::maybe_close() {
  uint64_t m = UINT64_MAX;
  for (auto& w : s_.cur_window) m = std::min(m, w.load());
  if (m == UINT64_MAX) m = s_.windows;
  if (m <= s_.closed_upto.load()) return;
  std::lock_guard<std::mutex> g(s_.mu);
  try {
    for (uint64_t x = s_.closed_upto.load(); x < m; ++x) {
      const uint32_t slot = trace::window_slot(x);
      if (s_.slot_window[slot] == int64_t(x)) {
        s_.a.epoch_close(slot);
        s_.epochs_closed.fetch_add(1, std::memory_order_relaxed);
      }
      s_.closed_upto.store(x + 1);
    }
  } catch (const std::exception& e) {
    if (s_.error.empty()) s_.error = e.what();
    s_.failed.store(true);
  }
}

void ReplayExec::close_open_windows() {
  for (uint32_t s = 0; s < 16; ++s)
    if (s_.slot_window[s] >= 0 && s_.slot_window[s] >= int64_t(s_.closed_upto.load())) s_.a.epoch_close(s);
}

namespace {

using nlohmann::json;

// Returns the memory freed after loading the trace to the OS, with whichever
// allocator serves this process (glibc malloc_trim, jemalloc's purge of all
// arenas, mimalloc's mi_collect, tcmalloc's ReleaseFreeMemory), so that the
// loading phase does not inflate the baseline of allocators that retain
// freed memory. Cold; called once before the baseline sample.
void release_loading_memory() {
  malloc_trim(0);
  using mallctl_fn = int (*)(const char*, void*, size_t*, void*, size_t);
  if (auto f = reinterpret_cast<mallctl_fn>(dlsym(RTLD_DEFAULT, "mallctl")))
    f("arena.4096.purge", nullptr, nullptr, nullptr, 0);  // 4096 = MALLCTL_ARENAS_ALL
  if (auto f = reinterpret_cast<void (*)(bool)>(dlsym(RTLD_DEFAULT, "mi_collect"))) f(true);
  if (auto f = reinterpret_cast<void (*)()>(dlsym(RTLD_DEFAULT, "MallocExtension_ReleaseFreeMemory"))) f();
}

// One sample as plain values (taken while replaying: no allocation).
struct ReplaySample {
  uint64_t t_ns;
  ProcSample p;
  AllocatorCounters ac;
  bool have;
  uint64_t ops;
};

// Runs every replay thread to completion; the first error is rethrown as
// RunError after all have joined.
void replay_threads(const ReplayRunPlan& plan, ReplayShared& sh) {
  {
    ReplayExec main_ex(sh, 0);
    plan.begin(main_ex);
  }
  sh.t0_ns = monotonic_ns();
  std::vector<std::thread> th;
  for (uint32_t i = 0; i < plan.threads(); ++i)
    th.emplace_back([&plan, &sh, i] {
      ReplayExec ex(sh, i);
      try {
        plan.replay_thread(i, ex);
      } catch (const std::exception& e) {
        sh.fail(e.what());
      }
    });
  for (auto& t : th) t.join();
  if (sh.failed.load()) throw RunError("trace replay: " + sh.error);
}

}  // namespace

void run_replay(RunContext& ctx, const ReplayRunPlan& plan, const ReplayRunOptions& opt) {
  ResultDoc& doc = *ctx.result;
  auto alloc = make_allocator(ctx.allocator, ctx.config);
  doc.set_allocator(alloc->describe());
  const bool slab = alloc->has_epochs();
  const ReplayPlanFacts f = opt.load();
  const uint64_t total_ops = f.trace_events;
  release_loading_memory();
  if (ctx.progress)
    std::fprintf(stderr, "[%s %s] %s: %lu ops, %u threads, %lu windows, policy %s\n", opt.experiment.c_str(),
                 alloc->name(), f.path.c_str(), (unsigned long)total_ops, plan.threads(),
                 (unsigned long)plan.windows(), slab ? f.epoch_policy.c_str() : "n/a");

  ReplayShared sh(*alloc, plan.max_obj(), plan.threads());
  sh.windows = plan.windows();
  Sampler sampler;
  // Periodic samples into a fixed array (no allocation while replaying).
  constexpr size_t kCap = 4096;
  std::unique_ptr<ReplaySample[]> pts(new ReplaySample[kCap]);
  size_t npts = 0, stride = 1, ticks = 0;
  std::mutex pmu;
  auto take = [&](ReplaySample& pt) {
    pt.t_ns = doc.elapsed_ns();
    sampler.sample_into(pt.p);
    pt.have = alloc->counters(pt.ac);
    pt.ops = sh.ops.load(std::memory_order_relaxed);
  };
  auto add = [&](const ReplaySample& pt, const char* phase) {
    json s;
    s["t_ns"] = pt.t_ns;
    s["phase"] = phase;
    pt.p.to_json(s);
    s["committed_bytes"] = pt.have ? json(pt.ac.committed_bytes) : json(nullptr);
    s["live_bytes"] = pt.have ? json(pt.ac.live_bytes) : json(nullptr);
    s["requested_bytes"] = pt.have ? json(pt.ac.requested_bytes) : json(nullptr);
    s["ops_done"] = pt.ops;
    doc.add_sample(std::move(s));
  };
  ReplaySample start_pt;
  take(start_pt);
  add(start_pt, "start");
  const uint64_t baseline_rss = start_pt.p.rss_bytes;

  PeriodicSampler ps;
  ps.start(opt.sample_ms, [&] {
    if (ticks++ % stride != 0) return;
    std::lock_guard<std::mutex> g(pmu);
    if (npts == kCap) {
      for (size_t i = 0; i < kCap / 2; ++i) pts[i] = pts[2 * i];
      npts = kCap / 2;
      stride *= 2;
    }
    take(pts[npts++]);
  });
  const uint64_t t0 = monotonic_ns();
  try {
    replay_threads(plan, sh);
  } catch (...) {
    ps.stop();
    throw;
  }
  const uint64_t t1 = monotonic_ns();
  ps.stop();
  ReplaySample end_pt;
  take(end_pt);
  {
    ReplayExec main_ex(sh, 0);
    plan.drain(main_ex);
  }
  if (ctx.progress)
    std::fprintf(stderr, "[%s %s] replayed in %.2f s; drained\n", opt.experiment.c_str(), alloc->name(),
                 double(t1 - t0) / 1e9);
  ReplaySample drain_pt;
  take(drain_pt);
  uint64_t peak = std::max(start_pt.p.rss_bytes, end_pt.p.rss_bytes);
  for (size_t i = 0; i < npts; ++i) {
    add(pts[i], "periodic");
    peak = std::max(peak, pts[i].p.rss_bytes);
  }
  add(end_pt, "end");
  add(drain_pt, "post_drain");

  const uint64_t ops = sh.ops.load(), skipped = sh.skipped.load();
  const double secs = double(t1 - t0) / 1e9;
  json& s = doc.summary();
  s["trace_events"] = f.trace_events;
  s["ops_replayed"] = ops;
  s["ops_skipped"] = skipped;
  s["threads"] = plan.threads();
  s["replay_seconds"] = secs;
  s["ops_per_sec"] = secs > 0 ? double(ops) / secs : 0.0;
  s["ns_per_op"] = ops ? double(t1 - t0) / double(ops) : 0.0;
  s["baseline_rss_bytes"] = baseline_rss;
  s["peak_rss_bytes"] = peak;
  s["peak_rss_over_baseline_bytes"] = peak > baseline_rss ? peak - baseline_rss : 0;
  s["post_drain_rss_bytes"] = drain_pt.p.rss_bytes;
  // Signed: below 0 when the allocator returned more than the replay added.
  s["post_drain_over_baseline_bytes"] = int64_t(drain_pt.p.rss_bytes) - int64_t(baseline_rss);
  s["fallback_ops"] = sh.fallback_ops.load();
  s["fallback_bytes"] = sh.fallback_bytes.load();
  s["cross_thread_frees"] = f.cross_thread_frees;
  s["cross_thread_waits"] = sh.cross_waits.load();
  s["epoch_policy"] = slab ? f.epoch_policy : "n/a";
  s["windows"] = plan.windows();
  s["mispredicted_objects"] = slab ? json(f.mispredicted) : json(nullptr);
  s["mispredicted_pct"] = slab ? json(f.mispredicted_pct) : json(nullptr);
  s["window_objects"] = slab ? json(f.window_objects) : json(nullptr);
  s["long_epoch_objects"] = slab ? json(f.long_objects) : json(nullptr);
  s["epochs_closed"] = sh.epochs_closed.load();
  s["epoch_fallbacks"] = sh.epoch_fallbacks.load();
  s["forced_epoch_closes"] = sh.forced_closes.load();
  doc.doc()["allocator_stats"] = alloc->final_stats();
  doc.doc()["timeline"] = alloc->timeline(doc.t0_ns());
  doc.doc()["perf"] = sampler.perf_info();
  if (ctx.progress)
    std::fprintf(stderr,
                 "[%s %s] %lu ops (%lu skipped), %.2f Mops/s, peak RSS %.1f MiB (+%.1f), post-drain %.1f MiB%s\n",
                 opt.experiment.c_str(), alloc->name(), (unsigned long)ops, (unsigned long)skipped,
                 s["ops_per_sec"].get<double>() / 1e6, double(peak) / 1048576.0,
                 double(peak > baseline_rss ? peak - baseline_rss : 0) / 1048576.0,
                 double(drain_pt.p.rss_bytes) / 1048576.0,
                 slab ? (", mispredicted " + std::to_string(f.mispredicted_pct).substr(0, 5) + " %").c_str() : "");
  if (ops != total_ops)
    throw RunError(opt.experiment + ": replayed " + std::to_string(ops) + " of " + std::to_string(total_ops) + " ops");
}

}  // namespace znslab::harness
