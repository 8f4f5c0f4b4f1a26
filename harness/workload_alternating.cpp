// Workload "alternating": the latency/throughput microbenchmark (issue 2,
// section 4; seed 002 "Benchmarking Methodology": alternating alloc/free).
//
// A table of `live_slots` live objects; each step frees a random slot and
// allocates a random size in [min_size, max_size] into it. The op sequence
// (slot, size) is generated up front from `seed`, so every allocator gets the
// same malloc/free calls and no RNG runs inside a timed region.
//   1. fill the table (untimed), 2. `warmup_steps` untimed steps,
//   3. timed pass: `steps` steps, each free and each allocate individually
//      timed (harness/timer.h; overhead recorded under "timer", not
//      subtracted) -> latency_ns.alloc / latency_ns.free,
//   4. batch pass: the same `steps` again with no per-op timer ->
//      summary.ops_per_sec (allocs + frees per second) and mean_ns,
//   5. free everything.
// On temporal-slab every object is allocated in epoch 1 (ACTIVE throughout).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "harness/allocators.h"
#include "harness/config.h"
#include "harness/registry.h"
#include "harness/result.h"
#include "harness/sampler.h"
#include "harness/slab_options.h"
#include "harness/timer.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

class Alternating final : public Workload {
 public:
  json defaults() const override {
    json d = base_defaults();
    d.update(slab_option_defaults());  // every slab::Options field as slab_<field>
    return d;
  }
  json base_defaults() const {
    return json{{"live_slots", 4096},     {"steps", 2000000},      {"warmup_steps", 200000},
                {"min_size", 64},         {"max_size", 768},       {"seed", 42},
                {"fill", false}};
  }
  void validate(const json& c) const override {
    check_int_range(c, "live_slots", 1, 1 << 24);
    check_int_range(c, "steps", 1, int64_t(1) << 34);
    check_int_range(c, "warmup_steps", 0, int64_t(1) << 34);
    check_int_range(c, "min_size", 1, 768);
    check_int_range(c, "max_size", 1, 768);
    if (cfg_int(c, "max_size") < cfg_int(c, "min_size"))
      throw_key_error("max_size", "must be >= min_size (" + std::to_string(cfg_int(c, "min_size")) +
                                      "), got " + std::to_string(cfg_int(c, "max_size")));
    check_int_range(c, "seed", 0, INT64_MAX);
    validate_slab_options(c);
  }

  void run(RunContext& ctx) override {
    const json& c = ctx.config;
    const uint64_t slots = cfg_u64(c, "live_slots"), steps = cfg_u64(c, "steps"),
                   warmup = cfg_u64(c, "warmup_steps");
    const uint32_t min_size = uint32_t(cfg_u64(c, "min_size")), max_size = uint32_t(cfg_u64(c, "max_size"));
    const bool fill = cfg_bool(c, "fill");
    ResultDoc& doc = *ctx.result;

    auto alloc = make_allocator(ctx.allocator, c);
    doc.set_allocator(alloc->describe());
    timer_calibration();
    doc.doc()["timer"] = timer_json();
    Sampler sampler;
    const uint32_t epoch = 1;
    alloc->epoch_open(epoch, "alternating");

    // Op sequence, generated up front: (slot, size) per step.
    std::mt19937_64 rng(cfg_u64(c, "seed"));
    std::uniform_int_distribution<uint64_t> slot_d(0, slots - 1);
    std::uniform_int_distribution<uint32_t> size_d(min_size, max_size);
    const uint64_t nops = std::max(steps, warmup);
    std::vector<uint32_t> op_slot(nops), op_size(nops);
    for (uint64_t i = 0; i < nops; ++i) {
      op_slot[i] = uint32_t(slot_d(rng));
      op_size[i] = size_d(rng);
    }
    std::vector<Obj> table(slots);
    uint64_t errors = 0;
    auto must_alloc = [&](uint32_t size, Obj& o) {
      if (!alloc->allocate(size, epoch, o))
        throw RunError(std::string("alternating: ") + alloc->name() + " refused an allocation of " +
                       std::to_string(size) + " bytes");
      if (fill) std::memset(o.ptr, 0xA5, size);
    };
    for (uint64_t s = 0; s < slots; ++s) must_alloc(size_d(rng), table[s]);
    auto sample = [&](const char* phase) {
      json smp = sampler.sample();
      smp["phase"] = phase;
      AllocatorCounters ac;
      bool have = alloc->counters(ac);
      smp["committed_bytes"] = have ? json(ac.committed_bytes) : json(nullptr);
      smp["live_bytes"] = have ? json(ac.live_bytes) : json(nullptr);
      smp["requested_bytes"] = have ? json(ac.requested_bytes) : json(nullptr);
      doc.add_sample(std::move(smp));
    };
    sample("filled");
    if (ctx.progress)
      std::fprintf(stderr, "[alternating %s] %lu slots filled; warmup %lu steps\n", alloc->name(),
                   (unsigned long)slots, (unsigned long)warmup);
    for (uint64_t i = 0; i < warmup; ++i) {
      Obj& o = table[op_slot[i]];
      errors += !alloc->release(o);
      must_alloc(op_size[i], o);
    }

    // Timed pass.
    LatencyHistogram h_alloc, h_free;
    const uint64_t t0 = monotonic_ns();
    for (uint64_t i = 0; i < steps; ++i) {
      Obj& o = table[op_slot[i]];
      uint64_t a = timer_start();
      bool ok = alloc->release(o);
      uint64_t b = timer_stop();
      h_free.record(ticks_to_ns(b - a));
      errors += !ok;
      a = timer_start();
      ok = alloc->allocate(op_size[i], epoch, o);
      b = timer_stop();
      if (!ok) throw RunError(std::string("alternating: ") + alloc->name() + " refused an allocation");
      h_alloc.record(ticks_to_ns(b - a));
      if (fill) std::memset(o.ptr, 0xA5, op_size[i]);
    }
    const uint64_t t1 = monotonic_ns();
    sample("timed_done");
    if (ctx.progress)
      std::fprintf(stderr, "[alternating %s] timed pass: %lu steps in %.2f s\n", alloc->name(),
                   (unsigned long)steps, double(t1 - t0) / 1e9);

    // Batch pass: same sequence, no per-op timer.
    const uint64_t t2 = monotonic_ns();
    for (uint64_t i = 0; i < steps; ++i) {
      Obj& o = table[op_slot[i]];
      errors += !alloc->release(o);
      if (!alloc->allocate(op_size[i], epoch, o))
        throw RunError(std::string("alternating: ") + alloc->name() + " refused an allocation");
      if (fill) std::memset(o.ptr, 0xA5, op_size[i]);
    }
    const uint64_t t3 = monotonic_ns();
    sample("batch_done");
    for (auto& o : table) errors += !alloc->release(o);
    alloc->epoch_close(epoch);
    sample("freed");

    doc.set_latency("alloc", h_alloc);
    doc.set_latency("free", h_free);
    const double batch_s = double(t3 - t2) / 1e9, timed_s = double(t1 - t0) / 1e9;
    json& s = doc.summary();
    s["ops_per_sec"] = double(2 * steps) / batch_s;
    s["ops_per_sec_timed"] = double(2 * steps) / timed_s;
    s["mean_ns"] = double(t3 - t2) / double(2 * steps);
    s["steps"] = steps;
    s["ops"] = 2 * steps;
    s["batch_seconds"] = batch_s;
    s["timed_seconds"] = timed_s;
    s["free_errors"] = errors;
    doc.doc()["allocator_stats"] = alloc->final_stats();
    doc.doc()["perf"] = sampler.perf_info();
    if (ctx.progress)
      std::fprintf(stderr,
                   "[alternating %s] %.1f Mops/s; alloc p50/p99/p99.9 %lu/%lu/%lu ns; free p50/p99/p99.9 "
                   "%lu/%lu/%lu ns\n",
                   alloc->name(), s["ops_per_sec"].get<double>() / 1e6,
                   (unsigned long)h_alloc.percentile(0.5), (unsigned long)h_alloc.percentile(0.99),
                   (unsigned long)h_alloc.percentile(0.999), (unsigned long)h_free.percentile(0.5),
                   (unsigned long)h_free.percentile(0.99), (unsigned long)h_free.percentile(0.999));
    if (errors)
      throw RunError("alternating: " + std::to_string(errors) + " frees reported errors on " +
                     alloc->name());
  }
};

Registrar reg{WorkloadInfo{"alternating",
                           "latency/throughput: free a random slot, allocate a random size (64-768 B)",
                           [] { return std::make_unique<Alternating>(); }}};

}  // namespace
}  // namespace znslab::harness
