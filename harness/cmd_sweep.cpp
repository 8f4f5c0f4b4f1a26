// `znslab sweep SWEEP.json [--engine local|parallel|slurm] [--out DIR] ...`
// and the per-run entry point the engines call, `znslab sweep-task`.
// Sweep files, plans and the summary: harness/sweep.h; engines:
// harness/sweep_exec.h; reference: docs/sweeps.md.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "harness/allocators.h"
#include "harness/registry.h"
#include "harness/report.h"
#include "harness/sweep.h"
#include "harness/sweep_exec.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace znslab::harness {
namespace {

const char* kSweepHelp =
    "usage: znslab sweep SWEEP.json [--engine local|parallel|slurm] [--out DIR]\n"
    "                    [--jobs N] [--sshloginfile FILE] [--partition P] [--account A]\n"
    "                    [--time T] [--cpus-per-task N] [--no-wait] [--resubmit N]\n"
    "                    [--collect] [--dry-run] [--quiet]\n"
    "\n"
    "Runs a parameter grid with repeats: one ordinary `znslab run` per (point,\n"
    "allocator, repeat), in a randomised interleaved order, each writing\n"
    "DIR/runs/<point>-<allocator>-r<k>.json; then DIR/summary.json with the median\n"
    "and 95 % interval of every metric per point and allocator, and the failed runs.\n"
    "Re-running skips runs whose valid result exists (resume). See docs/sweeps.md.\n"
    "\n"
    "  --engine NAME       local (this machine, --jobs at a time, default 1),\n"
    "                      parallel (GNU parallel: --jobs slots, or --sshloginfile hosts),\n"
    "                      slurm (an sbatch job array, one task per run)\n"
    "  --out DIR           output folder (default results/sweeps/<sweep file name>)\n"
    "  --jobs N            runs at a time (local, parallel; default 1)\n"
    "  --sshloginfile F    parallel: run on the hosts listed in F\n"
    "  --partition P, --account A, --time T, --cpus-per-task N\n"
    "                      slurm: sbatch options (override the sweep file's engine)\n"
    "  --no-wait           slurm: submit and return; collect later with --collect\n"
    "  --resubmit N        slurm: resubmit failed tasks up to N times (default 1)\n"
    "  --collect           run nothing; (re)write DIR/summary.json from the runs there\n"
    "  --dry-run           print the planned runs and exit\n"
    "  --quiet             no progress lines\n"
    "\n"
    "Exit status: 0 every run valid, 1 some run failed (listed in summary.json\n"
    "\"failed_runs\"), 2 usage or sweep-file error (naming the key).\n";

int sweep_main(int argc, char** argv) {
  std::string file, out, engine_flag;
  std::string jobs, ssh, partition, account, time_limit, cpus, resubmit;
  bool no_wait = false, collect = false, dry_run = false, quiet = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(a + " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kSweepHelp, stdout);
      return 0;
    } else if (a == "--engine") engine_flag = value();
    else if (a == "--out" || a == "-o") out = value();
    else if (a == "--jobs" || a == "-j") jobs = value();
    else if (a == "--sshloginfile") ssh = value();
    else if (a == "--partition") partition = value();
    else if (a == "--account") account = value();
    else if (a == "--time") time_limit = value();
    else if (a == "--cpus-per-task") cpus = value();
    else if (a == "--resubmit") resubmit = value();
    else if (a == "--wait") no_wait = false;
    else if (a == "--no-wait") no_wait = true;
    else if (a == "--collect") collect = true;
    else if (a == "--dry-run") dry_run = true;
    else if (a == "--quiet" || a == "-q") quiet = true;
    else if (!a.empty() && a[0] == '-') throw UsageError("unknown option " + a);
    else if (file.empty()) file = a;
    else throw UsageError("more than one sweep file (" + file + ", " + a + ")");
  }
  if (file.empty()) throw UsageError("missing SWEEP.json");

  SweepSpec spec = load_sweep(file);
  auto to_int = [](const std::string& opt, const std::string& v, int lo) {
    char* end = nullptr;
    const long x = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end || x < lo || x > 100000) throw UsageError(opt + " expects an integer >= " + std::to_string(lo) + ", got \"" + v + "\"");
    return int(x);
  };
  if (!engine_flag.empty()) {
    if (engine_flag != "local" && engine_flag != "parallel" && engine_flag != "slurm")
      throw UsageError("--engine expects local, parallel or slurm, got \"" + engine_flag + "\"");
    spec.engine.name = engine_flag;
  }
  if (!jobs.empty()) spec.engine.jobs = to_int("--jobs", jobs, 1);
  if (!ssh.empty()) spec.engine.sshloginfile = fs::absolute(ssh).string();
  if (!partition.empty()) spec.engine.partition = partition;
  if (!account.empty()) spec.engine.account = account;
  if (!time_limit.empty()) spec.engine.time = time_limit;
  if (!cpus.empty()) spec.engine.cpus_per_task = to_int("--cpus-per-task", cpus, 1);
  if (!resubmit.empty()) spec.engine.resubmit = to_int("--resubmit", resubmit, 0);
  // A workload path becomes absolute, so that runs started elsewhere (slurm, ssh) find it.
  if (spec.workload.find('/') != std::string::npos || spec.workload.find(".json") != std::string::npos)
    spec.workload = fs::absolute(spec.workload).lexically_normal().string();
  for (const auto& a : spec.allocators)
    if (!find_allocator(a))
      throw ConfigError(file + ": key \"allocators\": unknown allocator \"" + a + "\" (available: " +
                        allocator_names() + ")");

  const auto points = expand_points(spec);
  validate_points(spec, points);
  const auto runs = plan_runs(spec, points);
  if (out.empty()) out = "results/sweeps/" + fs::path(file).stem().string();
  const std::string dir = fs::absolute(out).lexically_normal().string();
  const json plan = make_plan(spec, points, runs, self_exe());

  if (dry_run) {
    std::printf("%zu point(s) x %zu allocator(s) x %d repeat(s) = %zu run(s) into %s\n", points.size(),
                std::max<size_t>(1, spec.allocators.size()), spec.repeats, runs.size(), dir.c_str());
    for (const auto& r : plan["runs"]) {
      std::string cmd = "znslab";
      for (const auto& a : r["argv"]) cmd += " " + a.get<std::string>();
      std::printf("%s: %s\n", r["name"].get<std::string>().c_str(), cmd.c_str());
    }
    return 0;
  }

  std::error_code ec;
  fs::create_directories(dir + "/runs", ec);
  if (ec) throw RunError("cannot create " + dir + "/runs: " + ec.message());
  write_json_file_atomic(dir + "/plan.json", plan);
  if (!collect) {
    const auto todo = pending_runs(plan, dir);
    if (!quiet)
      std::fprintf(stderr, "sweep: %zu run(s) (%zu point(s)), %zu already done, %zu to run, engine %s, into %s\n",
                   runs.size(), points.size(), runs.size() - todo.size(), todo.size(), spec.engine.name.c_str(),
                   dir.c_str());
    EngineOptions eo;
    eo.engine = spec.engine;
    eo.wait = !no_wait;
    eo.quiet = quiet;
    run_engine(dir, plan, todo, eo);
    if (spec.engine.name == "slurm" && no_wait) return 0;
  }
  const json summary = summarize_sweep(plan, dir);
  write_json_file_atomic(dir + "/summary.json", summary);
  if (!quiet) {
    ReportOptions ro;
    std::fputs(render_sweep_summary(summary, ro).c_str(), stdout);
    std::printf("summary: %s/summary.json\n", dir.c_str());
  }
  const size_t failed = summary["failed_runs"].size();
  if (failed) {
    std::fprintf(stderr, "sweep: %zu of %zu run(s) failed (listed in %s/summary.json \"failed_runs\")\n", failed,
                 runs.size(), dir.c_str());
    return 1;
  }
  return 0;
}

const char* kTaskHelp =
    "usage: znslab sweep-task DIR/plan.json (INDEX | --array-list FILE) [--engine NAME]\n"
    "\n"
    "Runs one run of a sweep plan (what the sweep engines execute): `znslab run`\n"
    "as planned, then records host and engine in the result's \"sweep\" block and\n"
    "DIR/runs/<name>.status.json. With --array-list, INDEX is line\n"
    "$SLURM_ARRAY_TASK_ID (from 0) of FILE.\n"
    "Exit status: 0 valid result, 1 failed run, 2 usage error.\n";

int sweep_task_main(int argc, char** argv) {
  std::string plan, index, list, engine = "local";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(a + " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kTaskHelp, stdout);
      return 0;
    } else if (a == "--array-list") list = value();
    else if (a == "--engine") engine = value();
    else if (!a.empty() && a[0] == '-') throw UsageError("unknown option " + a);
    else if (plan.empty()) plan = a;
    else if (index.empty()) index = a;
    else throw UsageError("unexpected argument " + a);
  }
  if (plan.empty()) throw UsageError("missing DIR/plan.json");
  if (!list.empty()) {
    const char* t = std::getenv("SLURM_ARRAY_TASK_ID");
    if (!t) throw UsageError("--array-list needs SLURM_ARRAY_TASK_ID in the environment");
    std::ifstream f(list);
    std::string line;
    for (long k = std::strtol(t, nullptr, 10); k >= 0 && std::getline(f, line); --k) {
      if (k == 0) index = line;
    }
    if (index.empty()) throw RunError(list + ": no line " + t);
  }
  if (index.empty()) throw UsageError("missing INDEX");
  char* end = nullptr;
  const unsigned long idx = std::strtoul(index.c_str(), &end, 10);
  if (*end) throw UsageError("INDEX must be an integer, got \"" + index + "\"");
  return execute_plan_run(plan, idx, engine);
}

Registrar reg_sweep{Command{"sweep", "run a parameter grid with repeats (local, GNU parallel, Slurm), aggregate",
                            sweep_main}};
Registrar reg_task{Command{"sweep-task", "run one planned run of a sweep (what the sweep engines execute)",
                           sweep_task_main}};

}  // namespace
}  // namespace znslab::harness
