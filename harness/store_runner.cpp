// The zoned-store runner (harness/store_runner.h).
#include "harness/store_runner.h"

#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "harness/counters.h"
#include "harness/result.h"
#include "harness/scratch_dir.h"
#include "harness/timer.h"
#include "zns/zoned_device.h"

namespace znslab::harness {

using nlohmann::json;
using namespace znslab::segment;

// Everything the executor touches: the store, record keys and lengths by
// id, buffers, histograms and tallies.
class StoreExecState {
 public:
  const StoreRunOptions* opt = nullptr;
  ZonedSegmentStore* st = nullptr;
  ResultDoc* doc = nullptr;
  bool progress = false;
  uint64_t capacity = 0, target_bytes = 0;
  std::vector<SegmentKey> keys;  // by record id
  std::vector<uint32_t> lens;
  std::vector<uint64_t> buf, rbuf;
  LatencyHistogram wlat, flat, rlat;
  uint64_t records = 0, deletes = 0, read_errors = 0, epochs = 0, written = 0, next_progress = 0;
  double live_sum = 0;
  // Counters when the first device capacity had been written (steady-state WA after it).
  uint64_t host_at_1c = 0, dev_at_1c = 0;
  bool have_1c = false;
};

bool StoreExec::put(uint64_t id, uint32_t len, uint32_t cls) {
  StoreExecState& s = s_;
  for (size_t w = 0; w < (len + 7) / 8; ++w) s.buf[w] = s.opt->record_word(id, w);
  uint64_t t = timer_start();
  auto key = s.st->put(s.buf.data(), len, cls);
  s.wlat.record(ticks_to_ns(timer_stop() - t));
  if (!key)
    throw RunError(s.opt->experiment + ": put of record " + std::to_string(id) + " (" + std::to_string(len) +
                   " bytes) at epoch " + std::to_string(s.epochs) + ": " + key.status().to_string());
  if (s.keys.size() <= id) {
    s.keys.resize(id + 1);
    s.lens.resize(id + 1);
  }
  s.keys[id] = *key;
  s.lens[id] = len;
  ++s.records;
  s.written += len;
  if (s.progress && s.written >= s.next_progress) {
    const auto& k = s.st->counters();
    std::fprintf(stderr, "%s[%s]: %3.0f%% written %.0f MiB, WA %.3f, resets %" PRIu64 ", free zones %u\n",
                 s.opt->experiment.c_str(), placement_name(s.opt->store.placement),
                 100.0 * double(s.written) / double(s.target_bytes), double(s.written) / 1048576.0,
                 k.write_amplification(), k.zone_resets, s.st->free_zones());
    s.next_progress += s.target_bytes / 10;
  }
  return true;
}

void StoreExec::remove(uint64_t id) {
  StoreExecState& s = s_;
  uint64_t t = timer_start();
  Status st = s.st->remove(s.keys[id]);
  s.flat.record(ticks_to_ns(timer_stop() - t));
  if (!st)
    throw RunError(s.opt->experiment + ": remove at epoch " + std::to_string(s.epochs) + ": " + st.to_string());
  ++s.deletes;
}

void StoreExec::read(uint64_t id) {
  StoreExecState& s = s_;
  uint64_t tr = timer_start();
  auto got = s.st->read(s.keys[id], s.rbuf.data(), s.rbuf.size() * 8);
  uint64_t ns = ticks_to_ns(timer_stop() - tr);
  if (got) {
    s.rlat.record(ns);
    const uint32_t len = s.lens[id];
    bool ok = *got == len;
    for (size_t w = 0; ok && w < len / 8; ++w) ok = s.rbuf[w] == s.opt->record_word(id, w);
    if (!ok) ++s.read_errors;
  } else if (got.status().code() != Code::kStaleHandle) {
    ++s.read_errors;  // stale = the record already died: not an error
  }
}

void StoreExec::end_epoch(uint64_t /*epoch*/) {
  StoreExecState& s = s_;
  const auto& k = s.st->counters();
  s.live_sum += double(k.live_bytes);
  if (!s.have_1c && k.host_bytes_written >= s.capacity) {
    s.host_at_1c = k.host_bytes_written;
    s.dev_at_1c = k.device_bytes_written;
    s.have_1c = true;
  }
  ++s.epochs;
  s.doc->add_sample({{"epoch", s.epochs},
                     {"host_bytes_written", k.host_bytes_written},
                     {"device_bytes_written", k.device_bytes_written},
                     {"write_amplification", k.write_amplification()},
                     {"gc_copied_bytes", k.gc_copied_bytes},
                     {"zone_resets", k.zone_resets},
                     {"free_zones", s.st->free_zones()},
                     {"live_bytes", k.live_bytes}});
}

void run_zone_store(RunContext& ctx, const StoreRunOptions& opt) {
  const std::string& X = opt.experiment;
  ResultDoc& doc = *ctx.result;
  std::unique_ptr<ScratchDir> scratch;  // removed when the run ends
  std::string uri = device_or_scratch(ctx.device_uri, X, opt.default_device, scratch);

  auto dev_r = zns::open_device(uri);
  if (!dev_r) throw RunError(X + ": cannot open device " + uri + ": " + dev_r.status().to_string());
  zns::ZonedDevice& dev = **dev_r;
  const zns::DeviceInfo& info = dev.info();

  ZonedStoreOptions o = opt.store;
  const uint64_t rmax = opt.max_record_bytes;
  o.max_segment_bytes = uint32_t(std::min<uint64_t>(rmax, info.zone_capacity));
  if (rmax > info.zone_capacity)
    throw ConfigError("key \"record_size\": max " + std::to_string(rmax) + " exceeds the zone capacity " +
                      std::to_string(info.zone_capacity) + " of " + uri);
  auto st_r = ZonedSegmentStore::open(dev, o);
  if (!st_r) throw RunError(X + ": opening the segment store on " + uri + ": " + st_r.status().to_string());
  ZonedSegmentStore& st = **st_r;

  const uint64_t capacity = info.capacity_bytes();
  const std::unique_ptr<StorePlan> plan = opt.make_plan(capacity);

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

  StoreExecState s;
  s.opt = &opt;
  s.st = &st;
  s.doc = &doc;
  s.progress = ctx.progress;
  s.capacity = capacity;
  s.target_bytes = plan->target_bytes();
  s.next_progress = s.target_bytes / 10;
  s.buf.resize((rmax + 7) / 8 + 1);
  s.rbuf.resize((rmax + 7) / 8 + 1);
  StoreExec ex(s);
  const uint64_t t0 = monotonic_ns();
  plan->run(ex);
  const double secs = double(monotonic_ns() - t0) / 1e9;

  const auto& k = st.counters();
  json& sm = doc.summary();
  sm["placement"] = placement_name(o.placement);
  sm["gc"] = gc_policy_name(o.gc);
  counters_to_json(k, sm);  // every ZonedStoreCounters key (harness/counters.h)
  sm["write_amplification"] = k.write_amplification();
  sm["write_amplification_after_1x"] =
      s.have_1c && k.host_bytes_written > s.host_at_1c
          ? double(k.device_bytes_written - s.dev_at_1c) / double(k.host_bytes_written - s.host_at_1c)
          : k.write_amplification();
  sm["device_capacity_bytes"] = capacity;
  sm["capacity_multiple_written"] = double(k.host_bytes_written) / double(capacity);
  sm["utilisation_at_reset"] = k.utilisation_at_reset();
  sm["throughput_mib_s"] = secs > 0 ? double(k.host_bytes_written) / 1048576.0 / secs : 0.0;
  sm["seconds"] = secs;
  sm["records"] = s.records;
  sm["deletes"] = s.deletes;
  sm["epochs"] = s.epochs;
  sm["epoch_bytes"] = plan->epoch_bytes();
  sm["live_bytes_mean"] = s.epochs ? s.live_sum / double(s.epochs) : 0.0;
  sm["live_fraction_measured"] = s.epochs ? s.live_sum / double(s.epochs) / double(capacity) : 0.0;
  sm["reads"] = s.rlat.count();
  sm["read_errors"] = s.read_errors;
  sm["reads_via_mmap"] = st.reads_via_mmap();
  auto ms = st.mapping_stats();
  sm["read_mappings_peak"] = ms.peak_mappings;  // mmap windows over the emulator's backing file
  sm["read_mapping_evictions"] = ms.evictions;
  doc.set_latency("write", s.wlat);
  doc.set_latency("free", s.flat);
  doc.set_latency("read", s.rlat);
  if (ctx.progress)
    std::fprintf(stderr,
                 "%s[%s, %s]: %.2f x capacity written, WA %.3f, resets %" PRIu64 ", GC copied %.1f MiB, "
                 "%.1f MiB/s, write p50 %" PRIu64 " ns p99 %" PRIu64 " ns, read errors %" PRIu64 "\n",
                 X.c_str(), placement_name(o.placement), gc_policy_name(o.gc),
                 double(k.host_bytes_written) / double(capacity), k.write_amplification(), k.zone_resets,
                 double(k.gc_copied_bytes) / 1048576.0, sm["throughput_mib_s"].get<double>(), s.wlat.percentile(0.5),
                 s.wlat.percentile(0.99), s.read_errors);
  if (s.read_errors) throw RunError(X + ": " + std::to_string(s.read_errors) + " records read back wrong");
}

}  // namespace znslab::harness
