// Command-line options shared by `znslab run` and `znslab compare`, parsed
// with CLI11:
//   WORKLOAD.json [--allocator A | --allocators A,B] [--set KEY=VALUE]...
//   [--device URI] [--out PATH] [--repeats N] [--label NAME] [--cpu N]
//   [--format text|md|csv] [--quiet]
// Throws UsageError naming the bad option (CLI boundary); --help fills
// `help_text` and sets `help`. Not thread-safe; called once per process.
#pragma once

#include <string>
#include <vector>

namespace znslab::harness {

struct WorkloadArgs {
  std::string workload;           // the positional WORKLOAD.json (or a bare workload name)
  std::string selector;           // value of --allocator / --allocators
  bool selector_given = false;
  std::vector<std::string> sets;  // --set values, in order
  std::string device;             // --device URI, "" when absent
  std::string out;                // --out / -o, "" when absent
  int repeats = 1;                // --repeats N (>= 1): runs per allocator, each its own process
  std::string label;              // --label NAME, "" = the allocator's name
  int cpu = -1;                   // --cpu N: pin the run(s) to CPU N; -1 = not pinned
  std::string format = "text";    // --format text|md|csv (the printed table)
  bool quiet = false;             // --quiet / -q
  bool help = false;              // -h / --help: help_text holds the usage
  std::string help_text;
};

// `compare` = true: --allocators (a list) instead of --allocator.
// `help_intro`: the paragraph printed under the usage line.
WorkloadArgs parse_workload_args(int argc, char** argv, bool compare, const std::string& help_intro);

// A label is used in file names: [A-Za-z0-9._+-]{1,64}. Throws UsageError.
void check_label(const std::string& label);

}  // namespace znslab::harness
