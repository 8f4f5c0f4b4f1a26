// Helpers of the [trace] tests: paths of the preload libraries and the
// helper program (beside the test binary), running a command with extra
// environment, and rendering a trace's known events as readable lines.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "src/trace/trace_format.h"

namespace znslab::tracetest {

// build dir (…/build or …/build/asan) of the running test binary.
inline std::string build_dir() {
  return std::filesystem::canonical("/proc/self/exe").parent_path().parent_path().string();
}
inline std::string lib(const std::string& name) { return build_dir() + "/" + name; }
inline std::string helper() { return build_dir() + "/tests/trace_prog"; }

// Runs argv with the current environment plus `env` ("K=V"), stdout to
// `out_path` ("" = /dev/null). Returns the exit status, or -1.
inline int run(const std::vector<std::string>& argv, const std::vector<std::string>& env,
               const std::string& out_path = "", const std::string& in_path = "") {
  pid_t pid = fork();
  if (pid == 0) {
    for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
    int fd = open(out_path.empty() ? "/dev/null" : out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) dup2(fd, 1);
    if (!in_path.empty()) {
      int in = open(in_path.c_str(), O_RDONLY);
      if (in >= 0) dup2(in, 0);
    }
    std::vector<char*> a;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execv(a[0], a.data());
    _exit(127);
  }
  int st = 0;
  if (pid < 0 || waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// Events concerning objects allocated with a size in [lo, hi] (or realloc'ed
// from one), as "T<k> op size [align A] #x [<- #y]": threads and objects are
// renamed in order of appearance so that the lines are deterministic.
inline std::vector<std::string> known_events(const trace::Trace& t, uint64_t lo, uint64_t hi) {
  std::map<uint64_t, std::string> names;
  std::map<uint32_t, int> tids;
  std::vector<std::string> out;
  auto name = [&](uint64_t id) {
    auto it = names.find(id);
    if (it != names.end()) return it->second;
    std::string n = "#";
    n += char('a' + names.size() % 26);
    if (names.size() >= 26) n += std::to_string(names.size() / 26);
    names[id] = n;
    return n;
  };
  for (const auto& e : t.events) {
    const bool alloc_known = e.op != uint8_t(trace::Op::kFree) && e.op != uint8_t(trace::Op::kUsableSize) &&
                             e.op != uint8_t(trace::Op::kRealloc) && e.size >= lo && e.size <= hi;
    const bool realloc_known = e.op == uint8_t(trace::Op::kRealloc) && names.count(e.old_obj);
    const bool use_known = (e.op == uint8_t(trace::Op::kFree) || e.op == uint8_t(trace::Op::kUsableSize)) &&
                           names.count(e.obj);
    if (!alloc_known && !realloc_known && !use_known) continue;
    if (!tids.count(e.tid)) {
      int k = int(tids.size());
      tids[e.tid] = k;
    }
    std::string s = "T" + std::to_string(tids[e.tid]) + " " + trace::op_name(e.op);
    if (e.op == uint8_t(trace::Op::kFree) || e.op == uint8_t(trace::Op::kUsableSize)) {
      s += " " + name(e.obj);
    } else {
      s += " " + std::to_string(e.size);
      if (e.align) s += " align " + std::to_string(e.align);
      s += " " + (e.obj ? name(e.obj) : std::string("-"));
      if (e.old_obj) s += " <- " + name(e.old_obj);
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace znslab::tracetest
