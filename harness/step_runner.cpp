// The step runner (harness/step_runner.h): phases, threads, timing,
// samples, summary and result of step-shaped allocation workloads.
#include "harness/step_runner.h"

#include <barrier>
#include <cstdio>
#include <exception>
#include <memory>
#include <thread>
#include <vector>

#include "harness/result.h"
#include "harness/sampler.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

// The samples between phases: process figures and the allocator's
// committed/live/requested bytes (null without counters).
void add_phase_sample(ResultDoc& doc, const Sampler& sampler, const AllocatorAdapter& alloc, const char* phase) {
  json smp = sampler.sample();
  smp["phase"] = phase;
  AllocatorCounters ac;
  bool have = alloc.counters(ac);
  smp["committed_bytes"] = have ? json(ac.committed_bytes) : json(nullptr);
  smp["live_bytes"] = have ? json(ac.live_bytes) : json(nullptr);
  smp["requested_bytes"] = have ? json(ac.requested_bytes) : json(nullptr);
  doc.add_sample(std::move(smp));
}

struct StepTimes {
  uint64_t timed_ns = 0, batch_ns = 0;
};

void finish(RunContext& ctx, const StepRunOptions& opt, AllocatorAdapter& alloc, const Sampler& sampler,
            const LatencyHistogram& ha, const LatencyHistogram& hf, uint64_t steps, uint64_t errors,
            const StepTimes& tm, uint32_t threads) {
  ResultDoc& doc = *ctx.result;
  doc.set_latency("alloc", ha);
  doc.set_latency("free", hf);
  const uint64_t ops = 2 * steps;
  const double batch_s = double(tm.batch_ns) / 1e9, timed_s = double(tm.timed_ns) / 1e9;
  json& s = doc.summary();
  s["ops_per_sec"] = double(ops) / batch_s;
  s["ops_per_sec_timed"] = double(ops) / timed_s;
  s["mean_ns"] = double(tm.batch_ns) / double(ops);
  s["steps"] = steps;
  s["ops"] = ops;
  s["batch_seconds"] = batch_s;
  s["timed_seconds"] = timed_s;
  s["free_errors"] = errors;
  doc.doc()["allocator_stats"] = alloc.final_stats();
  doc.doc()["timeline"] = alloc.timeline(doc.t0_ns());
  doc.doc()["perf"] = sampler.perf_info();
  if (ctx.progress) {
    const std::string who = threads > 1 ? std::string(alloc.name()) + ", " + std::to_string(threads) + " threads"
                                        : std::string(alloc.name());
    std::fprintf(stderr,
                 "[%s %s] %.1f Mops/s; alloc p50/p99/p99.9 %lu/%lu/%lu ns; free p50/p99/p99.9 "
                 "%lu/%lu/%lu ns\n",
                 opt.experiment.c_str(), who.c_str(), s["ops_per_sec"].get<double>() / 1e6,
                 (unsigned long)ha.percentile(0.5), (unsigned long)ha.percentile(0.99),
                 (unsigned long)ha.percentile(0.999), (unsigned long)hf.percentile(0.5),
                 (unsigned long)hf.percentile(0.99), (unsigned long)hf.percentile(0.999));
  }
  if (errors)
    throw RunError(opt.experiment + ": " + std::to_string(errors) + " frees reported errors on " + alloc.name());
}

void run_one_worker(RunContext& ctx, const StepPlan& plan, const StepRunOptions& opt, AllocatorAdapter& alloc,
                    const Sampler& sampler) {
  ResultDoc& doc = *ctx.result;
  const uint64_t slots = plan.slots_per_worker(), steps = plan.steps_per_worker(),
                 warmup = plan.warmup_per_worker();
  std::vector<Obj> table(slots);
  LatencyHistogram h_alloc, h_free;
  SlotExecUntimed ux;
  ux.alloc = &alloc;
  ux.table = table.data();
  ux.epoch = plan.epoch();
  SlotExecTimed tx;
  tx.alloc = &alloc;
  tx.table = table.data();
  tx.epoch = plan.epoch();
  tx.h_alloc = &h_alloc;
  tx.h_free = &h_free;

  plan.fill(ux);
  add_phase_sample(doc, sampler, alloc, "filled");
  if (ctx.progress)
    std::fprintf(stderr, "[%s %s] %lu slots filled; warmup %lu steps\n", opt.experiment.c_str(), alloc.name(),
                 (unsigned long)slots, (unsigned long)warmup);
  plan.steps(warmup, ux);

  StepTimes tm;
  const uint64_t t0 = monotonic_ns();
  plan.steps(steps, tx);
  const uint64_t t1 = monotonic_ns();
  tm.timed_ns = t1 - t0;
  add_phase_sample(doc, sampler, alloc, "timed_done");
  if (ctx.progress)
    std::fprintf(stderr, "[%s %s] timed pass: %lu steps in %.2f s\n", opt.experiment.c_str(), alloc.name(),
                 (unsigned long)steps, double(t1 - t0) / 1e9);

  const uint64_t t2 = monotonic_ns();
  plan.steps(steps, ux);
  const uint64_t t3 = monotonic_ns();
  tm.batch_ns = t3 - t2;
  add_phase_sample(doc, sampler, alloc, "batch_done");
  plan.drain(ux);
  alloc.epoch_close(plan.epoch());
  add_phase_sample(doc, sampler, alloc, "freed");
  finish(ctx, opt, alloc, sampler, h_alloc, h_free, steps, ux.errors + tx.errors, tm, 1);
}

void run_workers(RunContext& ctx, const StepPlan& plan, const StepRunOptions& opt, AllocatorAdapter& alloc,
                 const Sampler& sampler) {
  ResultDoc& doc = *ctx.result;
  const uint32_t T = plan.workers();
  const uint64_t per_slots = plan.slots_per_worker(), per_steps = plan.steps_per_worker(),
                 per_warm = plan.warmup_per_worker();
  std::vector<std::unique_ptr<Ring>> rings;
  for (uint32_t t = 0; t < T; ++t) rings.push_back(std::make_unique<Ring>(per_slots + 1024));
  StepFailure failure;
  std::vector<LatencyHistogram> h_alloc(T), h_free(T);
  std::vector<HandoffExecUntimed> ux(T);
  std::vector<HandoffExecTimed> tx(T);
  for (uint32_t t = 0; t < T; ++t) {
    ux[t].alloc = &alloc;
    ux[t].in = rings[t].get();
    ux[t].out = rings[(t + 1) % T].get();
    ux[t].epoch = plan.epoch();
    ux[t].failure = &failure;
    tx[t].alloc = &alloc;
    tx[t].in = rings[t].get();
    tx[t].out = rings[(t + 1) % T].get();
    tx[t].epoch = plan.epoch();
    tx[t].failure = &failure;
    tx[t].h_alloc = &h_alloc[t];
    tx[t].h_free = &h_free[t];
  }

  // Phases: 0 fill, 1 warmup, 2 timed, 3 batch, 4 drain. Each worker runs a
  // phase between two barrier waits; main samples in between.
  std::barrier sync(T + 1);
  auto worker = [&](uint32_t t) {
    sync.arrive_and_wait();  // fill
    plan.fill(t, ux[t]);
    sync.arrive_and_wait();
    sync.arrive_and_wait();  // warmup
    plan.steps(t, per_warm, ux[t]);
    sync.arrive_and_wait();
    sync.arrive_and_wait();  // timed
    plan.steps(t, per_steps, tx[t]);
    sync.arrive_and_wait();
    sync.arrive_and_wait();  // batch
    plan.steps(t, per_steps, ux[t]);
    sync.arrive_and_wait();
    sync.arrive_and_wait();  // drain: free what this worker was handed
    plan.drain(t, ux[t]);
    sync.arrive_and_wait();
  };
  std::vector<std::thread> th;
  for (uint32_t t = 0; t < T; ++t) th.emplace_back(worker, t);
  // Main: runs each phase (two barrier waits) and samples between phases.
  // No exception leaves this block before the threads are joined.
  uint64_t t_phase[5][2] = {};
  auto phase = [&](int k) {
    t_phase[k][0] = monotonic_ns();
    sync.arrive_and_wait();
    sync.arrive_and_wait();
    t_phase[k][1] = monotonic_ns();
  };
  std::exception_ptr ex;
  const char* names[5] = {"filled", nullptr, "timed_done", "batch_done", "freed"};
  for (int k = 0; k < 5; ++k) {
    phase(k);
    if (ex) continue;
    try {
      if (k == 4) alloc.epoch_close(plan.epoch());
      if (names[k]) add_phase_sample(doc, sampler, alloc, names[k]);
    } catch (...) {
      ex = std::current_exception();
    }
  }
  for (auto& x : th) x.join();
  if (ex) std::rethrow_exception(ex);
  if (failure.failed.load())
    throw RunError(opt.experiment + ": " + alloc.name() + ": " + failure.what);
  uint64_t errors = 0;
  LatencyHistogram ha, hf;
  for (uint32_t t = 0; t < T; ++t) {
    errors += ux[t].errors + tx[t].errors;
    ha.merge(h_alloc[t]);
    hf.merge(h_free[t]);
  }
  StepTimes tm;
  tm.timed_ns = t_phase[2][1] - t_phase[2][0];
  tm.batch_ns = t_phase[3][1] - t_phase[3][0];
  finish(ctx, opt, alloc, sampler, ha, hf, per_steps * T, errors, tm, T);
}

}  // namespace

void run_steps(RunContext& ctx, const StepPlan& plan, const StepRunOptions& opt) {
  ResultDoc& doc = *ctx.result;
  auto alloc = make_allocator(ctx.allocator, ctx.config);
  doc.set_allocator(alloc->describe());
  timer_calibration();
  doc.doc()["timer"] = timer_json();
  Sampler sampler;
  alloc->epoch_open(plan.epoch(), opt.epoch_label);
  if (plan.workers() > 1) run_workers(ctx, plan, opt, *alloc, sampler);
  else run_one_worker(ctx, plan, opt, *alloc, sampler);
}

}  // namespace znslab::harness
