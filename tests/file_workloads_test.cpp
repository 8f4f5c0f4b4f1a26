// pager-churn and overflow-spill (issue 10): short runs produce result
// documents the schema accepts, with the summary fields the issue lists and
// the figures the workloads promise (no stale reads, growth with remaps).
#include <catch2/catch.hpp>

#include "harness/config.h"
#include "harness/runner.h"
#include "harness/schema.h"

using namespace znslab::harness;
using nlohmann::json;

TEST_CASE("pager-churn: a short run conforms to the schema and counts its pages", "[pager]") {
  WorkloadConfig wc = load_workload("pager-churn", {"pages=20000", "sub_pages=4000", "churn_ops=5000",
                                                    "timing_batches=200", "commit_every=3000", "sync=none"});
  json doc = run_workload(wc, "", "", false);
  auto errs = result_schema_errors(doc);
  INFO((errs.empty() ? std::string() : errs[0]));
  CHECK(errs.empty());
  const json& s = doc["summary"];
  CHECK(s["pages_max"].get<uint64_t>() >= 20000 + 4000 / 8);
  CHECK(s["alloc_free_ns"]["count"] == 200);
  CHECK(s["subpage_alloc_free_ns"]["count"] == 200);
  CHECK(s["file_bytes"].get<uint64_t>() >= 20000ull * 4096);
  CHECK(s["space_amplification"].get<double>() > 1.0);
  CHECK(s["counters"]["commits"].get<uint64_t>() >= 8);
}

TEST_CASE("pager-churn: bad keys are refused", "[pager]") {
  CHECK_THROWS_AS(load_workload("pager-churn", {"sub_page_size=32"}), ConfigError);  // 128 per parent
  CHECK_THROWS_AS(load_workload("pager-churn", {"page_size=3000"}), ConfigError);
  CHECK_THROWS_AS(load_workload("pager-churn", {"sync=sometimes"}), ConfigError);
}

TEST_CASE("overflow-spill: a short run grows, readers remap, nothing stale", "[overflow]") {
  WorkloadConfig wc = load_workload("overflow-spill", {"initial_bytes=4194304", "fill_bytes=6291456", "readers=2",
                                                       "reader_post_every=1", "populate=false", "warmup_writes=100"});
  json doc = run_workload(wc, "", "", false);
  auto errs = result_schema_errors(doc);
  INFO((errs.empty() ? std::string() : errs[0]));
  CHECK(errs.empty());
  const json& s = doc["summary"];
  CHECK(s["stale_reads"] == 0);
  CHECK(s["grow_count"].get<uint64_t>() >= 1);
  CHECK(s["peak_file_bytes"].get<uint64_t>() >= 8388608);
  CHECK(s["fragmentation_pct"].get<double>() < 10.0);
  CHECK(s["write_4k_ns"]["count"].get<uint64_t>() > 0);
}
