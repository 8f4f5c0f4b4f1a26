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
nlohmann::json run_workload(const WorkloadConfig& wc, const std::string& allocator,
                            const std::string& device_uri, bool progress,
                            const nlohmann::json& command = nullptr);

}  // namespace znslab::harness
