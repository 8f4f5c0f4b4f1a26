// Running a workload in this process (what `znslab run` does after it has
// made sure the right malloc library is loaded). Used by cmd_run.cpp and by
// the [harness] tests.
// Thread-safety: one run at a time per process (allocators and samplers
// measure the whole process).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "harness/config.h"

namespace znslab::harness {

// Runs the resolved workload `wc` on `allocator` ("" = the workload's
// default) and returns the finished result document (schema
// znslab.result/1). Does NOT re-exec for peers: the caller must have called
// ensure_allocator_process() first (a peer's describe() refuses otherwise).
// Throws RunError/ConfigError from the workload.
// `label` names the configuration in tables and plots ("" = the allocator);
// `pinned_cpu` is recorded in noise.pinned_cpu (-1 = not pinned).
nlohmann::json run_workload(const WorkloadConfig& wc, const std::string& allocator,
                            const std::string& device_uri, bool progress,
                            const nlohmann::json& command = nullptr, const std::string& label = "",
                            int pinned_cpu = -1);

// Refuses (UsageError naming the path) an explicit --out FILE that cannot be
// written: a folder, a missing or unwritable parent folder. "-" is stdout.
void check_out_file(const std::string& out);
// Creates DIR if needed and reserves DIR/STEM.json (O_EXCL; STEM-1.json, ...
// when taken), so two runs never write the same file. Throws RunError.
std::string new_result_path(const std::string& dir, const std::string& stem);

}  // namespace znslab::harness
