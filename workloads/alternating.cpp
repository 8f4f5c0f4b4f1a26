// Workload "alternating": the latency/throughput microbenchmark (issue 2,
// section 4; seed 002 "Benchmarking Methodology": alternating alloc/free).
// Its keys and their checks; the operation stream is AlternatingGenerator
// (workloads/alternating_gen.h: a table of live_slots objects, each step
// frees a random slot and allocates a random size into it; threads >= 2:
// cross-thread frees through hand-off), executed and measured by the step
// runner (harness/step_runner.h: fill, warmup, timed pass -> latency_ns,
// batch pass -> ops_per_sec and mean_ns, drain). On temporal-slab every
// object is in epoch 1.
#include <string>

#include "harness/config.h"
#include "harness/registry.h"
#include "harness/slab_options.h"
#include "harness/step_runner.h"
#include "workloads/alternating_gen.h"

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
                {"fill", false},          {"threads", 1}};
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
    check_int_range(c, "threads", 1, 64);
    if (cfg_int(c, "live_slots") < cfg_int(c, "threads"))
      throw_key_error("live_slots", "must be >= threads (" + std::to_string(cfg_int(c, "threads")) + ")");
    if (cfg_int(c, "steps") < cfg_int(c, "threads"))
      throw_key_error("steps", "must be >= threads (" + std::to_string(cfg_int(c, "threads")) + ")");
  }

  void run(RunContext& ctx) override {
    const json& c = ctx.config;
    workloads::AlternatingParams p;
    p.live_slots = cfg_u64(c, "live_slots");
    p.steps = cfg_u64(c, "steps");
    p.warmup_steps = cfg_u64(c, "warmup_steps");
    p.min_size = uint32_t(cfg_u64(c, "min_size"));
    p.max_size = uint32_t(cfg_u64(c, "max_size"));
    p.seed = cfg_u64(c, "seed");
    p.fill = cfg_bool(c, "fill");
    p.workers = uint32_t(cfg_u64(c, "threads"));
    const workloads::AlternatingGenerator gen(p);
    run_steps(ctx, StepPlanOf<workloads::AlternatingGenerator>(gen), StepRunOptions{"alternating", "alternating"});
  }
};

Registrar reg{WorkloadInfo{"alternating",
                           "latency/throughput: free a random slot, allocate a random size (64-768 B)",
                           [] { return std::make_unique<Alternating>(); }}};

}  // namespace
}  // namespace znslab::harness
