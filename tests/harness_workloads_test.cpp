// [harness] tests of the one runner's contract: every shipped workload
// produces a valid result at a small size, provenance and labels are
// recorded, numeric edge cases of workload files and --set give clean
// errors, an explicit --out is checked before the run, and the repeat table
// shows medians with intervals.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "harness/aggregate.h"
#include "harness/config.h"
#include "harness/provenance.h"
#include "harness/registry.h"
#include "harness/repeats.h"
#include "harness/result.h"
#include "harness/runner.h"
#include "harness/schema.h"
#include "harness/table.h"
#include "tests/skip.h"
#include "tests/temp_dir.h"

using namespace znslab::harness;
using nlohmann::json;
using znslab::testutil::TempDir;

namespace {

// Small settings per workload: every file in workloads/ must have an entry
// here, so that a new workload is covered by the validity test.
const std::map<std::string, std::vector<std::string>>& small_sets() {
  static const std::map<std::string, std::vector<std::string>> m = {
      {"churn", {"cycles=4", "objects_per_cycle=2000", "idle_ms_before_sample=0", "sample_interval_ms=5"}},
      {"alternating", {"steps=20000", "warmup_steps=1000", "live_slots=256"}},
      {"zone-write", {"total_bytes=16M", "repeats=1", "fio=\"off\""}},
      {"zone-churn", {"write_factor=3"}},
      {"segment-scale", {"records=20000", "pin_batches=500", "verify_records=500", "sample_every=5000"}},
      {"overflow-spill", {"initial_bytes=4M", "max_bytes=64M", "fill_bytes=8M", "readers=1"}},
      {"pager-churn", {"pages=16384", "sub_pages=4096", "commit_every=1000", "churn_ops=20000",
                       "timing_batches=1000", "sync=\"none\""}},
      {"varslot-growth", {"guests=1", "ops=20000", "live_bytes=32M"}},
      {"tiered-churn", {"slab_dram_budget_bytes=2M", "epochs=12", "samples_per_epoch=2", "live_multiple=2",
                        "accesses_per_object=0.2"}},
  };
  return m;
}

// Workloads whose small run needs an input this test cannot make, and the
// test that validates their result instead.
const std::map<std::string, std::string>& validated_elsewhere() {
  static const std::map<std::string, std::string> m = {
      {"trace", "a recorded trace: tests/trace_test.cpp \"replay fidelity\" checks its result's schema"},
  };
  return m;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("every workload in workloads/ gives a schema-valid result at a small size", "[harness][workloads]") {
  if (!std::filesystem::exists("workloads")) ZNSLAB_SKIP("workloads/ not found (run from the repository root)");
  std::vector<std::string> files;
  for (auto& e : std::filesystem::directory_iterator("workloads"))
    if (e.path().extension() == ".json") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 5);
  for (const auto& f : files) {
    std::ifstream in(f);
    const std::string name = json::parse(in).value("workload", "");
    INFO(f << " (workload " << name << ")");
    if (validated_elsewhere().count(name)) {
      REQUIRE(find_workload(name) != nullptr);
      continue;
    }
    auto it = small_sets().find(name);
    REQUIRE(it != small_sets().end());  // add the workload to small_sets()
    WorkloadConfig wc = load_workload(f, it->second);
    TempDir dir;
    std::string device;
    if (wc.info->uses_device) device = "emu:" + dir.file("dev.img") + "?zones=16&zone_size=4M";
    json doc = run_workload(wc, "", device, false, json::array({"znslab", "run", f}), "small");
    auto errs = result_schema_errors(doc);
    for (const auto& e : errs) UNSCOPED_INFO(e);
    CHECK(errs.empty());
    CHECK(doc["label"] == "small");
    CHECK(doc["provenance"]["git_rev"] == build_git_rev());
    CHECK(doc["noise"]["before"]["loadavg"].is_array());
  }
}

TEST_CASE("provenance records the embedded revision, build and allocator environment", "[harness]") {
  const std::string rev = build_git_rev();
  CHECK(!rev.empty());
  // The revision is embedded at build time: the same from any directory.
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path("/");
  CHECK(build_git_rev() == rev);
  std::filesystem::current_path(cwd);
  ::setenv("MALLOC_CONF", "dirty_decay_ms:0", 1);
  ::setenv("MIMALLOC_PURGE_DELAY", "0", 1);
  json p = provenance({"znslab", "run", "x"});
  ::unsetenv("MALLOC_CONF");
  ::unsetenv("MIMALLOC_PURGE_DELAY");
  CHECK(p["env"]["MALLOC_CONF"] == "dirty_decay_ms:0");
  CHECK(p["env"]["MIMALLOC_PURGE_DELAY"] == "0");
  CHECK(!p["env"].contains("PATH"));
  CHECK(p["argv"] == json::array({"znslab", "run", "x"}));
  CHECK(has(p["build"]["compiler"].get<std::string>(), "g++"));
  CHECK(has(p["build"]["flags"].get<std::string>(), "-O"));
  CHECK(!p["cpu_model"].get<std::string>().empty());
}

TEST_CASE("numeric edge cases of workload files and --set give clean configuration errors", "[harness]") {
  // 1e400 overflows a double: a ConfigError, in a file and in --set alike.
  CHECK(has(message_of([] { load_workload_text(R"({"workload": "churn", "cycles": 1e400})", "f.json", {}); }),
            "f.json"));
  CHECK_THROWS_AS(load_workload_text(R"({"workload": "churn", "cycles": 1e400})", "f.json", {}), ConfigError);
  CHECK_THROWS_AS(load_workload("churn", {"cycles=1e400"}), ConfigError);
  // Above INT64_MAX: refused, never wrapped to a negative number.
  const std::string big = message_of([] { load_workload("churn", {"seed=18446744073709551615"}); });
  CHECK(has(big, "out of range"));
  CHECK(!has(big, "got -1"));
  CHECK_THROWS_AS(load_workload("churn", {"cycles=1e30"}), ConfigError);
  // Byte keys take suffixes; other integer keys do not.
  CHECK(load_workload("zone-write", {"total_bytes=64M"}).config["total_bytes"] == 64ll << 20);
  CHECK(load_workload("zone-write", {"block_size=\"128KiB\""}).config["block_size"] == 128 << 10);
  CHECK(has(message_of([] { load_workload("zone-write", {"total_bytes=64X"}); }), "byte count"));
  CHECK_THROWS_AS(load_workload("churn", {"cycles=2K"}), ConfigError);
  auto b = parse_byte_size("9223372036854775808");
  CHECK(!b.is_ok());
  CHECK(parse_byte_size("8T").value() == 8ull << 40);
}

TEST_CASE("an explicit --out is checked before the run", "[harness]") {
  TempDir dir;
  CHECK_NOTHROW(check_out_file(dir.file("r.json")));
  CHECK_NOTHROW(check_out_file("-"));
  CHECK(has(message_of([&] { check_out_file(dir.path()); }), "is a folder"));
  CHECK(has(message_of([&] { check_out_file(dir.file("missing/r.json")); }), "does not exist"));
  CHECK_THROWS_AS(check_out_file("/nonexistent-znslab/r.json"), UsageError);
  // Default names never collide: a second reservation of the same stem differs.
  std::string a = new_result_path(dir.file("res"), "same");
  std::string b = new_result_path(dir.file("res"), "same");
  CHECK(a != b);
  CHECK(std::filesystem::exists(a));
  CHECK(std::filesystem::exists(b));
}

TEST_CASE("the repeat table shows medians with intervals and flags noisy metrics", "[harness]") {
  auto doc = [](double ns, double p99) {
    return json{{"summary", {{"ns_per_object", ns}}},
                {"latency_ns", {{"alloc", {{"p50", 10}, {"p90", 20}, {"p99", p99}, {"p999", 500}, {"max", 900}}}}}};
  };
  CHECK(primary_metric(doc(1, 1)) == "ns_per_object");
  CHECK(primary_metric(json{{"summary", {{"ops_per_sec", 3}}}}) == "ops_per_sec");
  CHECK(primary_metric(json{{"summary", json::object()}}).empty());
  // Steady: 100, 101, 99 -> median 100 [99-101], not noisy. Noisy: 100, 150, 60.
  json steady = aggregate_results({doc(100, 50), doc(101, 50), doc(99, 50)});
  json noisy = aggregate_results({doc(100, 50), doc(150, 80), doc(60, 20)});
  TableData t = interval_table({{"steady", steady}, {"noisy", noisy}, {"failed", nullptr}});
  REQUIRE(t.headers.size() >= 3);
  CHECK(t.headers[0] == "label");
  auto col = std::find(t.headers.begin(), t.headers.end(), "ns/object") - t.headers.begin();
  REQUIRE(size_t(col) < t.headers.size());
  CHECK(t.rows[0][size_t(col)] == "100.0 [99.0-101.0]");
  CHECK(t.rows[1][size_t(col)] == "100.0 [60.0-150.0]!");
  CHECK(t.rows[2][1] == "FAILED");
  const std::string md = render_table_md(t.headers, t.rows);
  CHECK(has(md, "| steady |"));
  const std::string csv = render_table_csv(t.headers, t.rows);
  CHECK(has(csv, "steady,"));
}

TEST_CASE("the slab's epoch closes and decommits appear in the result timeline", "[harness]") {
  WorkloadConfig wc = load_workload("churn", {"cycles=5", "objects_per_cycle=4000", "idle_ms_before_sample=0",
                                             "sample_interval_ms=0"});
  json doc = run_workload(wc, "temporal-slab", "", false);
  REQUIRE(doc["timeline"].is_array());
  size_t closes = 0, decommits = 0;
  uint64_t last_t = 0;
  for (const auto& e : doc["timeline"]) {
    REQUIRE(e["t_ns"].is_number_unsigned());
    CHECK(e["t_ns"].get<uint64_t>() >= last_t);
    last_t = e["t_ns"].get<uint64_t>();
    if (e["event"] == "epoch_close") ++closes;
    if (e["event"] == "decommit") {
      ++decommits;
      CHECK(e["bytes"].get<uint64_t>() > 0);
    }
  }
  CHECK(closes == 5);  // one per cycle
  CHECK(decommits >= 1);
}
