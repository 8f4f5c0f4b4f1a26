// Execution side of sweeps (harness/sweep.h): running one planned run as a
// child process and recording its outcome, and the three engines.
//
// Every engine ends up executing, once per pending run,
//   znslab sweep-task DIR/plan.json INDEX --engine NAME
// (or `--array-list FILE`, the Slurm form indexed by SLURM_ARRAY_TASK_ID),
// which runs `znslab run ...` from the plan with DIR as working directory,
// its stdout+stderr into DIR/runs/<name>.log, then adds the "sweep" block
// {engine, host, point, params, allocator, repeat, job} to the result and
// writes DIR/runs/<name>.status.json {exit_status, error, host, engine,
// started_at, seconds}. So the host and engine are recorded by the machine
// that ran the run, whatever launched it.
//
// Errors: RunError when a process cannot be started or an engine's tool
// (parallel, sbatch) is missing or refuses the job.
// Thread-safety: not thread-safe (waits for child processes); one per process.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/sweep.h"

namespace znslab::harness {

// Absolute path of the running binary (/proc/self/exe).
std::string self_exe();

// fork+exec `argv` (argv[0] is the program path) in `cwd` ("" = current),
// stdout and stderr appended to `log_path` ("" = inherited), in its own
// process group when `own_group`. Returns the pid; RunError when fork fails.
int spawn_process(const std::vector<std::string>& argv, const std::string& cwd, const std::string& log_path,
                  bool own_group = false);
// Waits for `pid`; returns its exit status, or 128+signal when killed.
int wait_process(int pid);
// Runs to completion; returns the exit status (127 when it could not exec).
int run_process(const std::vector<std::string>& argv, const std::string& cwd = "",
                const std::string& log_path = "");

// Executes plan run `index` of the plan in `plan_path` (see above).
// Returns 0 when the run produced a valid result, 1 otherwise.
int execute_plan_run(const std::string& plan_path, size_t index, const std::string& engine);

struct EngineOptions {
  SweepEngine engine;
  bool wait = true;     // slurm: wait for the array (and resubmit failures)
  bool quiet = false;   // no progress lines
};

// Runs plan indices `todo` of DIR/plan.json with the engine. Returns when
// they have finished (or, for slurm without wait, once submitted).
void run_engine(const std::string& dir, const nlohmann::json& plan, const std::vector<size_t>& todo,
                const EngineOptions& opt);

}  // namespace znslab::harness
