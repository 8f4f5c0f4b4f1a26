// `znslab exec --allocator A [options] -- COMMAND [ARGS...]`: runs an
// unmodified external program under one allocator and samples it from
// outside (issue 12). The allocator is chosen with LD_PRELOAD:
//   glibc          nothing preloaded
//   jemalloc, mimalloc, tcmalloc   their Debian libraries (harness/peers.h)
//   temporal-slab  build/libznsslab-malloc.so beside this binary (its epoch
//                  policy from --epoch-policy / --epoch-ms; its stats JSON
//                  is embedded as allocator_stats)
// Every --sample-ms the child's /proc/PID/smaps_rollup (Rss, Anonymous,
// Pss) and /proc/PID/stat (minflt, majflt) are read; the last sample taken
// before the process exits is the post-drain one (what the program still
// held when it ended). The result document (experiment "exec") has the
// usual samples and a summary: wall_seconds, exit_status, peak_rss_bytes,
// post_drain_rss_bytes, max_rss_bytes (getrusage of the child, KiB x 1024),
// minor_faults, major_faults.
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "harness/cli.h"
#include "harness/peers.h"
#include "harness/registry.h"
#include "harness/result.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

const char* kExecIntro =
    "Runs COMMAND under allocator A (temporal-slab, glibc, jemalloc, mimalloc,\n"
    "tcmalloc) through LD_PRELOAD, samples /proc/PID/smaps_rollup every N ms\n"
    "(default 5) and writes a result document (experiment \"exec\"; default stdout).\n"
    "COMMAND's stdout goes to --stdout (default /dev/null), its stderr is kept.\n"
    "Usage: znslab exec --allocator A [OPTIONS] -- COMMAND [ARGS...]";

struct Snap {
  bool ok = false;
  uint64_t rss = 0, anon = 0, pss = 0, minflt = 0, majflt = 0;
};

Snap read_proc(pid_t pid) {
  Snap s;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/smaps_rollup", int(pid));
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    unsigned long v;
    if (std::sscanf(line.c_str(), "Rss: %lu kB", &v) == 1) {
      s.rss = v * 1024;
      s.ok = true;
    } else if (std::sscanf(line.c_str(), "Anonymous: %lu kB", &v) == 1) {
      s.anon = v * 1024;
    } else if (std::sscanf(line.c_str(), "Pss: %lu kB", &v) == 1) {
      s.pss = v * 1024;
    }
  }
  std::snprintf(path, sizeof path, "/proc/%d/stat", int(pid));
  std::ifstream st(path);
  std::string all((std::istreambuf_iterator<char>(st)), std::istreambuf_iterator<char>());
  const size_t rp = all.rfind(')');
  if (rp != std::string::npos) {
    std::istringstream is(all.substr(rp + 2));
    std::string fld[10];
    // fields 3..12: state ppid pgrp session tty tpgid flags minflt cminflt majflt
    for (auto& x : fld) is >> x;
    s.minflt = std::strtoull(fld[7].c_str(), nullptr, 10);
    s.majflt = std::strtoull(fld[9].c_str(), nullptr, 10);
  }
  return s;
}

std::string self_dir() { return std::filesystem::canonical("/proc/self/exe").parent_path().string(); }

int exec_main(int argc, char** argv) {
  std::string allocator, out = "-", in_path, out_path = "/dev/null", policy = "time";
  int sample_ms = 5, epoch_ms = 100;
  bool quiet = false;
  std::vector<std::string> env, cmd;
  CLI::App app{kExecIntro, "znslab exec"};
  app.add_option("--allocator", allocator, "temporal-slab, glibc, jemalloc, mimalloc or tcmalloc")->required();
  app.add_option("--out", out, "result document (\"-\" = stdout, the default)");
  app.add_option("--sample-ms", sample_ms, "RSS sampling period in ms (default 5)")->check(CLI::Range(1, 60000));
  app.add_option("--stdin", in_path, "file fed to COMMAND's standard input");
  app.add_option("--stdout", out_path, "file that receives COMMAND's standard output (default /dev/null)");
  app.add_option("--env", env, "K=V set in COMMAND's environment (repeatable)")->allow_extra_args(false);
  app.add_option("--epoch-policy", policy, "temporal-slab: time or callsite")
      ->check(CLI::IsMember({"time", "callsite"}));
  app.add_option("--epoch-ms", epoch_ms, "temporal-slab: epoch length in ms (time policy)")
      ->check(CLI::Range(1, 1 << 30));
  app.add_flag("-q,--quiet", quiet, "no progress lines");
  app.add_option("COMMAND", cmd, "the program and its arguments, after --")->required();
  app.footer("Exit status: 0 when COMMAND exited 0, 1 otherwise, 2 usage error.");
  if (!cli_parse(app, argc, argv)) return 0;

  json alloc_desc{{"name", allocator}};
  std::string preload, stats_path;
  if (allocator == "temporal-slab") {
    preload = self_dir() + "/libznsslab-malloc.so";
    stats_path = "/tmp/znslab-exec-stats." + std::to_string(getpid()) + ".json";
    env.push_back("ZNSSLAB_EPOCH_POLICY=" + policy);
    env.push_back("ZNSSLAB_EPOCH_MS=" + std::to_string(epoch_ms));
    env.push_back("ZNSSLAB_STATS=" + stats_path);
    alloc_desc["version"] = "znslab " + git_rev();
    alloc_desc["library"] = preload;
    alloc_desc["options"] = {{"epoch_policy", policy}, {"epoch_ms", epoch_ms}};
  } else if (allocator == "glibc") {
    alloc_desc["version"] = gnu_get_libc_version();
    alloc_desc["library"] = "libc.so.6";
  } else if (const PeerLibrary* p = peer_library(allocator)) {
    preload = std::string(kPeerLibDir) + "/" + p->soname;
    alloc_desc["version"] = debian_package_version(p->package);
    alloc_desc["package"] = p->package;
    alloc_desc["library"] = preload;
  } else {
    throw UsageError("exec: unknown allocator '" + allocator + "'");
  }
  if (!preload.empty() && !std::filesystem::exists(preload))
    throw RunError("exec: " + preload + " is missing (make all, or install the peer)");

  ResultDoc doc("exec");
  doc.set_config({{"workload", "exec"}, {"command", cmd}, {"allocator", allocator}, {"sample_ms", sample_ms},
                  {"env", env}, {"stdin", in_path}});
  doc.set_allocator(alloc_desc);
  doc.doc()["device"] = nullptr;

  const uint64_t t0 = monotonic_ns();
  pid_t pid = fork();
  if (pid < 0) throw RunError(std::string("exec: fork: ") + std::strerror(errno));
  if (pid == 0) {
    if (!preload.empty()) setenv("LD_PRELOAD", preload.c_str(), 1); else unsetenv("LD_PRELOAD");
    for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
    int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) dup2(fd, 1);
    if (!in_path.empty()) {
      int in = open(in_path.c_str(), O_RDONLY);
      if (in < 0) _exit(126);
      dup2(in, 0);
    }
    std::vector<char*> a;
    for (auto& s : cmd) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    execvp(a[0], a.data());
    std::fprintf(stderr, "znslab exec: %s: %s\n", a[0], std::strerror(errno));
    _exit(127);
  }
  uint64_t peak = 0;
  Snap last;
  int status = 0;
  rusage ru{};
  for (;;) {
    pid_t w = wait4(pid, &status, WNOHANG, &ru);
    if (w == pid) break;
    Snap s = read_proc(pid);
    if (s.ok && s.rss > 0) {
      last = s;
      peak = std::max(peak, s.rss);
      doc.add_sample({{"t_ns", monotonic_ns() - t0}, {"phase", "periodic"}, {"rss_bytes", s.rss},
                      {"anon_rss_bytes", s.anon}, {"pss_bytes", s.pss}, {"minor_faults", s.minflt},
                      {"major_faults", s.majflt}});
    }
    timespec ts{sample_ms / 1000, long(sample_ms % 1000) * 1000000L};
    nanosleep(&ts, nullptr);
  }
  const uint64_t t1 = monotonic_ns();
  json& s = doc.summary();
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  s["exit_status"] = code;
  s["wall_seconds"] = double(t1 - t0) / 1e9;
  s["peak_rss_bytes"] = std::max<uint64_t>(peak, uint64_t(ru.ru_maxrss) * 1024);
  s["sampled_peak_rss_bytes"] = peak;
  s["max_rss_bytes"] = uint64_t(ru.ru_maxrss) * 1024;
  s["post_drain_rss_bytes"] = last.rss;
  s["post_drain_anon_rss_bytes"] = last.anon;
  s["minor_faults"] = uint64_t(ru.ru_minflt);
  s["major_faults"] = uint64_t(ru.ru_majflt);
  s["samples"] = doc.doc()["samples"].size();
  doc.doc()["latency_ns"] = json::object();
  if (!stats_path.empty()) {
    std::ifstream f(stats_path);
    if (f) {
      try {
        doc.doc()["allocator_stats"] = json::parse(f);
      } catch (const json::exception&) {
        doc.doc()["allocator_stats"] = nullptr;
      }
    }
    std::filesystem::remove(stats_path);
  }
  doc.write(out);
  if (!quiet)
    std::fprintf(stderr, "[exec %s] %s: exit %d, %.2f s, peak RSS %.1f MiB, post-drain %.1f MiB\n",
                 allocator.c_str(), cmd[0].c_str(), code, double(t1 - t0) / 1e9, double(s["peak_rss_bytes"].get<uint64_t>()) / 1048576.0,
                 double(last.rss) / 1048576.0);
  return code == 0 ? 0 : 1;
}

Registrar reg{Command{"exec", "run an external program under an allocator (LD_PRELOAD) and sample it", exec_main}};

}  // namespace
}  // namespace znslab::harness
