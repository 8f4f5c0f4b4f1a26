// Sweep execution: child processes, one planned run, and the engines
// (local, GNU parallel, Slurm job array). See sweep_exec.h.
#include "harness/sweep_exec.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "harness/registry.h"
#include "harness/result.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace znslab::harness {

std::string self_exe() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw RunError(std::string("readlink /proc/self/exe: ") + std::strerror(errno));
  buf[n] = 0;
  std::string path = buf;
  // A rebuild replaced the binary while it runs: the path names the new one.
  const std::string deleted = " (deleted)";
  if (path.size() > deleted.size() && path.compare(path.size() - deleted.size(), deleted.size(), deleted) == 0)
    path.resize(path.size() - deleted.size());
  return path;
}

int spawn_process(const std::vector<std::string>& argv, const std::string& cwd, const std::string& log_path,
                  bool own_group) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) throw RunError(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    if (own_group) ::setpgid(0, 0);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) {
      std::fprintf(stderr, "chdir %s: %s\n", cwd.c_str(), std::strerror(errno));
      ::_exit(127);
    }
    if (!log_path.empty()) {
      const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
    }
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  return int(pid);
}

int wait_process(int pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return 127;
  }
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 127;
}

int run_process(const std::vector<std::string>& argv, const std::string& cwd, const std::string& log_path) {
  return wait_process(spawn_process(argv, cwd, log_path));
}

namespace {

std::string hostname() {
  char h[256] = {};
  if (::gethostname(h, sizeof h - 1) != 0) return "unknown";
  return h;
}

// The last non-empty lines of a log (at most `max_lines`, 600 characters),
// the error message a user needs to see in failed_runs.
std::string log_tail(const std::string& path, size_t max_lines = 3) {
  std::ifstream f(path);
  std::vector<std::string> lines;
  std::string l;
  while (std::getline(f, l))
    if (l.find_first_not_of(" \t\r") != std::string::npos) lines.push_back(l);
  std::string out;
  const size_t from = lines.size() > max_lines ? lines.size() - max_lines : 0;
  for (size_t i = from; i < lines.size(); ++i) out += (out.empty() ? "" : " | ") + lines[i];
  if (out.size() > 600) out = "..." + out.substr(out.size() - 600);
  return out;
}

std::string exit_text(int st) {
  if (st > 128 && st < 128 + 65) return "killed by signal " + std::to_string(st - 128);
  return "exit status " + std::to_string(st);
}

json slurm_job() {
  const char* job = std::getenv("SLURM_ARRAY_JOB_ID");
  const char* task = std::getenv("SLURM_ARRAY_TASK_ID");
  const char* id = std::getenv("SLURM_JOB_ID");
  if (!id) return nullptr;
  json j = {{"job_id", id}};
  if (job) j["array_job_id"] = job;
  if (task) j["array_task_id"] = task;
  return j;
}

}  // namespace

int execute_plan_run(const std::string& plan_path, size_t index, const std::string& engine) {
  auto pr = read_json_file(plan_path);
  if (!pr) throw RunError(pr.status().context());
  const json plan = std::move(*pr);
  if (plan.value("schema", "") != kSweepPlanSchema) throw RunError(plan_path + ": not a sweep plan");
  const json& runs = plan.at("runs");
  if (index >= runs.size())
    throw RunError(plan_path + ": run index " + std::to_string(index) + " out of range (" +
                   std::to_string(runs.size()) + " runs)");
  const json& run = runs[index];
  const std::string dir = fs::absolute(plan_path).parent_path().string();
  const std::string name = run.at("name").get<std::string>();
  const std::string out = dir + "/" + run.at("out").get<std::string>();
  const std::string log = dir + "/runs/" + name + ".log";
  const std::string status_path = dir + "/runs/" + name + ".status.json";
  std::error_code ec;
  fs::create_directories(dir + "/runs", ec);
  fs::remove(out, ec);  // never mistake an old file for this run's result
  fs::remove(log, ec);
  fs::remove(status_path, ec);

  const std::string started = utc_now_iso8601();
  const uint64_t t0 = monotonic_ns();
  // /proc/self/exe: the very binary running this task, even if a rebuild replaced the file meanwhile.
  std::vector<std::string> argv{"/proc/self/exe"};
  for (const auto& a : run.at("argv")) argv.push_back(a.get<std::string>());
  const int st = run_process(argv, dir, log);
  const double seconds = double(monotonic_ns() - t0) / 1e9;

  const json& params = plan.at("points").at(run.value("point_index", size_t(0))).at("params");
  json status = {{"name", name},       {"host", hostname()},       {"engine", engine},
                 {"exit_status", st},  {"started_at", started},    {"seconds", seconds},
                 {"error", ""},        {"job", slurm_job()}};
  std::string error;
  if (st != 0) {
    const std::string tail = log_tail(log);
    error = exit_text(st) + (tail.empty() ? "" : ": " + tail);
  } else {
    auto rr = read_json_file(out);
    if (!rr) {
      error = std::string("exit status 0 but no result: ") + rr.status().context();
    } else {
      json& result = *rr;
      result["sweep"] = {{"engine", engine},
                         {"host", hostname()},
                         {"point", run.at("point")},
                         {"params", params},
                         {"allocator", run.at("allocator")},
                         {"repeat", run.at("repeat")},
                         {"job", slurm_job()},
                         {"plan", plan.value("sweep_file", json(nullptr))}};
      write_json_file_atomic(out, result);
      error = sweep_result_problem(result, run, params);
    }
  }
  status["error"] = error;
  write_json_file_atomic(status_path, status);
  return error.empty() ? 0 : 1;
}

// ---- engines -------------------------------------------------------------------

namespace {

void progress_line(const EngineOptions& opt, const std::string& dir, const json& run, size_t done, size_t total) {
  if (opt.quiet) return;
  std::string line = "[" + std::to_string(done) + "/" + std::to_string(total) + "] " +
                     run.at("name").get<std::string>();
  if (auto sr = read_json_file(dir + "/runs/" + run.at("name").get<std::string>() + ".status.json")) {
    const json& st = *sr;
    char secs[32];
    std::snprintf(secs, sizeof secs, " %.1f s", st.value("seconds", 0.0));
    line += st.value("error", "").empty() ? std::string(" ok") + secs : " FAILED: " + st.value("error", "");
  } else {
    line += " FAILED: no status written";
  }
  std::fprintf(stderr, "%s\n", line.c_str());
}

void engine_local(const std::string& dir, const json& plan, const std::vector<size_t>& todo,
                  const EngineOptions& opt) {
  const std::string exe = "/proc/self/exe";  // this binary, even if rebuilt during the sweep
  const std::string plan_path = dir + "/plan.json";
  std::map<int, size_t> running;  // pid -> plan index
  size_t next = 0, done = 0;
  const size_t jobs = size_t(std::max(1, opt.engine.jobs));
  while (next < todo.size() || !running.empty()) {
    while (next < todo.size() && running.size() < jobs) {
      const size_t i = todo[next++];
      running[spawn_process({exe, "sweep-task", plan_path, std::to_string(i), "--engine", "local"}, "", "")] = i;
    }
    int st = 0;
    const pid_t pid = ::waitpid(-1, &st, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      throw RunError(std::string("waitpid: ") + std::strerror(errno));
    }
    auto it = running.find(int(pid));
    if (it == running.end()) continue;
    progress_line(opt, dir, plan["runs"][it->second], ++done, todo.size());
    running.erase(it);
  }
}

std::string shell_quote(const std::string& s) {
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

bool have_program(const std::string& name) {
  return run_process({"sh", "-c", "command -v " + shell_quote(name) + " >/dev/null 2>&1"}) == 0;
}

void engine_parallel(const std::string& dir, const json& plan, const std::vector<size_t>& todo,
                     const EngineOptions& opt) {
  if (!have_program("parallel"))
    throw RunError("engine parallel: GNU parallel not found (Debian package \"parallel\"; `make deps`)");
  const std::string exe = self_exe();
  const SweepEngine& e = opt.engine;
  const bool remote_copy = !e.sshloginfile.empty() && !e.shared_dir;
  const std::string tasks = dir + "/parallel-tasks.txt";
  {
    std::ofstream f(tasks);
    for (size_t i : todo) f << i << "\t" << plan["runs"][i]["name"].get<std::string>() << "\n";
    if (!f) throw RunError("cannot write " + tasks);
  }
  std::vector<std::string> argv{"parallel", "--will-cite", "--halt", "never", "--colsep", "\t",
                                "--jobs", std::to_string(std::max(1, e.jobs))};
  if (!opt.quiet) argv.push_back("--line-buffer");
  if (!e.sshloginfile.empty()) {
    argv.insert(argv.end(), {"--sshloginfile", e.sshloginfile});
    if (remote_copy) {
      // No shared file system: the plan goes out, the run's files come back.
      argv.insert(argv.end(), {"--workdir", dir, "--basefile", "plan.json", "--return", "runs/{2}.json",
                               "--return", "runs/{2}.status.json", "--return", "runs/{2}.log", "--cleanup"});
    }
  }
  const std::string plan_arg = remote_copy ? "plan.json" : dir + "/plan.json";
  argv.insert(argv.end(), {exe, "sweep-task", plan_arg, "{1}", "--engine", "parallel", "::::", tasks});
  if (!opt.quiet)
    std::fprintf(stderr, "sweep: GNU parallel, %d job slot(s)%s, %zu run(s)\n", std::max(1, e.jobs),
                 e.sshloginfile.empty() ? "" : (" per host of " + e.sshloginfile).c_str(), todo.size());
  // parallel exits with the number of failed jobs; outcomes are read from the status files.
  const int st = run_process(argv, remote_copy ? dir : "");
  if (st == 127 || st >= 255) throw RunError("engine parallel: GNU parallel failed to start (" + exit_text(st) + ")");
  size_t done = 0;
  for (size_t i : todo) progress_line(opt, dir, plan["runs"][i], ++done, todo.size());
}

// Output of a shell command, and its exit status.
std::string capture(const std::vector<std::string>& argv, int* status) {
  int fds[2];
  if (::pipe(fds) != 0) throw RunError(std::string("pipe: ") + std::strerror(errno));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) throw RunError(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::close(fds[0]);
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) out.append(buf, size_t(n));
  ::close(fds[0]);
  *status = wait_process(int(pid));
  return out;
}

// Submits one job array over plan indices `todo`; returns the job ids.
std::vector<std::string> slurm_submit(const std::string& dir, const json& plan, const std::vector<size_t>& todo,
                                      const EngineOptions& opt, int attempt) {
  (void)plan;
  const SweepEngine& e = opt.engine;
  const std::string exe = self_exe();
  fs::create_directories(dir + "/slurm");
  constexpr size_t kChunk = 1000;  // Slurm's default MaxArraySize is 1001
  std::vector<std::string> ids;
  for (size_t c = 0; c * kChunk < todo.size(); ++c) {
    const size_t n = std::min(kChunk, todo.size() - c * kChunk);
    const std::string tag = std::to_string(attempt) + "-" + std::to_string(c);
    const std::string list = dir + "/slurm/tasks-" + tag + ".txt";
    const std::string script = dir + "/slurm/array-" + tag + ".sh";
    {
      std::ofstream f(list);
      for (size_t k = 0; k < n; ++k) f << todo[c * kChunk + k] << "\n";
    }
    {
      std::ofstream f(script);
      f << "#!/bin/sh\n"
        << "#SBATCH --job-name=znslab-sweep\n"
        << "#SBATCH --array=0-" << (n - 1) << (e.max_parallel > 0 ? "%" + std::to_string(e.max_parallel) : "")
        << "\n"
        << "#SBATCH --output=" << dir << "/slurm/%A_%a.out\n"
        << "#SBATCH --cpus-per-task=" << e.cpus_per_task << "\n"
        << "#SBATCH --time=" << e.time << "\n";
      if (!e.partition.empty()) f << "#SBATCH --partition=" << e.partition << "\n";
      if (!e.account.empty()) f << "#SBATCH --account=" << e.account << "\n";
      if (!e.mem.empty()) f << "#SBATCH --mem=" << e.mem << "\n";
      f << "exec " << shell_quote(exe) << " sweep-task " << shell_quote(dir + "/plan.json") << " --array-list "
        << shell_quote(list) << " --engine slurm\n";
      if (!f) throw RunError("cannot write " + script);
    }
    std::vector<std::string> argv{"sbatch", "--parsable"};
    argv.insert(argv.end(), e.sbatch_args.begin(), e.sbatch_args.end());
    argv.push_back(script);
    int st = 0;
    std::string out = capture(argv, &st);
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    if (st != 0) throw RunError("engine slurm: sbatch " + script + " failed (" + exit_text(st) + "): " + out);
    const std::string id = out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
    ids.push_back(id.substr(0, id.find(';')));
    if (!opt.quiet)
      std::fprintf(stderr, "sweep: submitted job array %s (%zu task(s), attempt %d)\n", ids.back().c_str(), n,
                   attempt);
  }
  return ids;
}

void slurm_wait(const std::vector<std::string>& ids, const EngineOptions& opt) {
  std::string list;
  for (const auto& id : ids) list += (list.empty() ? "" : ",") + id;
  size_t last = SIZE_MAX;
  for (;;) {
    int st = 0;
    const std::string out = capture({"squeue", "-h", "-j", list, "-o", "%i %T"}, &st);
    size_t n = 0;
    std::istringstream ss(out);
    std::string line;
    while (std::getline(ss, line))
      if (!line.empty()) ++n;
    // squeue fails for job ids the controller has already forgotten: done.
    if (st != 0 || n == 0) return;
    if (!opt.quiet && n != last) std::fprintf(stderr, "sweep: %zu task(s) of %s queued or running\n", n, list.c_str());
    last = n;
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
}

void engine_slurm(const std::string& dir, const json& plan, const std::vector<size_t>& todo,
                  const EngineOptions& opt) {
  if (!have_program("sbatch")) throw RunError("engine slurm: sbatch not found (Debian package \"slurm-client\")");
  std::vector<size_t> pending = todo;
  for (int attempt = 1;; ++attempt) {
    const auto ids = slurm_submit(dir, plan, pending, opt, attempt);
    if (!opt.wait) {
      std::fprintf(stderr,
                   "sweep: not waiting; when the job(s) finish, `znslab sweep SWEEP.json --out %s --collect` "
                   "writes the summary (and a plain re-run resubmits what failed)\n",
                   dir.c_str());
      return;
    }
    slurm_wait(ids, opt);
    std::vector<size_t> still;
    for (size_t i : pending_runs(plan, dir))
      if (std::find(pending.begin(), pending.end(), i) != pending.end()) still.push_back(i);
    size_t done = 0;
    for (size_t i : pending) progress_line(opt, dir, plan["runs"][i], ++done, pending.size());
    if (still.empty() || attempt > opt.engine.resubmit) return;
    if (!opt.quiet) std::fprintf(stderr, "sweep: resubmitting %zu failed task(s)\n", still.size());
    pending = still;
  }
}

}  // namespace

void run_engine(const std::string& dir, const json& plan, const std::vector<size_t>& todo, const EngineOptions& opt) {
  if (todo.empty()) return;
  if (opt.engine.name == "local") engine_local(dir, plan, todo, opt);
  else if (opt.engine.name == "parallel") engine_parallel(dir, plan, todo, opt);
  else if (opt.engine.name == "slurm") engine_slurm(dir, plan, todo, opt);
  else throw UsageError("unknown engine \"" + opt.engine.name + "\" (local, parallel, slurm)");
}

}  // namespace znslab::harness
