// Workload "tiered-churn" (issue 11; docs/tiered.md): the temporal slab with
// a DRAM budget (slab_dram_budget_bytes) spilling cold epochs or pages to a
// zoned device (slab_spill, slab_spill_unit), under epochs of patterned
// objects whose accesses favour recent epochs.
//
// Schedule (TieredChurnGen, below): workload epoch n (0 .. epochs-1) is ring
// epoch n % 16. It allocates `epoch_objects` objects of uniform size in
// [min_size, max_size] bytes, where epoch_objects = live_multiple x budget /
// (mean lifetime x mean size), so the requested bytes live at once are about
// live_multiple x budget. Epoch n lives lifetimes[n % k] epochs (the
// lifetime mix, in epochs): its objects are freed together at the start of
// epoch n + lifetime, and the epoch is then closed (epoch_close) -- except
// a `mispredicted_fraction` of them, each freed 1..mispredict_max_extra
// epochs later (uniform). Every allocation is followed, on average, by
// `accesses_per_object` accesses: an epoch age drawn from a Zipf law with
// exponent `access_skew` (P(age a) ~ (a+1)^-skew over live epochs), a
// random live object of that epoch, deref, then a check of its whole
// pattern (read) or a rewrite with the next version (a `write_fraction` of
// accesses). Any byte that differs from what was last written counts in
// corrupt_objects and fails the run (exit 1) after the result is filled.
//
// The handle tables (16 B per object, one table per ring epoch) are
// allocated and touched before baseline_rss_bytes is sampled, which is
// before the first slab allocation. RSS is sampled `samples_per_epoch`
// times per epoch (samples[], phase "epoch").
//
// Device: slab_spill_device if set, else --device, else an emulator file
// tiered-churn-<pid>.zns in `device_dir` (default: the working directory)
// holding device_factor x the schedule's peak live slab bytes, removed at
// the end unless keep_device. Only opened when slab_spill is not "none".
//
// Summary (schema: harness/schema.cpp, "tiered-churn"): dram_budget_bytes,
// peak_rss_bytes, baseline_rss_bytes, rss_over_budget_pct (max over samples
// of (rss - baseline - budget) / budget x 100, 0 if never above),
// spilled_bytes, faultbacks, faultback_ns {p50, p99}, write_amplification,
// zone_resets, gc_copied_bytes, ops_per_sec (allocs + frees + accesses per
// second), corrupt_objects, plus the spill counters and the schedule.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "harness/config.h"
#include "harness/registry.h"
#include "harness/result.h"
#include "harness/sampler.h"
#include "harness/slab_options.h"
#include "harness/timer.h"
#include "src/slab/slab.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

constexpr uint32_t kRing = slab::kEpochCount;  // 16 ring epochs
constexpr uint64_t kMixA = 0x9E3779B97F4A7C15ull, kMixB = 0xC2B2AE3D27D4EB4Full;

// ---- object pattern ---------------------------------------------------------
// Word i (8 bytes, the tail truncated) of object `key` at `version`.
inline uint64_t pattern_word(uint64_t key, uint32_t version, size_t i) {
  return (key * kMixA) ^ (uint64_t(version + 1) * kMixB) ^ (uint64_t(i) * 0x100000001B3ull);
}
void fill_object(uint8_t* p, uint64_t key, uint32_t version, size_t len) {
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const uint64_t w = pattern_word(key, version, i);
    std::memcpy(p + i, &w, 8);
  }
  if (i < len) {
    const uint64_t w = pattern_word(key, version, i);
    std::memcpy(p + i, &w, len - i);
  }
}
bool object_intact(const uint8_t* p, uint64_t key, uint32_t version, size_t len) {
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    const uint64_t w = pattern_word(key, version, i);
    if (std::memcmp(p + i, &w, 8) != 0) return false;
  }
  if (i < len) {
    const uint64_t w = pattern_word(key, version, i);
    if (std::memcmp(p + i, &w, len - i) != 0) return false;
  }
  return true;
}

// Slab bytes an object of `size` bytes occupies on average: its slot's share
// of a 4 KiB slab (slots per slab as docs/slab.md lists them: 56 for the
// 64 B class, else floor(4096 / slot)).
double slab_bytes_per_object(uint32_t size) {
  const uint32_t slot = slab::kSizeClasses[slab::size_class_of(size)];
  const uint32_t per = std::min<uint32_t>(56, uint32_t(slab::kSlabBytes / slot));
  return double(slab::kSlabBytes) / double(per);
}

// ---- the operation logic ------------------------------------------------------
// What to allocate, free and access, and the handle tables. No allocator,
// timing or JSON: the runner asks, executes and reports back.
class TieredChurnGen {
 public:
  struct Params {
    uint64_t epoch_objects = 0;
    std::vector<uint32_t> lifetimes;  // epochs, each in [1, 15 - max_extra]
    uint32_t min_size = 64, max_size = 768;
    double mispredicted = 0;          // fraction of objects outliving their epoch
    uint32_t max_extra = 4;           // epochs a mispredicted object outlives it by, at most
    double skew = 1.0;                // Zipf exponent over epoch age
    double write_fraction = 0.25;
    uint64_t seed = 1;
  };
  struct Ref {
    uint32_t slot = 0, idx = 0;
  };
  struct Obj {
    uint64_t handle = 0;
    uint32_t death = 0;  // workload epoch at whose start it is freed
    uint16_t size = 0;
    uint16_t version = 0;
  };

  // Allocates and touches every table (16 x epoch_objects objects and the
  // mispredicted lists), so the bookkeeping is resident before the baseline.
  explicit TieredChurnGen(const Params& p) : p_(p), rng_(p.seed) {
    for (auto& t : tables_) {
      t.objs.assign(p_.epoch_objects, Obj{});
      t.mis.assign(p_.epoch_objects, 0);
      t.mis.clear();  // keeps the touched capacity
    }
    double sum = 0;
    for (uint32_t a = 0; a < kRing; ++a) {
      sum += std::pow(double(a + 1), -p_.skew);
      zipf_cdf_[a] = sum;
    }
    for (double& c : zipf_cdf_) c /= sum;
  }

  // Workload epoch n begins: returns its ring slot. The slot's previous
  // epoch is dead by construction (lifetime + extra <= 15).
  uint32_t begin_epoch(uint32_t n) {
    cur_ = n;
    const uint32_t s = n % kRing;
    Table& t = tables_[s];
    t = Table{std::move(t.objs), std::move(t.mis)};
    t.mis.clear();
    t.used = true;
    t.epoch = n;
    t.expiry = n + p_.lifetimes[n % p_.lifetimes.size()];
    return s;
  }
  // Objects due to be freed at the start of epoch n (call after
  // begin_epoch(n)), in table order; `f(ref)` frees one.
  template <class F>
  void for_each_due(F&& f) {
    for (uint32_t s = 0; s < kRing; ++s) {
      Table& t = tables_[s];
      if (!t.used || t.live == 0) continue;
      if (t.expiry == cur_) {
        for (uint32_t i = 0; i < t.count; ++i)
          if (t.objs[i].handle && t.objs[i].death == cur_) f(Ref{s, i});
      } else if (t.expiry < cur_) {
        for (uint32_t i : t.mis)
          if (t.objs[i].handle && t.objs[i].death == cur_) f(Ref{s, i});
      }
    }
  }
  // Ring slots whose epoch expires at the start of the current epoch (their
  // well-predicted objects were just freed): the runner closes them.
  template <class F>
  void for_each_expiring(F&& f) const {
    for (uint32_t s = 0; s < kRing; ++s)
      if (tables_[s].used && tables_[s].expiry == cur_ && tables_[s].epoch != cur_) f(s);
  }

  // The next object of the current epoch: its size (bytes) and death.
  Obj plan_object() {
    Obj o;
    o.size = uint16_t(p_.min_size + uint32_t(rng_() % (uint64_t(p_.max_size - p_.min_size) + 1)));
    const Table& t = tables_[cur_ % kRing];
    o.death = t.expiry;
    if (p_.mispredicted > 0 && coin() < p_.mispredicted) o.death += 1 + uint32_t(rng_() % p_.max_extra);
    return o;
  }
  bool epoch_full() const { return tables_[cur_ % kRing].count >= p_.epoch_objects; }
  // Records the planned object `o` as allocated with `handle`; returns its ref.
  Ref added(const Obj& o, uint64_t handle) {
    const uint32_t s = cur_ % kRing;
    Table& t = tables_[s];
    const uint32_t i = t.count++;
    t.objs[i] = o;
    t.objs[i].handle = handle;
    if (o.death != t.expiry) t.mis.push_back(i);
    ++t.live;
    live_bytes_ += o.size;
    return Ref{s, i};
  }
  void freed(Ref r) {
    Table& t = tables_[r.slot];
    live_bytes_ -= t.objs[r.idx].size;
    t.objs[r.idx].handle = 0;
    --t.live;
  }

  // A live object to access (false when none was found in 64 draws), and
  // whether the access writes.
  bool pick_access(Ref* out, bool* write) {
    for (int tries = 0; tries < 64; ++tries) {
      const double u = coin();
      uint32_t age = 0;
      while (age + 1 < kRing && zipf_cdf_[age] < u) ++age;
      if (age > cur_) continue;
      const uint32_t s = (cur_ - age) % kRing;
      const Table& t = tables_[s];
      if (!t.used || t.live == 0 || t.count == 0) continue;
      uint32_t i;
      if (t.expiry > cur_) i = uint32_t(rng_() % t.count);
      else if (!t.mis.empty()) i = t.mis[rng_() % t.mis.size()];
      else continue;
      if (!t.objs[i].handle) continue;
      *out = Ref{s, i};
      *write = coin() < p_.write_fraction;
      return true;
    }
    return false;
  }

  Obj& obj(Ref r) { return tables_[r.slot].objs[r.idx]; }
  // The pattern key of an object: (workload epoch, index).
  uint64_t key(Ref r) const { return (uint64_t(tables_[r.slot].epoch) << 32) | r.idx; }
  uint64_t live_bytes() const { return live_bytes_; }  // requested bytes of live objects
  // Every live object, for the final drain.
  template <class F>
  void for_each_live(F&& f) {
    for (uint32_t s = 0; s < kRing; ++s)
      for (uint32_t i = 0; i < tables_[s].count; ++i)
        if (tables_[s].objs[i].handle) f(Ref{s, i});
  }
  double coin() { return double(rng_() >> 11) * 0x1.0p-53; }

 private:
  struct Table {
    std::vector<Obj> objs;      // epoch_objects entries; handle 0 = free
    std::vector<uint32_t> mis;  // indices of mispredicted objects
    uint32_t count = 0, live = 0, epoch = 0, expiry = 0;
    bool used = false;
  };
  Params p_;
  std::mt19937_64 rng_;
  std::array<Table, kRing> tables_;
  std::array<double, kRing> zipf_cdf_{};
  uint32_t cur_ = 0;
  uint64_t live_bytes_ = 0;
};

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

// The spill counters of the result (zeros when spill is off).
nlohmann::json spill_json(const slab::SpillStats& st) {
  json j = json::object();
#define X(n, kind) j[#n] = st.n;
  ZNSLAB_SLAB_SPILL_COUNTERS(X)
#undef X
  j["write_amplification"] = st.write_amplification;
  j["faultback_ns"] = {{"count", st.faultback_ns.count}, {"p50", st.faultback_ns.p50}, {"p90", st.faultback_ns.p90},
                       {"p99", st.faultback_ns.p99},     {"p999", st.faultback_ns.p999}, {"max", st.faultback_ns.max}};
  return j;
}

// The default emulator file, removed when the run ends unless kept.
class DeviceFile {
 public:
  DeviceFile() = default;
  DeviceFile(std::string path, bool keep) : path_(std::move(path)), keep_(keep) {}
  ~DeviceFile() {
    if (path_.empty() || keep_) return;
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  DeviceFile(const DeviceFile&) = delete;
  DeviceFile& operator=(const DeviceFile&) = delete;

 private:
  std::string path_;
  bool keep_ = false;
};

// The emulator URI for `bytes` of zones: zones of a power of two >= 1 MiB,
// about 48 of them, max 14 open and active (the device's limits bound the
// epochs spilling at once); O_DIRECT only when `direct` (else the page
// cache serves reads: the software path without this VM's disk latency).
std::string emu_uri_for(const std::string& path, double bytes, uint64_t zone_bytes, bool direct) {
  if (zone_bytes == 0) {
    zone_bytes = uint64_t(1) << 20;
    while (double(zone_bytes) * 48 < bytes) zone_bytes <<= 1;
  }
  const uint64_t zones = std::max<uint64_t>(16, uint64_t(std::ceil(bytes / double(zone_bytes))));
  return "emu:" + path + "?zones=" + std::to_string(zones) + "&zone_size=" + std::to_string(zone_bytes >> 20) +
         "M&max_open=14&max_active=14&direct=" + (direct ? "1" : "0");
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
        {"device_factor", "number", "ratio", "default emulator size / peak live slab bytes"},
        {"device_zone_bytes", "integer", "bytes", "zone size of the default emulator (0: a power of two giving ~48 zones)"},
        {"device_direct", "boolean", "", "default emulator with O_DIRECT (false: through the page cache, direct=0)"},
        {"device_dir", "string", "", "folder of the default emulator file (\"\": the working directory)"},
        {"keep_device", "boolean", "", "keep the default emulator file after the run"},
        {"seed", "integer", "", "seed of sizes, mispredictions and accesses"},
    };
  }

  void run(RunContext& ctx) override {
    const json& c = ctx.config;
    ResultDoc& doc = *ctx.result;
    const uint64_t budget = cfg_u64(c, "slab_dram_budget_bytes");
    const std::string target = cfg_str(c, "slab_spill"), unit = cfg_str(c, "slab_spill_unit");
    const ScheduleSize z = schedule_size(c);

    // The device: slab_spill_device, --device, or a default emulator file.
    std::string uri = cfg_str(c, "slab_spill_device");
    std::unique_ptr<DeviceFile> device_file;  // outlives the allocator below
    json device = nullptr;
    if (target == "zns") {
      if (uri.empty()) uri = ctx.device_uri;
      if (uri.empty()) {
        std::string dir = cfg_str(c, "device_dir");
        if (dir.empty()) dir = std::filesystem::current_path().string();
        const std::string path = dir + "/tiered-churn-" + std::to_string(::getpid()) + ".zns";
        std::error_code ec;
        std::filesystem::remove(path, ec);  // a leftover of a killed run with our pid
        uri = emu_uri_for(path, cfg_double(c, "device_factor") * z.peak_slab_bytes, cfg_u64(c, "device_zone_bytes"),
                          cfg_bool(c, "device_direct"));
        device_file = std::make_unique<DeviceFile>(path, cfg_bool(c, "keep_device"));
      }
      device = json{{"uri", uri}, {"default_emulator", device_file != nullptr}};
    } else if (target == "overflow" && uri.empty()) {
      uri = ctx.device_uri;
    }

    slab::Options o = slab_options_from(c);
    o.spill_device = uri;
    if (target == "none") o.dram_budget_bytes = 0;  // no spill target: no budget, RSS grows
    auto ar = slab::SlabAllocator::create(o);
    if (!ar) throw RunError("tiered-churn: creating the slab allocator (spill " + target + ", device " + uri +
                            "): " + ar.status().to_string());
    slab::SlabAllocator& a = **ar;

    TieredChurnGen::Params gp;
    gp.epoch_objects = z.epoch_objects;
    gp.lifetimes = c["lifetimes"].get<std::vector<uint32_t>>();
    gp.min_size = uint32_t(cfg_u64(c, "min_size"));
    gp.max_size = uint32_t(cfg_u64(c, "max_size"));
    gp.mispredicted = cfg_double(c, "mispredicted_fraction");
    gp.max_extra = uint32_t(cfg_u64(c, "mispredict_max_extra"));
    gp.skew = cfg_double(c, "access_skew");
    gp.write_fraction = cfg_double(c, "write_fraction");
    gp.seed = cfg_u64(c, "seed");
    TieredChurnGen gen(gp);  // the handle tables, resident from here on

    json aopts = slab_options_json(a.options());
    doc.set_allocator({{"name", "temporal-slab"}, {"version", "znslab " + git_rev()}, {"options", aopts}});
    doc.set_device(device);
    doc.doc()["timer"] = timer_json();
    Sampler sampler;

    // Everything the loop records is allocated before the baseline: the
    // sample rows (converted to JSON after the run) and the histograms.
    struct Row {
      ProcSample ps;
      uint64_t t_ns;
      const char* phase;
      uint32_t epoch;
      uint64_t committed, live, requested, dram_committed, spilled_now, spilled, faultbacks;
    };
    // At most 2 x samples_per_epoch samples per epoch (sample_step below).
    std::vector<Row> rows(size_t(cfg_u64(c, "epochs")) * 2 * cfg_u64(c, "samples_per_epoch") + 4);  // touched
    size_t nrows = 0;
    auto hist = std::make_unique<std::array<LatencyHistogram, 3>>();
    LatencyHistogram &alloc_lat = (*hist)[0], &free_lat = (*hist)[1], &deref_lat = (*hist)[2];
    std::string first_corrupt;
    first_corrupt.reserve(256);

    uint64_t peak_rss = 0, baseline = 0;
    double over_pct = 0;
    auto sample = [&](const char* phase, uint32_t epoch) {
      Row r{};
      sampler.sample_into(r.ps);
      r.t_ns = monotonic_ns() - doc.t0_ns();
      r.phase = phase;
      r.epoch = epoch;
      const slab::GlobalStats g = a.stats_global();
      const slab::SpillStats sp = a.stats_spill();
      r.committed = g.committed_bytes;
      r.live = g.live_bytes;
      r.requested = gen.live_bytes();
      r.dram_committed = sp.dram_committed_bytes;
      r.spilled_now = sp.spilled_now_bytes;
      r.spilled = sp.spilled_bytes;
      r.faultbacks = sp.faultbacks;
      if (baseline) {
        peak_rss = std::max(peak_rss, r.ps.rss_bytes);
        const double over = (double(r.ps.rss_bytes) - double(baseline) - double(budget)) / double(budget) * 100.0;
        over_pct = std::max(over_pct, over);
      }
      if (nrows < rows.size()) rows[nrows++] = r;
      return r.ps.rss_bytes;
    };
    baseline = sample("baseline", 0);
    peak_rss = baseline;

    uint64_t allocs = 0, frees = 0, accesses = 0, reads = 0, writes = 0, corrupt = 0, access_misses = 0;
    const uint32_t epochs = uint32_t(cfg_u64(c, "epochs"));
    const double per_object = cfg_double(c, "accesses_per_object");
    const bool use_pin = cfg_str(c, "access_call") == "pin";
    const uint64_t sample_step = std::max<uint64_t>(1, z.epoch_objects / cfg_u64(c, "samples_per_epoch"));

    auto free_ref = [&](TieredChurnGen::Ref r) {
      const uint64_t t = timer_start();
      Status s = a.free(slab::Handle{gen.obj(r).handle});
      free_lat.record(ticks_to_ns(timer_stop() - t));
      if (!s) throw RunError("tiered-churn: free: " + s.to_string());
      gen.freed(r);
      ++frees;
    };
    auto access = [&] {
      TieredChurnGen::Ref r;
      bool write = false;
      if (!gen.pick_access(&r, &write)) return void(++access_misses);
      TieredChurnGen::Obj& ob = gen.obj(r);
      const slab::Handle h{ob.handle};
      slab::SlabAllocator::PinGuard guard;  // holds the slab resident while its bytes are used
      uint8_t* bytes = nullptr;
      const uint64_t t = timer_start();
      if (use_pin) {
        auto g = a.pin(h);
        deref_lat.record(ticks_to_ns(timer_stop() - t));
        if (!g) throw RunError("tiered-churn: pin of a live object: " + g.status().to_string());
        guard = std::move(*g);
        bytes = static_cast<uint8_t*>(guard.ptr());
      } else {
        auto p = a.deref(h);
        deref_lat.record(ticks_to_ns(timer_stop() - t));
        if (!p) throw RunError("tiered-churn: deref of a live object: " + p.status().to_string());
        bytes = static_cast<uint8_t*>(*p);
      }
      if (write) {
        ++ob.version;
        fill_object(bytes, gen.key(r), ob.version, ob.size);
        ++writes;
      } else {
        if (!object_intact(bytes, gen.key(r), ob.version, ob.size)) {
          if (!corrupt)
            first_corrupt = "epoch " + std::to_string(gen.key(r) >> 32) + " object " + std::to_string(r.idx) + " (" +
                            std::to_string(ob.size) + " B, version " + std::to_string(ob.version) + ")";
          ++corrupt;
        }
        ++reads;
      }
      ++accesses;
    };

    const uint64_t t0 = monotonic_ns();
    double access_credit = 0;
    for (uint32_t n = 0; n < epochs; ++n) {
      const uint32_t slot = gen.begin_epoch(n);
      if (n > 0) {
        const uint32_t e = a.epoch_advance();
        if (e != slot) throw RunError("tiered-churn: epoch_advance gave ring epoch " + std::to_string(e) + ", expected " +
                                      std::to_string(slot));
      }
      gen.for_each_due(free_ref);
      gen.for_each_expiring([&](uint32_t s) {
        Status st = a.epoch_close(s);
        if (!st) throw RunError("tiered-churn: epoch_close(" + std::to_string(s) + "): " + st.to_string());
      });
      for (uint64_t i = 0; !gen.epoch_full(); ++i) {
        TieredChurnGen::Obj ob = gen.plan_object();
        const uint64_t t = timer_start();
        auto r = a.allocate(ob.size, slot);
        alloc_lat.record(ticks_to_ns(timer_stop() - t));
        if (!r) throw RunError("tiered-churn: allocate(" + std::to_string(ob.size) + ", epoch " + std::to_string(slot) +
                               ") at workload epoch " + std::to_string(n) + ": " + r.status().to_string());
        TieredChurnGen::Ref ref = gen.added(ob, r->handle.raw);
        fill_object(static_cast<uint8_t*>(r->ptr), gen.key(ref), 0, ob.size);
        ++allocs;
        for (access_credit += per_object; access_credit >= 1.0; access_credit -= 1.0) access();
        if ((i + 1) % sample_step == 0) sample("epoch", n);
      }
      if (ctx.progress && (n + 1) % 8 == 0)
        std::fprintf(stderr, "tiered-churn: epoch %u/%u, live %.1f MiB, rss %.1f MiB\n", n + 1, epochs,
                     double(gen.live_bytes()) / 1048576.0, double(sampler.rss_bytes()) / 1048576.0);
    }
    const uint64_t t_ops = monotonic_ns() - t0;
    const slab::GlobalStats g = a.stats_global();
    const slab::SpillStats sc = a.stats_spill();
    gen.for_each_live([&](TieredChurnGen::Ref r) {
      Status s = a.free(slab::Handle{gen.obj(r).handle});
      if (!s) throw RunError("tiered-churn: final free: " + s.to_string());
      gen.freed(r);
    });
    sample("end", epochs);

    for (size_t i = 0; i < nrows; ++i) {
      const Row& r = rows[i];
      json j;
      r.ps.to_json(j);
      j["t_ns"] = r.t_ns;
      j["phase"] = r.phase;
      j["epoch"] = r.epoch;
      j["committed_bytes"] = r.committed;
      j["live_bytes"] = r.live;
      j["requested_bytes"] = r.requested;
      j["dram_committed_bytes"] = r.dram_committed;
      j["spilled_now_bytes"] = r.spilled_now;
      j["spilled_bytes"] = r.spilled;
      j["faultbacks"] = r.faultbacks;
      doc.add_sample(std::move(j));
    }

    json& sum = doc.summary();
    sum["dram_budget_bytes"] = budget;
    sum["peak_rss_bytes"] = peak_rss;
    sum["baseline_rss_bytes"] = baseline;
    sum["rss_over_budget_pct"] = std::max(0.0, over_pct);
    sum["spilled_bytes"] = sc.spilled_bytes;
    sum["faultbacks"] = sc.faultbacks;
    sum["faultback_bytes"] = sc.faultback_bytes;
    sum["faultback_ns"] = {{"p50", sc.faultback_ns.p50}, {"p99", sc.faultback_ns.p99}, {"max", sc.faultback_ns.max},
                           {"count", sc.faultback_ns.count}};
    sum["faultback_p50_ns"] = sc.faultback_ns.p50;  // the same as scalars, for tables
    sum["faultback_p99_ns"] = sc.faultback_ns.p99;
    sum["write_amplification"] = sc.write_amplification;
    sum["zone_resets"] = sc.zone_resets;
    sum["gc_copied_bytes"] = sc.gc_copied_bytes;
    sum["device_bytes_written"] = sc.device_bytes_written;
    sum["spill_ios"] = sc.spill_ios;
    sum["dram_committed_bytes"] = sc.dram_committed_bytes;
    sum["spill"] = spill_json(sc);  // every spill counter, as src/slab declares them
    sum["ops_per_sec"] = t_ops ? double(allocs + frees + accesses) * 1e9 / double(t_ops) : 0.0;
    sum["corrupt_objects"] = corrupt;
    sum["counters"] = {{"allocs", allocs},     {"frees", frees},   {"accesses", accesses},
                       {"reads", reads},       {"writes", writes}, {"access_misses", access_misses},
                       {"committed_bytes", g.committed_bytes}, {"live_bytes", g.live_bytes}};
    sum["schedule"] = {{"epoch_objects", z.epoch_objects},
                       {"mean_lifetime_epochs", z.mean_lifetime},
                       {"peak_live_bytes", uint64_t(z.peak_live_bytes)},
                       {"peak_slab_bytes", uint64_t(z.peak_slab_bytes)}};
    doc.set_latency("alloc", alloc_lat);
    doc.set_latency("free", free_lat);
    doc.set_latency(use_pin ? "pin" : "deref", deref_lat);
    try {
      doc.doc()["slab_stats"] = json::parse(a.stats_json());
    } catch (const json::exception& e) {
      doc.doc()["slab_stats"] = json{{"error", std::string("stats_json did not parse: ") + e.what()}};
    }
    if (ctx.progress)
      std::fprintf(stderr,
                   "tiered-churn: spill %s/%s, budget %.1f MiB: peak rss %.1f MiB (baseline %.1f), over budget %.1f %%, "
                   "spilled %.1f MiB, faultbacks %" PRIu64 ", WA %.3f, %.0f ops/s, corrupt %" PRIu64 "\n",
                   target.c_str(), unit.c_str(), double(budget) / 1048576.0, double(peak_rss) / 1048576.0,
                   double(baseline) / 1048576.0, std::max(0.0, over_pct), double(sc.spilled_bytes) / 1048576.0,
                   sc.faultbacks, sc.write_amplification, double(sum["ops_per_sec"].get<double>()), corrupt);
    if (corrupt)
      throw RunError("tiered-churn: " + std::to_string(corrupt) + " objects read back with wrong bytes (first: " +
                     first_corrupt + ")");
  }
};

Registrar reg{WorkloadInfo{"tiered-churn",
                           "epochs of patterned objects over a DRAM budget, spilled to zones by epoch or page",
                           [] { return std::make_unique<TieredChurn>(); }, false, true}};

}  // namespace
}  // namespace znslab::harness
