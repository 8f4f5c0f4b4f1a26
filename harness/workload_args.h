// Command-line options shared by `znslab run` and `znslab compare`:
//   WORKLOAD.json [--<selector> V] [--set KEY=VALUE]... [--device URI] [--out PATH] [--quiet]
// where the selector is --allocator (run) or --allocators (compare); both
// also accept --<selector>=V. Throws UsageError naming the bad option (CLI
// boundary). Not thread-safe; called once per process.
#pragma once

#include <string>
#include <vector>

#include "harness/registry.h"

namespace znslab::harness {

struct WorkloadArgs {
  std::string workload;          // the positional WORKLOAD.json (or a bare workload name)
  std::string selector;          // value of --allocator / --allocators
  bool selector_given = false;
  std::vector<std::string> sets; // --set values, in order
  std::string device;            // --device URI, "" when absent
  std::string out;               // --out / -o, "" when absent
  bool quiet = false;            // --quiet / -q
  bool help = false;             // -h / --help (the caller prints its help and exits 0)
};

inline WorkloadArgs parse_workload_args(int argc, char** argv, const std::string& selector_opt) {
  WorkloadArgs w;
  const std::string selector_eq = selector_opt + "=";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const std::string& opt) -> std::string {
      if (i + 1 >= argc) throw UsageError(opt + " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      w.help = true;
      return w;
    } else if (a == selector_opt) {
      w.selector = value(selector_opt);
      w.selector_given = true;
    } else if (a.rfind(selector_eq, 0) == 0) {
      w.selector = a.substr(selector_eq.size());
      w.selector_given = true;
    } else if (a == "--set") {
      w.sets.push_back(value("--set"));
    } else if (a == "--device") {
      w.device = value("--device");
    } else if (a == "--out" || a == "-o") {
      w.out = value("--out");
    } else if (a == "--quiet" || a == "-q") {
      w.quiet = true;
    } else if (!a.empty() && a[0] == '-') {
      throw UsageError("unknown option " + a);
    } else if (w.workload.empty()) {
      w.workload = a;
    } else {
      throw UsageError("more than one workload file (" + w.workload + ", " + a + ")");
    }
  }
  if (w.workload.empty()) throw UsageError("missing WORKLOAD.json");
  return w;
}

}  // namespace znslab::harness
