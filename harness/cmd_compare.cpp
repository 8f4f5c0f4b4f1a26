// `znslab compare WORKLOAD.json --allocators a,b,... [--repeats N] [--set K=V]... [--out DIR]`
// Runs the workload on every allocator, each run in its own child process
// (so the RSS of one allocator never shares a process with another), N times
// interleaved; writes DIR/<label>.r<k>.json, DIR/<label>.json (the median
// run), DIR/summary.json (medians with 95 % intervals) and prints the table.
// See harness/repeats.h.
#include <cstdio>
#include <string>
#include <vector>

#include "harness/allocators.h"
#include "harness/registry.h"
#include "harness/repeats.h"
#include "harness/workload_args.h"

namespace znslab::harness {
namespace {

const char* kCompareIntro =
    "Runs WORKLOAD.json on several allocators, each run in its own child process\n"
    "(`znslab run ... --allocator A`; peers under LD_PRELOAD), --repeats times,\n"
    "interleaved (A B C A B C ...), then prints medians with 95 % intervals.\n"
    "Writes DIR/<label>.r<k>.json per run, DIR/<label>.json (the run nearest the\n"
    "median) and DIR/summary.json (schema znslab.summary/2, docs/harness.md).";

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else if (c != ' ') {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

int compare_main(int argc, char** argv) {
  const WorkloadArgs w = parse_workload_args(argc, argv, /*compare=*/true, kCompareIntro);
  if (w.help) {
    std::fputs(w.help_text.c_str(), stdout);
    return 0;
  }
  const std::vector<std::string> allocators =
      split_list(w.selector_given ? w.selector : "temporal-slab,glibc,jemalloc,mimalloc,tcmalloc");
  if (allocators.empty()) throw UsageError("--allocators is empty");
  for (const auto& a : allocators)
    if (!find_allocator(a))
      throw UsageError("unknown allocator \"" + a + "\" (available: " + allocator_names() + ")");
  if (w.out == "-") throw UsageError("--out -: compare writes a folder, not stdout");
  return run_repeated(w, allocators);
}

Registrar reg{Command{"compare",
                      "run one workload on several allocators, N interleaved repeats, one process each; "
                      "medians with 95 % intervals",
                      compare_main}};

}  // namespace
}  // namespace znslab::harness
