#include "harness/repeats.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "harness/aggregate.h"
#include "harness/allocators.h"
#include "harness/config.h"
#include "harness/provenance.h"
#include "harness/registry.h"
#include "harness/result.h"
#include "harness/sweep.h"
#include "harness/table.h"

namespace znslab::harness {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Runs `args` as a child of /proc/self/exe; "" when it exited 0, else how it ended.
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
    std::fprintf(stderr, "znslab: exec of /proc/self/exe failed: %s\n", std::strerror(errno));
    _exit(127);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0)
    if (errno != EINTR) return std::string("waitpid failed: ") + std::strerror(errno);
  if (WIFEXITED(st)) return WEXITSTATUS(st) == 0 ? "" : "exit status " + std::to_string(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return std::string("killed by signal ") + strsignal(WTERMSIG(st));
  return "ended abnormally";
}

// The document at `path`, or null when it is missing or does not parse.
json json_or_null(const std::string& path) {
  auto r = read_json_file(path);
  return r ? std::move(*r) : json(nullptr);
}

std::string compact_time() {
  std::string o;
  for (char c : utc_now_iso8601())
    if (c != '-' && c != ':') o += c;
  return o;
}

// Refuses an --out folder that already holds result files (stale runs would
// mix into the summary and the plots); creates it otherwise.
void prepare_out_dir(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) throw UsageError("--out " + dir + ": exists and is not a folder");
    size_t n = 0;
    for (auto& e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".json") ++n;
    if (n)
      throw UsageError("--out " + dir + ": already holds " + std::to_string(n) +
                       " result file(s); give a new folder (stale results would mix into the summary)");
  }
  fs::create_directories(dir, ec);
  if (ec) throw RunError("cannot create " + dir + ": " + ec.message());
  if (access(dir.c_str(), W_OK) != 0) throw UsageError("--out " + dir + ": not writable: " + std::strerror(errno));
}

}  // namespace

std::string primary_metric(const json& result) {
  static const char* kOrder[] = {"ns_per_object", "ops_per_sec", "throughput_mib_s", "write_amplification",
                                 "pin_unpin_ns"};
  const json* s = result.is_object() && result.contains("summary") ? &result["summary"] : nullptr;
  if (!s || !s->is_object()) return "";
  for (const char* k : kOrder)
    if (s->contains(k) && (*s)[k].is_number()) return k;
  return "";
}

int run_repeated(const WorkloadArgs& a, const std::vector<std::string>& allocators) {
  WorkloadConfig wc = load_workload(a.workload, a.sets);  // bad keys fail before any run
  if (!a.device.empty() && !wc.info->uses_device)
    throw UsageError("--device: workload " + wc.workload + " uses no zoned device");
  if (a.cpu >= 0) pin_to_cpu(a.cpu);  // checked here; each child pins itself
  std::vector<std::string> labels;
  for (const auto& al : allocators) {
    std::string base = al.empty() ? (wc.info->uses_allocator ? kDefaultAllocator : wc.workload) : al;
    labels.push_back(a.label.empty() ? base : allocators.size() == 1 ? a.label : a.label + "-" + base);
  }
  for (size_t i = 0; i < labels.size(); ++i)
    for (size_t j = i + 1; j < labels.size(); ++j)
      if (labels[i] == labels[j]) throw UsageError("label \"" + labels[i] + "\" appears twice");
  const std::string out = a.out.empty() ? "results/" + wc.workload + "/" + compact_time() : a.out;
  prepare_out_dir(out);
  unsetenv("ZNSLAB_REEXEC");

  const int n = a.repeats;
  const size_t total = size_t(n) * labels.size();
  std::map<std::string, json> runs;               // label -> [{repeat, result, status, ...}]
  std::map<std::string, std::vector<json>> docs;  // label -> ok result documents
  std::map<std::string, std::vector<std::string>> files;
  int failures = 0;
  size_t done = 0;
  const uint64_t t_start = monotonic_ns();
  for (int k = 1; k <= n; ++k) {
    for (size_t i = 0; i < labels.size(); ++i) {
      const std::string& label = labels[i];
      const std::string file = label + ".r" + std::to_string(k) + ".json";
      std::vector<std::string> args{"run", a.workload};
      if (!allocators[i].empty()) args.insert(args.end(), {"--allocator", allocators[i]});
      args.insert(args.end(), {"--label", label, "--out", out + "/" + file});
      for (const auto& s : a.sets) args.insert(args.end(), {"--set", s});
      if (!a.device.empty()) args.insert(args.end(), {"--device", a.device});
      if (a.cpu >= 0) args.insert(args.end(), {"--cpu", std::to_string(a.cpu)});
      if (a.quiet) args.push_back("--quiet");
      ++done;
      const double elapsed = double(monotonic_ns() - t_start) / 1e9;
      std::string eta;
      if (done > 1) {
        char b[48];
        std::snprintf(b, sizeof b, ", ~%.0f s left", elapsed / double(done - 1) * double(total - done + 1));
        eta = b;
      }
      std::fprintf(stderr, "== [%zu/%zu] %s repeat %d/%d: %s -> %s/%s%s\n", done, total, label.c_str(), k, n,
                   wc.workload.c_str(), out.c_str(), file.c_str(), eta.c_str());
      const uint64_t t0 = monotonic_ns();
      std::string how = run_child(args);
      const double secs = double(monotonic_ns() - t0) / 1e9;
      json doc = how.empty() ? json_or_null(out + "/" + file) : json(nullptr);
      if (how.empty() && doc.is_null()) how = "no readable result at " + out + "/" + file;
      json e{{"repeat", k}, {"result", file}, {"seconds", secs}};
      if (how.empty()) {
        e["status"] = "ok";
        docs[label].push_back(doc);
        files[label].push_back(file);
      } else {
        ++failures;
        e["status"] = "failed";
        e["error"] = how;
        std::fprintf(stderr, "== %s repeat %d failed: %s\n", label.c_str(), k, how.c_str());
      }
      runs[label].push_back(e);
    }
  }

  json per_label = json::object();
  std::vector<std::pair<std::string, json>> rows;
  for (size_t i = 0; i < labels.size(); ++i) {
    const std::string& label = labels[i];
    json entry{{"allocator", allocators[i].empty() ? json(nullptr) : json(allocators[i])}, {"runs", runs[label]}};
    const auto& ds = docs[label];
    if (ds.empty()) {
      entry["status"] = "failed";
      entry["result"] = nullptr;
      rows.emplace_back(label, nullptr);
    } else {
      json agg = aggregate_results(ds);
      const std::string metric = primary_metric(ds.front());
      int idx = metric.empty() ? 0 : nearest_to_median(ds, metric);
      if (idx < 0) idx = 0;
      std::error_code ec;
      fs::copy_file(out + "/" + files[label][size_t(idx)], out + "/" + label + ".json",
                    fs::copy_options::overwrite_existing, ec);
      if (ec) throw RunError("cannot write " + out + "/" + label + ".json: " + ec.message());
      entry["status"] = ds.size() == size_t(n) ? "ok" : "partial";
      entry["result"] = label + ".json";
      entry["median_run"] = files[label][size_t(idx)];
      entry["median_metric"] = metric.empty() ? json(nullptr) : json(metric);
      entry["identity"] = ds[size_t(idx)].value("allocator", json(nullptr));
      for (auto& [k, v] : agg.items()) entry[k] = v;
      json row = agg;
      row["allocator"] = entry["identity"];
      rows.emplace_back(label, row);
    }
    per_label[label] = entry;
  }
  TableData t = interval_table(rows);
  double coverage = 1.0;
  for (auto& [label, e] : per_label.items())
    for (auto& [k, v] : e.items())
      if (v.is_object() && v.contains("ci_coverage")) coverage = std::min(coverage, v["ci_coverage"].get<double>());
  json summary{{"schema", "znslab.summary/2"},
               {"workload", wc.workload},
               {"workload_file", wc.file},
               {"sets", a.sets},
               {"config", wc.config},
               {"created_at", utc_now_iso8601()},
               {"git_rev", build_git_rev()},
               {"provenance", provenance({})},
               {"host", host_info()},
               {"repeats", n},
               {"order", "interleaved: repeat 1 of every label, then repeat 2, ..."},
               {"ci_method",
                "order statistics: [x(j), x(N+1-j)] with the largest j whose binomial coverage is >= 0.95; "
                "[min, max] when N < 6 (ci_coverage gives the real coverage)"},
               {"labels", labels},
               {"allocators", per_label},
               {"table", {{"headers", t.headers}, {"rows", t.rows}}}};
  {
    std::ofstream f(out + "/summary.json");
    f << summary.dump(2) << "\n";
    if (!f) throw RunError("cannot write " + out + "/summary.json: " + std::strerror(errno));
  }
  std::printf("\n%s: %s, %zu label(s) x %d repeat(s), interleaved (%s)\n\n", wc.workload.c_str(),
              wc.file.empty() ? wc.workload.c_str() : wc.file.c_str(), labels.size(), n, out.c_str());
  std::fputs(render_table_as(a.format, t).c_str(), stdout);
  if (a.format == "text") {
    if (n > 1) {
      char cov[64] = "";
      if (n < 6) std::snprintf(cov, sizeof cov, " (N < 6: [min-max], coverage %.1f %%)", coverage * 100.0);
      std::printf("\ncells: median [95 %% interval of the median]%s; ! = noisy (interval wider than +-10 %% "
                  "of the median)\n", cov);
    }
    std::printf("MiB = 2^20 bytes; latencies in ns (individually timed ops, timer overhead included);\n"
                "results: %s/<label>.r<k>.json (each run), %s/<label>.json (median run), %s/summary.json\n",
                out.c_str(), out.c_str(), out.c_str());
  }
  std::fflush(stdout);
  return failures ? 1 : 0;
}

}  // namespace znslab::harness
