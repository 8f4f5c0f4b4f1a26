#include "harness/fio.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace znslab::harness {

std::vector<std::string> fio_command(const FioJob& j) {
  auto n = [](uint64_t v) { return std::to_string(v); };
  std::vector<std::string> a = {"fio",
                                "--name=zone-write-baseline",
                                "--filename=" + j.filename,
                                "--ioengine=io_uring",
                                "--direct=1",
                                "--rw=write",
                                "--bs=" + n(j.block_size),
                                "--iodepth=" + n(j.iodepth),
                                "--zonemode=strided",
                                "--zonerange=" + n(j.zone_size),
                                "--zonesize=" + n(j.zone_capacity),
                                "--size=" + n(j.job_size),
                                "--io_size=" + n(j.io_bytes),
                                "--output-format=json"};
  if (j.numjobs > 1) {
    a.push_back("--numjobs=" + n(j.numjobs));
    a.push_back("--offset_increment=" + n(j.job_size));
    a.push_back("--group_reporting");
  }
  return a;
}

nlohmann::json FioResult::to_json() const {
  nlohmann::json j;
  j["ok"] = ok;
  if (!ok) j["error"] = error;
  std::string cmd;
  for (const auto& s : argv) cmd += (cmd.empty() ? "" : " ") + s;
  j["command"] = cmd;
  j["version"] = version;
  j["throughput_mib_s"] = throughput_mib_s;
  j["iops"] = iops;
  j["ios"] = ios;
  j["bytes"] = bytes;
  j["runtime_s"] = runtime_s;
  j["cpu_usr_pct"] = cpu_usr_pct;
  j["cpu_sys_pct"] = cpu_sys_pct;
  j["cpu_us_per_io"] = cpu_us_per_io;
  j["latency_ns"] = latency_ns.is_null() ? nlohmann::json::object() : latency_ns;
  return j;
}

FioResult run_fio(const FioJob& job) {
  FioResult r;
  r.argv = fio_command(job);
  int p[2];
  if (::pipe(p) != 0) {
    r.error = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    r.error = std::string("fork: ") + std::strerror(errno);
    ::close(p[0]);
    ::close(p[1]);
    return r;
  }
  if (pid == 0) {
    ::dup2(p[1], 1);
    ::close(p[0]);
    ::close(p[1]);
    std::vector<char*> av;
    for (auto& s : r.argv) av.push_back(const_cast<char*>(s.c_str()));
    av.push_back(nullptr);
    ::execvp("fio", av.data());
    std::fprintf(stderr, "znslab: cannot run fio: %s\n", std::strerror(errno));
    _exit(127);
  }
  ::close(p[1]);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(p[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, size_t(n));
  }
  ::close(p[0]);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  ::unlink(job.filename.c_str());
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    r.error = WIFEXITED(st) && WEXITSTATUS(st) == 127 ? "fio not found (install fio: make deps)"
                                                       : "fio failed (exit status " + std::to_string(WIFEXITED(st) ? WEXITSTATUS(st) : -1) + ")";
    return r;
  }
  // fio may print notes before the JSON object.
  auto brace = out.find('{');
  if (brace == std::string::npos) {
    r.error = "fio printed no JSON";
    return r;
  }
  nlohmann::json d = nlohmann::json::parse(out.substr(brace), nullptr, false);
  if (d.is_discarded() || !d.contains("jobs") || d["jobs"].empty()) {
    r.error = "cannot parse fio's JSON output";
    return r;
  }
  r.version = d.value("fio version", "");
  const auto& jb = d["jobs"][0];
  const auto& w = jb["write"];
  r.throughput_mib_s = w.value("bw_bytes", 0.0) / double(1 << 20);
  r.iops = w.value("iops", 0.0);
  r.ios = w.value("total_ios", uint64_t(0));
  r.bytes = w.value("io_bytes", uint64_t(0));
  r.runtime_s = jb.value("job_runtime", 0.0) / 1000.0;
  r.cpu_usr_pct = jb.value("usr_cpu", 0.0);
  r.cpu_sys_pct = jb.value("sys_cpu", 0.0);
  if (r.ios) {
    // usr/sys_cpu are percent of one CPU over job_runtime (with several
    // jobs and group_reporting: fio's aggregate; treat as approximate).
    r.cpu_us_per_io = (r.cpu_usr_pct + r.cpu_sys_pct) / 100.0 * r.runtime_s * 1e6 / double(r.ios);
  }
  const auto& cl = w["clat_ns"];
  nlohmann::json lat = nlohmann::json::object();
  if (cl.contains("percentile")) {
    const auto& pc = cl["percentile"];
    auto get = [&](const char* k) { return pc.contains(k) ? pc[k].get<uint64_t>() : uint64_t(0); };
    lat["p50"] = get("50.000000");
    lat["p90"] = get("90.000000");
    lat["p99"] = get("99.000000");
    lat["p999"] = get("99.900000");
  }
  lat["max"] = cl.value("max", uint64_t(0));
  lat["mean"] = cl.value("mean", 0.0);
  r.latency_ns = lat;
  r.ok = true;
  return r;
}

}  // namespace znslab::harness
