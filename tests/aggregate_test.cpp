// [aggregate] tests: medians with order-statistic 95 % intervals against
// hand-computed binomial values, aggregation of result documents, the noisy
// flag and the nearest-to-median run.
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "harness/aggregate.h"

using namespace znslab::harness;
using nlohmann::json;

namespace {

// A minimal znslab.result/1-shaped document with a summary and alloc latency.
json result_with(double ns_per_object, const json& extra_summary, double alloc_p99) {
  json r = {{"schema", "znslab.result/1"}, {"experiment", "churn"}};
  r["summary"] = extra_summary;
  r["summary"]["ns_per_object"] = ns_per_object;
  r["latency_ns"]["alloc"] = {{"p50", 40}, {"p90", 150}, {"p99", alloc_p99}, {"p999", 2000},
                              {"max", 40000}, {"count", 10}};
  return r;
}

}  // namespace

TEST_CASE("median_interval: N=10 uses order statistics 2 and 9 with coverage 1-22/1024", "[aggregate]") {
  // Binomial(10,1/2): P(B<=1) = 11/1024, so [x(2), x(9)] covers 1 - 22/1024;
  // [x(3), x(8)] would cover only 1 - 112/1024 = 0.890625 < 0.95.
  MetricInterval m = median_interval({7, 3, 10, 1, 5, 9, 2, 8, 6, 4});
  CHECK(m.median == 5.5);
  CHECK(m.ci95_low == 2);
  CHECK(m.ci95_high == 9);
  CHECK(m.ci_coverage == Approx(1.0 - 22.0 / 1024));
  CHECK(m.values == std::vector<double>{7, 3, 10, 1, 5, 9, 2, 8, 6, 4});  // run order kept
}

TEST_CASE("median_interval: N=20 uses order statistics 6 and 15", "[aggregate]") {
  // P(B<=5) = (1+20+190+1140+4845+15504)/2^20 = 21700/1048576 -> coverage 0.95861;
  // adding P(B=6) = 38760/2^20 would drop it to 0.8847.
  std::vector<double> v;
  for (int i = 20; i >= 1; --i) v.push_back(i * 10.0);
  MetricInterval m = median_interval(v);
  CHECK(m.median == 105);
  CHECK(m.ci95_low == 60);
  CHECK(m.ci95_high == 150);
  CHECK(m.ci_coverage == Approx(1.0 - 43400.0 / 1048576));
}

TEST_CASE("median_interval: N<6 gives [min,max] and its real coverage 1-2*0.5^N", "[aggregate]") {
  MetricInterval five = median_interval({3, 1, 4, 1, 5});
  CHECK(five.median == 3);
  CHECK(five.ci95_low == 1);
  CHECK(five.ci95_high == 5);
  CHECK(five.ci_coverage == Approx(0.9375));

  MetricInterval three = median_interval({12, 10, 11});
  CHECK(three.median == 11);
  CHECK(three.ci95_low == 10);
  CHECK(three.ci95_high == 12);
  CHECK(three.ci_coverage == Approx(0.75));

  MetricInterval two = median_interval({4, 2});
  CHECK(two.median == 3);
  CHECK(two.ci95_low == 2);
  CHECK(two.ci95_high == 4);
  CHECK(two.ci_coverage == Approx(0.5));

  MetricInterval one = median_interval({7});
  CHECK(one.median == 7);
  CHECK(one.ci95_low == 7);
  CHECK(one.ci95_high == 7);
  CHECK(one.ci_coverage == 0.0);

  // N=6 is the first N reaching 95 %: still [min,max], coverage 1 - 2/64.
  MetricInterval six = median_interval({6, 5, 4, 3, 2, 1});
  CHECK(six.ci95_low == 1);
  CHECK(six.ci95_high == 6);
  CHECK(six.ci_coverage == Approx(0.96875));
}

TEST_CASE("median_interval: empty input and NaN are refused", "[aggregate]") {
  CHECK_THROWS_AS(median_interval({}), std::invalid_argument);
  CHECK_THROWS_AS(median_interval({1.0, std::nan("")}), std::invalid_argument);
}

TEST_CASE("is_noisy: an interval reaching beyond +-10 % of the median", "[aggregate]") {
  MetricInterval m;
  m.median = 100;
  m.ci95_low = 91;
  m.ci95_high = 109;
  CHECK_FALSE(is_noisy(m));
  m.ci95_low = 89;
  CHECK(is_noisy(m));
  m.ci95_low = 95;
  m.ci95_high = 111;
  CHECK(is_noisy(m));
  MetricInterval zero;  // all runs measured exactly 0
  CHECK_FALSE(is_noisy(zero));
  zero.ci95_high = 1;
  CHECK(is_noisy(zero));
}

TEST_CASE("aggregate_results: numeric summary metrics and latency percentiles, the rest skipped", "[aggregate]") {
  std::vector<json> runs = {
      result_with(100, {{"ops_per_sec", 1000}, {"committed_drift_pct", nullptr}, {"kind", "x"}, {"fill", true}}, 300),
      result_with(120, {{"ops_per_sec", 3000}, {"committed_drift_pct", nullptr}, {"kind", "x"}, {"fill", true},
                        {"only_here", 5}}, 500),
      result_with(110, {{"ops_per_sec", 2000}, {"committed_drift_pct", nullptr}, {"kind", "x"}, {"fill", true}}, 400),
  };
  json a = aggregate_results(runs);
  REQUIRE(a.contains("ns_per_object"));
  CHECK(a["ns_per_object"]["median"] == 110.0);
  CHECK(a["ns_per_object"]["ci95_low"] == 100.0);
  CHECK(a["ns_per_object"]["ci95_high"] == 120.0);
  CHECK(a["ns_per_object"]["ci_coverage"].get<double>() == Approx(0.75));
  CHECK(a["ns_per_object"]["values"] == json({100.0, 120.0, 110.0}));
  CHECK(a["ops_per_sec"]["median"] == 2000.0);  // integers count as numbers
  CHECK(a["latency_ns"]["alloc"]["p99"]["median"] == 400.0);
  CHECK(a["latency_ns"]["alloc"]["p99"]["ci95_low"] == 300.0);
  CHECK(a["latency_ns"]["alloc"]["max"]["median"] == 40000.0);
  CHECK_FALSE(a["latency_ns"]["alloc"].contains("count"));  // only the percentiles
  CHECK(a["skipped_metrics"] == json({"committed_drift_pct", "fill", "kind", "only_here"}));
  CHECK_FALSE(a.contains("committed_drift_pct"));
  CHECK_FALSE(a.contains("only_here"));
}

TEST_CASE("aggregate_results: no results gives an empty aggregation", "[aggregate]") {
  json a = aggregate_results({});
  CHECK(a == json({{"skipped_metrics", json::array()}}));
}

TEST_CASE("nearest_to_median: the run to keep as the representative one", "[aggregate]") {
  std::vector<json> runs;
  for (double v : {100.0, 300.0, 120.0, 110.0, 90.0}) runs.push_back(result_with(v, json::object(), v * 2));
  CHECK(nearest_to_median(runs, "ns_per_object") == 3);          // median 110
  CHECK(nearest_to_median(runs, "latency_ns.alloc.p99") == 3);   // median 220
  CHECK(nearest_to_median(runs, "missing_metric") == -1);

  std::vector<json> even;
  for (double v : {4.0, 2.0, 3.0, 1.0}) even.push_back(result_with(v, json::object(), 0));
  CHECK(nearest_to_median(even, "ns_per_object") == 1);  // median 2.5: 2 and 3 tie, lowest index wins
}
