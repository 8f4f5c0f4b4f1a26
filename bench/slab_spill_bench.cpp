// slab_spill_bench: fault-back latency and write amplification of the slab's
// spill to zoned storage (issue 11; docs/spill.md). Not a test.
//
//   build/bench/slab_spill_bench [--mode faultback|wa|both] [--runs N] [--dir DIR]
//       [--budget BYTES] [--zone BYTES] [--direct auto|0|1] [--append]
//       [--mispredicted F] [--unit epoch|page|both] [--rounds N] [--live-multiple L]
//       [--accesses N] [--skew S] [--samples N]
//
// faultback: 8 epochs of 64..768 B objects, 4x the budget, are allocated
//   (epoch_advance after each); then --samples derefs of random objects of
//   the 4 oldest epochs (spilled). Reports the fault-back latency histogram
//   (one 4 KiB slab: device read + install, ns) and the wall time of the
//   derefs that faulted (read + any spill pass the fault-back triggered).
// wa: --rounds epochs of budget/2 bytes each; an epoch dies (all its objects
//   freed, epoch closed) live-multiple*2 rounds later, except a
//   --mispredicted fraction of its objects, which outlive it by 1..4 rounds;
//   the device holds 1.5x the peak live bytes (so GC must run when objects
//   are mispredicted). Each round also derefs --accesses (2000) random live
//   objects, epoch age Zipf(--skew, 1.0) distributed (faults back spilled
//   slabs). Reports write amplification = device bytes written /
//   slab bytes spilled, GC copies, zone resets.
// Each figure: the median over --runs runs (interleaved across units).
// Emulated device files go to --dir (default: /tmp).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "src/slab/slab.h"

using namespace znslab;
using namespace znslab::slab;

namespace {

struct Args {
  std::string mode = "both", dir = "/tmp", direct = "auto", unit = "both";
  int runs = 5;
  size_t budget = size_t(4) << 20, zone = size_t(1) << 20;
  bool append = false;
  double mispredicted = 0.0;
  uint32_t rounds = 40, samples = 3000;
  double live_multiple = 4;
  uint32_t accesses = 2000;  // derefs per round (wa)
  double skew = 1.0;         // Zipf exponent over epoch age (wa)
};

[[noreturn]] void usage(const char* m) {
  std::fprintf(stderr, "slab_spill_bench: %s\n(see the header of bench/slab_spill_bench.cpp)\n", m);
  std::exit(2);
}

uint64_t now_ns() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}

std::string uri(const Args& a, const std::string& file, uint64_t bytes) {
  const uint64_t zones = std::max<uint64_t>(4, (bytes + a.zone - 1) / a.zone);
  return "emu:" + a.dir + "/" + file + "?zones=" + std::to_string(zones) +
         "&zone_size=" + std::to_string(a.zone / 1024) + "K&max_open=14&max_active=14&direct=" + a.direct;
}

Options opts(const Args& a, SpillUnit unit, const std::string& dev) {
  Options o;
  o.arena_bytes = size_t(1) << 30;
  o.chunk_bytes = size_t(256) << 10;
  o.dram_budget_bytes = a.budget;
  o.spill = SpillTarget::kZns;
  o.spill_device = dev;
  o.spill_unit = unit;
  o.spill_append = a.append;
  o.handle_key = 7;
  return o;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

struct Obj {
  Handle h;
};

struct FbResult {
  double p50, p99, p999, max, deref_p50, deref_p99, faultbacks;
};

FbResult run_faultback(const Args& a, SpillUnit unit, int run) {
  const std::string file = "spill_bench_fb_" + std::to_string(run) + ".img";
  auto al = SlabAllocator::create(opts(a, unit, uri(a, file, a.budget * 8)));
  if (!al) usage(("create: " + al.status().to_string()).c_str());
  SlabAllocator& s = **al;
  std::mt19937_64 rng(100 + run);
  std::uniform_int_distribution<uint32_t> sz(64, 768);
  std::vector<std::vector<Handle>> ep(8);
  const size_t per_epoch = a.budget / 2 / 416;  // 4x the budget over 8 epochs
  for (uint32_t e = 0; e < 8; ++e) {
    for (size_t i = 0; i < per_epoch; ++i) {
      auto r = s.allocate(sz(rng), s.epoch_current());
      if (!r) usage("allocate failed");
      std::memset(r->ptr, int(i), 64);
      ep[e].push_back(r->handle);
    }
    s.epoch_advance();
  }
  std::vector<double> faulted;
  std::uniform_int_distribution<uint32_t> pick_e(0, 3);
  for (uint32_t k = 0; k < a.samples; ++k) {
    const auto& v = ep[pick_e(rng)];
    const Handle h = v[rng() % v.size()];
    const uint64_t before = s.stats_spill().faultbacks;
    const uint64_t t0 = now_ns();
    auto p = s.deref(h);
    const uint64_t t1 = now_ns();
    if (!p) usage("deref failed");
    if (s.stats_spill().faultbacks > before) faulted.push_back(double(t1 - t0));
  }
  const SpillStats st = s.stats_spill();
  std::sort(faulted.begin(), faulted.end());
  auto q = [&](double f) { return faulted.empty() ? 0.0 : faulted[size_t(f * double(faulted.size() - 1))]; };
  al->reset();
  std::filesystem::remove(a.dir + "/" + file);
  return FbResult{double(st.faultback_ns.p50), double(st.faultback_ns.p99), double(st.faultback_ns.p999),
                  double(st.faultback_ns.max), q(0.5), q(0.99), double(st.faultbacks)};
}

struct WaResult {
  double wa, spilled_mib, gc_mib, resets, resets_no_copy, over_budget, secs, finishes, gc_runs;
};

WaResult run_wa(const Args& a, SpillUnit unit, int run) {
  const std::string file = "spill_bench_wa_" + std::to_string(run) + ".img";
  const uint32_t lifetime = std::max<uint32_t>(1, uint32_t(a.live_multiple * 2));
  const uint64_t epoch_bytes = a.budget / 2;
  const uint64_t peak = epoch_bytes * (lifetime + 1) + uint64_t(double(epoch_bytes) * a.mispredicted * 6);
  auto al = SlabAllocator::create(opts(a, unit, uri(a, file, peak * 3 / 2)));
  if (!al) usage(("create: " + al.status().to_string()).c_str());
  SlabAllocator& s = **al;
  std::mt19937_64 rng(200 + run);
  std::uniform_int_distribution<uint32_t> sz(64, 768);
  std::bernoulli_distribution mis(a.mispredicted);
  std::uniform_int_distribution<uint32_t> extra(1, 4);
  struct Live {
    Handle h;
    uint32_t dies;
    uint32_t born;  // round
  };
  std::vector<Live> live;
  const uint64_t t0 = now_ns();
  for (uint32_t r = 0; r < a.rounds; ++r) {
    const uint32_t e = s.epoch_current();
    uint64_t bytes = 0;
    while (bytes < epoch_bytes) {
      const uint32_t b = sz(rng);
      auto res = s.allocate(b, e);
      if (!res) usage(("allocate: " + res.status().to_string()).c_str());
      std::memset(res->ptr, 0x5A, b);
      bytes += b;
      live.push_back(Live{res->handle, r + lifetime + (mis(rng) ? extra(rng) : 0), r});
    }
    s.epoch_advance();
    // Accesses: deref of random live objects, epoch age Zipf(--skew)-distributed
    // (age 0 = the newest epoch), as the tiered-churn workload does.
    if (a.accesses && !live.empty()) {
      std::vector<std::vector<uint32_t>> by_age(lifetime + 5);
      for (uint32_t i = 0; i < live.size(); ++i) {
        const uint32_t born = live[i].born;
        if (r - born < by_age.size()) by_age[r - born].push_back(i);
      }
      std::vector<double> w(by_age.size());
      for (size_t k = 0; k < w.size(); ++k) w[k] = by_age[k].empty() ? 0.0 : 1.0 / std::pow(double(k + 1), a.skew);
      std::discrete_distribution<uint32_t> age(w.begin(), w.end());
      for (uint32_t k = 0; k < a.accesses; ++k) {
        const auto& v = by_age[age(rng)];
        if (v.empty()) continue;
        auto p = s.deref(live[v[rng() % v.size()]].h);
        if (!p) usage(("deref: " + p.status().to_string()).c_str());
      }
    }
    std::vector<Live> keep;
    keep.reserve(live.size());
    for (const Live& l : live) {
      if (l.dies <= r) (void)s.free(l.h);
      else keep.push_back(l);
    }
    live.swap(keep);
    if (r >= lifetime) (void)s.epoch_close((e + kEpochCount - lifetime) % kEpochCount);
  }
  const double secs = double(now_ns() - t0) / 1e9;
  const SpillStats st = s.stats_spill();
  al->reset();
  std::filesystem::remove(a.dir + "/" + file);
  return WaResult{st.write_amplification, double(st.spilled_bytes) / 1048576.0,
                  double(st.gc_copied_bytes) / 1048576.0, double(st.zone_resets),
                  double(st.zone_resets_no_copy), double(st.over_budget_events), secs, double(st.zone_finishes), double(st.gc_runs)};
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value for " + k).c_str());
      return argv[++i];
    };
    if (k == "--mode") a.mode = val();
    else if (k == "--runs") a.runs = std::atoi(val().c_str());
    else if (k == "--dir") a.dir = val();
    else if (k == "--budget") a.budget = std::strtoull(val().c_str(), nullptr, 0);
    else if (k == "--zone") a.zone = std::strtoull(val().c_str(), nullptr, 0);
    else if (k == "--direct") a.direct = val();
    else if (k == "--append") a.append = true;
    else if (k == "--mispredicted") a.mispredicted = std::atof(val().c_str());
    else if (k == "--unit") a.unit = val();
    else if (k == "--rounds") a.rounds = uint32_t(std::atoi(val().c_str()));
    else if (k == "--samples") a.samples = uint32_t(std::atoi(val().c_str()));
    else if (k == "--live-multiple") a.live_multiple = std::atof(val().c_str());
    else if (k == "--accesses") a.accesses = uint32_t(std::atoi(val().c_str()));
    else if (k == "--skew") a.skew = std::atof(val().c_str());
    else usage(("unknown argument " + k).c_str());
  }
  std::vector<SpillUnit> units;
  if (a.unit == "epoch" || a.unit == "both") units.push_back(SpillUnit::kEpoch);
  if (a.unit == "page" || a.unit == "both") units.push_back(SpillUnit::kPage);
  if (units.empty()) usage("--unit must be epoch, page or both");
  struct Acc {
    std::vector<double> p50, p99, p999, mx, d50, d99, n;
    std::vector<double> wa, sp, gc, rs, rn, ob, secs, fin, gcr;
  };
  std::vector<Acc> acc(units.size());
  for (int r = 0; r < a.runs; ++r) {  // interleaved: every unit once per repeat
    for (size_t ui = 0; ui < units.size(); ++ui) {
      Acc& c = acc[ui];
      if (a.mode == "faultback" || a.mode == "both") {
        FbResult f = run_faultback(a, units[ui], r);
        c.p50.push_back(f.p50), c.p99.push_back(f.p99), c.p999.push_back(f.p999), c.mx.push_back(f.max);
        c.d50.push_back(f.deref_p50), c.d99.push_back(f.deref_p99), c.n.push_back(f.faultbacks);
      }
      if (a.mode == "wa" || a.mode == "both") {
        WaResult w = run_wa(a, units[ui], r);
        c.wa.push_back(w.wa), c.sp.push_back(w.spilled_mib), c.gc.push_back(w.gc_mib);
        c.rs.push_back(w.resets), c.rn.push_back(w.resets_no_copy), c.ob.push_back(w.over_budget);
        c.secs.push_back(w.secs), c.fin.push_back(w.finishes), c.gcr.push_back(w.gc_runs);
      }
    }
  }
  for (size_t ui = 0; ui < units.size(); ++ui) {
    const Acc& c = acc[ui];
    const char* u = spill_unit_name(units[ui]);
    if (!c.p50.empty())
      std::printf("{\"bench\":\"faultback\",\"unit\":\"%s\",\"append\":%s,\"direct\":\"%s\",\"runs\":%d,"
                  "\"faultbacks\":%.0f,\"faultback_ns\":{\"p50\":%.0f,\"p99\":%.0f,\"p999\":%.0f,\"max\":%.0f},"
                  "\"faulting_deref_ns\":{\"p50\":%.0f,\"p99\":%.0f}}\n",
                  u, a.append ? "true" : "false", a.direct.c_str(), a.runs, median(c.n), median(c.p50),
                  median(c.p99), median(c.p999), median(c.mx), median(c.d50), median(c.d99));
    if (!c.wa.empty())
      std::printf("{\"bench\":\"wa\",\"unit\":\"%s\",\"mispredicted\":%.3f,\"append\":%s,\"runs\":%d,"
                  "\"write_amplification\":%.4f,\"spilled_mib\":%.1f,\"gc_copied_mib\":%.2f,"
                  "\"zone_resets\":%.0f,\"zone_resets_no_copy\":%.0f,\"over_budget_events\":%.0f,\"zone_finishes\":%.0f,\"gc_runs\":%.0f,\"secs\":%.2f}\n",
                  u, a.mispredicted, a.append ? "true" : "false", a.runs, median(c.wa), median(c.sp),
                  median(c.gc), median(c.rs), median(c.rn), median(c.ob), median(c.fin), median(c.gcr), median(c.secs));
  }
  return 0;
}
