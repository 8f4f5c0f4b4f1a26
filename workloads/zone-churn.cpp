// Workload "zone-churn" (issue 5): a write/delete churn over the zoned
// segment store (src/segment/zoned_store.h) on any ZonedDevice, writing at
// least `write_factor` (>= 3) times the device's capacity so that garbage
// collection must run on any device size. Its keys and their checks; the
// record stream is ZoneChurnGenerator (workloads/zone_churn_gen.h: epochs,
// lifetime classes, reads), executed and measured by the zoned-store
// runner (harness/store_runner.h). Each epoch writes
//   E = live_fraction * capacity * k / sum(lifetimes)   (k classes)
// so that the steady-state live data is `live_fraction` of the capacity.
// Placement `single` writes every class into one stream; `epoch` gives each
// lifetime class its own open zone. Summary and samples: docs/segment.md.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "harness/config.h"
#include "harness/registry.h"
#include "harness/store_runner.h"
#include "workloads/zone_churn_gen.h"

namespace znslab::harness {
namespace {

using nlohmann::json;
using namespace znslab::segment;

class ZoneChurn : public Workload {
 public:
  json defaults() const override {
    return json{{"workload", "zone-churn"},
                {"records", 0},
                {"write_factor", 4.0},
                {"record_size", {{"distribution", "uniform"}, {"min", 16384}, {"max", 131072}}},
                {"lifetimes", json::array({1, 2, 4, 8})},
                {"live_fraction", 0.7},
                {"placement", "epoch"},
                {"gc", "greedy"},
                {"gc_free_zones", 2},
                {"streams", 0},
                {"read_path", "auto"},
                {"write_mode", "write"},
                {"read_fraction", 0.05},
                {"default_device", "zones=64&zone_size=8M"},
                {"seed", 1}};
  }

  void validate(const json& c) const override {
    check_int_range(c, "records", 0, int64_t(1) << 40);
    check_number_range(c, "write_factor", 3.0, 1000.0);
    check_number_range(c, "live_fraction", 0.01, 0.95);
    check_number_range(c, "read_fraction", 0.0, 1.0);
    check_one_of(c, "placement", {"single", "epoch"});
    check_one_of(c, "gc", {"greedy", "cost-benefit"});
    check_one_of(c, "read_path", {"auto", "mmap", "device"});
    check_one_of(c, "write_mode", {"write", "append"});
    check_int_range(c, "gc_free_zones", 1, 1 << 20);
    check_int_range(c, "streams", 0, 1024);
    const json& rs = c.at("record_size");
    if (!rs.is_object() || rs.value("distribution", "") != "uniform" || !rs.contains("min") || !rs.contains("max") ||
        !rs["min"].is_number_integer() || !rs["max"].is_number_integer() || rs["min"].get<int64_t>() < 1 ||
        rs["max"] < rs["min"])
      throw_key_error("record_size", "expected {\"distribution\": \"uniform\", \"min\": N, \"max\": N} with 1 <= min <= max");
    const json& lt = c.at("lifetimes");
    if (!lt.is_array() || lt.empty()) throw_key_error("lifetimes", "expected a non-empty array of lifetimes in epochs");
    for (auto& v : lt)
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 1000000)
        throw_key_error("lifetimes", "every lifetime must be an integer number of epochs in [1, 1000000]");
  }

  void run(RunContext& ctx) override {
    const json& c = ctx.config;
    workloads::ZoneChurnParams p;
    p.lifetimes = c["lifetimes"].get<std::vector<uint32_t>>();
    p.min_size = c["record_size"]["min"];
    p.max_size = c["record_size"]["max"];
    p.seed = cfg_u64(c, "seed");
    p.read_fraction = cfg_double(c, "read_fraction");

    StoreRunOptions opt;
    opt.experiment = "zone-churn";
    opt.default_device = cfg_str(c, "default_device");
    ZonedStoreOptions& o = opt.store;
    o.placement = cfg_str(c, "placement") == "epoch" ? Placement::kEpoch : Placement::kSingle;
    o.gc = cfg_str(c, "gc") == "cost-benefit" ? GcPolicy::kCostBenefit : GcPolicy::kGreedy;
    o.gc_free_zones = uint32_t(cfg_u64(c, "gc_free_zones"));
    o.streams = cfg_u64(c, "streams") ? uint32_t(cfg_u64(c, "streams")) : uint32_t(p.lifetimes.size());
    const std::string rp = cfg_str(c, "read_path");
    o.read_path = rp == "mmap" ? ReadPath::kMmap : rp == "device" ? ReadPath::kDevice : ReadPath::kAuto;
    o.use_append = cfg_str(c, "write_mode") == "append";
    opt.max_record_bytes = p.max_size;
    opt.record_word = &workloads::ZoneChurnGenerator::record_word;
    const double live_fraction = cfg_double(c, "live_fraction"), write_factor = cfg_double(c, "write_factor");
    const uint64_t records = cfg_u64(c, "records");
    opt.make_plan = [=](uint64_t capacity) mutable -> std::unique_ptr<StorePlan> {
      const double mean = double(p.min_size + p.max_size) / 2.0;
      uint64_t lsum = 0;
      for (uint32_t l : p.lifetimes) lsum += l;
      p.epoch_bytes = std::max<uint64_t>(
          uint64_t(live_fraction * double(capacity) * double(p.lifetimes.size()) / double(lsum)), p.max_size);
      p.target_bytes = std::max<uint64_t>(uint64_t(write_factor * double(capacity)),
                                          uint64_t(double(records) * mean));
      return std::make_unique<StorePlanOf<workloads::ZoneChurnGenerator>>(workloads::ZoneChurnGenerator(p));
    };
    run_zone_store(ctx, opt);
  }
};

Registrar reg{WorkloadInfo{"zone-churn", "write/delete churn over the zoned segment store with GC: WA by placement",
                           [] { return std::make_unique<ZoneChurn>(); }, /*uses_allocator=*/false, /*uses_device=*/true}};

}  // namespace
}  // namespace znslab::harness
