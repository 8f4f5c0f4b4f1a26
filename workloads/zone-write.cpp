// Workload "zone-write" (issue 3): sequential zone writes (or zone appends)
// through the zoned device's asynchronous path, with fio's io_uring
// throughput on the same filesystem as the baseline (emu: devices). Its
// keys and their checks; the I/O stream is ZoneWriteGenerator
// (workloads/zone_write_gen.h), executed and measured by the device runner
// (harness/device_runner.h, run_zone_writes).
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
#include <memory>
#include <string>
#include <vector>

#include "harness/config.h"
#include "harness/device_runner.h"
#include "harness/registry.h"
#include "workloads/zone_write_gen.h"

namespace znslab::harness {
namespace {

using json = nlohmann::json;

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

  std::vector<KeyDoc> key_docs() const override {
    return {{"zones", "integer", "count", "zones written concurrently, round-robin"},
            {"block_size", "integer", "bytes", "bytes per I/O (a multiple of the LBA size)"},
            {"queue_depth", "integer", "count", "I/Os in flight in total"},
            {"mode", "string", "", "write (at the write pointer) or append (zone append)"},
            {"total_bytes", "integer", "bytes", "bytes written per repeat"},
            {"repeats", "integer", "count", "passes, alternating with fio; medians are reported"},
            {"fio", "string", "", "auto (on emu: devices), on or off"},
            {"default_device", "string", "", "emulator parameters when --device is not given"}};
  }

  void run(RunContext& ctx) override {
    const json& c = ctx.config;
    workloads::ZoneWriteParams p;
    p.zones = uint32_t(cfg_u64(c, "zones"));
    p.block_size = cfg_u64(c, "block_size");
    p.total_bytes = cfg_u64(c, "total_bytes");
    p.append = cfg_str(c, "mode") == "append";
    DeviceRunOptions o;
    o.experiment = "zone-write";
    o.default_device = cfg_str(c, "default_device");
    o.block_size = p.block_size;
    o.queue_depth = unsigned(cfg_u64(c, "queue_depth"));
    o.append = p.append;
    o.repeats = unsigned(cfg_u64(c, "repeats"));
    o.fio = cfg_str(c, "fio");
    const workloads::ZoneWriteGenerator gen(p);
    run_zone_writes(ctx, DevicePlanOf<workloads::ZoneWriteGenerator>(gen), o);
  }
};

Registrar reg{WorkloadInfo{"zone-write",
                           "sequential zone writes/appends through io_uring, with fio as the baseline",
                           [] { return std::make_unique<ZoneWrite>(); }, /*uses_allocator=*/false, /*uses_device=*/true}};

}  // namespace
}  // namespace znslab::harness
