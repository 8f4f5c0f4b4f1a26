// Workload "trace": replays an allocation trace (docs/trace.md) on any
// allocator (issue 12). Its keys and their checks, and the loading: the
// trace is read and validated, planned (src/trace/replay_plan.h: split per
// recorded thread, each object's placement under `epoch_policy`) and
// released. The operation stream is TraceReplayGenerator
// (workloads/trace_replay_gen.h: allocate/free/realloc/aligned ops per
// recorded thread; a realloc's new object published only after its bytes
// are copied), executed and measured by the replay runner
// (harness/replay_runner.h: one replay thread per recorded thread,
// cross-thread waits, the epoch ring, `timing`, samples "start",
// "periodic", "end", "post_drain", the summary).
#include <string>

#include "harness/config.h"
#include "harness/registry.h"
#include "harness/replay_runner.h"
#include "harness/result.h"
#include "src/trace/replay_plan.h"
#include "src/trace/trace_format.h"
#include "workloads/trace_replay_gen.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

class TraceReplay final : public Workload {
 public:
  json defaults() const override {
    return json{{"trace", ""},         {"timing", "asap"}, {"epoch_policy", "time"},
                {"epoch_ms", 10},      {"touch", "pages"}, {"sample_ms", 10},
                {"slab_reclaim", "immediate"}, {"slab_use_thp", false}};
  }
  void validate(const json& c) const override {
    if (cfg_str(c, "trace").empty()) throw_key_error("trace", "must name a trace file (.ztr)");
    check_one_of(c, "timing", {"asap", "recorded"});
    check_one_of(c, "epoch_policy", {"none", "time", "callsite", "oracle"});
    check_number_range(c, "epoch_ms", 0.001, 3.6e6);
    check_one_of(c, "touch", {"none", "pages", "full"});
    check_int_range(c, "sample_ms", 1, 60000);
    check_one_of(c, "slab_reclaim", {"immediate", "on_close", "off"});
  }

  void run(RunContext& ctx) override {
    const json& c = ctx.config;
    const std::string path = cfg_str(c, "trace");
    trace::PlanOptions po;
    trace::parse_epoch_policy(cfg_str(c, "epoch_policy"), po.policy);
    po.epoch_ns = uint64_t(cfg_double(c, "epoch_ms") * 1e6);
    workloads::TraceReplayParams p;
    p.use_epochs = po.policy != trace::EpochPolicy::kNone;
    p.recorded = cfg_str(c, "timing") == "recorded";
    const std::string touch = cfg_str(c, "touch");
    p.touch = touch == "none"   ? workloads::TraceTouch::kNone
              : touch == "full" ? workloads::TraceTouch::kFull
                                : workloads::TraceTouch::kPages;

    // Loaded and planned once the runner has built the allocator; the
    // Trace is released before the runner's baseline sample.
    trace::ReplayPlan plan;
    const workloads::TraceReplayGenerator gen(plan, p);
    ReplayRunOptions opt;
    opt.sample_ms = uint32_t(cfg_int(c, "sample_ms"));
    opt.load = [&] {
      {
        trace::Trace t;
        trace::TraceError err;
        if (!trace::read_trace(path, t, err)) throw RunError("trace: refused: " + err.to_string(path));
        std::string perr;
        if (!trace::make_plan(t, po, plan, perr)) throw RunError("trace: " + path + ": " + perr);
        ctx.result->doc()["trace"] = {{"path", path},
                                      {"program", t.header.program},
                                      {"args", t.header.args},
                                      {"events", t.events.size()},
                                      {"start_unix_ns", t.header.start_unix_ns}};
      }
      ReplayPlanFacts f;
      f.trace_events = plan.ops;
      f.cross_thread_frees = plan.cross_thread_frees;
      f.mispredicted = plan.mispredicted;
      f.mispredicted_pct = plan.mispredicted_pct();
      f.window_objects = plan.window_objects;
      f.long_objects = plan.long_objects;
      f.epoch_policy = trace::epoch_policy_name(po.policy);
      f.path = path;
      return f;
    };
    run_replay(ctx, ReplayRunPlanOf<workloads::TraceReplayGenerator>(gen), opt);
  }
};

Registrar reg{WorkloadInfo{"trace", "replays an allocation trace (docs/trace.md) with an epoch policy",
                           [] { return std::make_unique<TraceReplay>(); }}};

}  // namespace
}  // namespace znslab::harness
