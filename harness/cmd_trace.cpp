// `znslab trace info FILE [--json]`: what an allocation trace holds
// (src/trace/trace_stats.h; format: docs/trace.md). A corrupt or truncated
// file is refused with the byte offset of the failing structure (exit 1).
#include <cstdio>
#include <string>

#include "harness/cli.h"
#include "harness/registry.h"
#include "harness/table.h"
#include "src/trace/trace_format.h"
#include "src/trace/trace_stats.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

const char* kTraceIntro =
    "`znslab trace info FILE`: reads and validates an allocation trace recorded by\n"
    "build/libznstrace.so (ZNSTRACE_OUT=FILE LD_PRELOAD=build/libznstrace.so PROGRAM ...)\n"
    "and prints: operations by kind, threads, peak live bytes and objects, the size\n"
    "histogram, lifetime histograms (in operations and in ns) and the top call sites\n"
    "by bytes.";

std::string mib(uint64_t b) {
  char s[32];
  std::snprintf(s, sizeof s, "%.2f MiB", double(b) / 1048576.0);
  return s;
}

void print_text(const json& j) {
  std::printf("program   %s\n", j["program"].get<std::string>().c_str());
  std::string args;
  for (auto& a : j["args"]) args += (args.empty() ? "" : " ") + a.get<std::string>();
  std::printf("args      %s\n", args.c_str());
  std::printf("pid       %lu   events %lu   frames %lu   duration %.3f s\n", j["pid"].get<unsigned long>(),
              j["events"].get<unsigned long>(), j["frames"].get<unsigned long>(),
              j["duration_ns"].get<double>() / 1e9);
  std::printf("\noperations\n");
  for (auto& [k, v] : j["ops"].items()) std::printf("  %-15s %12lu\n", k.c_str(), v.get<unsigned long>());
  std::printf("\nthreads   %zu\n", j["threads"].size());
  for (auto& t : j["threads"])
    std::printf("  tid %-8lu %12lu events\n", t["tid"].get<unsigned long>(), t["events"].get<unsigned long>());
  std::printf("\npeak live %s in %lu objects; at end %s in %lu objects (%lu never freed)\n",
              mib(j["peak_live_bytes"]).c_str(), j["peak_live_objects"].get<unsigned long>(),
              mib(j["end_live_bytes"]).c_str(), j["end_live_objects"].get<unsigned long>(),
              j["never_freed"].get<unsigned long>());
  std::printf("allocations <= 768 B: %.1f %%\n", j["small_allocs_pct"].get<double>());
  std::printf("\nsize histogram (bytes <=)\n");
  for (auto& b : j["size_histogram"])
    std::printf("  %12lu %12lu allocs %14lu bytes\n", b["le_bytes"].get<unsigned long>(),
                b["count"].get<unsigned long>(), b["bytes"].get<unsigned long>());
  std::printf("\nlifetime (operations <=)\n");
  for (auto& b : j["lifetime_ops_histogram"])
    std::printf("  %12lu %12lu\n", b["le"].get<unsigned long>(), b["count"].get<unsigned long>());
  std::printf("\nlifetime (ns <=)\n");
  for (auto& b : j["lifetime_ns_histogram"])
    std::printf("  %14lu %12lu\n", b["le"].get<unsigned long>(), b["count"].get<unsigned long>());
  std::printf("\ntop call sites by bytes (of %lu)\n", j["callsites"].get<unsigned long>());
  std::vector<std::vector<std::string>> rows;
  for (auto& c : j["top_callsites"]) {
    char id[16], life[32];
    std::snprintf(id, sizeof id, "%08x", c["callsite"].get<unsigned>());
    std::snprintf(life, sizeof life, "%.0f", c["mean_lifetime_ns"].get<double>());
    rows.push_back({id, std::to_string(c["allocs"].get<uint64_t>()), std::to_string(c["bytes"].get<uint64_t>()),
                    std::to_string(c["freed"].get<uint64_t>()), life});
  }
  std::fputs(render_table({"callsite", "allocs", "bytes", "freed", "mean lifetime ns"}, rows).c_str(), stdout);
}

int trace_main(int argc, char** argv) {
  std::string sub, file;
  bool as_json = false;
  CLI::App app{kTraceIntro, "znslab trace"};
  app.add_option("SUBCOMMAND", sub, "info")->required()->check(CLI::IsMember({"info"}));
  app.add_option("FILE", file, "the trace file")->required();
  app.add_flag("--json", as_json, "print the statistics as one JSON object");
  app.footer("Exit status: 0 ok, 1 the file is refused (message names the offset), 2 usage.");
  if (!cli_parse(app, argc, argv)) return 0;
  trace::Trace t;
  trace::TraceError err;
  if (!trace::read_trace(file, t, err)) {
    std::fprintf(stderr, "znslab trace: refused: %s\n", err.to_string(file).c_str());
    return 1;
  }
  json j = trace::trace_info(t);
  if (as_json)
    std::printf("%s\n", j.dump(2).c_str());
  else
    print_text(j);
  return 0;
}

Registrar reg{Command{"trace", "allocation traces: `trace info FILE` (docs/trace.md)", trace_main}};

}  // namespace
}  // namespace znslab::harness
