// `znslab zone` error classes and the zone-write workload's config checks
// ([zns]). The CLI runs in-process through the command registry; main.cpp
// maps UsageError -> exit 2 and ZoneError -> exit 3.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "harness/config.h"
#include "harness/registry.h"
#include "tests/zns_test_util.h"

using namespace znslab;
using namespace znslab::harness;

namespace {

int zone_cmd(std::vector<std::string> args) {
  const Command* c = find_command("zone");
  REQUIRE(c != nullptr);
  args.insert(args.begin(), "zone");
  std::vector<char*> av;
  for (auto& a : args) av.push_back(a.data());
  av.push_back(nullptr);
  return c->main(int(args.size()), av.data());
}

}  // namespace

TEST_CASE("znslab zone: zone errors are ZoneError with the NVMe name, bad arguments UsageError", "[zns]") {
  zns::test::TempDir dir;
  const std::string dev = "emu:" + dir.file("cli.img") + "?zones=4&zone_size=1M&zone_cap=512K&max_open=1&max_active=2";
  CHECK(zone_cmd({"write", "--device", dev, "--zone", "0", "--size", "8K", "--pattern", "3"}) == 0);
  CHECK(zone_cmd({"read", "--device", dev, "--zone", "0", "--size", "8K", "--pattern", "3"}) == 0);
  CHECK_THROWS_AS(zone_cmd({"read", "--device", dev, "--zone", "0", "--size", "8K", "--pattern", "4"}), RunError);
  try {
    zone_cmd({"write", "--device", dev, "--zone", "0", "--offset", "0", "--size", "4K"});
    FAIL("expected a zone error");
  } catch (const ZoneError& e) {
    CHECK(std::string(e.what()).find("Zone Invalid Write") != std::string::npos);
  }
  CHECK(zone_cmd({"open", "--device", dev, "--zone", "1"}) == 0);
  try {
    zone_cmd({"open", "--device", dev, "--zone", "2"});
    FAIL("expected a zone error");
  } catch (const ZoneError& e) {
    CHECK(std::string(e.what()).find("Too Many Active Zones") != std::string::npos);
  }
  CHECK(zone_cmd({"finish", "--device", dev, "--zone", "3"}) == 0);
  try {
    zone_cmd({"append", "--device", dev, "--zone", "3", "--size", "4K"});
    FAIL("expected a zone error");
  } catch (const ZoneError& e) {
    CHECK(std::string(e.what()).find("Zone Is Full") != std::string::npos);
  }
  CHECK(zone_cmd({"power-cycle", "--device", dev}) == 0);
  CHECK(zone_cmd({"report", "--device", dev, "--json"}) == 0);
  CHECK_THROWS_AS(zone_cmd({"frobnicate", "--device", dev}), UsageError);
  CHECK_THROWS_AS(zone_cmd({"open", "--device", dev}), UsageError);                   // no --zone
  CHECK_THROWS_AS(zone_cmd({"open", "--device", dev, "--zone", "9"}), UsageError);     // past the end
  CHECK_THROWS_AS(zone_cmd({"write", "--device", dev, "--zone", "1", "--size", "100"}), UsageError);
  CHECK_THROWS_AS(zone_cmd({"report"}), UsageError);                                   // no --device
  CHECK_THROWS_AS(zone_cmd({"report", "--device", dev + "&zones=9"}), UsageError);     // geometry mismatch
}

TEST_CASE("zone-write workload: keys are checked", "[zns]") {
  CHECK_NOTHROW(load_workload_text(R"({"workload": "zone-write", "mode": "append", "zones": 2})", "t.json", {}));
  CHECK_THROWS_AS(load_workload_text(R"({"workload": "zone-write", "mode": "scribble"})", "t.json", {}), ConfigError);
  CHECK_THROWS_AS(load_workload_text(R"({"workload": "zone-write", "queue_depth": 0})", "t.json", {}), ConfigError);
  CHECK_THROWS_AS(load_workload_text(R"({"workload": "zone-write", "blocksize": 4096})", "t.json", {}), ConfigError);
}
