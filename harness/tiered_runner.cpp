// The tiered runner (harness/tiered_runner.h): device, allocator, timing,
// samples, summary and result of the tiered-churn workload.
#include "harness/tiered_runner.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "harness/result.h"
#include "harness/sampler.h"
#include "harness/slab_options.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

static_assert(workloads::TieredChurnGen::kRing == slab::kEpochCount, "the generator's ring is the slab's");

// The spill counters of the result (zeros when spill is off).
json spill_json(const slab::SpillStats& st) {
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
std::string emu_uri_for(const std::string& path, double bytes, uint64_t zone_bytes, bool direct, bool prealloc) {
  if (zone_bytes == 0) {
    zone_bytes = uint64_t(1) << 20;
    while (double(zone_bytes) * 48 < bytes) zone_bytes <<= 1;
  }
  const uint64_t zones = std::max<uint64_t>(16, uint64_t(std::ceil(bytes / double(zone_bytes))));
  return "emu:" + path + "?zones=" + std::to_string(zones) + "&zone_size=" + std::to_string(zone_bytes >> 20) +
         "M&max_open=14&max_active=14&direct=" + (direct ? "1" : "0") + "&prealloc=" + (prealloc ? "1" : "0");
}

// The CPUs each io_uring worker of the calling thread may run on: the
// Cpus_allowed_list of every /proc/self/task/<tid> whose comm is
// "iou-wrk-<caller's tid>" (the kernel names a task's io-wq workers so), in
// directory order; empty when the thread has none (no punted I/O, or they
// idled out).
json io_worker_cpus() {
  json out = json::array();
  const std::string mine = "iou-wrk-" + std::to_string(::gettid());
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream comm(e.path() / "comm");
    std::string name;
    if (!std::getline(comm, name) || name != mine) continue;
    std::ifstream st(e.path() / "status");
    for (std::string line; std::getline(st, line);) {
      if (line.rfind("Cpus_allowed_list:", 0) != 0) continue;
      const size_t b = line.find_first_not_of(" \t", 18);
      out.push_back(b == std::string::npos ? std::string() : line.substr(b));
      break;
    }
  }
  return out;
}

// One sample row, kept in a table allocated before the baseline and
// converted to JSON after the run.
struct Row {
  ProcSample ps;
  uint64_t t_ns;
  const char* phase;
  uint32_t epoch;
  uint64_t committed, live, requested, dram_committed, dram_meta, dram_tables, spilled_now, spilled, faultbacks;
};

struct SampleState {
  ResultDoc* doc;
  Sampler* sampler;
  slab::SlabAllocator* a;
  const TieredPlan* plan;
  std::vector<Row> rows;
  size_t nrows = 0;
  uint64_t budget = 0, baseline = 0, peak_rss = 0;
  double over_pct = 0;
  uint64_t sampling_ns = 0;  // time spent in sample() (smaps_rollup walks the page tables: ~0.1-0.5 ms)

  uint64_t sample(const char* phase, uint32_t epoch) {
    const uint64_t s0 = monotonic_ns();
    Row r{};
    sampler->sample_into(r.ps);
    r.t_ns = monotonic_ns() - doc->t0_ns();
    r.phase = phase;
    r.epoch = epoch;
    const slab::GlobalStats g = a->stats_global();
    const slab::SpillStats sp = a->stats_spill();
    r.committed = g.committed_bytes;
    r.live = g.live_bytes;
    r.requested = plan->live_bytes();
    r.dram_committed = sp.dram_committed_bytes;
    r.dram_meta = sp.dram_meta_bytes;
    r.dram_tables = sp.dram_table_bytes;
    r.spilled_now = sp.spilled_now_bytes;
    r.spilled = sp.spilled_bytes;
    r.faultbacks = sp.faultbacks;
    if (baseline) {
      peak_rss = std::max(peak_rss, r.ps.rss_bytes);
      const double over = (double(r.ps.rss_bytes) - double(baseline) - double(budget)) / double(budget) * 100.0;
      over_pct = std::max(over_pct, over);
    }
    if (nrows < rows.size()) rows[nrows++] = r;
    sampling_ns += monotonic_ns() - s0;
    return r.ps.rss_bytes;
  }
  static void on_step(void* self, uint32_t epoch) { static_cast<SampleState*>(self)->sample("epoch", epoch); }
};

}  // namespace

void run_tiered(RunContext& ctx, TieredPlan& plan, const TieredRunOptions& opt) {
  ResultDoc& doc = *ctx.result;
  const uint64_t budget = opt.slab.dram_budget_bytes;
  const std::string& target = opt.target;

  // The device: slab_spill_device, --device, or a default emulator file.
  std::string uri = opt.spill_device;
  std::unique_ptr<DeviceFile> device_file;  // outlives the allocator below
  json device = nullptr;
  if (target == "zns") {
    if (uri.empty()) uri = ctx.device_uri;
    if (uri.empty()) {
      std::string dir = opt.device_dir;
      if (dir.empty()) dir = std::filesystem::current_path().string();
      const std::string path = dir + "/tiered-churn-" + std::to_string(::getpid()) + ".zns";
      std::error_code ec;
      std::filesystem::remove(path, ec);  // a leftover of a killed run with our pid
      uri = emu_uri_for(path, opt.device_factor * opt.peak_slab_bytes, opt.device_zone_bytes, opt.device_direct,
                        opt.device_prealloc);
      device_file = std::make_unique<DeviceFile>(path, opt.keep_device);
    }
    device = json{{"uri", uri}, {"default_emulator", device_file != nullptr}};
  } else if (target == "overflow") {
    // The overflow region (src/overflow): a scratch file in device_dir (or
    // the working directory), max_bytes = device_factor x peak slab bytes
    // (no GC: blobs of 4 KiB reuse freed extents exactly).
    if (uri.empty()) uri = ctx.device_uri;
    if (uri.empty()) {
      std::string dir = opt.device_dir;
      if (dir.empty()) dir = std::filesystem::current_path().string();
      const std::string path = dir + "/tiered-churn-" + std::to_string(::getpid()) + ".ovfl";
      std::error_code ec;
      std::filesystem::remove(path, ec);
      const uint64_t mib = uint64_t(1) << 20;
      const uint64_t max = std::max<uint64_t>(
          4 * mib, (uint64_t(opt.device_factor * opt.peak_slab_bytes) + 2 * mib - 1) / mib * mib);
      uri = path + "?initial_bytes=" + std::to_string(std::min<uint64_t>(max, 64 * mib)) +
            "&max_bytes=" + std::to_string(max);
      device_file = std::make_unique<DeviceFile>(path, opt.keep_device);
    }
    device = json{{"uri", uri}, {"default_region", device_file != nullptr}};
  }

  slab::Options o = opt.slab;
  o.spill_device = uri;
  if (target == "none") o.dram_budget_bytes = 0;  // no spill target: no budget, RSS grows
  auto ar = slab::SlabAllocator::create(o);
  if (!ar)
    throw RunError("tiered-churn: creating the slab allocator (spill " + target + ", device " + uri +
                   "): " + ar.status().to_string());
  slab::SlabAllocator& a = **ar;

  doc.set_allocator({{"name", "temporal-slab"}, {"version", "znslab " + git_rev()}, {"options", slab_options_json(a.options())}});
  doc.set_device(device);
  doc.doc()["timer"] = timer_json();
  Sampler sampler;

  // Everything the loop records is allocated before the baseline: the
  // sample rows (at most 2 x samples_per_epoch per epoch) and the histograms.
  SampleState ss{&doc, &sampler, &a, &plan, {}, 0, budget, 0, 0, 0};
  ss.rows.resize(size_t(opt.epochs) * 2 * opt.samples_per_epoch + 4);  // touched
  auto hist = std::make_unique<std::array<LatencyHistogram, 3>>();
  const uint64_t sample_step = std::max<uint64_t>(1, opt.epoch_objects / opt.samples_per_epoch);
  TieredExec ex(a, (*hist)[0], (*hist)[1], (*hist)[2], opt.use_pin, sample_step, &SampleState::on_step, &ss);

  ss.baseline = ss.sample("baseline", 0);
  ss.peak_rss = ss.baseline;

  // The operations' time excludes the samples taken inside the loop (RSS
  // samples read smaps_rollup, which costs as much as the operations of a
  // no-spill run); it is reported as sampling_ns.
  const uint64_t sampled_before = ss.sampling_ns;
  const uint64_t t0 = monotonic_ns();
  for (uint32_t n = 0; n < opt.epochs; ++n) {
    plan.epoch(n, ex);
    if (ctx.progress && (n + 1) % 8 == 0)
      std::fprintf(stderr, "tiered-churn: epoch %u/%u, live %.1f MiB, rss %.1f MiB\n", n + 1, opt.epochs,
                   double(plan.live_bytes()) / 1048576.0, double(sampler.rss_bytes()) / 1048576.0);
  }
  const uint64_t t_loop = monotonic_ns() - t0, t_sampling = ss.sampling_ns - sampled_before;
  const uint64_t t_ops = t_loop > t_sampling ? t_loop - t_sampling : 0;
  const slab::GlobalStats g = a.stats_global();
  const slab::SpillStats sc = a.stats_spill();
  const json workers = io_worker_cpus();  // while the device's rings (and their workers) exist
  plan.drain(ex);
  ss.sample("end", opt.epochs);

  for (size_t i = 0; i < ss.nrows; ++i) {
    const Row& r = ss.rows[i];
    json j;
    r.ps.to_json(j);
    j["t_ns"] = r.t_ns;
    j["phase"] = r.phase;
    j["epoch"] = r.epoch;
    j["committed_bytes"] = r.committed;
    j["live_bytes"] = r.live;
    j["requested_bytes"] = r.requested;
    j["dram_committed_bytes"] = r.dram_committed;
    j["dram_meta_bytes"] = r.dram_meta;
    j["dram_table_bytes"] = r.dram_tables;
    j["spilled_now_bytes"] = r.spilled_now;
    j["spilled_bytes"] = r.spilled;
    j["faultbacks"] = r.faultbacks;
    doc.add_sample(std::move(j));
  }

  const TieredExec::Counts& k = ex.counts;
  json& sum = doc.summary();
  sum["dram_budget_bytes"] = budget;
  sum["peak_rss_bytes"] = ss.peak_rss;
  sum["baseline_rss_bytes"] = ss.baseline;
  sum["rss_over_budget_pct"] = std::max(0.0, ss.over_pct);
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
  sum["ops_per_sec"] = t_ops ? double(k.allocs + k.frees + k.accesses) * 1e9 / double(t_ops) : 0.0;
  sum["ops_ns"] = t_ops;
  sum["sampling_ns"] = t_sampling;
  sum["corrupt_objects"] = k.corrupt;
  sum["io_worker_cpus"] = workers;
  sum["counters"] = {{"allocs", k.allocs},     {"frees", k.frees},   {"accesses", k.accesses},
                     {"reads", k.reads},       {"writes", k.writes}, {"access_misses", k.access_misses},
                     {"committed_bytes", g.committed_bytes}, {"live_bytes", g.live_bytes}};
  sum["schedule"] = {{"epoch_objects", opt.epoch_objects},
                     {"mean_lifetime_epochs", opt.mean_lifetime},
                     {"peak_live_bytes", uint64_t(opt.peak_live_bytes)},
                     {"peak_slab_bytes", uint64_t(opt.peak_slab_bytes)}};
  doc.set_latency("alloc", (*hist)[0]);
  doc.set_latency("free", (*hist)[1]);
  doc.set_latency(opt.use_pin ? "pin" : "deref", (*hist)[2]);
  try {
    doc.doc()["slab_stats"] = json::parse(a.stats_json());
  } catch (const json::exception& e) {
    doc.doc()["slab_stats"] = json{{"error", std::string("stats_json did not parse: ") + e.what()}};
  }
  if (ctx.progress)
    std::fprintf(stderr,
                 "tiered-churn: spill %s/%s, budget %.1f MiB: peak rss %.1f MiB (baseline %.1f), over budget %.1f %%, "
                 "spilled %.1f MiB, faultbacks %" PRIu64 ", WA %.3f, %.0f ops/s, corrupt %" PRIu64 "\n",
                 target.c_str(), slab::spill_unit_name(a.options().spill_unit), double(budget) / 1048576.0,
                 double(ss.peak_rss) / 1048576.0, double(ss.baseline) / 1048576.0, std::max(0.0, ss.over_pct),
                 double(sc.spilled_bytes) / 1048576.0, sc.faultbacks, sc.write_amplification,
                 double(sum["ops_per_sec"].get<double>()), k.corrupt);
  if (k.corrupt)
    throw RunError("tiered-churn: " + std::to_string(k.corrupt) + " objects read back with wrong bytes (first: " +
                   ex.first_corrupt + ")");
}

}  // namespace znslab::harness
