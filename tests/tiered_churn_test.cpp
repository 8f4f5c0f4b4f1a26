// [tiered] tests of the tiered-churn workload (issue 11, docs/tiered.md):
// the schedule holds live_multiple x budget of requested bytes, the RSS
// fields mean what the docs say, every accessed object is read back intact
// across spill and fault-back, and bad schedules are refused naming the key.
#include <sched.h>

#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "harness/config.h"
#include "harness/provenance.h"
#include "harness/registry.h"
#include "harness/runner.h"
#include "harness/schema.h"
#include "tests/temp_dir.h"

using namespace znslab::harness;
using nlohmann::json;
using znslab::testutil::TempDir;

namespace {

json run_tiered(std::vector<std::string> sets, const std::string& device = "") {
  WorkloadConfig wc = load_workload("tiered-churn", sets);
  json doc = run_workload(wc, "", device, false);
  auto errs = result_schema_errors(doc);
  for (const auto& e : errs) UNSCOPED_INFO(e);
  CHECK(errs.empty());
  return doc;
}

}  // namespace

TEST_CASE("tiered-churn: live requested bytes average live_multiple x the budget", "[tiered]") {
  // No spill: the allocator is not involved in the schedule.
  json doc = run_tiered({"slab_spill=none", "slab_dram_budget_bytes=2M", "live_multiple=3", "epochs=24",
                         "samples_per_epoch=8"});
  double sum = 0;
  int n = 0;
  for (const auto& s : doc["samples"])
    if (s["phase"] == "epoch" && s["epoch"].get<int>() >= 8) {  // past the first full lifetime cycle
      sum += s["requested_bytes"].get<double>();
      ++n;
    }
  REQUIRE(n > 0);
  const double mean = sum / n, want = 3.0 * 2 * 1048576;
  CHECK(mean > 0.8 * want);
  CHECK(mean < 1.2 * want);
  CHECK(doc["summary"]["corrupt_objects"] == 0);
  CHECK(doc["summary"]["counters"]["reads"].get<uint64_t>() > 0);
  CHECK(doc["summary"]["counters"]["writes"].get<uint64_t>() > 0);
  CHECK(doc["device"].is_null());  // slab_spill=none opens no device
}

TEST_CASE("tiered-churn: rss_over_budget_pct is 0 when RSS stays under baseline + budget, large when it grows",
          "[tiered]") {
  json small = run_tiered({"slab_spill=none", "slab_dram_budget_bytes=16M", "live_multiple=0.1", "epochs=8"});
  CHECK(small["summary"]["rss_over_budget_pct"].get<double>() == 0.0);
  CHECK(small["summary"]["baseline_rss_bytes"].get<uint64_t>() > 0);
  CHECK(small["summary"]["peak_rss_bytes"] >= small["summary"]["baseline_rss_bytes"]);
  // No spill with 4 x the budget live: RSS passes the budget by far.
  json big = run_tiered({"slab_spill=none", "slab_dram_budget_bytes=2M", "live_multiple=4", "epochs=12"});
  CHECK(big["summary"]["rss_over_budget_pct"].get<double>() > 100.0);
}

TEST_CASE("tiered-churn: objects read back intact through epoch and page spill with mispredicted lifetimes",
          "[tiered]") {
  TempDir dir;
  for (const char* unit : {"epoch", "page"}) {
    INFO("slab_spill_unit=" << unit);
    json doc = run_tiered({"slab_spill=zns", std::string("slab_spill_unit=") + unit, "slab_dram_budget_bytes=2M",
                           "live_multiple=3", "epochs=16", "mispredicted_fraction=0.05", "device_dir=\"" + dir.path() + "\""});
    const json& s = doc["summary"];
    CHECK(s["corrupt_objects"] == 0);
    CHECK(s["counters"]["reads"].get<uint64_t>() > 1000);
    // 3 x the budget live: slabs went to the device and came back.
    CHECK(s["spilled_bytes"].get<uint64_t>() > 0);
    CHECK(s["faultbacks"].get<uint64_t>() > 0);
    CHECK(s["write_amplification"].get<double>() >= 1.0);
    CHECK(doc["device"]["default_emulator"] == true);
  }
  // The default emulator file is removed after the run.
  CHECK(std::filesystem::is_empty(dir.path()));
}

TEST_CASE("tiered-churn: schedules the 16-epoch ring cannot hold are refused naming the key", "[tiered]") {
  CHECK_THROWS_WITH(load_workload("tiered-churn", {"lifetimes=[1,12]", "mispredict_max_extra=4"}),
                    Catch::Contains("lifetimes"));
  CHECK_THROWS_WITH(load_workload("tiered-churn", {"max_size=1024"}), Catch::Contains("max_size"));
  CHECK_THROWS_WITH(load_workload("tiered-churn", {"slab_dram_budget_bytes=0"}),
                    Catch::Contains("slab_dram_budget_bytes"));
}

TEST_CASE("tiered-churn: ops_per_sec times the operations without the RSS samples taken between them", "[tiered]") {
  json doc = run_tiered({"slab_spill=none", "slab_dram_budget_bytes=2M", "live_multiple=2", "epochs=8",
                         "samples_per_epoch=32"});
  const json& s = doc["summary"];
  const uint64_t ops_ns = s["ops_ns"].get<uint64_t>(), sampling_ns = s["sampling_ns"].get<uint64_t>();
  REQUIRE(ops_ns > 0);
  CHECK(sampling_ns > 0);  // 8 x 32 samples inside the loop
  const json& k = s["counters"];
  const double ops = k["allocs"].get<double>() + k["frees"].get<double>() + k["accesses"].get<double>();
  CHECK(s["ops_per_sec"].get<double>() == Approx(ops * 1e9 / double(ops_ns)));
  // The loop lies between the baseline sample and the end sample: its
  // operations and its samples both fit in that span.
  const json& rows = doc["samples"];
  const uint64_t span = rows.back()["t_ns"].get<uint64_t>() - rows.front()["t_ns"].get<uint64_t>();
  CHECK(ops_ns + sampling_ns <= span);
}

TEST_CASE("tiered-churn: io_worker_cpus lists where the run thread's io_uring workers may run (one CPU under --cpu)",
          "[tiered]") {
  TempDir dir;
  // On a thread of its own, pinned as `znslab run --cpu N` pins a run
  // (pin_to_cpu) before the workload starts: a fresh task has no io-wq
  // workers yet, so every worker its buffered zone writes start inherits
  // the one-CPU mask.
  json doc;
  int cpu = -1;
  std::thread t([&] {
    cpu = sched_getcpu();
    if (cpu < 0) return;
    pin_to_cpu(cpu);
    doc = run_workload(load_workload("tiered-churn", {"slab_spill=zns", "slab_dram_budget_bytes=2M", "live_multiple=2",
                                                      "epochs=8", "samples_per_epoch=2", "device_dir=" + dir.path()}),
                       "", "", false);
  });
  t.join();
  REQUIRE(cpu >= 0);
  for (const auto& e : result_schema_errors(doc)) FAIL_CHECK(e);
  const json& s = doc["summary"];
  CHECK(s["spilled_bytes"].get<uint64_t>() > 0);  // zone writes ran (buffered: handed to io-wq workers)
  for (const auto& w : s["io_worker_cpus"]) CHECK(w.get<std::string>() == std::to_string(cpu));
}
