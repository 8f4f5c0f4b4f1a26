// Workload "overflow-spill" (issue 10; seed 003): writes, reads and frees
// variable-size blobs in an OverflowRegion (src/overflow) while 1-3 reader
// threads, each with its own read-only mapping (OverflowReader), read
// blobs the owner hands them and check every byte.
//
// Phases: "fill" (write blobs until `fill_bytes` are live; a
// `short_lived_fraction` of blobs is freed `short_lifetime` writes later,
// those still pending are freed when the fill ends),
// "free" (free a random `free_fraction` of the live blobs), "refill" (write
// as many bytes as were freed, same size distribution, all long-lived). The owner reads a
// random live blob every `read_every` writes. fragmentation_pct is taken
// at the end of the refill. The default fills 96 MiB into a 64 MiB region:
// it grows at least once while the readers remap.
//
// Blob bytes are derived from the blob's tag (64-bit words tag*K + i), so
// any byte read that is not the one written counts in stale_reads (bytes).
// A blob handed to a reader is not freed until the reader is done with it.
//
// Summary: write_ns, read_ns {p50,p99,...} (all sizes; a read is the
// region lookup plus the copy out), write_4k_ns (writes of exactly 4096 B
// after the first `warmup_writes` writes), fragmentation_pct, grow_count,
// reader_remaps, reader_reads, stale_reads, peak_file_bytes,
// live_bytes_peak, ops_per_sec (writes+frees+reads per second), counters.
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <deque>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "harness/counters.h"
#include "harness/config.h"
#include "harness/registry.h"
#include "harness/result.h"
#include "harness/sampler.h"
#include "harness/timer.h"
#include "src/overflow/overflow.h"
#include "harness/work_dir.h"

namespace znslab::harness {
namespace {

using nlohmann::json;
using namespace znslab::overflow;

constexpr uint64_t kMix = 0x9E3779B97F4A7C15ull;

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

// The operation logic: which blob sizes to write and which blobs to free.
class SpillOps {
 public:
  SpillOps(uint64_t seed, uint32_t min, uint32_t max, double frac_4k, double short_frac, uint32_t short_life)
      : rng_(seed), min_(min), max_(max), frac_4k_(frac_4k), short_frac_(short_frac), short_life_(short_life) {}
  uint32_t next_size() {
    if (coin() < frac_4k_) return 4096;
    return min_ + uint32_t(rng_() % (uint64_t(max_ - min_) + 1));
  }
  bool short_lived() { return coin() < short_frac_; }
  uint32_t short_life() const { return short_life_; }
  size_t pick(size_t n) { return size_t(rng_() % n); }
  double coin() { return double(rng_() >> 11) * 0x1.0p-53; }

 private:
  std::mt19937_64 rng_;
  uint32_t min_, max_;
  double frac_4k_, short_frac_;
  uint32_t short_life_;
};

// One reader thread's mailbox: the owner posts (off, len, tag) and bumps
// `req`; the reader reads through its own mapping, counts stale bytes and
// sets `done` = req.
struct Mailbox {
  alignas(64) std::atomic<uint64_t> req{0};
  uint64_t off = 0, tag = 0;
  uint32_t len = 0;
  size_t blob = 0;  // owner side: index of the pinned blob
  alignas(64) std::atomic<uint64_t> done{0};
  std::atomic<uint64_t> stale{0}, reads{0}, remaps{0}, errors{0};
  std::atomic<bool> stop{false};
};

void reader_main(const std::string& path, Mailbox* mb) {
  auto r = OverflowReader::open(path);
  if (!r) {
    mb->errors.fetch_add(1);
    return;
  }
  std::vector<uint8_t> buf;
  uint64_t seen = 0;
  for (;;) {
    mb->req.wait(seen, std::memory_order_acquire);
    if (mb->stop.load(std::memory_order_acquire)) break;
    seen = mb->req.load(std::memory_order_acquire);
    buf.resize(mb->len);
    if ((*r)->read(mb->off, mb->len, buf.data())) {
      mb->stale.fetch_add(stale_bytes(buf.data(), mb->tag, mb->len), std::memory_order_relaxed);
      mb->reads.fetch_add(1, std::memory_order_relaxed);
    } else {
      mb->errors.fetch_add(1, std::memory_order_relaxed);
    }
    mb->remaps.store((*r)->remaps(), std::memory_order_relaxed);
    mb->done.store(seen, std::memory_order_release);
  }
}

class OverflowSpill : public Workload {
 public:
  json defaults() const override {
    return json{{"workload", "overflow-spill"},
                {"initial_bytes", 64ll << 20},
                {"max_bytes", 1ll << 30},
                {"fill_bytes", 96ll << 20},
                {"blob_size", {{"min", 64}, {"max", 16384}}},
                {"fraction_4k", 0.25},
                {"short_lived_fraction", 0.2},
                {"short_lifetime", 256},
                {"free_fraction", 0.5},
                {"readers", 2},
                {"read_every", 4},
                {"reader_post_every", 16},
                {"warmup_writes", 2000},
                {"persistent", false},
                {"populate", true},
                {"advice", "normal"},
                {"dir", ""},
                {"keep_files", false},
                {"seed", 1}};
  }

  void validate(const json& c) const override {
    check_int_range(c, "initial_bytes", 1 << 16, 1ll << 40);
    check_int_range(c, "max_bytes", 1 << 16, 1ll << 40);
    if (cfg_u64(c, "initial_bytes") % 4096 || cfg_u64(c, "max_bytes") % 4096)
      throw_key_error("initial_bytes", "initial_bytes and max_bytes must be multiples of 4096");
    if (cfg_u64(c, "initial_bytes") > cfg_u64(c, "max_bytes")) throw_key_error("max_bytes", "must be >= initial_bytes");
    check_int_range(c, "fill_bytes", 1, 1ll << 40);
    const json& bs = c.at("blob_size");
    if (!bs.is_object() || !bs.contains("min") || !bs.contains("max") || !bs["min"].is_number_integer() ||
        !bs["max"].is_number_integer() || bs["min"].get<int64_t>() < 1 || bs["max"] < bs["min"] ||
        bs["max"].get<int64_t>() > (1 << 26))
      throw_key_error("blob_size", "expected {\"min\": N, \"max\": N} with 1 <= min <= max <= 64 MiB (bytes)");
    check_number_range(c, "fraction_4k", 0.0, 1.0);
    check_number_range(c, "short_lived_fraction", 0.0, 0.9);
    check_int_range(c, "short_lifetime", 1, 1 << 24);
    check_number_range(c, "free_fraction", 0.0, 1.0);
    check_int_range(c, "readers", 0, 3);
    check_int_range(c, "read_every", 1, 1 << 20);
    check_int_range(c, "reader_post_every", 1, 1 << 20);
    check_int_range(c, "warmup_writes", 0, 1ll << 40);
    check_one_of(c, "advice", {"normal", "random", "sequential"});
  }

  void run(RunContext& ctx) override {
    const json& c = ctx.config;
    WorkDir dir("overflow-spill", cfg_str(c, "dir"), cfg_bool(c, "keep_files"));
    const std::string path = dir.path() + "/overflow.region";
    OverflowOptions o;
    o.initial_bytes = cfg_u64(c, "initial_bytes");
    o.max_bytes = cfg_u64(c, "max_bytes");
    o.persistent = cfg_bool(c, "persistent");
    o.populate = cfg_bool(c, "populate");
    const std::string adv = cfg_str(c, "advice");
    o.advice = adv == "random" ? pages::Advice::kRandom : adv == "sequential" ? pages::Advice::kSequential : pages::Advice::kNormal;
    auto rr = OverflowRegion::open(path, o);
    if (!rr) throw RunError("overflow-spill: opening " + path + ": " + rr.status().to_string());
    OverflowRegion& region = **rr;
    SpillOps ops(cfg_u64(c, "seed"), uint32_t(c["blob_size"]["min"].get<uint64_t>()),
                 uint32_t(c["blob_size"]["max"].get<uint64_t>()), cfg_double(c, "fraction_4k"),
                 cfg_double(c, "short_lived_fraction"), uint32_t(cfg_u64(c, "short_lifetime")));

    ResultDoc& doc = *ctx.result;
    doc.set_allocator({{"name", "overflow-region"},
                       {"version", "1"},
                       {"options",
                        {{"initial_bytes", o.initial_bytes},
                         {"max_bytes", o.max_bytes},
                         {"persistent", o.persistent},
                         {"populate", o.populate},
                         {"advice", adv},
                         {"path", path}}}});
    doc.doc()["timer"] = timer_json();
    Sampler sampler;

    struct Blob { SlotId id; uint64_t tag; uint32_t len; uint32_t pins; bool live; };
    std::vector<Blob> blobs;        // every blob ever written (index = tag)
    std::vector<size_t> live;       // indices of live long-lived blobs
    std::deque<std::pair<size_t, uint64_t>> short_q;  // (blob, due write count)
    std::vector<uint8_t> buf(size_t(c["blob_size"]["max"].get<uint64_t>()) + 4096);
    LatencyHistogram write_lat, write4k_lat, read_lat;
    uint64_t writes = 0, frees = 0, reads = 0, owner_stale = 0, peak_file = region.capacity(), live_peak = 0;
    const uint64_t warmup = cfg_u64(c, "warmup_writes"), read_every = cfg_u64(c, "read_every");

    const int nreaders = int(cfg_int(c, "readers"));
    std::vector<std::unique_ptr<Mailbox>> boxes;
    std::vector<std::thread> threads;
    for (int i = 0; i < nreaders; ++i) {
      boxes.push_back(std::make_unique<Mailbox>());
      threads.emplace_back(reader_main, path, boxes.back().get());
    }
    const uint64_t post_every = cfg_u64(c, "reader_post_every");

    auto free_blob = [&](size_t b) {
      Status s = region.free(blobs[b].id);
      if (!s) throw RunError("overflow-spill: free: " + s.to_string());
      blobs[b].live = false;
      ++frees;
    };
    // Hands idle readers a blob (the newest one half of the time: it may lie
    // beyond their mapping after growth).
    auto service_readers = [&] {
      for (auto& mb : boxes) {
        const uint64_t req = mb->req.load(std::memory_order_relaxed);
        if (mb->done.load(std::memory_order_acquire) != req) continue;
        if (req) --blobs[mb->blob].pins;
        if (live.empty()) continue;
        size_t b = ops.coin() < 0.5 ? live.back() : live[ops.pick(live.size())];
        auto loc = region.locate(blobs[b].id);
        if (!loc) throw RunError("overflow-spill: locate: " + loc.status().to_string());
        ++blobs[b].pins;
        mb->blob = b;
        mb->off = loc->first;
        mb->len = loc->second;
        mb->tag = blobs[b].tag;
        mb->req.store(req + 1, std::memory_order_release);
        mb->req.notify_one();
      }
    };
    bool short_phase = true;  // short-lived blobs are written in the fill phase only
    auto write_one = [&](uint32_t len) {
      const uint64_t tag = blobs.size();
      fill_blob(buf.data(), tag, len);
      uint64_t t = timer_start();
      auto s = region.write(buf.data(), len);
      uint64_t ns = ticks_to_ns(timer_stop() - t);
      if (!s) throw RunError("overflow-spill: write of " + std::to_string(len) + " B: " + s.status().to_string());
      write_lat.record(ns);
      if (len == 4096 && writes >= warmup) write4k_lat.record(ns);
      ++writes;
      blobs.push_back(Blob{*s, tag, len, 0, true});
      if (short_phase && ops.short_lived()) short_q.emplace_back(blobs.size() - 1, writes + ops.short_life());
      else live.push_back(blobs.size() - 1);
      while (!short_q.empty() && short_q.front().second <= writes) {
        free_blob(short_q.front().first);
        short_q.pop_front();
      }
      peak_file = std::max(peak_file, region.capacity());
      live_peak = std::max(live_peak, region.stats().live_bytes);
      if (writes % read_every == 0 && !live.empty()) {
        const Blob& bl = blobs[live[ops.pick(live.size())]];
        uint64_t tr = timer_start();
        auto v = region.read(bl.id);
        if (v) std::memcpy(buf.data(), v->data, v->size);
        read_lat.record(ticks_to_ns(timer_stop() - tr));
        if (!v) throw RunError("overflow-spill: read: " + v.status().to_string());
        owner_stale += stale_bytes(buf.data(), bl.tag, v->size) + (v->size != bl.len ? 1 : 0);
        ++reads;
      }
      if (writes % post_every == 0) service_readers();
      return uint64_t(len);
    };
    auto sample = [&](const char* phase) {
      json s = sampler.sample();
      s["phase"] = phase;
      auto st = region.stats();
      s["live_bytes"] = st.live_bytes;
      s["file_bytes"] = st.capacity;
      s["cursor_bytes"] = st.cursor;
      s["fragmentation_pct"] = st.fragmentation_pct;
      doc.add_sample(std::move(s));
    };

    const uint64_t t0 = monotonic_ns();
    const uint64_t fill = cfg_u64(c, "fill_bytes");
    while (region.stats().live_bytes < fill) write_one(ops.next_size());
    for (; !short_q.empty(); short_q.pop_front()) free_blob(short_q.front().first);
    short_phase = false;
    sample("fill");
    // Free a random fraction of the live blobs (pinned ones are skipped).
    uint64_t freed_bytes = 0;
    const size_t to_free = size_t(double(live.size()) * cfg_double(c, "free_fraction"));
    for (size_t n = 0, tries = 0; n < to_free && !live.empty() && tries < 4 * to_free + 16; ++tries) {
      size_t k = ops.pick(live.size());
      size_t b = live[k];
      if (blobs[b].pins) continue;
      freed_bytes += blobs[b].len;
      free_blob(b);
      live[k] = live.back();
      live.pop_back();
      ++n;
      if (n % post_every == 0) service_readers();
    }
    sample("free");
    // Refill as many bytes as were freed.
    for (uint64_t w = 0; w < freed_bytes;) w += write_one(ops.next_size());
    const OverflowStats end = region.stats();
    sample("refill");
    const uint64_t t_ops = monotonic_ns() - t0;

    for (auto& mb : boxes) {
      while (mb->done.load(std::memory_order_acquire) != mb->req.load(std::memory_order_relaxed)) std::this_thread::yield();
      mb->stop.store(true, std::memory_order_release);
      mb->req.fetch_add(1, std::memory_order_release);
      mb->req.notify_one();
    }
    for (auto& t : threads) t.join();
    uint64_t stale = owner_stale, remaps = 0, rreads = 0, rerrors = 0;
    for (auto& mb : boxes) {
      stale += mb->stale.load();
      remaps += mb->remaps.load();
      rreads += mb->reads.load();
      rerrors += mb->errors.load();
    }

    json& sum = doc.summary();
    sum["write_ns"] = write_lat.to_json();
    sum["read_ns"] = read_lat.to_json();
    sum["write_4k_ns"] = write4k_lat.to_json();
    sum["fragmentation_pct"] = end.fragmentation_pct;
    sum["grow_count"] = end.grow_count;
    sum["reader_remaps"] = remaps;
    sum["reader_reads"] = rreads;
    sum["reader_errors"] = rerrors;
    sum["stale_reads"] = stale;
    sum["peak_file_bytes"] = peak_file;
    sum["live_bytes_peak"] = live_peak;
    sum["live_bytes_end"] = end.live_bytes;
    sum["cursor_bytes_end"] = end.cursor - end.data_off;
    sum["ops_per_sec"] = t_ops ? double(writes + frees + reads) * 1e9 / double(t_ops) : 0.0;
    sum["rss_bytes"] = sampler.rss_bytes();
    sum["overflow_stats"] = counters_json(end);  // every OverflowStats counter (src/overflow/overflow.h)
    sum["counters"] = {{"writes", writes},           {"frees", frees},
                       {"owner_reads", reads},       {"reuse_writes", end.reuse_writes},
                       {"splits", end.splits},       {"coalesces", end.coalesces},
                       {"free_extents", end.free_extents}, {"free_bytes", end.free_bytes},
                       {"live_slots", end.live_slots}, {"freed_bytes_phase2", freed_bytes}};
    doc.set_latency("write", write_lat);
    doc.set_latency("read", read_lat);
    if (ctx.progress)
      std::fprintf(stderr,
                   "overflow-spill: %" PRIu64 " writes; write p50 %" PRIu64 " ns, 4k p50 %" PRIu64 " ns, read p50 %" PRIu64
                   " ns; fragmentation %.2f%%; grows %" PRIu64 ", reader remaps %" PRIu64 " (%" PRIu64
                   " reads), stale bytes %" PRIu64 "; peak file %.0f MiB\n",
                   writes, write_lat.percentile(0.5), write4k_lat.percentile(0.5), read_lat.percentile(0.5),
                   end.fragmentation_pct, end.grow_count, remaps, rreads, stale, double(peak_file) / 1048576.0);
    if (stale || rerrors)
      throw RunError("overflow-spill: " + std::to_string(stale) + " stale bytes read, " + std::to_string(rerrors) + " reader errors");
  }
};

Registrar reg{WorkloadInfo{"overflow-spill", "blobs in an mmap overflow region: best fit, growth, readers remapping",
                           [] { return std::make_unique<OverflowSpill>(); }}};

}  // namespace
}  // namespace znslab::harness
