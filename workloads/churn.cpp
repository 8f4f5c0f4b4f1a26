// Workload "churn": the RSS-boundedness experiment of seed 002 ("Bounded
// RSS", "Immediate Empty Slab Reclamation"), made precise in issue 2 §4.
// Its keys and their checks; the operation stream is ChurnGenerator
// (workloads/churn_gen.h), executed and measured by the cycle runner
// (harness/cycle_runner.h). docs/harness.md describes keys and summary.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "harness/config.h"
#include "harness/cycle_runner.h"
#include "harness/registry.h"
#include "harness/slab_options.h"
#include "workloads/churn_gen.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

class Churn final : public Workload {
 public:
  json defaults() const override {
    json d = base_defaults();
    d.update(slab_option_defaults());  // every slab::Options field as slab_<field>
    return d;
  }
  json base_defaults() const {
    return json{{"cycles", 150},
                {"objects_per_cycle", 64000},
                {"min_size", 64},
                {"max_size", 768},
                {"size_distribution", "uniform"},
                {"pinned_fraction", 0.2},
                {"threads", 1},
                {"fill", true},
                {"seed", 42},
                {"idle_ms_before_sample", 5},
                {"free_order", "random"},
                {"sample_interval_ms", 100},
                {"latency_sample_every", 16},
                {"progress_every_pct", 5}};
  }

  void validate(const json& c) const override {
    check_int_range(c, "cycles", 2, 100000000);
    check_int_range(c, "objects_per_cycle", 1, 100000000);
    check_int_range(c, "min_size", 1, 768);
    check_int_range(c, "max_size", 1, 768);
    if (cfg_int(c, "max_size") < cfg_int(c, "min_size"))
      throw_key_error("max_size", "must be >= min_size (" + std::to_string(cfg_int(c, "min_size")) +
                                      "), got " + std::to_string(cfg_int(c, "max_size")));
    check_one_of(c, "size_distribution", {"uniform", "log_uniform", "size_classes"});
    check_number_range(c, "pinned_fraction", 0.0, 1.0);
    check_int_range(c, "threads", 1, 64);
    if (cfg_int(c, "objects_per_cycle") < cfg_int(c, "threads"))
      throw_key_error("objects_per_cycle", "must be >= threads (" + std::to_string(cfg_int(c, "threads")) + ")");
    check_int_range(c, "seed", 0, INT64_MAX);
    check_int_range(c, "idle_ms_before_sample", 0, 60000);
    check_one_of(c, "free_order", {"random", "fifo", "lifo"});
    check_int_range(c, "sample_interval_ms", 0, 3600000);
    check_int_range(c, "latency_sample_every", 1, 1000000);
    check_int_range(c, "progress_every_pct", 1, 100);
    validate_slab_options(c);
    check_memory(c);
  }

  // Refuses (at validation, naming the keys) a configuration whose harness
  // arrays and live objects cannot fit: more than half of the physical
  // memory or of the address-space limit (RLIMIT_AS).
  static void check_memory(const json& c) {
    const uint64_t cycles = cfg_u64(c, "cycles"), n = cfg_u64(c, "objects_per_cycle");
    const double pinned = cfg_double(c, "pinned_fraction");
    const CycleRunnerMemory rm = cycle_runner_memory(cycles, n);
    const uint64_t samples = rm.samples_bytes;
    const uint64_t books = rm.books_bytes;
    const uint64_t live = uint64_t(double(n) * (1.0 + pinned) * double(cfg_u64(c, "max_size")));
    const uint64_t need = samples + books + live;
    uint64_t limit = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGESIZE)) / 2;
    const char* what = "half of this machine's memory";
    rlimit rl{};
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 2 < limit) {
      limit = rl.rlim_cur / 2;
      what = "half of the address-space limit (ulimit -v)";
    }
    if (need > limit) {
      char m[320];
      std::snprintf(m, sizeof m,
                    "needs about %.0f MiB (samples %.0f MiB for %llu cycles, bookkeeping %.0f MiB and live "
                    "objects %.0f MiB for %llu objects per cycle), more than %s (%.0f MiB)",
                    double(need) / 1048576.0, double(samples) / 1048576.0, (unsigned long long)cycles,
                    double(books) / 1048576.0, double(live) / 1048576.0, (unsigned long long)n, what,
                    double(limit) / 1048576.0);
      throw_key_error(samples > books + live ? "cycles" : "objects_per_cycle", m);
    }
  }

  std::vector<KeyDoc> key_docs() const override {
    return {{"cycles", "integer", "count", "alloc/free cycles (steady state: every cycle after the first 10 %)"},
            {"objects_per_cycle", "integer", "count", "objects allocated (and freed) per cycle, over all threads"},
            {"min_size", "integer", "bytes", "smallest object requested"},
            {"max_size", "integer", "bytes", "largest object requested (<= 768, the slab's largest class)"},
            {"size_distribution", "string", "", "uniform, log_uniform or size_classes"},
            {"pinned_fraction", "number", "ratio", "share of cycle 0's objects kept to the end (epoch 0)"},
            {"threads", "integer", "count", "worker threads; worker t frees worker t+1's objects"},
            {"fill", "boolean", "", "write every requested byte after allocation"},
            {"seed", "integer", "", "seed of sizes, pinned choice and free order"},
            {"idle_ms_before_sample", "integer", "ms", "pause after the frees before the post_free sample"},
            {"free_order", "string", "", "random, fifo or lifo"},
            {"sample_interval_ms", "integer", "ms", "period of the background RSS samples (0 = none)"},
            {"latency_sample_every", "integer", "ops", "time one operation in this many"},
            {"progress_every_pct", "integer", "%", "progress line period on stderr"}};
  }

  void run(RunContext& ctx) override {
    const json& c = ctx.config;
    const workloads::ChurnGenerator gen(params_of(c));
    CycleRunOptions o;
    o.experiment = "churn";
    o.epoch_plan =
        "pinned objects in epoch 0 (ACTIVE for the whole run); cycle c allocates in epoch "
        "1 + c % 15, reopened at the cycle's start and closed after its frees";
    o.latency_every = cfg_u64(c, "latency_sample_every");
    o.idle_ms = uint32_t(cfg_u64(c, "idle_ms_before_sample"));
    o.sample_ms = uint32_t(cfg_u64(c, "sample_interval_ms"));
    o.progress_pct = uint32_t(cfg_u64(c, "progress_every_pct"));
    run_cycles(ctx, CyclePlanOf<workloads::ChurnGenerator>(gen), o);
  }

 private:
  // The generator's parameters (the measurement keys go to the runner).
  static workloads::ChurnParams params_of(const json& c) {
    workloads::ChurnParams p;
    p.cycles = cfg_u64(c, "cycles");
    p.objects = cfg_u64(c, "objects_per_cycle");
    p.workers = uint32_t(cfg_u64(c, "threads"));
    p.seed = cfg_u64(c, "seed");
    p.min_size = uint32_t(cfg_u64(c, "min_size"));
    p.max_size = uint32_t(cfg_u64(c, "max_size"));
    p.pinned_fraction = cfg_double(c, "pinned_fraction");
    p.fill = cfg_bool(c, "fill");
    const std::string d = cfg_str(c, "size_distribution");
    p.dist = d == "log_uniform"    ? workloads::SizeDist::kLogUniform
             : d == "size_classes" ? workloads::SizeDist::kSizeClasses
                                   : workloads::SizeDist::kUniform;
    const std::string fo = cfg_str(c, "free_order");
    p.order = fo == "fifo" ? workloads::FreeOrder::kFifo
              : fo == "lifo" ? workloads::FreeOrder::kLifo : workloads::FreeOrder::kRandom;
    return p;
  }
};

Registrar reg{WorkloadInfo{"churn",
                           "RSS under alloc/fill/free cycles with pinned long-lived objects (seed 002)",
                           [] { return std::make_unique<Churn>(); }}};

}  // namespace
}  // namespace znslab::harness
