// `znslab run WORKLOAD.json [--allocator NAME] [--set KEY=VALUE]... [--device URI]
//  [--out FILE] [--label NAME] [--cpu N] [--repeats N]`
// Runs one workload on one allocator in this process and writes one result
// JSON (schema znslab.result/1). A peer allocator is loaded by re-executing
// this binary under LD_PRELOAD (harness/peers.h) before anything runs. With
// --repeats N > 1 it runs N child processes instead (harness/repeats.h).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "harness/allocators.h"
#include "harness/config.h"
#include "harness/peers.h"
#include "harness/provenance.h"
#include "harness/registry.h"
#include "harness/repeats.h"
#include "harness/result.h"
#include "harness/runner.h"
#include "harness/workload_args.h"

namespace znslab::harness {
namespace {

namespace fs = std::filesystem;

const char* kRunIntro =
    "Runs one workload on one allocator in this process and writes one result\n"
    "document (JSON, schema znslab.result/1; docs/harness.md lists every field).";

// 20261121T140500.123456789Z: two runs started in the same second differ.
std::string timestamp_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm g{};
  gmtime_r(&ts.tv_sec, &g);
  char buf[48];
  size_t n = strftime(buf, sizeof buf, "%Y%m%dT%H%M%S", &g);
  std::snprintf(buf + n, sizeof buf - n, ".%09ldZ", ts.tv_nsec);
  return buf;
}

}  // namespace

void check_out_file(const std::string& out) {
  if (out == "-") return;
  std::error_code ec;
  if (fs::is_directory(out, ec))
    throw UsageError("--out " + out + ": is a folder; give a file path (or use --repeats/compare for a folder)");
  fs::path parent = fs::path(out).parent_path();
  if (parent.empty()) parent = ".";
  if (!fs::exists(parent, ec))
    throw UsageError("--out " + out + ": folder " + parent.string() + " does not exist (create it first)");
  if (!fs::is_directory(parent, ec)) throw UsageError("--out " + out + ": " + parent.string() + " is not a folder");
  if (access(parent.c_str(), W_OK) != 0)
    throw UsageError("--out " + out + ": folder " + parent.string() + " is not writable: " + std::strerror(errno));
  if (fs::exists(out, ec) && access(out.c_str(), W_OK) != 0)
    throw UsageError("--out " + out + ": not writable: " + std::strerror(errno));
}

std::string new_result_path(const std::string& dir, const std::string& stem) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw RunError("cannot create result folder " + dir + ": " + ec.message());
  for (int k = 0; k < 1000; ++k) {
    std::string p = dir + "/" + stem + (k ? "-" + std::to_string(k) : "") + ".json";
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::close(fd);
      return p;  // reserved: nobody else takes this name
    }
    if (errno != EEXIST) throw RunError("cannot create result " + p + ": " + std::strerror(errno));
  }
  throw RunError("cannot find a free result name in " + dir);
}

namespace {

int run_main(int argc, char** argv) {
  const WorkloadArgs w = parse_workload_args(argc, argv, /*compare=*/false, kRunIntro);
  if (w.help) {
    std::fputs(w.help_text.c_str(), stdout);
    return 0;
  }
  if (w.repeats > 1) {
    if (w.out == "-") throw UsageError("--out -: --repeats writes a folder, not stdout");
    if (w.selector_given && !find_allocator(w.selector))
      throw UsageError("unknown allocator \"" + w.selector + "\" (available: " + allocator_names() + ")");
    return run_repeated(w, {w.selector_given ? w.selector : std::string()});
  }
  // For a re-exec of this same command under LD_PRELOAD.
  std::vector<std::string> self_args{"run"};
  for (int i = 1; i < argc; ++i) self_args.push_back(argv[i]);

  WorkloadConfig wc = load_workload(w.workload, w.sets);
  if (!w.device.empty() && !wc.info->uses_device)
    throw UsageError("--device: workload " + wc.workload + " uses no zoned device");
  if (!w.out.empty()) check_out_file(w.out);  // before the run, not after it
  if (w.cpu >= 0) pin_to_cpu(w.cpu);
  std::string allocator = w.selector;
  if (w.selector_given) {
    if (!find_allocator(allocator))
      throw UsageError("unknown allocator \"" + allocator + "\" (available: " + allocator_names() + ")");
    ensure_allocator_process(allocator, self_args);  // may re-exec under LD_PRELOAD
  }
  const std::string who =
      !allocator.empty() ? allocator : wc.info->uses_allocator ? std::string(kDefaultAllocator) : wc.workload;
  const std::string label = w.label.empty() ? who : w.label;
  std::string out = w.out;
  if (out.empty()) out = new_result_path("results/" + wc.workload, timestamp_ns() + "-" + label);

  std::vector<std::string> cmd{"znslab"};
  for (int i = 0; i < argc; ++i) cmd.push_back(argv[i]);
  nlohmann::json doc = run_workload(wc, allocator, w.device, !w.quiet, cmd, label, w.cpu);
  ResultDoc writer("");
  writer.doc() = std::move(doc);
  writer.write(out);
  if (!w.quiet && out != "-") std::fprintf(stderr, "result: %s\n", out.c_str());
  return 0;
}

}  // namespace

nlohmann::json run_workload(const WorkloadConfig& wc, const std::string& allocator,
                            const std::string& device_uri, bool progress,
                            const nlohmann::json& command, const std::string& label, int pinned_cpu) {
  ResultDoc doc(wc.workload);
  doc.set_config(wc.config);
  const std::string who =
      !allocator.empty() ? allocator : wc.info->uses_allocator ? std::string(kDefaultAllocator) : wc.workload;
  doc.doc()["label"] = label.empty() ? who : label;
  doc.doc()["workload_file"] = wc.file.empty() ? nlohmann::json(nullptr) : nlohmann::json(wc.file);
  doc.doc()["command"] = command;
  std::vector<std::string> argv;
  if (command.is_array())
    for (const auto& c : command)
      if (c.is_string()) argv.push_back(c.get<std::string>());
  doc.doc()["provenance"] = provenance(argv);
  nlohmann::json noise{{"before", noise_snapshot()},
                       {"affinity", affinity_cpus()},
                       {"pinned_cpu", pinned_cpu >= 0 ? nlohmann::json(pinned_cpu) : nlohmann::json(nullptr)}};
  auto wl = wc.info->make();
  RunContext ctx;
  ctx.config = wc.config;
  ctx.allocator = allocator;
  ctx.device_uri = device_uri;
  ctx.progress = progress;
  ctx.result = &doc;
  wl->run(ctx);
  noise["after"] = noise_snapshot();
  doc.doc()["noise"] = std::move(noise);
  doc.doc()["finished_at"] = utc_now_iso8601();
  return doc.doc();
}

namespace {
Registrar reg{Command{"run", "run one workload on one allocator, write one result JSON", run_main}};
}  // namespace
}  // namespace znslab::harness
