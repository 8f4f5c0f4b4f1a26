// `znslab run WORKLOAD.json [--allocator NAME] [--set KEY=VALUE]... [--device URI] [--out FILE]`
// Runs one workload on one allocator in this process and writes one result
// JSON (schema znslab.result/1). A peer allocator is loaded by re-executing
// this binary under LD_PRELOAD (harness/peers.h) before anything runs.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "harness/workload_args.h"
#include "harness/allocators.h"
#include "harness/config.h"
#include "harness/peers.h"
#include "harness/registry.h"
#include "harness/result.h"
#include "harness/runner.h"

namespace znslab::harness {
namespace {

const char* kRunHelp =
    "usage: znslab run WORKLOAD.json [--allocator NAME] [--set KEY=VALUE]...\n"
    "                  [--device URI] [--out FILE] [--quiet]\n"
    "\n"
    "Runs one workload on one allocator in this process and writes one result\n"
    "document (JSON, schema znslab.result/1).\n"
    "\n"
    "  WORKLOAD.json      a workload file: {\"workload\": NAME, KEY: VALUE, ...}\n"
    "                     (workloads/churn.json, workloads/alternating.json, ...);\n"
    "                     a bare workload name (\"churn\") runs its defaults\n"
    "  --allocator NAME   temporal-slab (default), glibc, jemalloc, mimalloc, tcmalloc;\n"
    "                     a peer is loaded by re-executing this binary with LD_PRELOAD,\n"
    "                     and the result records the library found in /proc/self/maps\n"
    "  --set KEY=VALUE    override one workload key; VALUE is JSON (2000, true, \"x\")\n"
    "                     or else a plain string (uniform); repeatable; unknown keys\n"
    "                     and wrong types are errors naming the key\n"
    "  --device URI       zoned device for workloads that use one, e.g.\n"
    "                     emu:/tmp/z.img?zones=64&zone_size=64M, zbd:/dev/nvme0n1\n"
    "  --out FILE         result path (default results/<workload>/<UTC time>-<allocator>.json;\n"
    "                     \"-\" writes to stdout)\n"
    "  --quiet            no progress lines on stderr\n"
    "\n"
    "Exit status: 0 ok, 1 run failed, 2 usage or configuration error.\n";

std::string timestamp_compact() {
  std::string s = utc_now_iso8601();  // 2026-11-21T14:05:00Z
  std::string o;
  for (char c : s)
    if (c != '-' && c != ':') o += c;
  return o;  // 20261121T140500Z
}

// Writes `doc` like ResultDoc::write ("-" = stdout).
void write_result(const nlohmann::json& doc, const std::string& out) {
  ResultDoc w("");
  w.doc() = doc;
  w.write(out);
}

int run_main(int argc, char** argv) {
  const WorkloadArgs w = parse_workload_args(argc, argv, "--allocator");
  if (w.help) {
    std::fputs(kRunHelp, stdout);
    return 0;
  }
  // For a re-exec of this same command under LD_PRELOAD.
  std::vector<std::string> self_args{"run"};
  for (int i = 1; i < argc; ++i) self_args.push_back(argv[i]);
  const std::string& workload_arg = w.workload;
  std::string allocator = w.selector, out = w.out;
  const std::string& device = w.device;
  const bool allocator_given = w.selector_given, quiet = w.quiet;
  const std::vector<std::string>& sets = w.sets;

  WorkloadConfig wc = load_workload(workload_arg, sets);
  if (allocator_given) {
    if (!find_allocator(allocator))
      throw UsageError("unknown allocator \"" + allocator + "\" (available: " + allocator_names() + ")");
    // May re-exec this process under LD_PRELOAD; returns when it is right.
    ensure_allocator_process(allocator, self_args);
  }
  if (out.empty())
    out = "results/" + wc.workload + "/" + timestamp_compact() + "-" +
          (allocator.empty() ? std::string(kDefaultAllocator) : allocator) + ".json";

  std::vector<std::string> cmd{"znslab"};
  for (int i = 0; i < argc; ++i) cmd.push_back(argv[i]);
  nlohmann::json doc = run_workload(wc, allocator, device, !quiet, cmd);
  write_result(doc, out);
  if (!quiet && out != "-") std::fprintf(stderr, "result: %s\n", out.c_str());
  return 0;
}

}  // namespace

nlohmann::json run_workload(const WorkloadConfig& wc, const std::string& allocator,
                            const std::string& device_uri, bool progress,
                            const nlohmann::json& command) {
  ResultDoc doc(wc.workload);
  doc.set_config(wc.config);
  doc.doc()["workload_file"] = wc.file.empty() ? nlohmann::json(nullptr) : nlohmann::json(wc.file);
  doc.doc()["command"] = command;
  auto wl = wc.info->make();
  RunContext ctx;
  ctx.config = wc.config;
  ctx.allocator = allocator;
  ctx.device_uri = device_uri;
  ctx.progress = progress;
  ctx.result = &doc;
  wl->run(ctx);
  doc.doc()["finished_at"] = utc_now_iso8601();
  return doc.doc();
}

namespace {
Registrar reg{Command{"run", "run one workload on one allocator, write one result JSON", run_main}};

}  // namespace
}  // namespace znslab::harness
