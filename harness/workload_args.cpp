#include "harness/workload_args.h"

#include <CLI/CLI.hpp>

#include "harness/registry.h"

namespace znslab::harness {

void check_label(const std::string& label) {
  if (label.empty() || label.size() > 64)
    throw UsageError("--label must have 1 to 64 characters, got \"" + label + "\"");
  for (char c : label) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '+' || c == '-';
    if (!ok)
      throw UsageError("--label \"" + label + "\": only letters, digits and . _ + - (it names files)");
  }
}

WorkloadArgs parse_workload_args(int argc, char** argv, bool compare, const std::string& help_intro) {
  WorkloadArgs w;
  CLI::App app{help_intro, compare ? "znslab compare" : "znslab run"};
  app.get_formatter()->column_width(26);
  app.add_option("WORKLOAD", w.workload,
                 "workload file {\"workload\": NAME, KEY: VALUE, ...} or a bare workload name")
      ->required();
  if (compare) {
    app.add_option("--allocators", w.selector,
                   "comma-separated allocators (default temporal-slab,glibc,jemalloc,mimalloc,tcmalloc)");
  } else {
    app.add_option("--allocator", w.selector,
                   "temporal-slab (default), glibc, jemalloc, mimalloc, tcmalloc; a peer is loaded "
                   "by re-executing under LD_PRELOAD and proven from /proc/self/maps");
  }
  app.add_option("--set", w.sets,
                 "override one workload key (repeatable); VALUE is JSON (2000, true, \"x\") or a "
                 "plain string; byte keys take 64M; see `znslab keys WORKLOAD`")
      ->allow_extra_args(false);
  app.add_option("--device", w.device, "zoned device URI for workloads that use one "
                                       "(emu:PATH?zones=N&zone_size=64M, zbd:/dev/nvme0n1, nvme:/dev/ng0n1)");
  app.add_option("-o,--out", w.out,
                 compare ? "result folder (default results/<workload>/<UTC time>/; created; must hold no results)"
                         : "result file (\"-\" = stdout; default results/<workload>/<UTC time with ns>-<label>.json, never overwritten); "
                           "with --repeats > 1 a folder as for compare");
  app.add_option("--repeats", w.repeats,
                 "runs per allocator, each in its own process, interleaved (A B A B ...); summary "
                 "gives medians with 95 % intervals")
      ->check(CLI::Range(1, 1000));
  app.add_option("--label", w.label,
                 compare ? "prefix of the run labels (<label>-<allocator>); default: the allocator names"
                         : "name of this configuration in tables and plot legends (default: the allocator)");
  app.add_option("--cpu", w.cpu, "pin the run(s) to this CPU (sched_setaffinity)")->check(CLI::NonNegativeNumber);
  app.add_option("--format", w.format, "printed table: text, md or csv")
      ->check(CLI::IsMember({"text", "md", "csv"}));
  app.add_flag("-q,--quiet", w.quiet, "no progress lines on stderr");
  app.footer(
      "Exit status: 0 ok, 1 a run failed, 2 usage or configuration error.\n"
      "Results: JSON, schema znslab.result/1 (docs/harness.md).");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    w.help = true;
    w.help_text = app.help();
    return w;
  } catch (const CLI::ParseError& e) {
    throw UsageError(e.what());
  }
  w.selector_given = app.count(compare ? "--allocators" : "--allocator") > 0;
  if (!w.label.empty()) check_label(w.label);
  return w;
}

}  // namespace znslab::harness
