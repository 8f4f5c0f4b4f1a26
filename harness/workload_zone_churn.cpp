// Workload "zone-churn" (issue 5): a write/delete churn over the zoned
// segment store (src/segment/zoned_store.h) on any ZonedDevice, writing at
// least `write_factor` (>= 3) times the device's capacity so that garbage
// collection must run on any device size.
//
// Time advances in epochs. Each record gets a lifetime class c (uniform over
// `lifetimes`, in epochs) and is deleted at the start of epoch birth +
// lifetimes[c]. Each epoch writes E bytes, chosen so that the steady-state
// live data is `live_fraction` of the device capacity:
//   E = live_fraction * capacity * k / sum(lifetimes)   (k classes).
// Placement `single` writes every class into one stream; `epoch` gives each
// lifetime class its own open zone (data that dies together shares zones).
// Records carry their number in every 8-byte word; `read_fraction` of puts
// are followed by a read of a random live record, checked word by word.
//
// Device: --device URI, else an emulator in a temp file with
// `default_device` parameters (removed afterwards).
//
// Summary (units in names): write_amplification (device/host bytes),
// write_amplification_after_1x (the same over the bytes written after the
// first device capacity, i.e. once the device had filled: steady state),
// host_bytes_written, device_bytes_written, gc_copied_bytes, gc_copies,
// gc_runs, zone_resets, zone_finishes, zone_opens, utilisation_at_reset
// (mean live fraction of a zone when reset, 0..1), throughput_mib_s (host
// MiB/s over the run), records, deletes, epochs, epoch_bytes, live_bytes_mean,
// read_errors, device_errors, host_streams, reads_via_mmap,
// read_mappings_peak, read_mapping_evictions, cache_hits, cache_misses,
// unusable_zones, zone_appends; latency_ns.write
// (put incl. any GC it triggered), latency_ns.free (remove incl. reset),
// latency_ns.read. Samples: one per epoch.
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "harness/scratch_dir.h"
#include "harness/config.h"
#include "harness/counters.h"
#include "harness/registry.h"
#include "harness/result.h"
#include "harness/timer.h"
#include "src/segment/zoned_store.h"
#include "zns/zoned_device.h"

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
    ResultDoc& doc = *ctx.result;
    std::unique_ptr<ScratchDir> scratch;  // removed when the run ends
    std::string uri = device_or_scratch(ctx.device_uri, "zone-churn", cfg_str(c, "default_device"), scratch);

    std::string err;
    auto dev_r = zns::open_device(uri, &err);
    if (!dev_r) throw RunError("zone-churn: cannot open device " + uri + ": " + (err.empty() ? dev_r.status().to_string() : err));
    zns::ZonedDevice& dev = **dev_r;
    const zns::DeviceInfo& info = dev.info();

    const std::vector<uint32_t> lifetimes = c["lifetimes"].get<std::vector<uint32_t>>();
    ZonedStoreOptions o;
    o.placement = cfg_str(c, "placement") == "epoch" ? Placement::kEpoch : Placement::kSingle;
    o.gc = cfg_str(c, "gc") == "cost-benefit" ? GcPolicy::kCostBenefit : GcPolicy::kGreedy;
    o.gc_free_zones = uint32_t(cfg_u64(c, "gc_free_zones"));
    o.streams = cfg_u64(c, "streams") ? uint32_t(cfg_u64(c, "streams")) : uint32_t(lifetimes.size());
    std::string rp = cfg_str(c, "read_path");
    o.read_path = rp == "mmap" ? ReadPath::kMmap : rp == "device" ? ReadPath::kDevice : ReadPath::kAuto;
    o.use_append = cfg_str(c, "write_mode") == "append";
    const uint64_t rmin = c["record_size"]["min"], rmax = c["record_size"]["max"];
    o.max_segment_bytes = uint32_t(std::min<uint64_t>(rmax, info.zone_capacity));
    if (rmax > info.zone_capacity)
      throw ConfigError("key \"record_size\": max " + std::to_string(rmax) + " exceeds the zone capacity " +
                        std::to_string(info.zone_capacity) + " of " + uri);
    auto st_r = ZonedSegmentStore::open(dev, o);
    if (!st_r) throw RunError("zone-churn: opening the segment store on " + uri + ": " + st_r.status().to_string());
    ZonedSegmentStore& st = **st_r;

    const uint64_t capacity = info.capacity_bytes();
    const double mean = double(rmin + rmax) / 2.0;
    uint64_t lsum = 0;
    for (uint32_t l : lifetimes) lsum += l;
    const double live_fraction = cfg_double(c, "live_fraction");
    const uint64_t epoch_bytes = std::max<uint64_t>(
        uint64_t(live_fraction * double(capacity) * double(lifetimes.size()) / double(lsum)), uint64_t(rmax));
    const uint64_t target_bytes = std::max<uint64_t>(uint64_t(cfg_double(c, "write_factor") * double(capacity)),
                                                     uint64_t(double(cfg_u64(c, "records")) * mean));

    json dj = {{"backend", info.backend}, {"uri", uri}, {"path", info.path}, {"zone_count", info.zone_count},
               {"zone_size", info.zone_size}, {"zone_capacity", info.zone_capacity}, {"lba_bytes", info.lba_bytes},
               {"max_open", info.max_open}, {"max_active", info.max_active}, {"capacity_bytes", capacity}};
    doc.set_device(dj);
    doc.set_allocator({{"name", "zoned-segment-store"},
                       {"version", 1},
                       {"options",
                        {{"placement", placement_name(o.placement)},
                         {"gc", gc_policy_name(o.gc)},
                         {"gc_free_zones", o.gc_free_zones},
                         {"streams_requested", o.streams},
                         {"host_streams", st.counters().host_streams},
                         {"write_mode", o.use_append ? "append" : "write"},
                         {"reads_via_mmap", st.reads_via_mmap()}}}});
    doc.doc()["timer"] = timer_json();

    struct Rec { SegmentKey key; uint64_t n; uint32_t len; };
    std::vector<std::vector<Rec>> dying;  // by death epoch (ring of max lifetime + 1)
    uint32_t lmax = 0;
    for (uint32_t l : lifetimes) lmax = std::max(lmax, l);
    dying.resize(lmax + 1);
    std::vector<Rec> live_sample;  // reservoir of recent live records for reads
    std::mt19937_64 rng(cfg_u64(c, "seed"));
    std::uniform_int_distribution<uint64_t> size_dist(rmin, rmax);
    std::vector<uint64_t> buf((rmax + 7) / 8 + 1), rbuf((rmax + 7) / 8 + 1);
    LatencyHistogram wlat, flat, rlat;
    const double read_fraction = cfg_double(c, "read_fraction");
    uint64_t records = 0, deletes = 0, read_errors = 0, epochs = 0, written = 0;
    double live_sum = 0;
    // Counters when the first device capacity had been written (steady-state WA after it).
    uint64_t host_at_1c = 0, dev_at_1c = 0;
    bool have_1c = false;
    uint64_t next_progress = target_bytes / 10;
    const uint64_t t0 = monotonic_ns();

    auto sample = [&] {
      const auto& k = st.counters();
      doc.add_sample({{"epoch", epochs},
                      {"host_bytes_written", k.host_bytes_written},
                      {"device_bytes_written", k.device_bytes_written},
                      {"write_amplification", k.write_amplification()},
                      {"gc_copied_bytes", k.gc_copied_bytes},
                      {"zone_resets", k.zone_resets},
                      {"free_zones", st.free_zones()},
                      {"live_bytes", k.live_bytes}});
    };

    while (written < target_bytes) {
      // Deaths of this epoch.
      auto& die = dying[epochs % dying.size()];
      for (const Rec& r : die) {
        uint64_t t = timer_start();
        Status s = st.remove(r.key);
        flat.record(ticks_to_ns(timer_stop() - t));
        if (!s) throw RunError("zone-churn: remove at epoch " + std::to_string(epochs) + ": " + s.to_string());
        ++deletes;
      }
      die.clear();
      uint64_t epoch_written = 0;
      while (epoch_written < epoch_bytes && written < target_bytes) {
        uint32_t cls = uint32_t(rng() % lifetimes.size());
        uint32_t len = uint32_t(size_dist(rng));
        uint64_t n = records;
        for (size_t w = 0; w < (len + 7) / 8; ++w) buf[w] = n * 0x9E3779B97F4A7C15ull + w;
        uint64_t t = timer_start();
        auto key = st.put(buf.data(), len, cls);
        wlat.record(ticks_to_ns(timer_stop() - t));
        if (!key)
          throw RunError("zone-churn: put of record " + std::to_string(n) + " (" + std::to_string(len) +
                         " bytes) at epoch " + std::to_string(epochs) + ": " + key.status().to_string());
        Rec r{*key, n, len};
        dying[(epochs + lifetimes[cls]) % dying.size()].push_back(r);
        if (live_sample.size() < 4096) live_sample.push_back(r);
        else live_sample[rng() % live_sample.size()] = r;
        ++records;
        epoch_written += len;
        written += len;
        if (read_fraction > 0 && double(rng() % 1000000) < read_fraction * 1e6) {
          const Rec& q = live_sample[rng() % live_sample.size()];
          uint64_t tr = timer_start();
          auto got = st.read(q.key, rbuf.data(), rbuf.size() * 8);
          uint64_t ns = ticks_to_ns(timer_stop() - tr);
          if (got) {
            rlat.record(ns);
            bool ok = *got == q.len;
            for (size_t w = 0; ok && w < q.len / 8; ++w) ok = rbuf[w] == q.n * 0x9E3779B97F4A7C15ull + w;
            if (!ok) ++read_errors;
          } else if (got.status().code() != Code::kStaleHandle) {
            ++read_errors;  // stale = the sampled record already died: not an error
          }
        }
        if (ctx.progress && written >= next_progress) {
          const auto& k = st.counters();
          std::fprintf(stderr, "zone-churn[%s]: %3.0f%% written %.0f MiB, WA %.3f, resets %" PRIu64 ", free zones %u\n",
                       placement_name(o.placement), 100.0 * double(written) / double(target_bytes),
                       double(written) / 1048576.0, k.write_amplification(), k.zone_resets, st.free_zones());
          next_progress += target_bytes / 10;
        }
      }
      live_sum += double(st.counters().live_bytes);
      if (!have_1c && st.counters().host_bytes_written >= capacity) {
        host_at_1c = st.counters().host_bytes_written;
        dev_at_1c = st.counters().device_bytes_written;
        have_1c = true;
      }
      ++epochs;
      sample();
    }
    const double secs = double(monotonic_ns() - t0) / 1e9;

    const auto& k = st.counters();
    json& s = doc.summary();
    s["placement"] = placement_name(o.placement);
    s["gc"] = gc_policy_name(o.gc);
    counters_to_json(k, s);  // every ZonedStoreCounters key (harness/counters.h)
    s["write_amplification"] = k.write_amplification();
    s["write_amplification_after_1x"] =
        have_1c && k.host_bytes_written > host_at_1c
            ? double(k.device_bytes_written - dev_at_1c) / double(k.host_bytes_written - host_at_1c)
            : k.write_amplification();
    s["device_capacity_bytes"] = capacity;
    s["capacity_multiple_written"] = double(k.host_bytes_written) / double(capacity);
    s["utilisation_at_reset"] = k.utilisation_at_reset();
    s["throughput_mib_s"] = secs > 0 ? double(k.host_bytes_written) / 1048576.0 / secs : 0.0;
    s["seconds"] = secs;
    s["records"] = records;
    s["deletes"] = deletes;
    s["epochs"] = epochs;
    s["epoch_bytes"] = epoch_bytes;
    s["live_bytes_mean"] = epochs ? live_sum / double(epochs) : 0.0;
    s["live_fraction_measured"] = epochs ? live_sum / double(epochs) / double(capacity) : 0.0;
    s["reads"] = rlat.count();
    s["read_errors"] = read_errors;
    s["reads_via_mmap"] = st.reads_via_mmap();
    auto ms = st.mapping_stats();
    s["read_mappings_peak"] = ms.peak_mappings;   // mmap windows over the emulator's backing file
    s["read_mapping_evictions"] = ms.evictions;
    doc.set_latency("write", wlat);
    doc.set_latency("free", flat);
    doc.set_latency("read", rlat);
    if (ctx.progress)
      std::fprintf(stderr,
                   "zone-churn[%s, %s]: %.2f x capacity written, WA %.3f, resets %" PRIu64 ", GC copied %.1f MiB, "
                   "%.1f MiB/s, write p50 %" PRIu64 " ns p99 %" PRIu64 " ns, read errors %" PRIu64 "\n",
                   placement_name(o.placement), gc_policy_name(o.gc), double(k.host_bytes_written) / double(capacity),
                   k.write_amplification(), k.zone_resets, double(k.gc_copied_bytes) / 1048576.0,
                   s["throughput_mib_s"].get<double>(), wlat.percentile(0.5), wlat.percentile(0.99), read_errors);
    if (read_errors) throw RunError("zone-churn: " + std::to_string(read_errors) + " records read back wrong");
  }
};

Registrar reg{WorkloadInfo{"zone-churn", "write/delete churn over the zoned segment store with GC: WA by placement",
                           [] { return std::make_unique<ZoneChurn>(); }, /*uses_allocator=*/false, /*uses_device=*/true}};

}  // namespace
}  // namespace znslab::harness
