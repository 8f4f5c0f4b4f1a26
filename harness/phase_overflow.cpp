// The phase runner's overflow-region target: run_overflow_phases
// (harness/phase_runner.h). Summary keys: docs/overflow.md "Workload
// overflow-spill".
#include <cinttypes>
#include <cstring>

#include "harness/counters.h"
#include "harness/phase_runner.h"
#include "harness/scratch_dir.h"

namespace znslab::harness {

using nlohmann::json;
using namespace znslab::overflow;

namespace {

constexpr uint64_t kMix = 0x9E3779B97F4A7C15ull;

// Blob `tag`'s bytes: 64-bit word at byte i = tag * kMix + i (the tail: its low bytes).
void fill_blob(uint8_t* p, uint64_t tag, size_t len) {
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w = tag * kMix + i;
    std::memcpy(p + i, &w, 8);
  }
  uint64_t w = tag * kMix + i;
  std::memcpy(p + i, &w, len - i);
}

// Bytes of [p, p+len) that differ from blob `tag`.
uint64_t stale_bytes(const uint8_t* p, uint64_t tag, size_t len) {
  uint64_t bad = 0;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w = tag * kMix + i, g;
    std::memcpy(&g, p + i, 8);
    if (g != w)
      for (int b = 0; b < 8; ++b) bad += ((g >> (8 * b)) & 0xff) != ((w >> (8 * b)) & 0xff);
  }
  uint64_t w = tag * kMix + i;
  for (size_t b = 0; i + b < len; ++b) bad += p[i + b] != uint8_t(w >> (8 * b));
  return bad;
}

// One reader thread's tallies (written by the reader, read after stop()).
struct ReaderTally {
  std::atomic<uint64_t> stale{0}, reads{0}, remaps{0}, errors{0};
};

}  // namespace

class OverflowExecState {
 public:
  struct Blob {
    SlotId id;
    uint32_t len;
    uint32_t pins;
  };
  PhaseRun* run = nullptr;
  const OverflowRunOptions* opt = nullptr;
  OverflowRegion* region = nullptr;
  ReaderPool* readers = nullptr;
  std::vector<Blob> blobs;  // every blob written (index = tag)
  std::vector<uint8_t> buf;
  LatencyHistogram *write_lat = nullptr, *write4k_lat = nullptr, *read_lat = nullptr;
  uint64_t writes = 0, frees = 0, reads = 0, owner_stale = 0, peak_file = 0, live_peak = 0, freed_bytes = 0;
  uint64_t t0 = 0, t_ops = 0;
  OverflowStats end{};

  void sample(const char* phase) {
    const OverflowStats st = region->stats();
    run->sample(phase, {{"live_bytes", st.live_bytes},
                        {"file_bytes", st.capacity},
                        {"cursor_bytes", st.cursor},
                        {"fragmentation_pct", st.fragmentation_pct}});
  }
};

size_t OverflowExec::write(uint32_t len) {
  OverflowExecState& s = s_;
  const uint64_t tag = s.blobs.size();
  fill_blob(s.buf.data(), tag, len);
  const uint64_t t = timer_start();
  auto id = s.region->write(s.buf.data(), len);
  const uint64_t ns = ticks_to_ns(timer_stop() - t);
  if (!id) s.run->fail("write of " + std::to_string(len) + " B", id.status());
  s.write_lat->record(ns);
  if (len == 4096 && s.writes >= s.opt->warmup_writes) s.write4k_lat->record(ns);
  ++s.writes;
  s.blobs.push_back({*id, len, 0});
  return size_t(tag);
}

void OverflowExec::observe() {
  OverflowExecState& s = s_;
  s.peak_file = std::max(s.peak_file, s.region->capacity());
  s.live_peak = std::max(s.live_peak, s.region->stats().live_bytes);
}

void OverflowExec::free(size_t blob) {
  OverflowExecState& s = s_;
  Status st = s.region->free(s.blobs[blob].id);
  if (!st) s.run->fail("free", st);
  ++s.frees;
}

void OverflowExec::read(size_t blob) {
  OverflowExecState& s = s_;
  const OverflowExecState::Blob& bl = s.blobs[blob];
  auto v = s.run->timed(*s.read_lat, [&] {
    auto r = s.region->read(bl.id);
    if (r) std::memcpy(s.buf.data(), r->data, r->size);
    return r;
  });
  if (!v) s.run->fail("read", v.status());
  s.owner_stale += stale_bytes(s.buf.data(), blob, v->size) + (v->size != bl.len ? 1 : 0);
  ++s.reads;
}

bool OverflowExec::pinned(size_t blob) const { return s_.blobs[blob].pins != 0; }

uint64_t OverflowExec::live_bytes() const { return s_.region->stats().live_bytes; }

void OverflowExec::serve(int64_t (*choose)(void*), void* arg) {
  OverflowExecState& s = s_;
  ReaderPool& pool = *s.readers;
  for (int i = 0; i < pool.size(); ++i) {
    if (!pool.idle(i)) continue;
    if (pool.has_job(i)) --s.blobs[pool.cookie(i)].pins;
    const int64_t b = choose(arg);
    if (b < 0) continue;
    auto loc = s.region->locate(s.blobs[size_t(b)].id);
    if (!loc) s.run->fail("locate", loc.status());
    ++s.blobs[size_t(b)].pins;
    pool.post(i, ReaderJob{loc->first, loc->second, uint64_t(b)}, uint64_t(b));
  }
}

void OverflowExec::fill_done() { s_.sample("fill"); }

void OverflowExec::free_done(uint64_t freed_bytes) {
  s_.freed_bytes = freed_bytes;
  s_.sample("free");
}

void OverflowExec::refill_done() {
  OverflowExecState& s = s_;
  s.end = s.region->stats();
  s.sample("refill");
  s.t_ops = monotonic_ns() - s.t0;
}

void run_overflow_phases(RunContext& ctx, const OverflowPlan& plan, const OverflowRunOptions& opt) {
  const std::string& X = opt.experiment;
  ScratchDir dir(X, opt.dir, opt.keep_files);
  const std::string path = dir.path() + "/overflow.region";
  const OverflowOptions& o = opt.region;
  auto rr = OverflowRegion::open(path, o);
  if (!rr) throw RunError(X + ": opening " + path + ": " + rr.status().to_string());
  OverflowRegion& region = **rr;

  PhaseRun run(ctx, X);
  ResultDoc& doc = run.doc();
  doc.set_allocator({{"name", "overflow-region"},
                     {"version", "1"},
                     {"options",
                      {{"initial_bytes", o.initial_bytes},
                       {"max_bytes", o.max_bytes},
                       {"persistent", o.persistent},
                       {"populate", o.populate},
                       {"advice", opt.advice},
                       {"path", path}}}});

  // Reader threads: each opens its own read-only mapping, reads the blobs
  // it is handed and counts the bytes that differ from what was written.
  std::vector<std::unique_ptr<ReaderTally>> tallies;
  for (int i = 0; i < opt.readers; ++i) tallies.push_back(std::make_unique<ReaderTally>());
  ReaderPool pool;  // declared after the region and folder: joins first
  pool.start(opt.readers, [&path, &tallies](int i) -> ReaderPool::Handler {
    ReaderTally* t = tallies[size_t(i)].get();
    auto r = OverflowReader::open(path);
    if (!r) {
      t->errors.fetch_add(1);
      return {};
    }
    std::shared_ptr<OverflowReader> reader(std::move(*r));
    return [t, reader, buf = std::vector<uint8_t>()](const ReaderJob& j) mutable {
      buf.resize(j.len);
      if (reader->read(j.off, uint32_t(j.len), buf.data())) {
        t->stale.fetch_add(stale_bytes(buf.data(), j.tag, j.len), std::memory_order_relaxed);
        t->reads.fetch_add(1, std::memory_order_relaxed);
      } else {
        t->errors.fetch_add(1, std::memory_order_relaxed);
      }
      t->remaps.store(reader->remaps(), std::memory_order_relaxed);
    };
  });

  OverflowExecState s;
  s.run = &run;
  s.opt = &opt;
  s.region = &region;
  s.readers = &pool;
  s.buf.resize(size_t(opt.max_blob_bytes) + 4096);
  s.write_lat = &run.latency("write");
  s.write4k_lat = &run.latency("write_4k");
  s.read_lat = &run.latency("read");
  s.peak_file = region.capacity();
  OverflowExec ex(s);
  s.t0 = monotonic_ns();
  plan.run(ex);
  pool.stop();

  uint64_t stale = s.owner_stale, remaps = 0, rreads = 0, rerrors = 0;
  for (auto& t : tallies) {
    stale += t->stale.load();
    remaps += t->remaps.load();
    rreads += t->reads.load();
    rerrors += t->errors.load();
  }
  const OverflowStats& end = s.end;
  json& sum = doc.summary();
  sum["write_ns"] = s.write_lat->to_json();
  sum["read_ns"] = s.read_lat->to_json();
  sum["write_4k_ns"] = s.write4k_lat->to_json();
  sum["fragmentation_pct"] = end.fragmentation_pct;
  sum["grow_count"] = end.grow_count;
  sum["reader_remaps"] = remaps;
  sum["reader_reads"] = rreads;
  sum["reader_errors"] = rerrors;
  sum["stale_reads"] = stale;
  sum["peak_file_bytes"] = s.peak_file;
  sum["live_bytes_peak"] = s.live_peak;
  sum["live_bytes_end"] = end.live_bytes;
  sum["cursor_bytes_end"] = end.cursor - end.data_off;
  sum["ops_per_sec"] = s.t_ops ? double(s.writes + s.frees + s.reads) * 1e9 / double(s.t_ops) : 0.0;
  sum["rss_bytes"] = run.sampler().rss_bytes();
  sum["overflow_stats"] = counters_json(end);  // every OverflowStats counter (src/overflow/overflow.h)
  sum["counters"] = {{"writes", s.writes},
                     {"frees", s.frees},
                     {"owner_reads", s.reads},
                     {"reuse_writes", end.reuse_writes},
                     {"splits", end.splits},
                     {"coalesces", end.coalesces},
                     {"free_extents", end.free_extents},
                     {"free_bytes", end.free_bytes},
                     {"live_slots", end.live_slots},
                     {"freed_bytes_phase2", s.freed_bytes}};
  run.publish_latency("write");
  run.publish_latency("read");
  run.progress("%" PRIu64 " writes; write p50 %" PRIu64 " ns, 4k p50 %" PRIu64 " ns, read p50 %" PRIu64
               " ns; fragmentation %.2f%%; grows %" PRIu64 ", reader remaps %" PRIu64 " (%" PRIu64
               " reads), stale bytes %" PRIu64 "; peak file %.0f MiB",
               s.writes, s.write_lat->percentile(0.5), s.write4k_lat->percentile(0.5), s.read_lat->percentile(0.5),
               end.fragmentation_pct, end.grow_count, remaps, rreads, stale, double(s.peak_file) / 1048576.0);
  if (stale || rerrors)
    run.fail(std::to_string(stale) + " stale bytes read, " + std::to_string(rerrors) + " reader errors");
}

}  // namespace znslab::harness
