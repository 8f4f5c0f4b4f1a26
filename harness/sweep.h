// Sweeps (issue 15): a parameter grid with repeats over allocators, each run
// an ordinary `znslab run` writing an ordinary result, executed by an engine
// (local processes, GNU parallel, a Slurm job array), resumable, aggregated
// into DIR/summary.json. Reference: docs/sweeps.md.
//
// A sweep file (JSON object; unknown keys are a ConfigError naming them):
//   "workload":   path of a workload file; relative paths are resolved
//                 against the sweep file's folder, absolute ones used as is
//   "allocators": ["temporal-slab", "glibc", ...]; absent or [] = the
//                 workload's own (no --allocator; named "default")
//   "repeats":    runs per (point, allocator), >= 1 (default 1)
//   "grid":       {KEY: [v1, v2, ...], ...} crossed axes
//   "zip":        {KEY: [...], KEY2: [...]} axes varied together (equal
//                 lengths), or a list of such groups; crossed with the grid
//   "set":        {KEY: value} workload keys fixed at every point
//   "seed":       seed of the randomised run order (default 1)
//   "order":      "interleaved" (default: every round of repeats holds each
//                 (point, allocator) once, shuffled with the seed) or "grid"
//   "metric":     summary metric choosing each point's median run
//                 (default: the first present of ns_per_object,
//                 write_amplification, ops_per_sec)
//   "engine":     {"name": "local"|"parallel"|"slurm", "jobs": N,
//                  "sshloginfile": FILE, "shared_dir": bool,
//                  "partition", "account", "time", "cpus_per_task", "mem",
//                  "max_parallel", "resubmit", "sbatch_args": [..]}
//
// Layout of the output folder DIR:
//   DIR/plan.json                the expanded plan (points, runs, argv)
//   DIR/runs/<point>-<alloc>-r<k>.json         one result per run, with a
//                                "sweep" block {engine, host, point, params,
//                                allocator, repeat} added after the run
//   DIR/runs/<name>.status.json  exit status, host, engine, error of the run
//   DIR/runs/<name>.log          the run's stderr
//   DIR/summary.json             schema znslab.sweep-summary/1: "points",
//                                "failed_runs"
//
// Errors: ConfigError (naming the key) for a malformed sweep file or a
// workload key a point sets wrongly; RunError when an engine cannot start.
// Thread-safety: the functions are reentrant; nothing is shared.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/common/status.h"

namespace znslab::harness {

inline constexpr const char* kSweepPlanSchema = "znslab.sweep-plan/1";
inline constexpr const char* kSweepSummarySchema = "znslab.sweep-summary/1";
inline constexpr const char* kDefaultAllocatorName = "default";

struct SweepEngine {
  std::string name = "local";      // local | parallel | slurm
  int jobs = 1;                    // local/parallel: runs at a time
  std::string sshloginfile;        // parallel: GNU parallel --sshloginfile ("" = local slots)
  bool shared_dir = true;          // parallel+ssh: DIR is on a file system every host sees
  std::string partition, account;  // slurm: -p, -A ("" = cluster default)
  std::string time = "00:30:00";   // slurm: --time per task
  int cpus_per_task = 1;           // slurm: --cpus-per-task
  std::string mem;                 // slurm: --mem ("" = default)
  int max_parallel = 0;            // slurm: array throttle %N (0 = none)
  int resubmit = 1;                // slurm: resubmissions of failed tasks (with --wait)
  std::vector<std::string> sbatch_args;  // slurm: extra sbatch arguments
};

using SweepAxis = std::pair<std::string, std::vector<nlohmann::json>>;

struct SweepSpec {
  std::string file;                     // the sweep file ("" when parsed from text)
  std::string workload;                 // resolved workload path
  std::vector<std::string> allocators;  // empty = the workload's own
  int repeats = 1;
  std::vector<SweepAxis> grid;          // crossed axes (key order of the file object: sorted)
  std::vector<std::vector<SweepAxis>> zips;  // each group: equal-length axes varied together
  nlohmann::json set = nlohmann::json::object();
  uint64_t seed = 1;
  bool interleaved = true;
  std::string metric;                   // "" = automatic
  int cpu = -1;                         // >= 0: every run pinned to this CPU (`znslab run --cpu N`)
  SweepEngine engine;
};

// Parses a sweep document. `file` resolves a relative "workload" (its
// folder) and names the source in messages. Throws ConfigError naming the
// key: `sweep.json: key "grid.threads": expected a non-empty array`.
SweepSpec parse_sweep(const nlohmann::json& doc, const std::string& file);
// Reads and parses a sweep file; invalid JSON is a ConfigError naming the file.
SweepSpec load_sweep(const std::string& path);

// Names of the swept keys (grid, then zip groups), in that order.
std::vector<std::string> swept_keys(const SweepSpec& s);

struct SweepPoint {
  std::string id;         // "p000", "p001", ... in grid order
  nlohmann::json params;  // {swept key: value}
};
// Every grid point: the cross product of the grid axes and the zip groups
// (the last axis varies fastest). No axes at all gives one point, {}.
std::vector<SweepPoint> expand_points(const SweepSpec& s);

struct SweepRun {
  std::string name;       // "<point>-<allocator>-r<k>", k from 1
  size_t point = 0;       // index into expand_points()
  std::string allocator;  // "" = the workload's own
  int repeat = 1;         // 1..repeats
};
// All (point, allocator, repeat) runs in execution order: with
// interleaved order, round k (repeat k) holds every (point, allocator) once
// in an order shuffled by mt19937_64(seed + k); with "grid" order, rounds
// keep grid order. Deterministic for a given spec.
std::vector<SweepRun> plan_runs(const SweepSpec& s, const std::vector<SweepPoint>& points);

// The allocator's name in run names and the summary ("default" for "").
std::string allocator_label(const std::string& allocator);

// `znslab` arguments (after the binary) of one run writing to `out`:
// run WORKLOAD [--allocator A] --set K=V (set, then params) [--cpu N] --out OUT --quiet.
std::vector<std::string> run_argv(const SweepSpec& s, const SweepPoint& p, const SweepRun& r,
                                  const std::string& out);

// Validates every point's configuration as `znslab run` would (unknown
// keys, types, ranges); throws ConfigError naming the point and key.
void validate_points(const SweepSpec& s, const std::vector<SweepPoint>& points);

// The plan document written to DIR/plan.json (schema znslab.sweep-plan/1).
nlohmann::json make_plan(const SweepSpec& s, const std::vector<SweepPoint>& points,
                         const std::vector<SweepRun>& runs, const std::string& znslab_binary);

// Empty when `result` is a valid result of plan run `run` (schema
// znslab.result/1 without violations, and a "sweep" block naming the same
// point params, allocator and repeat); else why not.
std::string sweep_result_problem(const nlohmann::json& result, const nlohmann::json& plan_run,
                                 const nlohmann::json& point_params);

// Builds DIR/summary.json from the plan and the run files under `dir`
// (reads runs/<name>.json and runs/<name>.status.json): per point and
// allocator the aggregate_results() intervals, the run files and the median
// run; every run without a valid result in "failed_runs" with its point,
// params, allocator, repeat, host, engine and error.
nlohmann::json summarize_sweep(const nlohmann::json& plan, const std::string& dir);

// Plan indices whose valid result is missing under `dir`.
std::vector<size_t> pending_runs(const nlohmann::json& plan, const std::string& dir);

// Loads a JSON file. Errors: kNotFound (missing, or not a regular file),
// kIoError (cannot open), kCorrupt (invalid JSON); each message names the
// path and the problem (Status::context()).
Result<nlohmann::json> read_json_file(const std::string& path);
// Writes pretty JSON through a temporary file and rename (readers never
// see a partial file). Throws RunError naming the path.
void write_json_file_atomic(const std::string& path, const nlohmann::json& doc);

}  // namespace znslab::harness
