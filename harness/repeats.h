// Repeated, interleaved runs (issue 8, section 2): what `znslab compare` and
// `znslab run --repeats N` do.
//
// Every (label, repeat) runs as its own child process (`znslab run ...`,
// peers under LD_PRELOAD), in the order r1: A B C, r2: A B C, ... so that a
// drift of the machine spreads over every label instead of landing on one.
// Files in DIR:
//   <label>.r<k>.json   each run (schema znslab.result/1), k = 1..N
//   <label>.json        a copy of the run nearest the median of the primary
//                       metric (primary_metric()); plots and `check` read it
//   summary.json        schema znslab.summary/2: per label its runs (status,
//                       error, seconds) and, for every numeric summary metric
//                       and latency percentile, {median, ci95_low, ci95_high,
//                       ci_coverage, values} (harness/aggregate.h), plus the table
// A label is the allocator's name unless --label is given (then <label> for
// one allocator, <label>-<allocator> for several).
// Thread-safety: call from the main thread; forks children one at a time.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/workload_args.h"

namespace znslab::harness {

// The summary metric a label's median run is chosen by: the first present of
// ns_per_object, ops_per_sec, throughput_mib_s, write_amplification,
// pin_unpin_ns; "" when none is.
std::string primary_metric(const nlohmann::json& result);

// Runs `args` for each allocator in `allocators` ("" = let the workload
// choose) `args.repeats` times. Returns the exit status (0 all ok, 1 a run
// failed). Throws UsageError/ConfigError before any run on bad input (an
// --out folder that already holds results, a bad workload key).
int run_repeated(const WorkloadArgs& args, const std::vector<std::string>& allocators);

}  // namespace znslab::harness
