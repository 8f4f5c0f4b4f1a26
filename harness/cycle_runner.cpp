// The cycle runner (harness/cycle_runner.h): threads, barriers, sampling,
// latency timing, summary metrics and the result document of cycle-shaped
// allocation workloads; the operations come from the generator.
//
// Per round c, with T workers: begin_round (main); alloc phase (workers);
// `peak` sample (workers parked at a barrier); free phase (workers), then
// end_round (main; part of the timed free phase); idle idle_ms; `post_free`
// sample. Samples: "peak" and "post_free" per round, "periodic" every
// sample_ms from a background thread, "start" and "end". Summary metrics:
// DESIGN.md "Metrics", docs/harness.md.
#include "harness/cycle_runner.h"

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "harness/counters.h"
#include "harness/metrics.h"
#include "harness/sampler.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

enum class Phase : uint8_t { kStart, kPeak, kPostFree, kPeriodic, kEnd };
const char* phase_name(Phase p) {
  switch (p) {
    case Phase::kStart: return "start";
    case Phase::kPeak: return "peak";
    case Phase::kPostFree: return "post_free";
    case Phase::kPeriodic: return "periodic";
    case Phase::kEnd: return "end";
  }
  return "?";
}
// Periodic samples live in a fixed, pre-touched buffer; when it is full,
// every other sample is dropped and the sampling stride doubles, so the
// whole run stays covered and the harness's memory never grows.
constexpr size_t kPeriodicCapacity = 2048;

// One sample as plain values (docs/harness.md "samples[]" for the JSON fields).
struct CycleSample {
  uint64_t t_ns = 0;
  Phase phase = Phase::kPeriodic;
  int64_t cycle = -1;       // -1: not in a cycle (null)
  int32_t epoch = -1;       // -1: none (null)
  uint64_t phase_ns = 0;    // alloc phase (peak) or free phase (post_free)
  ProcSample proc;
  bool have_counters = false;
  AllocatorCounters ac;
  bool have_tally = false;
  uint64_t objects_live = 0, objects_live_bytes = 0, objects_requested_bytes = 0;

  json to_json(bool has_epochs) const {
    json s;
    s["t_ns"] = t_ns;
    s["phase"] = phase_name(phase);
    s["cycle"] = cycle < 0 ? json(nullptr) : json(cycle);
    if (phase == Phase::kPeak || phase == Phase::kPostFree)
      s["epoch"] = has_epochs && epoch >= 0 ? json(epoch) : json(nullptr);
    if (phase == Phase::kPeak) s["alloc_phase_ns"] = phase_ns;
    if (phase == Phase::kPostFree) s["free_phase_ns"] = phase_ns;
    proc.to_json(s);
    if (have_counters) {
      counters_to_json(ac, s);  // every AllocatorCounters key (harness/allocators.h)
    } else {
      s["committed_bytes"] = nullptr;
      s["live_bytes"] = nullptr;
      s["requested_bytes"] = nullptr;
    }
    if (have_tally) {
      s["objects_live"] = objects_live;
      s["objects_live_bytes"] = objects_live_bytes;
      s["objects_requested_bytes"] = objects_requested_bytes;
    }
    return s;
  }
};

double mib(uint64_t b) { return double(b) / (1024.0 * 1024.0); }

// The churn summary (DESIGN.md "Metrics", docs/harness.md "summary: churn")
// from the recorded samples: pure, through harness/metrics.h.
struct CycleRecord {
  uint64_t cycles = 0, objects_per_round = 0, pinned_objects = 0;
  const std::vector<CycleSample>* samples = nullptr;  // start, peak/post_free per cycle, end
  size_t nsamples = 0;
  const std::vector<CycleSample>* periodic = nullptr;
  size_t nperiodic = 0;
  const std::vector<size_t>* peak_at = nullptr;  // index into samples per cycle
  const std::vector<size_t>* post_at = nullptr;
  uint64_t baseline_rss = 0, phase_ns_total = 0;
  double elapsed_s = 0;
  uint64_t live_mismatch_cycles = 0, periodic_dropped = 0, periodic_stride = 1, end_free_failures = 0;
};

void cycle_summary(const CycleRecord& r, json& s) {
  const std::vector<CycleSample>& cs = *r.samples;
  const uint64_t s0 = metrics::steady_state_first_cycle(r.cycles);
  auto post = [&](uint64_t c) -> const CycleSample& { return cs[(*r.post_at)[c]]; };
  auto peak = [&](uint64_t c) -> const CycleSample& { return cs[(*r.peak_at)[c]]; };
  std::vector<uint64_t> post_rss(r.cycles), post_committed;
  for (uint64_t c = 0; c < r.cycles; ++c) post_rss[c] = post(c).proc.rss_bytes;
  if (post(s0).have_counters)
    for (uint64_t c = 0; c < r.cycles; ++c) post_committed.push_back(post(c).ac.committed_bytes);
  const uint64_t worst = metrics::worst_post_free_cycle(post_rss, s0);
  uint64_t pmin = UINT64_MAX;
  double ret_max = 0, ret_min = 1e300, excess_max = -1e300;
  for (uint64_t c = s0; c < r.cycles; ++c) {
    pmin = std::min(pmin, post_rss[c]);
    const double ret = metrics::retention_pct(post_rss[c], peak(c).proc.rss_bytes).value_or(0.0);
    ret_max = std::max(ret_max, ret);
    ret_min = std::min(ret_min, ret);
    excess_max = std::max(excess_max, double(post_rss[c]) - double(post(c).objects_live_bytes));
  }
  uint64_t run_peak_rss = 0;
  for (size_t i = 0; i < r.nsamples; ++i) run_peak_rss = std::max(run_peak_rss, cs[i].proc.rss_bytes);
  for (size_t i = 0; i < r.nperiodic; ++i) run_peak_rss = std::max(run_peak_rss, (*r.periodic)[i].proc.rss_bytes);

  const uint64_t objects_allocated = r.cycles * r.objects_per_round;
  const double phase_s = double(r.phase_ns_total) / 1e9;
  const CycleSample& w = post(worst);
  s["ops_per_sec"] = metrics::ops_per_sec(2 * objects_allocated, r.phase_ns_total).value_or(0.0);
  s["ns_per_object"] = metrics::ns_per_object(r.phase_ns_total, objects_allocated).value_or(0.0);
  s["objects_allocated"] = objects_allocated;
  s["pinned_objects"] = r.pinned_objects;
  s["cycles"] = r.cycles;
  s["steady_state_first_cycle"] = s0;
  s["steady_state_cycles"] = r.cycles - s0;
  s["peak_rss_bytes"] = run_peak_rss;
  s["post_free_rss_bytes"] = w.proc.rss_bytes;
  s["post_free_rss_cycle"] = worst;
  s["live_bytes_post_free"] = w.objects_live_bytes;
  s["requested_bytes_post_free"] = w.objects_requested_bytes;
  s["post_free_rss_min_bytes"] = pmin;
  s["post_free_rss_excess_max_bytes"] = excess_max;
  s["post_free_anon_rss_bytes"] = w.proc.anon_rss_bytes < 0 ? json(nullptr) : json(w.proc.anon_rss_bytes);
  s["baseline_rss_bytes"] = r.baseline_rss;
  s["post_free_rss_above_baseline_bytes"] = int64_t(w.proc.rss_bytes) - int64_t(r.baseline_rss);
  s["rss_stability_pct"] = metrics::rss_stability_pct(post_rss, s0).value_or(0.0);
  s["retention_pct"] = ret_max;
  s["retention_pct_min"] = ret_min;
  const bool have_counters = post(s0).have_counters;
  if (have_counters) {
    const auto drift = metrics::committed_drift_pct(post_committed, s0);
    s["committed_drift_pct"] = drift ? json(*drift) : json(nullptr);
    s["committed_post_free_first_bytes"] = post(s0).ac.committed_bytes;
    s["committed_post_free_last_bytes"] = post(r.cycles - 1).ac.committed_bytes;
    uint64_t pc = 0, pfc = 0;
    for (uint64_t c = 0; c < r.cycles; ++c) pc = std::max(pc, peak(c).ac.committed_bytes);
    for (uint64_t c = s0; c < r.cycles; ++c) pfc = std::max(pfc, post(c).ac.committed_bytes);
    s["peak_committed_bytes"] = pc;
    s["post_free_committed_max_bytes"] = pfc;
    s["live_bytes_counter_mismatch_cycles"] = r.live_mismatch_cycles;
  } else {
    for (const char* k : {"committed_drift_pct", "committed_post_free_first_bytes", "committed_post_free_last_bytes",
                          "peak_committed_bytes", "post_free_committed_max_bytes", "live_bytes_counter_mismatch_cycles"})
      s[k] = nullptr;
  }
  s["phase_seconds"] = phase_s;
  s["elapsed_seconds"] = r.elapsed_s;
  s["periodic_samples_dropped"] = r.periodic_dropped;
  s["periodic_sample_stride"] = r.periodic_stride;
  s["end_free_errors"] = r.end_free_failures;
}


}  // namespace

CycleRunnerMemory cycle_runner_memory(uint64_t rounds, uint64_t slots) {
  CycleRunnerMemory m;
  m.samples_bytes = (2 * rounds + 2 + kPeriodicCapacity) * sizeof(CycleSample) + 2 * rounds * sizeof(size_t);
  m.books_bytes = slots * (2 * sizeof(Obj) + sizeof(uint32_t) * 2 + 1);
  return m;
}

void run_cycles(RunContext& ctx, const CyclePlan& plan, const CycleRunOptions& p) {
  const std::string& X = p.experiment;
  const uint64_t cycles = plan.rounds();
  ResultDoc& doc = *ctx.result;
  auto alloc = make_allocator(ctx.allocator, ctx.config);
  doc.set_allocator(alloc->describe());
  timer_calibration();
  doc.doc()["timer"] = timer_json();
  doc.doc()["epoch_plan"] = alloc->has_epochs() ? json(p.epoch_plan)
                                                 : json("none (malloc peer: same malloc/free sequence, no epochs)");
  Sampler sampler;

  // The slot table and each worker's pinned objects, touched now so the
  // baseline RSS includes them (like the other harness arrays).
  const uint64_t n = plan.objects_per_round();
  const uint64_t npinned = plan.pinned_objects();
  const uint32_t T = plan.workers();
  std::vector<Obj> slots(plan.slots());
  std::vector<std::vector<Obj>> pinned(T);
  std::vector<WorkerExec> workers(T);
  RoundExec round_ex;
  round_ex.alloc = alloc.get();
  for (uint32_t t = 0; t < T; ++t) {
    pinned[t].reserve(plan.pinned_capacity(t));
    pinned[t].resize(pinned[t].capacity());
    pinned[t].clear();
    WorkerExec& w = workers[t];
    w.alloc = alloc.get();
    w.slots = slots.data();
    w.pinned = &pinned[t];
    w.latency_every = p.latency_every;
  }

  // Samples are kept as plain structs in storage sized up front and turned
  // into JSON after the last measurement, so the harness's own memory does
  // not grow with the run (it would show up as RSS drift).
  std::vector<CycleSample> cs(2 * cycles + 2);  // value-initialised: touched now
  size_t ncs = 0;
  std::mutex periodic_mu;
  std::vector<CycleSample> periodic(kPeriodicCapacity);  // value-initialised: touched now
  size_t nperiodic = 0;
  uint64_t periodic_stride = 1, periodic_ticks = 0, periodic_dropped = 0;
  std::vector<size_t> peak_at(cycles), post_at(cycles);

  // Phase protocol: main and T workers meet at `sync` four times per cycle:
  // [start alloc] ... [alloc done] (sample) [start free] ... [free done].
  std::barrier<> sync(T + 1);
  std::atomic<bool> stop{false};
  std::atomic<int> go{0};
  std::atomic<uint64_t> cur_cycle{0};
  std::vector<std::thread> threads;
  auto worker_main = [&](uint32_t t) {
      WorkerExec& me = workers[t];
      sampler.attach_thread();
      // Wait until every worker exists (a failed thread creation stops the
      // ones started before they ever touch the barrier).
      while (go.load(std::memory_order_acquire) == 0) go.wait(0, std::memory_order_acquire);
      if (stop.load(std::memory_order_acquire)) return;
      for (;;) {
        sync.arrive_and_wait();  // start alloc
        if (stop.load(std::memory_order_acquire)) return;
        const uint64_t c = cur_cycle.load(std::memory_order_relaxed);
        plan.alloc_phase(c, t, me);
        sync.arrive_and_wait();  // alloc done
        sync.arrive_and_wait();  // start free
        plan.free_phase(c, t, me);
        sync.arrive_and_wait();  // free done
      }
    };
  // Every exit from here on (an error, a failed thread creation, an
  // exception anywhere in the main loop) stops and joins the workers first:
  // a joinable std::thread must never be destroyed (std::terminate).
  // Main's place in the four-barrier protocol: the next barrier it meets
  // (0 start alloc, 1 alloc done, 2 start free, 3 free done). Workers check
  // `stop` only after "start alloc", so stopping means walking the protocol
  // to the next "start alloc" with them (a worker mid-cycle finishes its
  // phase first); no worker can return while others wait at a barrier.
  unsigned main_pos = 0;
  auto main_barrier = [&] {
    sync.arrive_and_wait();
    main_pos = (main_pos + 1) % 4;
  };
  bool stopped = false;
  auto stop_workers = [&] {
    if (stopped) return;
    stopped = true;
    stop.store(true, std::memory_order_release);
    if (go.load(std::memory_order_acquire) == 0) {
      go.store(1, std::memory_order_release);  // not started: they return at once
      go.notify_all();
    } else {
      bool released = false;
      while (!released) {
        released = main_pos == 0;  // this arrival completes "start alloc"
        main_barrier();
      }
    }
    for (auto& th : threads)
      if (th.joinable()) th.join();
  };
  struct Guard {
    std::function<void()> f;
    ~Guard() { if (f) f(); }
  } guard{stop_workers};
  for (uint32_t t = 0; t < T; ++t) {
    try {
      threads.emplace_back(worker_main, t);
    } catch (const std::system_error& e) {
      // The guard stops the workers started so far (they wait on `go`).
      throw RunError(X + ": cannot start worker thread " + std::to_string(t) + " of " + std::to_string(T) +
                     ": " + e.what());
    }
  }
  go.store(1, std::memory_order_release);
  go.notify_all();


  auto take = [&](CycleSample& s, Phase ph, int64_t cycle, bool with_tally) {
    s.t_ns = doc.elapsed_ns();
    s.phase = ph;
    s.cycle = cycle;
    sampler.sample_into(s.proc);
    s.have_counters = alloc->counters(s.ac);
    s.have_tally = with_tally;
    if (with_tally) {
      uint64_t live = 0, req = 0, count = 0;
      for (auto& o : slots)
        if (o.ptr) { live += alloc->usable_size(o); req += o.requested; ++count; }
      for (auto& pv : pinned)
        for (auto& o : pv) { live += alloc->usable_size(o); req += o.requested; ++count; }
      s.objects_live = count;
      s.objects_live_bytes = live;
      s.objects_requested_bytes = req;
    }
  };
  PeriodicSampler ps;
  ps.start(p.sample_ms, [&] {
    if (periodic_ticks++ % periodic_stride != 0) return;  // only this thread touches these
    CycleSample s;
    take(s, Phase::kPeriodic, int64_t(cur_cycle.load(std::memory_order_relaxed)), false);
    std::lock_guard<std::mutex> g(periodic_mu);
    if (nperiodic == kPeriodicCapacity) {
      for (size_t i = 0; i < kPeriodicCapacity / 2; ++i) periodic[i] = periodic[2 * i];
      nperiodic = kPeriodicCapacity / 2;
      periodic_dropped += kPeriodicCapacity / 2;
      periodic_stride *= 2;
    }
    periodic[nperiodic++] = s;
  });

  auto abort_run = [&](const std::string& why) {
    stop_workers();
    ps.stop();
    throw RunError(why);
  };

  // Baseline: harness arrays allocated, no workload object yet.
  take(cs[ncs++], Phase::kStart, -1, true);
  const uint64_t baseline_rss = cs[0].proc.rss_bytes;

  uint64_t phase_ns_total = 0, live_mismatch_cycles = 0;
  const uint64_t t_run0 = monotonic_ns();
  const uint64_t progress_every = std::max<uint64_t>(1, cycles * p.progress_pct / 100);
  for (uint64_t c = 0; c < cycles; ++c) {
    const uint32_t e = plan.round_epoch(c);
    try {
      plan.begin_round(c, round_ex);
    } catch (const RunError& err) {
      abort_run(X + " cycle " + std::to_string(c) + ": " + err.what());
    }
    cur_cycle.store(c, std::memory_order_relaxed);
    const uint64_t a0 = monotonic_ns();
    main_barrier();  // start alloc
    main_barrier();  // alloc done
    const uint64_t a1 = monotonic_ns();
    CycleSample& pk = cs[ncs];
    peak_at[c] = ncs++;
    take(pk, Phase::kPeak, int64_t(c), true);
    pk.epoch = alloc->has_epochs() ? int32_t(e) : -1;
    pk.phase_ns = a1 - a0;
    const uint64_t f0 = monotonic_ns();
    main_barrier();  // start free
    main_barrier();  // free done
    try {
      plan.end_round(c, round_ex);
    } catch (const RunError& err) {
      abort_run(X + " cycle " + std::to_string(c) + ": " + err.what());
    }
    const uint64_t f1 = monotonic_ns();
    phase_ns_total += (a1 - a0) + (f1 - f0);
    uint64_t fails = 0;
    for (auto& w : workers) fails += w.alloc_failures + w.free_failures;
    if (fails)
      abort_run(X + " cycle " + std::to_string(c) + ": " + alloc->name() + " reported " +
                std::to_string(fails) + " failed allocations/frees");
    if (p.idle_ms) std::this_thread::sleep_for(std::chrono::milliseconds(p.idle_ms));
    CycleSample& pf = cs[ncs];
    post_at[c] = ncs++;
    take(pf, Phase::kPostFree, int64_t(c), true);
    pf.epoch = alloc->has_epochs() ? int32_t(e) : -1;
    pf.phase_ns = f1 - f0;
    if (pf.have_counters && (pf.ac.live_bytes != pf.objects_live_bytes || pk.ac.live_bytes != pk.objects_live_bytes))
      ++live_mismatch_cycles;
    if (ctx.progress && ((c + 1) % progress_every == 0 || c + 1 == cycles)) {
      std::fprintf(stderr,
                   "[%s %s] cycle %lu/%lu (%3.0f%%)  rss peak %.1f MiB post-free %.1f MiB",
                   X.c_str(), alloc->name(), (unsigned long)(c + 1), (unsigned long)cycles,
                   100.0 * double(c + 1) / double(cycles), mib(pk.proc.rss_bytes), mib(pf.proc.rss_bytes));
      if (pf.have_counters) std::fprintf(stderr, "  committed %.1f MiB", mib(pf.ac.committed_bytes));
      std::fprintf(stderr, "  live %.1f MiB  elapsed %.1f s\n", mib(pf.objects_live_bytes),
                   double(monotonic_ns() - t_run0) / 1e9);
    }
  }
  stop_workers();
  ps.stop();
  take(cs[ncs++], Phase::kEnd, -1, true);
  const double elapsed_s = double(monotonic_ns() - t_run0) / 1e9;
  // Pinned objects die last.
  uint64_t end_free_failures = 0;
  for (auto& pv : pinned)
    for (auto& o : pv) end_free_failures += !alloc->release(o);

  // ---- JSON: the time series, merged by t_ns ---------------------------------
  const bool has_epochs = alloc->has_epochs();
  {
    std::vector<const CycleSample*> all;
    for (size_t i = 0; i < ncs; ++i) all.push_back(&cs[i]);
    for (size_t i = 0; i < nperiodic; ++i) all.push_back(&periodic[i]);
    std::stable_sort(all.begin(), all.end(), [](auto* a, auto* b) { return a->t_ns < b->t_ns; });
    for (const CycleSample* s : all) doc.add_sample(s->to_json(has_epochs));
  }

  LatencyHistogram ha, hf;
  for (auto& w : workers) {
    ha.merge(w.h_alloc);
    hf.merge(w.h_free);
  }
  doc.set_latency("alloc", ha);
  doc.set_latency("free", hf);

  // ---- Summary (DESIGN.md "Metrics") -----------------------------------------
  CycleRecord rec;
  rec.cycles = cycles;
  rec.objects_per_round = n;
  rec.pinned_objects = npinned;
  rec.samples = &cs;
  rec.nsamples = ncs;
  rec.periodic = &periodic;
  rec.nperiodic = nperiodic;
  rec.peak_at = &peak_at;
  rec.post_at = &post_at;
  rec.baseline_rss = baseline_rss;
  rec.phase_ns_total = phase_ns_total;
  rec.elapsed_s = elapsed_s;
  rec.live_mismatch_cycles = live_mismatch_cycles;
  rec.periodic_dropped = periodic_dropped;
  rec.periodic_stride = periodic_stride;
  rec.end_free_failures = end_free_failures;
  cycle_summary(rec, doc.summary());
  doc.doc()["allocator_stats"] = alloc->final_stats();
  doc.doc()["timeline"] = alloc->timeline(doc.t0_ns());
  doc.doc()["perf"] = sampler.perf_info();
  if (end_free_failures)
    throw RunError(X + ": " + std::to_string(end_free_failures) + " pinned frees failed on " +
                   alloc->name());
}

}  // namespace znslab::harness
