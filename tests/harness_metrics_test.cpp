// [metrics] the DESIGN.md summary metrics on hand-made series, edge cases
// included (2 cycles, zero baselines, a missing counter).
#include <stdexcept>
#include <vector>

#include <catch2/catch.hpp>

#include "harness/metrics.h"

using namespace znslab::harness::metrics;

TEST_CASE("steady state starts after the first 10 % of cycles, keeping at least 2", "[metrics]") {
  CHECK(steady_state_first_cycle(150) == 15);
  CHECK(steady_state_first_cycle(20) == 2);
  CHECK(steady_state_first_cycle(19) == 1);
  CHECK(steady_state_first_cycle(3) == 0);   // 3/10 = 0
  CHECK(steady_state_first_cycle(2) == 0);   // both cycles are steady state
  CHECK_THROWS_AS(steady_state_first_cycle(1), std::invalid_argument);
  CHECK_THROWS_AS(steady_state_first_cycle(0), std::invalid_argument);
}

TEST_CASE("RSS stability is (max - min) / min over the steady-state cycles", "[metrics]") {
  const std::vector<uint64_t> rss{500, 100, 110, 105};  // cycle 0 (warm-up) is ignored from first=1
  REQUIRE(rss_stability_pct(rss, 1).has_value());
  CHECK(*rss_stability_pct(rss, 1) == Approx(10.0));
  CHECK(*rss_stability_pct(rss, 0) == Approx(400.0));
  const std::vector<uint64_t> flat{7, 7};
  CHECK(*rss_stability_pct(flat, 0) == 0.0);
  const std::vector<uint64_t> zero{0, 0, 5};
  CHECK_FALSE(rss_stability_pct(zero, 0).has_value());  // a zero minimum has no ratio
  CHECK_THROWS_AS(rss_stability_pct(rss, 4), std::invalid_argument);
}

TEST_CASE("retention and the worst post-free cycle", "[metrics]") {
  CHECK(*retention_pct(33, 100) == Approx(33.0));
  CHECK(*retention_pct(100, 100) == Approx(100.0));
  CHECK_FALSE(retention_pct(10, 0).has_value());
  const std::vector<uint64_t> rss{900, 10, 30, 30, 20};
  CHECK(worst_post_free_cycle(rss, 1) == 2);  // the first of the equal maxima
  CHECK(worst_post_free_cycle(rss, 0) == 0);
}

TEST_CASE("committed drift compares the last cycle with the first steady-state one", "[metrics]") {
  const std::vector<uint64_t> c{50, 100, 100, 101};
  CHECK(*committed_drift_pct(c, 1) == Approx(1.0));
  const std::vector<uint64_t> shrink{0, 200, 150};
  CHECK(*committed_drift_pct(shrink, 1) == Approx(-25.0));
  const std::vector<uint64_t> zero_base{0, 0, 0};
  CHECK(*committed_drift_pct(zero_base, 1) == 0.0);  // nothing committed, nothing drifted
  const std::vector<uint64_t> from_zero{0, 0, 4096};
  CHECK_FALSE(committed_drift_pct(from_zero, 1).has_value());
  CHECK_FALSE(committed_drift_pct({}, 0).has_value());  // an allocator without the counter
}

TEST_CASE("rates: ns per object, ops per second, write amplification", "[metrics]") {
  CHECK(*ns_per_object(1'000'000, 4000) == Approx(250.0));
  CHECK_FALSE(ns_per_object(5, 0).has_value());
  CHECK(*ops_per_sec(3, 1'500'000'000) == Approx(2.0));
  CHECK_FALSE(ops_per_sec(3, 0).has_value());
  CHECK(*write_amplification(1'262, 1'000) == Approx(1.262));
  CHECK(*write_amplification(1'000, 1'000) == 1.0);
  CHECK_FALSE(write_amplification(0, 0).has_value());
}
