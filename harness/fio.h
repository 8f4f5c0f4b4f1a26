// The fio baseline: runs fio (the physical limit of the I/O path here) on a
// regular file with the same pattern as a zone-write run, and returns its
// figures. fio is run as a child process with --output-format=json.
// Thread-safety: reentrant (no shared state).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace znslab::harness {

struct FioJob {
  std::string filename;      // a file on the filesystem to compare with (created, removed after)
  uint64_t block_size = 0;   // bytes (--bs)
  unsigned iodepth = 1;      // --iodepth, per job
  unsigned numjobs = 1;      // one job per concurrently written zone
  uint64_t zone_size = 0;    // --zonerange (bytes between zone starts)
  uint64_t zone_capacity = 0;  // --zonesize (bytes written per zone)
  uint64_t job_size = 0;     // --size per job (bytes of file each job covers)
  uint64_t io_bytes = 0;     // --io_size per job
};

// Figures of one fio run. ok=false with `error` when fio is missing or failed.
struct FioResult {
  bool ok = false;
  std::string error;
  std::vector<std::string> argv;   // the command that ran
  std::string version;             // "fio-3.33"
  double throughput_mib_s = 0;     // write bw, MiB/s (2^20 bytes)
  double iops = 0;
  uint64_t ios = 0;
  uint64_t bytes = 0;
  double runtime_s = 0;
  double cpu_usr_pct = 0, cpu_sys_pct = 0;  // fio's per-job CPU (percent of one CPU), summed over jobs
  double cpu_us_per_io = 0;        // (usr + sys) CPU time / ios, microseconds
  nlohmann::json latency_ns;       // completion latency {"p50","p90","p99","p999","max"} (clat_ns)
  nlohmann::json to_json() const;
};

// Builds the fio command for `job` (--ioengine=io_uring --direct=1
// --rw=write --zonemode=strided --output-format=json ...).
std::vector<std::string> fio_command(const FioJob& job);
// Runs it, parses the JSON, removes the file afterwards.
FioResult run_fio(const FioJob& job);

}  // namespace znslab::harness
