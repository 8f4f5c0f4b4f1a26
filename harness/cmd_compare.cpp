// `znslab compare WORKLOAD.json --allocators a,b,... [--set K=V]... [--out DIR]`
// Runs the workload once per allocator, each in its own child process
// (fork + exec of this binary's `run`), so the RSS of one allocator never
// shares a process with another (issue 2, section 3). Writes
// DIR/<allocator>.json, DIR/summary.json, and prints the comparison table.
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "harness/workload_args.h"
#include "harness/allocators.h"
#include "harness/config.h"
#include "harness/registry.h"
#include "harness/result.h"
#include "harness/table.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

const char* kCompareHelp =
    "usage: znslab compare WORKLOAD.json [--allocators A,B,...] [--set KEY=VALUE]...\n"
    "                      [--device URI] [--out DIR] [--quiet]\n"
    "\n"
    "Runs WORKLOAD.json once per allocator, each in its own child process\n"
    "(`znslab run ... --allocator A`; peers under LD_PRELOAD), one after another,\n"
    "then prints a comparison table.\n"
    "\n"
    "  --allocators LIST  comma-separated; default temporal-slab,glibc,jemalloc,mimalloc,tcmalloc\n"
    "  --set KEY=VALUE    passed to every run (see znslab run --help)\n"
    "  --device URI       passed to every run\n"
    "  --out DIR          default results/<workload>/<UTC time>/\n"
    "  --quiet            no progress lines from the runs\n"
    "\n"
    "Writes DIR/<allocator>.json (schema znslab.result/1) for each allocator and\n"
    "DIR/summary.json (schema znslab.summary/1: each allocator's status, result file,\n"
    "allocator identity, summary and latency_ns, and the table).\n"
    "Exit status: 0 when every run succeeded, 1 when one failed, 2 usage/config error.\n";

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

// Runs `args` as a child of /proc/self/exe; returns a description of how it
// ended ("" = exit 0).
std::string run_child(const std::vector<std::string>& args) {
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return std::string("fork failed: ") + std::strerror(errno);
  if (pid == 0) {
    std::vector<char*> argv;
    static char self[] = "/proc/self/exe";
    argv.push_back(self);
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(self, argv.data());
    std::fprintf(stderr, "znslab compare: exec of /proc/self/exe failed: %s\n", std::strerror(errno));
    _exit(127);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return std::string("waitpid failed: ") + std::strerror(errno);
  }
  if (WIFEXITED(st)) return WEXITSTATUS(st) == 0 ? "" : "exit status " + std::to_string(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return std::string("killed by signal ") + strsignal(WTERMSIG(st));
  return "ended abnormally";
}

json read_json_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) return nullptr;
  try {
    return json::parse(f);
  } catch (const json::exception&) {
    return nullptr;
  }
}

int compare_main(int argc, char** argv) {
  const WorkloadArgs w = parse_workload_args(argc, argv, "--allocators");
  if (w.help) {
    std::fputs(kCompareHelp, stdout);
    return 0;
  }
  const std::string& workload_arg = w.workload;
  const std::string list = w.selector_given ? w.selector : "temporal-slab,glibc,jemalloc,mimalloc,tcmalloc";
  std::string out = w.out;
  const std::string& device = w.device;
  const std::vector<std::string>& sets = w.sets;
  const bool quiet = w.quiet;
  const std::vector<std::string> allocators = split_list(list);
  if (allocators.empty()) throw UsageError("--allocators is empty");
  for (const auto& a : allocators)
    if (!find_allocator(a))
      throw UsageError("unknown allocator \"" + a + "\" (available: " + allocator_names() + ")");
  // Validate once here so that a bad key fails before any child runs.
  WorkloadConfig wc = load_workload(workload_arg, sets);
  if (out.empty()) {
    std::string ts;
    for (char c : utc_now_iso8601())
      if (c != '-' && c != ':') ts += c;
    out = "results/" + wc.workload + "/" + ts;
  }
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) throw RunError("cannot create " + out + ": " + ec.message());
  unsetenv("ZNSLAB_REEXEC");

  std::vector<std::pair<std::string, json>> results;
  json entries = json::array();
  int failures = 0;
  for (size_t k = 0; k < allocators.size(); ++k) {
    const std::string& a = allocators[k];
    const std::string file = out + "/" + a + ".json";
    std::filesystem::remove(file, ec);
    std::vector<std::string> args{"run", workload_arg, "--allocator", a, "--out", file};
    for (const auto& s : sets) {
      args.push_back("--set");
      args.push_back(s);
    }
    if (!device.empty()) {
      args.push_back("--device");
      args.push_back(device);
    }
    if (quiet) args.push_back("--quiet");
    std::fprintf(stderr, "== [%zu/%zu] %s: %s %s\n", k + 1, allocators.size(), a.c_str(),
                 wc.workload.c_str(), file.c_str());
    const uint64_t t0 = monotonic_ns();
    std::string how = run_child(args);
    const double secs = double(monotonic_ns() - t0) / 1e9;
    json doc = how.empty() ? read_json_file(file) : json(nullptr);
    if (how.empty() && doc.is_null()) how = "no readable result at " + file;
    json e{{"name", a}, {"seconds", secs}};
    if (how.empty()) {
      e["status"] = "ok";
      e["result"] = a + ".json";
      e["allocator"] = doc.value("allocator", json(nullptr));
      e["summary"] = doc.value("summary", json::object());
      e["latency_ns"] = doc.value("latency_ns", json::object());
    } else {
      ++failures;
      e["status"] = "failed";
      e["error"] = how;
      std::fprintf(stderr, "== %s failed: %s\n", a.c_str(), how.c_str());
    }
    entries.push_back(e);
    results.emplace_back(a, doc);
  }

  TableData t = comparison_table(results);
  json summary{{"schema", "znslab.summary/1"},
               {"workload", wc.workload},
               {"workload_file", wc.file},
               {"sets", sets},
               {"config", wc.config},
               {"created_at", utc_now_iso8601()},
               {"git_rev", git_rev()},
               {"host", host_info()},
               {"allocators", entries},
               {"table", {{"headers", t.headers}, {"rows", t.rows}}}};
  {
    std::ofstream f(out + "/summary.json");
    f << summary.dump(2) << "\n";
    if (!f) throw RunError("cannot write " + out + "/summary.json: " + std::strerror(errno));
  }
  std::printf("\n%s: %s on %zu allocators (%s)\n\n", wc.workload.c_str(),
              wc.file.empty() ? wc.workload.c_str() : wc.file.c_str(), allocators.size(), out.c_str());
  std::fputs(render_table(t.headers, t.rows).c_str(), stdout);
  std::printf("\nMiB = 2^20 bytes; latencies in ns (individually timed ops, timer overhead included);\n"
              "results: %s/<allocator>.json, %s/summary.json\n",
              out.c_str(), out.c_str());
  std::fflush(stdout);
  return failures ? 1 : 0;
}

Registrar reg{Command{"compare", "run one workload on several allocators, one child process each; table",
                      compare_main}};

}  // namespace
}  // namespace znslab::harness
