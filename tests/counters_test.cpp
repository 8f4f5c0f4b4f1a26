// [counters] counters declared once (src/common/counters.h): the docs
// tables, the JSON keys and the schema entries all follow the declaration.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "harness/counters.h"
#include "harness/schema.h"
#include "src/segment/zoned_store.h"
#include "src/slab/slab.h"
#include "tests/skip.h"

using namespace znslab;
using namespace znslab::harness;
using nlohmann::json;

namespace {
std::string read_file(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
std::set<std::string> decl_keys(const CounterSet& s) {
  std::set<std::string> k;
  for (const auto& d : s.rows) k.insert(d.key);
  return k;
}
}  // namespace

TEST_CASE("docs counter tables match the counter declarations (run make docs-counters)", "[counters]") {
  if (!std::filesystem::exists("docs")) ZNSLAB_SKIP("docs/ not found (run from the repository root)");
  std::set<std::string> files;
  for (const auto& s : counter_sets()) files.insert(s.doc_file);
  for (const auto& f : files) {
    INFO(f);
    const std::string text = read_file(f);
    REQUIRE_FALSE(text.empty());
    std::vector<std::string> missing;
    const std::string regenerated = update_counter_sections(f, text, &missing);
    CHECK(missing.empty());
    CHECK(regenerated == text);
  }
}

TEST_CASE("a docs section is rewritten from the declaration, text around it kept", "[counters]") {
  const CounterSet* set = find_counter_set("slab.global");
  REQUIRE(set);
  const std::string stale = "intro\n<!-- counters:slab.global -->\n| old | table |\n<!-- /counters:slab.global -->\noutro\n";
  const std::string fresh = update_counter_sections(set->doc_file, stale, nullptr);
  CHECK(fresh == "intro\n<!-- counters:slab.global -->\n" + counters_markdown(*set) +
                     "<!-- /counters:slab.global -->\noutro\n");
  CHECK(fresh.find("| `committed_bytes` | unsigned | bytes |") != std::string::npos);
  std::vector<std::string> missing;
  update_counter_sections(set->doc_file, "no markers", &missing);
  CHECK(std::find(missing.begin(), missing.end(), "slab.global") != missing.end());
}

TEST_CASE("slab stats_json global object has exactly the declared counters plus version", "[counters]") {
  auto a = slab::SlabAllocator::create();
  REQUIRE(a);
  const json doc = json::parse((*a)->stats_json());
  std::set<std::string> keys;
  for (auto& [k, v] : doc["global"].items()) keys.insert(k);
  std::set<std::string> want = decl_keys(*find_counter_set("slab.global"));
  want.insert("version");
  CHECK(keys == want);
  // Every existing key kept its name (a sample of the documented ones).
  for (const char* k : {"committed_bytes", "live_bytes", "madvise_calls", "recycle_rate_pct", "populated_slabs"})
    CHECK(keys.count(k));
}

TEST_CASE("zoned store counters keep their result keys and are checked by the schema", "[counters]") {
  segment::ZonedStoreCounters c;
  c.payload_bytes = 7;
  c.appends = 3;
  c.reads = 2;
  const json j = counters_json(c);
  CHECK(j["payload_bytes_written"] == 7);  // the zone-churn summary key since issue 5
  CHECK(j["zone_appends"] == 3);
  CHECK(j["store_reads"] == 2);  // "reads" is the workload's own count of timed reads
  CHECK(j.size() == find_counter_set("segment.zoned_store")->rows.size());

  json doc{{"experiment", "zone-churn"}, {"summary", j}};
  CHECK(counter_schema_errors(doc).empty());
  doc["summary"].erase("zone_resets");
  doc["summary"]["gc_runs"] = -1;
  const auto errs = counter_schema_errors(doc);
  REQUIRE(errs.size() == 2);
  CHECK(errs[0].find("summary.gc_runs: expected an unsigned integer") != std::string::npos);
  CHECK(errs[1].find("summary.zone_resets: missing") != std::string::npos);
  // The full schema reports them too.
  bool seen = false;
  for (const auto& e : result_schema_errors(doc)) seen |= e.find("summary.zone_resets: missing") != std::string::npos;
  CHECK(seen);
}

TEST_CASE("optional counter sets are checked only when present", "[counters]") {
  json doc{{"experiment", "churn"}, {"allocator_stats", nullptr}};  // a malloc peer: no slab stats
  CHECK(counter_schema_errors(doc).empty());
  doc["allocator_stats"] = {{"global", {{"committed_bytes", 1}}}};
  CHECK_FALSE(counter_schema_errors(doc).empty());
}

TEST_CASE("churn samples: allocator counters typed when present, null allowed for peers", "[counters]") {
  json doc{{"experiment", "churn"},
           {"samples", json::array({json{{"committed_bytes", nullptr}}, json{{"committed_bytes", 4096}}})}};
  CHECK(counter_schema_errors(doc).empty());
  doc["samples"][1]["madvise_calls"] = "x";
  const auto errs = counter_schema_errors(doc);
  REQUIRE(errs.size() == 1);
  CHECK(errs[0].find("samples[1].madvise_calls: expected an unsigned integer") != std::string::npos);
}

TEST_CASE("every counter set's keys are unique and documented with a unit column", "[counters]") {
  std::set<std::string> names;
  for (const auto& s : counter_sets()) {
    INFO(s.name);
    CHECK(names.insert(s.name).second);
    CHECK_FALSE(s.rows.empty());
    std::set<std::string> keys;
    for (const auto& d : s.rows) {
      CHECK(keys.insert(d.key).second);
      CHECK(std::string(d.meaning).size() > 3);
    }
  }
  // segment-scale's summary.counters merges three sets: no key may collide.
  std::set<std::string> merged;
  size_t n = 0;
  for (const char* s : {"segment.file_registry", "segment.mappings", "segment.allocator"})
    for (const auto& d : find_counter_set(s)->rows) merged.insert(d.key), ++n;
  CHECK(merged.size() == n);
}
