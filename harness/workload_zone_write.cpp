// zone-write: sequential zone writes (or zone appends) through the zoned
// device's asynchronous path, with fio's io_uring throughput on the same
// filesystem as the baseline (emu: devices).
//
// Config keys (workloads/zone-write.json):
//   zones         zones written concurrently (round-robin), >= 1
//   block_size    bytes per I/O (multiple of the LBA size)
//   queue_depth   I/Os in flight in total
//   mode          "write" (at the write pointer) or "append" (zone append)
//   total_bytes   bytes written per repeat
//   repeats       runs of ours and fio, alternating; medians are reported
//   fio           "auto" (on emu: devices), "on", "off"
//   default_device  emulator parameters when --device is not given
//                   (a temp file under $TMPDIR or /tmp, removed afterwards)
//
// Result: summary.throughput_mib_s (MiB/s, 2^20 bytes), iops,
// cpu_us_per_io (user+system CPU of this process per I/O, us),
// cpu_user_us_per_io, cpu_sys_us_per_io, bytes_written, ios, resets,
// elapsed_s, verified_blocks, fio_ratio (ours / fio, medians);
// latency_ns.write|append {p50,p90,p99,p999,max} submit-to-reap; samples:
// one per repeat; "fio": fio's figures (median run + every run); "device".
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "harness/scratch_dir.h"
#include "harness/config.h"
#include "harness/fio.h"
#include "harness/registry.h"
#include "harness/result.h"
#include "zns/emu_device.h"
#include "zns/io/pattern.h"
#include "zns/io/uring_engine.h"
#include "zns/zoned_device.h"

namespace znslab::harness {
namespace {

using json = nlohmann::json;

double cpu_seconds(bool user) {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  const timeval& t = user ? ru.ru_utime : ru.ru_stime;
  return double(t.tv_sec) + double(t.tv_usec) / 1e6;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct RunFigures {
  double seconds = 0, user_s = 0, sys_s = 0;
  uint64_t bytes = 0, ios = 0, resets = 0, zones_used = 0;
  uint64_t verified_blocks = 0;
};

class ZoneWrite final : public Workload {
 public:
  json defaults() const override {
    return {{"zones", 1},
            {"block_size", 131072},
            {"queue_depth", 8},
            {"mode", "write"},
            {"total_bytes", int64_t(1) << 30},
            {"repeats", 3},
            {"fio", "auto"},
            {"default_device", "zones=64&zone_size=64M&zone_cap=62M&prealloc=1"}};
  }

  void validate(const json& c) const override {
    check_int_range(c, "zones", 1, 4096);
    check_int_range(c, "block_size", 512, int64_t(64) << 20);
    check_int_range(c, "queue_depth", 1, 1024);
    check_one_of(c, "mode", {"write", "append"});
    check_int_range(c, "total_bytes", 4096, int64_t(1) << 42);
    check_int_range(c, "repeats", 1, 100);
    check_one_of(c, "fio", {"auto", "on", "off"});
  }

  void run(RunContext& ctx) override {
    const json& c = ctx.config;
    ResultDoc& doc = *ctx.result;
    std::unique_ptr<ScratchDir> scratch;  // removed when the run ends
    std::string uri = device_or_scratch(ctx.device_uri, "zone-write", cfg_str(c, "default_device"), scratch);

    const uint64_t bs = cfg_u64(c, "block_size");
    const uint32_t nz = uint32_t(cfg_u64(c, "zones"));
    const unsigned qd = unsigned(cfg_u64(c, "queue_depth"));
    const bool append = cfg_str(c, "mode") == "append";
    const uint64_t total = cfg_u64(c, "total_bytes");
    const unsigned repeats = unsigned(cfg_u64(c, "repeats"));
    // The emulator's ring must hold the queue depth (in pieces of max_io).
    std::string open_uri = uri;
    if (open_uri.rfind("emu:", 0) == 0 && open_uri.find("qd=") == std::string::npos) {
      open_uri += (open_uri.find('?') == std::string::npos ? "?" : "&") + std::string("qd=") +
                  std::to_string(std::max(128u, qd * 4));
    }
    auto dev_r = zns::open_device(open_uri);
    if (!dev_r) throw RunError("zone-write: cannot open device " + uri + ": " + dev_r.status().to_string());
    zns::ZonedDevice& dev = **dev_r;
    const zns::DeviceInfo& info = dev.info();
    if (bs % info.lba_bytes) throw ConfigError("key \"block_size\": " + std::to_string(bs) + " is not a multiple of the LBA size " + std::to_string(info.lba_bytes));
    if (append && bs > info.zone_append_max_bytes)
      throw ConfigError("key \"block_size\": " + std::to_string(bs) + " exceeds the device's zone append limit " + std::to_string(info.zone_append_max_bytes));
    if (nz > info.zone_count) throw ConfigError("key \"zones\": the device has only " + std::to_string(info.zone_count) + " zones");

    const bool is_emu = info.backend == "emu";
    bool direct = false;
    if (auto* e = dynamic_cast<zns::EmuDevice*>(&dev)) direct = e->direct_io();
    doc.set_device({{"backend", info.backend}, {"uri", uri}, {"path", info.path},
                    {"zone_count", info.zone_count}, {"zone_size", info.zone_size},
                    {"zone_capacity", info.zone_capacity}, {"lba_bytes", info.lba_bytes},
                    {"max_open", info.max_open}, {"max_active", info.max_active},
                    {"zone_append_max_bytes", info.zone_append_max_bytes},
                    {"max_io_bytes", info.max_io_bytes}, {"capacity_bytes", info.capacity_bytes()},
                    {"direct_io", direct}});
    const std::string fio_mode = cfg_str(c, "fio");
    const bool want_fio = fio_mode == "on" || (fio_mode == "auto" && is_emu);

    // Buffers: written content is the pattern of seed 1 at offset 0, one
    // buffer per queue slot (I/Os only read them).
    std::vector<zns::io::AlignedBuffer> bufs;
    for (unsigned k = 0; k < qd; ++k) {
      auto b = zns::io::AlignedBuffer::allocate(bs, 4096);
      if (!b) throw RunError("zone-write: cannot allocate I/O buffers");
      zns::io::fill_pattern(b->data(), bs, 1, 0);
      bufs.push_back(std::move(*b));
    }

    LatencyHistogram hist;
    std::vector<double> ours_mib, ours_iops, ours_cpu, ours_user, ours_sys, fio_mib;
    std::vector<FioResult> fio_runs;
    RunFigures last;
    for (unsigned rep = 0; rep < repeats; ++rep) {
      RunFigures f = run_once(dev, ctx, bufs, hist, nz, qd, bs, append, total, rep);
      last = f;
      double mib = double(f.bytes) / double(1 << 20) / f.seconds;
      double cpu = (f.user_s + f.sys_s) * 1e6 / double(f.ios);
      ours_mib.push_back(mib);
      ours_iops.push_back(double(f.ios) / f.seconds);
      ours_cpu.push_back(cpu);
      ours_user.push_back(f.user_s * 1e6 / double(f.ios));
      ours_sys.push_back(f.sys_s * 1e6 / double(f.ios));
      json s = {{"repeat", rep}, {"throughput_mib_s", mib}, {"iops", double(f.ios) / f.seconds},
                {"cpu_us_per_io", cpu}, {"elapsed_s", f.seconds}, {"resets", f.resets}};
      if (want_fio) {
        FioJob j;
        std::string dir = std::filesystem::path(info.path).parent_path().string();
        j.filename = (dir.empty() ? std::string(".") : dir) + "/znslab-fio-baseline.bin";
        j.block_size = bs;
        j.numjobs = nz;
        j.iodepth = std::max(1u, qd / nz);
        j.zone_size = info.zone_size;
        j.zone_capacity = info.zone_capacity;
        const uint64_t per_job = (total + nz - 1) / nz;
        const uint64_t zones_per_job = std::max<uint64_t>(1, (per_job + info.zone_capacity - 1) / info.zone_capacity);
        j.job_size = zones_per_job * info.zone_size;
        j.io_bytes = per_job / bs * bs;
        if (ctx.progress) std::fprintf(stderr, "zone-write: repeat %u: fio baseline ...\n", rep + 1);
        FioResult fr = run_fio(j);
        if (!fr.ok) {
          std::fprintf(stderr, "zone-write: fio baseline failed: %s\n", fr.error.c_str());
        } else {
          fio_mib.push_back(fr.throughput_mib_s);
          s["fio_throughput_mib_s"] = fr.throughput_mib_s;
          s["fio_ratio"] = mib / fr.throughput_mib_s;
        }
        fio_runs.push_back(std::move(fr));
      }
      if (ctx.progress) {
        std::fprintf(stderr, "zone-write: repeat %u/%u: %.0f MiB/s, %.0f IOPS, %.2f us CPU/IO%s\n", rep + 1,
                     repeats, mib, double(f.ios) / f.seconds, cpu,
                     s.contains("fio_throughput_mib_s")
                         ? (", fio " + std::to_string(int(s["fio_throughput_mib_s"].get<double>())) + " MiB/s").c_str()
                         : "");
      }
      doc.add_sample(s);
    }
    doc.set_latency(append ? "append" : "write", hist);
    json& sm = doc.summary();
    sm["throughput_mib_s"] = median(ours_mib);
    sm["iops"] = median(ours_iops);
    sm["cpu_us_per_io"] = median(ours_cpu);
    sm["cpu_user_us_per_io"] = median(ours_user);
    sm["cpu_sys_us_per_io"] = median(ours_sys);
    sm["bytes_written"] = last.bytes;
    sm["ios"] = last.ios;
    sm["resets"] = last.resets;
    sm["zones_used"] = last.zones_used;
    sm["verified_blocks"] = last.verified_blocks;
    sm["repeats"] = repeats;
    sm["mode"] = append ? "append" : "write";
    if (!fio_runs.empty()) {
      json fj;
      json runs = json::array();
      for (const auto& fr : fio_runs) runs.push_back(fr.to_json());
      const double fmed = median(fio_mib);
      // The run closest to the median carries the headline figures.
      const FioResult* best = nullptr;
      for (const auto& fr : fio_runs)
        if (fr.ok && (!best || std::abs(fr.throughput_mib_s - fmed) < std::abs(best->throughput_mib_s - fmed))) best = &fr;
      fj = best ? best->to_json() : fio_runs.front().to_json();
      fj["throughput_mib_s"] = fmed;
      fj["runs"] = runs;
      doc.doc()["fio"] = fj;
      if (fmed > 0) sm["fio_ratio"] = median(ours_mib) / fmed;
    } else {
      doc.doc()["fio"] = {{"skipped", want_fio ? "fio failed" : "not an emulated device (fio=auto) or fio=off"}};
    }
  }

 private:
  // One timed pass: resets the zones it will use (untimed), then writes
  // `total` bytes with `qd` I/Os in flight round-robin over `nz` zones.
  RunFigures run_once(zns::ZonedDevice& dev, RunContext& ctx, std::vector<zns::io::AlignedBuffer>& bufs,
                      LatencyHistogram& hist, uint32_t nz, unsigned qd, uint64_t bs, bool append,
                      uint64_t total, unsigned rep) {
    const zns::DeviceInfo& info = dev.info();
    const uint64_t cap = info.zone_capacity;
    const uint64_t need_zones = std::min<uint64_t>(info.zone_count, (total + cap - 1) / cap + nz);
    for (uint32_t z = 0; z < need_zones; ++z) {
      Status s = dev.reset(z);
      if (!s && s.code() != Code::kInvalidZoneStateTransition)
        throw RunError("zone-write: reset of zone " + std::to_string(z) + ": " + s.to_string());
    }
    RunFigures f;
    struct Cur {
      uint32_t zone;
      uint64_t next;
    };
    std::vector<Cur> cur;
    uint32_t next_zone = 0;
    auto take_zone = [&]() -> uint32_t {
      for (uint32_t tries = 0; tries < info.zone_count; ++tries) {
        uint32_t z = next_zone;
        next_zone = (next_zone + 1) % info.zone_count;
        auto zr = dev.report_zones(z, 1);
        if (!zr) throw RunError("zone-write: report zone " + std::to_string(z) + ": " + zr.status().to_string());
        zns::ZoneState st = zr->front().state;
        if (st == zns::ZoneState::kReadOnly || st == zns::ZoneState::kOffline) continue;
        if (st != zns::ZoneState::kEmpty) {
          Status s = dev.reset(z);
          if (!s) throw RunError("zone-write: reset of zone " + std::to_string(z) + ": " + s.to_string());
          ++f.resets;
        }
        ++f.zones_used;
        return z;
      }
      throw RunError("zone-write: no writable zone left on the device");
    };
    for (uint32_t k = 0; k < nz; ++k) cur.push_back({take_zone(), 0});
    std::vector<zns::IoRequest> batch;
    std::vector<zns::IoCompletion> done(qd);
    std::vector<std::pair<uint32_t, uint64_t>> written_first;  // (zone, offset) of first block per zone
    uint64_t issued = 0, completed = 0, inflight = 0, rr = 0, ios = 0;
    const double u0 = cpu_seconds(true), s0 = cpu_seconds(false);
    const uint64_t t0 = monotonic_ns();
    uint64_t next_report = t0 + 1000000000ull;
    while (completed < total) {
      batch.clear();
      while (inflight + batch.size() < qd && issued < total) {
        Cur& z = cur[rr++ % cur.size()];
        if (z.next >= cap) {
          z.zone = take_zone();
          z.next = 0;
        }
        const uint64_t len = std::min<uint64_t>({bs, cap - z.next, total - issued});
        if (z.next == 0) written_first.push_back({z.zone, 0});
        zns::IoRequest r;
        r.op = append ? zns::IoOp::kAppend : zns::IoOp::kWrite;
        r.zone = z.zone;
        r.offset = z.next;
        r.buf = bufs[ios % bufs.size()].data();
        r.len = size_t(len);
        r.user_data = (uint64_t(z.zone) << 40) | z.next;
        batch.push_back(r);
        z.next += len;
        issued += len;
        ++ios;
      }
      if (!batch.empty()) {
        Status s = dev.submit(batch);
        if (!s) throw RunError("zone-write: submit: " + s.to_string());
        inflight += batch.size();
      }
      auto n = dev.reap(done, 1);
      if (!n) throw RunError("zone-write: reap: " + n.status().to_string());
      for (size_t i = 0; i < *n; ++i) {
        const zns::IoCompletion& cc = done[i];
        if (!cc.status) {
          throw RunError("zone-write: " + std::string(append ? "append" : "write") + " to zone " +
                         std::to_string(cc.user_data >> 40) + " offset " + std::to_string(cc.user_data & ((1ull << 40) - 1)) +
                         ": " + cc.status.to_string());
        }
        hist.record(cc.latency_ns);
        completed += cc.bytes;
        --inflight;
      }
      if (ctx.progress) {
        uint64_t now = monotonic_ns();
        if (now >= next_report) {
          next_report = now + 1000000000ull;
          std::fprintf(stderr, "zone-write: repeat %u: %llu / %llu MiB, %.0f MiB/s\n", rep + 1,
                       (unsigned long long)(completed >> 20), (unsigned long long)(total >> 20),
                       double(completed) / double(1 << 20) / (double(now - t0) / 1e9));
        }
      }
    }
    f.seconds = double(monotonic_ns() - t0) / 1e9;
    f.user_s = cpu_seconds(true) - u0;
    f.sys_s = cpu_seconds(false) - s0;
    f.bytes = completed;
    f.ios = ios;
    // Spot check (untimed): the first block of every zone written reads back.
    auto rb = zns::io::AlignedBuffer::allocate(bs, 4096);
    if (rb) {
      for (auto [z, off] : written_first) {
        Status s = dev.read(z, off, rb->data(), size_t(bs));
        if (!s) throw RunError("zone-write: read-back of zone " + std::to_string(z) + ": " + s.to_string());
        if (std::memcmp(rb->data(), bufs[0].data(), size_t(bs)) != 0)
          throw RunError("zone-write: read-back of zone " + std::to_string(z) + " offset 0 does not match the data written");
        ++f.verified_blocks;
      }
    }
    return f;
  }
};

Registrar reg{WorkloadInfo{"zone-write",
                           "sequential zone writes/appends through io_uring, with fio as the baseline",
                           [] { return std::make_unique<ZoneWrite>(); }, /*uses_allocator=*/false, /*uses_device=*/true}};

}  // namespace
}  // namespace znslab::harness
