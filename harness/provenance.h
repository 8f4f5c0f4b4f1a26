// Provenance and noise records of a run (issue 8, section 2): what ran, how
// it was built, on which CPU, under which allocator-relevant environment, and
// how loaded the machine was. Every result carries `provenance` and `noise`.
//
//   provenance.git_rev   the commit as `git rev-parse --short HEAD` prints it,
//                        "-dirty" appended when tracked files differed from HEAD
//                        at build time; embedded by `make` (build/gen/build_info.h,
//                        rewritten whenever HEAD or the dirty state changes), so
//                        it is right wherever the binary runs; "unknown" when the
//                        build had no git checkout
//   provenance.build     {"compiler", "flags", "sanitizer"|null}
//   provenance.cpu_model /proc/cpuinfo "model name" of the first CPU
//   provenance.argv      the command line, argv[0] included
//   provenance.env       each allocator-relevant environment variable that is set,
//                        under its own name (LD_PRELOAD, MALLOC_CONF,
//                        JE_MALLOC_CONF, MIMALLOC_*, TCMALLOC_*, GLIBC_TUNABLES,
//                        MALLOC_*, ZNSLAB_SLAB_*)
//   noise.{before,after} {"loadavg": [1, 5, 15 min], "cpu": CPU the main thread
//                        was on, "t": ISO 8601 time}; noise.affinity: the CPUs the
//                        process may run on (sched_getaffinity); noise.pinned_cpu:
//                        --cpu N, or null
//
// Thread-safety: the functions read process state and are reentrant.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace znslab::harness {

// The embedded revision ("9cd1fbe", "9cd1fbe-dirty" or "unknown").
std::string build_git_rev();
// {"compiler": "g++ (Debian 12.2.0-14) 12.2.0", "flags": "...", "sanitizer": "asan"|null}
nlohmann::json build_info();
// "AMD EPYC 7B13" or "unknown".
std::string cpu_model();
// Allocator-relevant environment variables that are set (see above).
nlohmann::json allocator_env();
// {"git_rev","build","cpu_model","argv","env"}; an empty `argv` records
// this process's command line (/proc/self/cmdline).
nlohmann::json provenance(const std::vector<std::string>& argv);
// {"loadavg": [..3], "cpu": n, "t": "..."}.
nlohmann::json noise_snapshot();
// The CPUs this process may run on, ascending.
std::vector<int> affinity_cpus();
// Restricts the calling process (all future threads) to CPU `cpu`
// (sched_setaffinity). Throws UsageError naming the CPU when it is not
// online or not allowed.
void pin_to_cpu(int cpu);

}  // namespace znslab::harness
