// Workload "varslot-growth" (issue 13, seed 000): a host and `guests` guest
// processes share one src/varslot pool (a file under `dir`, or a memfd with
// `segment`=memfd) that starts at `initial_bytes` and grows by extents while
// every process allocates slots of a size mix, writes patterned payloads,
// verifies them, passes some handles to other processes to free, and frees.
// This file: keys, validation, and run(), which builds the generator
// (workloads/varslot_growth_gen.h: the operation stream) and hands it to the
// multi-process runner (harness/process_runner.h: processes, pool, payloads,
// timing, sampling, summary). Summary keys: docs/varslot.md.
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "harness/config.h"
#include "harness/process_runner.h"
#include "harness/registry.h"
#include "src/varslot/pool.h"
#include "workloads/varslot_growth_gen.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

class VarslotGrowth final : public Workload {
 public:
  json defaults() const override {
    return json{{"workload", "varslot-growth"},
                {"guests", 3},
                {"growth", "remap"},
                {"segment", "file"},
                {"initial_bytes", 33554432},
                {"ops", 4000000},
                {"kill_guest", false},
                {"live_bytes", 251658240},
                {"class_sizes", json::array({1024, 16384, 262144, 4194304})},
                {"op_weights", json::array({0.8, 0.16, 0.035, 0.005})},
                {"extent_bytes", 16777216},
                {"max_bytes", 4294967296},
                {"pass_every", 8},
                {"timed_every", 4},
                {"sample_ms", 100},
                {"service_nice", 0},
                {"grow_staging", true},
                {"grow_rt_priority", 1},
                {"dir", "/dev/shm"},
                {"seed", 1}};
  }

  void validate(const json& c) const override {
    check_int_range(c, "guests", 1, kProcMax - 1);
    check_one_of(c, "growth", {"remap", "extent_files", "fixed"});
    check_one_of(c, "segment", {"file", "memfd"});
    if (cfg_str(c, "segment") == "memfd" && cfg_str(c, "growth") == "extent_files")
      throw_key_error("segment", "memfd works with growth remap or fixed (extent_files needs one named file per extent)");
    check_int_range(c, "initial_bytes", 0, int64_t(1) << 40);
    check_int_range(c, "ops", 1, int64_t(1) << 40);
    check_int_range(c, "live_bytes", 1 << 20, int64_t(1) << 40);
    check_int_range(c, "extent_bytes", 4096, int64_t(1) << 34);
    check_int_range(c, "max_bytes", 1 << 20, int64_t(1) << 44);
    check_int_range(c, "pass_every", 0, 1 << 20);
    check_int_range(c, "timed_every", 0, 1 << 20);
    check_int_range(c, "sample_ms", 1, 60000);
    check_int_range(c, "service_nice", -20, 19);
    check_int_range(c, "grow_rt_priority", 0, 99);
    check_int_range(c, "seed", 0, INT64_MAX);
    const json& cs = c.at("class_sizes");
    const json& w = c.at("op_weights");
    if (!cs.is_array() || cs.empty() || cs.size() > varslot::kMaxClasses)
      throw_key_error("class_sizes", "expected 1..8 slot sizes (bytes)");
    int64_t prev = 0;
    for (auto& v : cs) {
      if (!v.is_number_integer() || v.get<int64_t>() <= prev || v.get<int64_t>() % 64 != 0 ||
          v.get<int64_t>() > cfg_int(c, "extent_bytes"))
        throw_key_error("class_sizes", "sizes must be ascending multiples of 64, each <= extent_bytes");
      prev = v.get<int64_t>();
    }
    if (!w.is_array() || w.size() != cs.size())
      throw_key_error("op_weights", "expected one weight per class");
    double sum = 0;
    for (auto& v : w) {
      if (!v.is_number() || v.get<double>() < 0) throw_key_error("op_weights", "weights must be numbers >= 0");
      sum += v.get<double>();
    }
    if (sum <= 0) throw_key_error("op_weights", "at least one weight must be > 0");
    if (cfg_str(c, "dir").empty()) throw_key_error("dir", "must name a folder (e.g. /dev/shm)");
  }

  std::vector<KeyDoc> key_docs() const override {
    return {{"guests", "integer", "count", "guest processes besides the host (1..15), forked from build/znslab"},
            {"growth", "string", "", "remap, extent_files or fixed (docs/varslot.md, growth modes)"},
            {"segment", "string", "", "file (under dir) or memfd (guests inherit the descriptor; remap or fixed)"},
            {"initial_bytes", "integer", "bytes", "slot bytes of the extents created at start (round robin over classes)"},
            {"ops", "integer", "count", "allocations + frees over all processes"},
            {"kill_guest", "boolean", "", "kill -9 guest 1 once half the ops are done, while it holds slots"},
            {"live_bytes", "integer", "bytes", "live-slot target (class bytes), split over classes and processes"},
            {"class_sizes", "array", "bytes", "slot sizes, ascending multiples of 64"},
            {"op_weights", "array", "", "class pick weights, one per class"},
            {"extent_bytes", "integer", "bytes", "slot bytes per extent"},
            {"max_bytes", "integer", "bytes", "segment size cap (growth refused beyond)"},
            {"pass_every", "integer", "count", "every n-th release hands the slot to another process (0 = never)"},
            {"timed_every", "integer", "count", "steps between timed alloc+free pairs (0 = none)"},
            {"sample_ms", "integer", "ms", "sampling period"},
            {"service_nice", "integer", "", "nice value of the host's service thread (negative needs CAP_SYS_NICE)"},
            {"grow_staging", "boolean", "", "remap: extend the file and fault the next header page after each growth"},
            {"grow_rt_priority", "integer", "", "SCHED_FIFO priority of the growth service (0 = normal scheduling)"},
            {"dir", "string", "", "folder of the segment file(s)"},
            {"seed", "integer", "", "RNG seed (process i uses seed * 1000 + i)"}};
  }

  void run(RunContext& ctx) override {
    const json& c = ctx.config;
    ProcessRunOptions o;
    o.guests = uint32_t(cfg_u64(c, "guests"));
    const uint32_t nprocs = o.guests + 1;
    o.growth = cfg_str(c, "growth");
    o.segment = cfg_str(c, "segment");
    o.ops = cfg_u64(c, "ops");
    o.live_bytes = cfg_u64(c, "live_bytes");
    o.kill_guest = cfg_bool(c, "kill_guest");
    o.timed_every = uint32_t(cfg_u64(c, "timed_every"));
    o.sample_ms = uint32_t(cfg_u64(c, "sample_ms"));
    o.service_nice = int(cfg_int(c, "service_nice"));
    o.grow_rt_priority = int(cfg_int(c, "grow_rt_priority"));

    varslot::PoolOptions& po = o.pool;
    po.path = cfg_str(c, "dir") + "/znslab-varslot-" + std::to_string(::getpid());
    // segment=memfd: no file; guests inherit the host's descriptor.
    po.memfd = o.segment == "memfd";
    if (po.memfd) po.path = "znslab-varslot-" + std::to_string(::getpid());
    (void)varslot::parse_growth_mode(o.growth, &po.mode);
    po.class_sizes = c["class_sizes"].get<std::vector<uint32_t>>();
    po.extent_bytes = cfg_u64(c, "extent_bytes");
    po.initial_bytes = cfg_u64(c, "initial_bytes");
    po.max_bytes = cfg_u64(c, "max_bytes");
    po.stage_growth = cfg_bool(c, "grow_staging");
    po.grow_rt_priority = o.grow_rt_priority;
    // fixed: every class sized to hold the whole live set (the mix is not
    // known in advance), at most 16 extents.
    const uint64_t per_class_extents = (o.live_bytes + po.extent_bytes - 1) / po.extent_bytes;
    po.fixed_extents =
        uint32_t(std::min<uint64_t>(varslot::kMaxExtents, std::max<uint64_t>(1, per_class_extents)));

    workloads::VarslotGrowthParams p;
    p.nprocs = nprocs;
    p.class_sizes = po.class_sizes;
    p.target = workloads::VarslotGrowthGenerator::live_targets(o.live_bytes, po.class_sizes, nprocs);
    p.weights = c["op_weights"].get<std::vector<double>>();
    p.pass_every = uint32_t(cfg_u64(c, "pass_every"));
    p.seed = cfg_u64(c, "seed");
    o.live_targets = p.target;
    run_processes(ctx, ProcessPlanOf<workloads::VarslotGrowthGenerator, workloads::VarslotGrowthParams>(p), o);
  }
};

Registrar reg{WorkloadInfo{"varslot-growth",
                           "host + guest processes on a shared slot pool that grows by extents",
                           [] { return std::make_unique<VarslotGrowth>(); }}};

}  // namespace
}  // namespace znslab::harness
