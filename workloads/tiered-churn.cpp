// Workload "tiered-churn" (issue 11; docs/tiered.md): the temporal slab with
// a DRAM budget (slab_dram_budget_bytes) spilling cold epochs or pages to a
// zoned device (slab_spill, slab_spill_unit), under epochs of patterned
// objects whose accesses favour recent epochs.
//
// This file holds the keys, their checks, the schedule (objects per epoch
// from live_multiple and the budget; peak live bytes for sizing the
// device) and the mapping to the generator's parameters. The operation
// stream is workloads/tiered_churn_gen.h (TieredChurnGen); the device,
// allocator, timing, samples and result are harness/tiered_runner.h.
//
// Summary (schema: harness/schema.cpp, "tiered-churn"): dram_budget_bytes,
// peak_rss_bytes, baseline_rss_bytes, rss_over_budget_pct (max over samples
// of (rss - baseline - budget) / budget x 100, 0 if never above),
// spilled_bytes, faultbacks, faultback_ns {p50, p99}, write_amplification,
// zone_resets, gc_copied_bytes, ops_per_sec (allocs + frees + accesses per
// second), corrupt_objects, plus the spill counters and the schedule.
#include <algorithm>
#include <string>
#include <vector>

#include "harness/config.h"
#include "harness/registry.h"
#include "harness/slab_options.h"
#include "harness/tiered_runner.h"
#include "src/slab/slab.h"
#include "workloads/tiered_churn_gen.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

constexpr uint32_t kRing = slab::kEpochCount;  // 16 ring epochs

// Slab bytes an object of `size` bytes occupies on average: its slot's share
// of a 4 KiB slab (slots per slab as docs/slab.md lists them: 56 for the
// 64 B class, else floor(4096 / slot)).
double slab_bytes_per_object(uint32_t size) {
  const uint32_t slot = slab::kSizeClasses[slab::size_class_of(size)];
  const uint32_t per = std::min<uint32_t>(56, uint32_t(slab::kSlabBytes / slot));
  return double(slab::kSlabBytes) / double(per);
}

// Peak requested bytes and peak slab bytes live at once under the schedule
// (the mispredicted objects counted at their longest), for sizing the device.
struct ScheduleSize {
  uint64_t epoch_objects = 0;
  double mean_lifetime = 0;
  double peak_live_bytes = 0, peak_slab_bytes = 0;
};
ScheduleSize schedule_size(const json& c) {
  const auto lifetimes = c["lifetimes"].get<std::vector<uint32_t>>();
  const uint32_t mn = uint32_t(cfg_u64(c, "min_size")), mx = uint32_t(cfg_u64(c, "max_size"));
  double mean_size = 0, mean_slab = 0;
  for (uint32_t s = mn; s <= mx; ++s) {
    mean_size += s;
    mean_slab += slab_bytes_per_object(s);
  }
  mean_size /= double(mx - mn + 1);
  mean_slab /= double(mx - mn + 1);
  ScheduleSize z;
  for (uint32_t l : lifetimes) z.mean_lifetime += l;
  z.mean_lifetime /= double(lifetimes.size());
  const double budget = double(cfg_u64(c, "slab_dram_budget_bytes"));
  z.epoch_objects = std::max<uint64_t>(1, uint64_t(cfg_double(c, "live_multiple") * budget / (z.mean_lifetime * mean_size)));
  const double mis = cfg_double(c, "mispredicted_fraction");
  const uint32_t extra = uint32_t(cfg_u64(c, "mispredict_max_extra"));
  double peak_epochs = 0;  // epochs' worth of objects live at once, at most
  const uint32_t k = uint32_t(lifetimes.size());
  for (uint32_t n = 0; n < 4 * k + 32; ++n) {
    double live = 0;
    for (uint32_t m = 0; m <= n; ++m) {
      const uint32_t l = lifetimes[m % k];
      if (n < m + l) live += 1.0;
      else if (n < m + l + extra) live += mis;
    }
    peak_epochs = std::max(peak_epochs, live);
  }
  z.peak_live_bytes = peak_epochs * double(z.epoch_objects) * mean_size;
  z.peak_slab_bytes = peak_epochs * double(z.epoch_objects) * mean_slab;
  return z;
}

class TieredChurn : public Workload {
 public:
  json defaults() const override {
    json d = slab_option_defaults();
    d["workload"] = "tiered-churn";
    // The spill keys of slab::Options (harness/slab_options.cpp) with this
    // workload's defaults.
    d["slab_dram_budget_bytes"] = 8ll << 20;
    d["slab_spill"] = "zns";
    d["slab_spill_unit"] = "epoch";
    d.update(json{{"live_multiple", 4.0},
                  {"epochs", 32},
                  {"lifetimes", json::array({1, 2, 4, 8})},
                  {"min_size", 64},
                  {"max_size", 768},
                  {"mispredicted_fraction", 0.0},
                  {"mispredict_max_extra", 4},
                  {"access_skew", 1.0},
                  {"accesses_per_object", 1.0},
                  {"write_fraction", 0.25},
                  {"access_call", "pin"},
                  {"samples_per_epoch", 16},
                  {"device_factor", 1.5},
                  {"device_zone_bytes", 0},
                  {"device_direct", false},
                  {"device_prealloc", true},
                  {"device_dir", ""},
                  {"keep_device", false},
                  {"seed", 1}});
    return d;
  }

  void validate(const json& c) const override {
    validate_slab_options(c);
    check_int_range(c, "slab_dram_budget_bytes", 1 << 20, 1ll << 36);
    check_one_of(c, "access_call", {"pin", "deref"});
    check_number_range(c, "live_multiple", 0.05, 64.0);
    check_int_range(c, "epochs", 1, 1 << 20);
    check_int_range(c, "min_size", 1, int64_t(slab::kMaxObjectBytes));
    check_int_range(c, "max_size", cfg_int(c, "min_size"), int64_t(slab::kMaxObjectBytes));
    check_number_range(c, "mispredicted_fraction", 0.0, 1.0);
    check_int_range(c, "mispredict_max_extra", 1, 14);
    check_number_range(c, "access_skew", 0.0, 8.0);
    check_number_range(c, "accesses_per_object", 0.0, 1000.0);
    check_number_range(c, "write_fraction", 0.0, 1.0);
    check_int_range(c, "samples_per_epoch", 1, 1000);
    check_number_range(c, "device_factor", 0.1, 100.0);
    check_int_range(c, "device_zone_bytes", 0, 1ll << 32);
    if (cfg_u64(c, "device_zone_bytes") % (1 << 20)) throw_key_error("device_zone_bytes", "must be a multiple of 1 MiB");
    const json& lt = c.at("lifetimes");
    const int64_t extra = cfg_int(c, "mispredict_max_extra");
    if (!lt.is_array() || lt.empty()) throw_key_error("lifetimes", "expected a non-empty array of lifetimes in epochs");
    for (const auto& v : lt)
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() + extra > int64_t(kRing) - 1)
        throw_key_error("lifetimes", "each lifetime must be an integer >= 1 with lifetime + mispredict_max_extra <= 15 "
                                     "(the ring holds 16 epochs)");
    const ScheduleSize z = schedule_size(c);
    if (z.epoch_objects > (uint64_t(1) << 26))
      throw_key_error("live_multiple", "implies " + std::to_string(z.epoch_objects) + " objects per epoch (at most 2^26)");
  }

  std::vector<KeyDoc> key_docs() const override {
    return {
        {"live_multiple", "number", "ratio", "requested bytes live at once / slab_dram_budget_bytes"},
        {"epochs", "integer", "epochs", "workload epochs run (ring epoch = n % 16)"},
        {"lifetimes", "array", "epochs", "lifetime of epoch n is lifetimes[n % len]; each + mispredict_max_extra <= 15"},
        {"min_size", "integer", "bytes", "smallest object (uniform sizes)"},
        {"max_size", "integer", "bytes", "largest object, <= 768"},
        {"mispredicted_fraction", "number", "ratio", "objects outliving their epoch"},
        {"mispredict_max_extra", "integer", "epochs", "a mispredicted object lives 1..this many epochs past its epoch"},
        {"access_skew", "number", "", "Zipf exponent of the accessed epoch's age (0 = uniform over live epochs)"},
        {"accesses_per_object", "number", "count", "accesses (deref + check or rewrite) per allocation, on average"},
        {"write_fraction", "number", "ratio", "accesses that rewrite the object with its next version"},
        {"access_call", "string", "", "pin (a PinGuard holds the slab resident during the access) or deref (pointer only)"},
        {"samples_per_epoch", "integer", "count", "RSS samples per epoch"},
        {"device_factor", "number", "ratio", "default emulator size (slab_spill=overflow: region max_bytes) / peak live slab bytes"},
        {"device_zone_bytes", "integer", "bytes", "zone size of the default emulator (0: a power of two giving ~48 zones)"},
        {"device_direct", "boolean", "", "default emulator with O_DIRECT (false: through the page cache, direct=0)"},
        {"device_prealloc", "boolean", "",
         "default emulator with its blocks allocated at creation (prealloc=1: a zone reset keeps them; false: a reset "
         "punches a hole, and the next writes allocate blocks and page-cache pages again)"},
        {"device_dir", "string", "", "folder of the default emulator or overflow region file (\"\": the working directory)"},
        {"keep_device", "boolean", "", "keep the default emulator or overflow region file after the run"},
        {"seed", "integer", "", "seed of sizes, mispredictions and accesses"},
    };
  }

  void run(RunContext& ctx) override {
    const json& c = ctx.config;
    const ScheduleSize z = schedule_size(c);
    workloads::TieredChurnParams gp;
    gp.epoch_objects = z.epoch_objects;
    gp.lifetimes = c["lifetimes"].get<std::vector<uint32_t>>();
    gp.min_size = uint32_t(cfg_u64(c, "min_size"));
    gp.max_size = uint32_t(cfg_u64(c, "max_size"));
    gp.mispredicted = cfg_double(c, "mispredicted_fraction");
    gp.max_extra = uint32_t(cfg_u64(c, "mispredict_max_extra"));
    gp.skew = cfg_double(c, "access_skew");
    gp.accesses_per_object = cfg_double(c, "accesses_per_object");
    gp.write_fraction = cfg_double(c, "write_fraction");
    gp.seed = cfg_u64(c, "seed");
    workloads::TieredChurnGen gen(gp);  // the handle tables, resident from here on (before the baseline)

    TieredRunOptions ro;
    ro.slab = slab_options_from(c);
    ro.target = cfg_str(c, "slab_spill");
    ro.spill_device = cfg_str(c, "slab_spill_device");
    ro.epochs = uint32_t(cfg_u64(c, "epochs"));
    ro.samples_per_epoch = uint32_t(cfg_u64(c, "samples_per_epoch"));
    ro.epoch_objects = z.epoch_objects;
    ro.use_pin = cfg_str(c, "access_call") == "pin";
    ro.device_factor = cfg_double(c, "device_factor");
    ro.device_zone_bytes = cfg_u64(c, "device_zone_bytes");
    ro.device_direct = cfg_bool(c, "device_direct");
    ro.device_dir = cfg_str(c, "device_dir");
    ro.keep_device = cfg_bool(c, "keep_device");
    ro.device_prealloc = cfg_bool(c, "device_prealloc");
    ro.mean_lifetime = z.mean_lifetime;
    ro.peak_live_bytes = z.peak_live_bytes;
    ro.peak_slab_bytes = z.peak_slab_bytes;
    TieredPlanOf<workloads::TieredChurnGen> plan(gen);
    run_tiered(ctx, plan, ro);
  }
};

Registrar reg{WorkloadInfo{"tiered-churn",
                           "epochs of patterned objects over a DRAM budget, spilled to zones (by epoch or page) or an overflow region",
                           [] { return std::make_unique<TieredChurn>(); }, false, true}};

}  // namespace
}  // namespace znslab::harness

