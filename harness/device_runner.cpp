// The zoned-device I/O runner (harness/device_runner.h).
#include "harness/device_runner.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "harness/fio.h"
#include "harness/result.h"
#include "harness/scratch_dir.h"
#include "zns/emu_device.h"
#include "zns/io/pattern.h"
#include "zns/io/uring_engine.h"
#include "zns/zoned_device.h"

namespace znslab::harness {

using json = nlohmann::json;

namespace {

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

// The figures of one pass.
struct PassFigures {
  double seconds = 0, user_s = 0, sys_s = 0;
  uint64_t bytes = 0, ios = 0, resets = 0, zones_used = 0;
  uint64_t verified_blocks = 0;
};

}  // namespace

// One pass's state: the device, buffers, the streams' zones, the queue.
class DeviceExecState {
 public:
  const DeviceRunOptions* opt = nullptr;
  const RunContext* ctx = nullptr;
  zns::ZonedDevice* dev = nullptr;
  std::vector<zns::io::AlignedBuffer>* bufs = nullptr;
  LatencyHistogram* hist = nullptr;
  unsigned rep = 0;
  uint64_t total = 0;
  PassFigures f;
  std::vector<uint32_t> zone;  // by stream
  uint32_t next_zone = 0;
  std::vector<zns::IoRequest> batch;
  std::vector<zns::IoCompletion> done;
  std::vector<std::pair<uint32_t, uint64_t>> written_first;  // (zone, offset) of the first block per zone
  uint64_t completed = 0, inflight = 0, t0 = 0, next_report = 0;

  const char* op_name() const { return opt->append ? "append" : "write"; }

  uint32_t take_zone() {
    const zns::DeviceInfo& info = dev->info();
    for (uint32_t tries = 0; tries < info.zone_count; ++tries) {
      uint32_t z = next_zone;
      next_zone = (next_zone + 1) % info.zone_count;
      auto zr = dev->report_zones(z, 1);
      if (!zr) throw RunError(opt->experiment + ": report zone " + std::to_string(z) + ": " + zr.status().to_string());
      zns::ZoneState st = zr->front().state;
      if (st == zns::ZoneState::kReadOnly || st == zns::ZoneState::kOffline) continue;
      if (st != zns::ZoneState::kEmpty) {
        Status s = dev->reset(z);
        if (!s) throw RunError(opt->experiment + ": reset of zone " + std::to_string(z) + ": " + s.to_string());
        ++f.resets;
      }
      ++f.zones_used;
      return z;
    }
    throw RunError(opt->experiment + ": no writable zone left on the device");
  }

  void queue(zns::IoOp op, uint32_t stream, uint64_t off, uint64_t len) {
    const uint32_t z = zone[stream];
    if (off == 0) written_first.push_back({z, 0});
    zns::IoRequest r;
    r.op = op;
    r.zone = z;
    r.offset = off;
    r.buf = (*bufs)[f.ios % bufs->size()].data();
    r.len = size_t(len);
    r.user_data = (uint64_t(z) << 40) | off;
    batch.push_back(r);
    ++f.ios;
    if (inflight + batch.size() >= opt->queue_depth) turn();
  }

  // Submits the queued batch, reaps at least one completion.
  void turn() {
    if (!batch.empty()) {
      Status s = dev->submit(batch);
      if (!s) throw RunError(opt->experiment + ": submit: " + s.to_string());
      inflight += batch.size();
      batch.clear();
    }
    auto n = dev->reap(done, 1);
    if (!n) throw RunError(opt->experiment + ": reap: " + n.status().to_string());
    for (size_t i = 0; i < *n; ++i) {
      const zns::IoCompletion& cc = done[i];
      if (!cc.status) {
        throw RunError(opt->experiment + ": " + op_name() + " to zone " + std::to_string(cc.user_data >> 40) +
                       " offset " + std::to_string(cc.user_data & ((1ull << 40) - 1)) + ": " + cc.status.to_string());
      }
      hist->record(cc.latency_ns);
      completed += cc.bytes;
      --inflight;
    }
    if (ctx->progress) {
      uint64_t now = monotonic_ns();
      if (now >= next_report) {
        next_report = now + 1000000000ull;
        std::fprintf(stderr, "%s: repeat %u: %llu / %llu MiB, %.0f MiB/s\n", opt->experiment.c_str(), rep + 1,
                     (unsigned long long)(completed >> 20), (unsigned long long)(total >> 20),
                     double(completed) / double(1 << 20) / (double(now - t0) / 1e9));
      }
    }
  }
};

uint64_t DeviceExec::zone_capacity() const { return s_.dev->info().zone_capacity; }
void DeviceExec::next_zone(uint32_t stream) {
  if (s_.zone.size() <= stream) s_.zone.resize(stream + 1);
  s_.zone[stream] = s_.take_zone();
}
void DeviceExec::write(uint32_t stream, uint64_t offset, uint64_t len) { s_.queue(zns::IoOp::kWrite, stream, offset, len); }
void DeviceExec::append(uint32_t stream, uint64_t offset, uint64_t len) { s_.queue(zns::IoOp::kAppend, stream, offset, len); }
void DeviceExec::drain() {
  while (s_.completed < s_.total) s_.turn();
}

namespace {

// One timed pass: resets the zones it will use (untimed), runs the plan,
// reads back the first block of every zone written (untimed).
PassFigures run_pass(zns::ZonedDevice& dev, const RunContext& ctx, const DevicePlan& plan, const DeviceRunOptions& opt,
                     std::vector<zns::io::AlignedBuffer>& bufs, LatencyHistogram& hist, unsigned rep) {
  const zns::DeviceInfo& info = dev.info();
  const uint64_t cap = info.zone_capacity, total = plan.total_bytes();
  const uint64_t need_zones = std::min<uint64_t>(info.zone_count, (total + cap - 1) / cap + plan.streams());
  for (uint32_t z = 0; z < need_zones; ++z) {
    Status s = dev.reset(z);
    if (!s && s.code() != Code::kInvalidZoneStateTransition)
      throw RunError(opt.experiment + ": reset of zone " + std::to_string(z) + ": " + s.to_string());
  }
  DeviceExecState s;
  s.opt = &opt;
  s.ctx = &ctx;
  s.dev = &dev;
  s.bufs = &bufs;
  s.hist = &hist;
  s.rep = rep;
  s.total = total;
  s.done.resize(opt.queue_depth);
  DeviceExec ex(s);
  const double u0 = cpu_seconds(true), s0 = cpu_seconds(false);
  s.t0 = monotonic_ns();
  s.next_report = s.t0 + 1000000000ull;
  plan.run_pass(ex);
  PassFigures f = s.f;
  f.seconds = double(monotonic_ns() - s.t0) / 1e9;
  f.user_s = cpu_seconds(true) - u0;
  f.sys_s = cpu_seconds(false) - s0;
  f.bytes = s.completed;
  auto rb = zns::io::AlignedBuffer::allocate(opt.block_size, 4096);
  if (rb) {
    for (auto [z, off] : s.written_first) {
      Status st = dev.read(z, off, rb->data(), size_t(opt.block_size));
      if (!st) throw RunError(opt.experiment + ": read-back of zone " + std::to_string(z) + ": " + st.to_string());
      if (std::memcmp(rb->data(), bufs[0].data(), size_t(opt.block_size)) != 0)
        throw RunError(opt.experiment + ": read-back of zone " + std::to_string(z) +
                       " offset 0 does not match the data written");
      ++f.verified_blocks;
    }
  }
  return f;
}

}  // namespace

void run_zone_writes(RunContext& ctx, const DevicePlan& plan, const DeviceRunOptions& opt) {
  const std::string& X = opt.experiment;
  ResultDoc& doc = *ctx.result;
  std::unique_ptr<ScratchDir> scratch;  // removed when the run ends
  std::string uri = device_or_scratch(ctx.device_uri, X, opt.default_device, scratch);

  const uint64_t bs = opt.block_size, total = plan.total_bytes();
  const uint32_t nz = plan.streams();
  const unsigned qd = opt.queue_depth, repeats = opt.repeats;
  // The emulator's ring must hold the queue depth (in pieces of max_io).
  std::string open_uri = uri;
  if (open_uri.rfind("emu:", 0) == 0 && open_uri.find("qd=") == std::string::npos) {
    open_uri += (open_uri.find('?') == std::string::npos ? "?" : "&") + std::string("qd=") +
                std::to_string(std::max(128u, qd * 4));
  }
  auto dev_r = zns::open_device(open_uri);
  if (!dev_r) throw RunError(X + ": cannot open device " + uri + ": " + dev_r.status().to_string());
  zns::ZonedDevice& dev = **dev_r;
  const zns::DeviceInfo& info = dev.info();
  if (bs % info.lba_bytes)
    throw ConfigError("key \"block_size\": " + std::to_string(bs) + " is not a multiple of the LBA size " +
                      std::to_string(info.lba_bytes));
  if (opt.append && bs > info.zone_append_max_bytes)
    throw ConfigError("key \"block_size\": " + std::to_string(bs) + " exceeds the device's zone append limit " +
                      std::to_string(info.zone_append_max_bytes));
  if (nz > info.zone_count)
    throw ConfigError("key \"zones\": the device has only " + std::to_string(info.zone_count) + " zones");

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
  const bool want_fio = opt.fio == "on" || (opt.fio == "auto" && is_emu);

  // Buffers: written content is the pattern of seed 1 at offset 0, one
  // buffer per queue slot (I/Os only read them).
  std::vector<zns::io::AlignedBuffer> bufs;
  for (unsigned k = 0; k < qd; ++k) {
    auto b = zns::io::AlignedBuffer::allocate(bs, 4096);
    if (!b) throw RunError(X + ": cannot allocate I/O buffers");
    zns::io::fill_pattern(b->data(), bs, 1, 0);
    bufs.push_back(std::move(*b));
  }

  LatencyHistogram hist;
  std::vector<double> ours_mib, ours_iops, ours_cpu, ours_user, ours_sys, fio_mib;
  std::vector<FioResult> fio_runs;
  PassFigures last;
  for (unsigned rep = 0; rep < repeats; ++rep) {
    PassFigures f = run_pass(dev, ctx, plan, opt, bufs, hist, rep);
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
      if (ctx.progress) std::fprintf(stderr, "%s: repeat %u: fio baseline ...\n", X.c_str(), rep + 1);
      FioResult fr = run_fio(j);
      if (!fr.ok) {
        std::fprintf(stderr, "%s: fio baseline failed: %s\n", X.c_str(), fr.error.c_str());
      } else {
        fio_mib.push_back(fr.throughput_mib_s);
        s["fio_throughput_mib_s"] = fr.throughput_mib_s;
        s["fio_ratio"] = mib / fr.throughput_mib_s;
      }
      fio_runs.push_back(std::move(fr));
    }
    if (ctx.progress) {
      std::fprintf(stderr, "%s: repeat %u/%u: %.0f MiB/s, %.0f IOPS, %.2f us CPU/IO%s\n", X.c_str(), rep + 1, repeats,
                   mib, double(f.ios) / f.seconds, cpu,
                   s.contains("fio_throughput_mib_s")
                       ? (", fio " + std::to_string(int(s["fio_throughput_mib_s"].get<double>())) + " MiB/s").c_str()
                       : "");
    }
    doc.add_sample(s);
  }
  doc.set_latency(opt.append ? "append" : "write", hist);
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
  sm["mode"] = opt.append ? "append" : "write";
  if (!fio_runs.empty()) {
    json runs = json::array();
    for (const auto& fr : fio_runs) runs.push_back(fr.to_json());
    const double fmed = median(fio_mib);
    // The run closest to the median carries the headline figures.
    const FioResult* best = nullptr;
    for (const auto& fr : fio_runs)
      if (fr.ok && (!best || std::abs(fr.throughput_mib_s - fmed) < std::abs(best->throughput_mib_s - fmed))) best = &fr;
    json fj = best ? best->to_json() : fio_runs.front().to_json();
    fj["throughput_mib_s"] = fmed;
    fj["runs"] = runs;
    doc.doc()["fio"] = fj;
    if (fmed > 0) sm["fio_ratio"] = median(ours_mib) / fmed;
  } else {
    doc.doc()["fio"] = {{"skipped", want_fio ? "fio failed" : "not an emulated device (fio=auto) or fio=off"}};
  }
}

}  // namespace znslab::harness
