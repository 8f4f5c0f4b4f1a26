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
#include "harness/cli.h"
#include "harness/registry.h"
#include "harness/report.h"
#include "harness/sweep.h"
#include "harness/sweep_exec.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace znslab::harness {
namespace {

const char* kSweepIntro =
    "Runs a parameter grid with repeats: one ordinary `znslab run` per (point,\n"
    "allocator, repeat), in a randomised interleaved order, each writing\n"
    "DIR/runs/<point>-<allocator>-r<k>.json; then DIR/summary.json with the median\n"
    "and 95 % interval of every metric per point and allocator, and the failed runs.\n"
    "Re-running skips runs whose valid result exists (resume). See docs/sweeps.md.";

const char* kSweepFooter =
    "Exit status: 0 every run valid, 1 some run failed (listed in summary.json\n"
    "\"failed_runs\"), 2 usage or sweep-file error (naming the key).";

int sweep_main(int argc, char** argv) {
  std::string file, out, engine_flag, ssh, partition, account, time_limit;
  int jobs = 1, cpus = 1, resubmit = 1, cpu = -1;
  bool no_wait = false, collect = false, dry_run = false, quiet = false;
  CLI::App app{kSweepIntro, "znslab sweep"};
  app.add_option("SWEEP", file, "sweep file (JSON; docs/sweeps.md)")->required();
  app.add_option("--engine", engine_flag,
                 "local (this machine, --jobs at a time), parallel (GNU parallel: --jobs slots, or "
                 "--sshloginfile hosts), slurm (an sbatch job array, one task per run)")
      ->check(CLI::IsMember({"local", "parallel", "slurm"}));
  app.add_option("-o,--out", out, "output folder (default results/sweeps/<sweep file name>)");
  app.add_option("-j,--jobs", jobs, "runs at a time (local, parallel; default 1)")->check(CLI::Range(1, 100000));
  app.add_option("--cpu", cpu, "pin every run to this CPU (znslab run --cpu; overrides the sweep file's \"cpu\")")
      ->check(CLI::Range(0, 4095));
  app.add_option("--sshloginfile", ssh, "parallel: run on the hosts listed in this file");
  app.add_option("--partition", partition, "slurm: sbatch --partition (overrides the sweep file)");
  app.add_option("--account", account, "slurm: sbatch --account");
  app.add_option("--time", time_limit, "slurm: sbatch --time");
  app.add_option("--cpus-per-task", cpus, "slurm: sbatch --cpus-per-task")->check(CLI::Range(1, 100000));
  app.add_option("--resubmit", resubmit, "slurm: resubmit failed tasks up to N times (default 1)")
      ->check(CLI::Range(0, 100000));
  app.add_flag("!--wait,--no-wait", no_wait, "slurm: submit and return; collect later with --collect");
  app.add_flag("--collect", collect, "run nothing; (re)write DIR/summary.json from the runs there");
  app.add_flag("--dry-run", dry_run, "print the planned runs and exit");
  app.add_flag("-q,--quiet", quiet, "no progress lines");
  app.footer(kSweepFooter);
  if (!cli_parse(app, argc, argv)) return 0;

  SweepSpec spec = load_sweep(file);
  if (!engine_flag.empty()) spec.engine.name = engine_flag;
  if (app.count("--jobs")) spec.engine.jobs = jobs;
  if (app.count("--cpu")) spec.cpu = cpu;
  if (!ssh.empty()) spec.engine.sshloginfile = fs::absolute(ssh).string();
  if (!partition.empty()) spec.engine.partition = partition;
  if (!account.empty()) spec.engine.account = account;
  if (!time_limit.empty()) spec.engine.time = time_limit;
  if (app.count("--cpus-per-task")) spec.engine.cpus_per_task = cpus;
  if (app.count("--resubmit")) spec.engine.resubmit = resubmit;
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

const char* kTaskIntro =
    "Runs one run of a sweep plan (what the sweep engines execute): `znslab run`\n"
    "as planned, then records host and engine in the result's \"sweep\" block and\n"
    "DIR/runs/<name>.status.json. With --array-list, INDEX is line\n"
    "$SLURM_ARRAY_TASK_ID (from 0) of FILE.";

int sweep_task_main(int argc, char** argv) {
  std::string plan, index, list, engine = "local";
  CLI::App app{kTaskIntro, "znslab sweep-task"};
  app.add_option("PLAN", plan, "DIR/plan.json of a sweep")->required();
  app.add_option("INDEX", index, "run index in the plan (or use --array-list)");
  app.add_option("--array-list", list, "file of run indices, one per line; line $SLURM_ARRAY_TASK_ID is run");
  app.add_option("--engine", engine, "engine name recorded in the result (local, parallel, slurm)");
  app.footer("Exit status: 0 valid result, 1 failed run, 2 usage error.");
  if (!cli_parse(app, argc, argv)) return 0;
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
