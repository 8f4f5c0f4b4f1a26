// Workload "pager-churn" (issue 10; seed 004): allocates and frees pages and
// sub-pages of a file-backed Pager (src/pages/pager.h, subpage.h) with a
// lifetime mix, grows the file to `pages` allocated pages, commits every
// `commit_every` operations, then times alloc+free pairs and frees
// `final_free_fraction` of what is live.
//
// Phases: "fill" (allocate to the peak; a `short_lived_fraction` of
// allocations is freed again `short_lifetime` ops later), "churn"
// (`churn_ops` random free+alloc at the peak), "timing" (`timing_batches`
// batches of 64 alloc+free pairs of pages, then of sub-pages: batch time /
// 64, timer overhead included, like segment-scale's pin_unpin_ns), "drain"
// (free the final fraction, commit).
//
// Summary: pages_max (pages allocated in the pager at the peak, parents of
// sub-pages included), alloc_free_ns, subpage_alloc_free_ns, commit_ns
// {p50,p99,...}, metadata_bytes (superblocks + both meta areas on disk,
// the sub-page table included + working bitmap, summaries, dirty sets and
// sub-page table and index in memory), metadata_pct (of file_bytes),
// pager_metadata_bytes/_pct (the same without the sub-page table and
// index), file_bytes (st_size), space_amplification
// (file_bytes / live bytes at the end), rss_bytes, ops_per_sec (fill+churn
// ops), and counters. Only 1 page in `touch_every` is written, so a
// 2^24-page file stays sparse.
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "harness/counters.h"
#include "harness/config.h"
#include "harness/registry.h"
#include "harness/result.h"
#include "harness/sampler.h"
#include "workloads/work_dir.h"
#include "harness/timer.h"
#include "src/pages/pager.h"
#include "src/pages/pages.h"
#include "src/pages/subpage.h"

namespace znslab::harness {
namespace {

using nlohmann::json;
using namespace znslab::pages;

// The operation logic: what to allocate and free. No timing, no JSON.
class PagerChurnOps {
 public:
  PagerChurnOps(Pager& p, SubPageAllocator& s, uint64_t seed, double short_frac, uint32_t short_life,
                uint32_t touch_every)
      : p_(p), s_(s), rng_(seed), short_frac_(short_frac), short_life_(short_life), touch_every_(touch_every) {}

  // One allocation of a page (kind 0) or sub-page (kind 1); short-lived ones
  // are queued for an early free. Returns false on error (status in err).
  bool alloc(int kind, Status* err) {
    if (kind == 0) {
      auto id = p_.alloc();
      if (!id) return *err = id.status(), false;
      if (++allocs_ % touch_every_ == 0) std::memcpy(p_.get(*id), &allocs_, 8);
      if (coin() < short_frac_) short_.push_back({0, *id, ops_ + short_life_});
      else pages_.push_back(*id);
    } else {
      auto id = s_.alloc();
      if (!id) return *err = id.status(), false;
      if (++allocs_ % touch_every_ == 0) std::memcpy(s_.get(*id), &allocs_, 8);
      if (coin() < short_frac_) short_.push_back({1, *id, ops_ + short_life_});
      else subs_.push_back(*id);
    }
    ++ops_;
    return expire(err);
  }
  // Frees a random long-lived page (kind 0) or sub-page (kind 1).
  bool free_random(int kind, Status* err) {
    auto& v = kind == 0 ? pages_ : subs_;
    if (v.empty()) return true;
    size_t k = rng_() % v.size();
    Status s = kind == 0 ? p_.free(PageId(v[k])) : s_.free(v[k]);
    if (!s) return *err = s, false;
    v[k] = v.back();
    v.pop_back();
    ++ops_;
    return expire(err);
  }
  // Frees every short-lived allocation still queued.
  bool flush_short(Status* err) {
    while (!short_.empty()) {
      if (Status s = free_one(short_.front()); !s) return *err = s, false;
      short_.pop_front();
    }
    return true;
  }
  size_t long_pages() const { return pages_.size(); }
  size_t long_subs() const { return subs_.size(); }
  uint64_t ops() const { return ops_; }
  std::mt19937_64& rng() { return rng_; }

 private:
  struct Short { int kind; uint64_t id; uint64_t due; };
  double coin() { return double(rng_() >> 11) * 0x1.0p-53; }
  Status free_one(const Short& s) { return s.kind == 0 ? p_.free(PageId(s.id)) : s_.free(s.id); }
  bool expire(Status* err) {
    while (!short_.empty() && short_.front().due <= ops_) {
      if (Status s = free_one(short_.front()); !s) return *err = s, false;
      short_.pop_front();
    }
    return true;
  }

  Pager& p_;
  SubPageAllocator& s_;
  std::mt19937_64 rng_;
  double short_frac_;
  uint32_t short_life_, touch_every_;
  std::vector<uint64_t> pages_, subs_;
  std::deque<Short> short_;
  uint64_t ops_ = 0, allocs_ = 0;
};

class PagerChurn : public Workload {
 public:
  json defaults() const override {
    return json{{"workload", "pager-churn"},
                {"pages", 1048576},
                {"page_size", 4096},
                {"sub_page_size", 512},
                {"sub_pages", 262144},
                {"commit_every", 100000},
                {"sync", "commit"},
                {"initial_pages", 4096},
                {"grow_pages", 0},
                {"short_lived_fraction", 0.2},
                {"short_lifetime", 64},
                {"churn_ops", 1000000},
                {"timing_batches", 100000},
                {"final_free_fraction", 0.5},
                {"touch_every", 1024},
                {"sample_every", 250000},
                {"dir", ""},
                {"keep_files", false},
                {"seed", 1}};
  }

  void validate(const json& c) const override {
    check_int_range(c, "pages", 1, 1ll << 30);
    check_int_range(c, "page_size", 1024, 1 << 24);
    const int64_t ps = cfg_int(c, "page_size"), sps = cfg_int(c, "sub_page_size");
    if (ps & (ps - 1)) throw_key_error("page_size", "must be a power of two >= 1024");
    check_int_range(c, "sub_page_size", 1, ps / 2);
    if ((sps & (sps - 1)) || ps / sps > 64) throw_key_error("sub_page_size", "must be a power of two with page_size/sub_page_size in [2, 64]");
    check_int_range(c, "sub_pages", 0, 1ll << 32);
    check_int_range(c, "commit_every", 1, 1ll << 40);
    check_one_of(c, "sync", {"none", "commit", "each"});
    check_int_range(c, "initial_pages", 1, 1ll << 31);
    check_int_range(c, "grow_pages", 0, 1ll << 31);
    check_number_range(c, "short_lived_fraction", 0.0, 0.9);
    check_int_range(c, "short_lifetime", 1, 1 << 20);
    check_int_range(c, "churn_ops", 0, 1ll << 40);
    check_int_range(c, "timing_batches", 1, 1ll << 32);
    check_number_range(c, "final_free_fraction", 0.0, 1.0);
    check_int_range(c, "touch_every", 1, 1 << 30);
    check_int_range(c, "sample_every", 1, 1ll << 40);
    const uint64_t parents = (cfg_u64(c, "sub_pages") + uint64_t(ps / sps) - 1) / uint64_t(ps / sps);
    if (cfg_u64(c, "pages") + 2 * parents + 1024 > 0xffffffffull) throw_key_error("pages", "pages plus sub-page parents must stay below 2^32");
  }

  void run(RunContext& ctx) override {
    const json& c = ctx.config;
    const uint64_t pages = cfg_u64(c, "pages"), sub_pages = cfg_u64(c, "sub_pages");
    const uint32_t ps = uint32_t(cfg_u64(c, "page_size")), sps = uint32_t(cfg_u64(c, "sub_page_size"));
    const uint64_t per = ps / sps, parents_max = (sub_pages + per - 1) / per;
    const uint64_t commit_every = cfg_u64(c, "commit_every");
    WorkDir dir("pager-churn", cfg_str(c, "dir"), cfg_bool(c, "keep_files"));
    const std::string path = dir.path() + "/pager.pages";

    PagerOptions po;
    po.page_size = ps;
    // Room for the peak, the parents (fragmented up to 2x) and the short-lived queue.
    po.max_pages = uint32_t(pages + 2 * parents_max + cfg_u64(c, "short_lifetime") * 2 + 1024);
    po.initial_pages = uint32_t(std::min<uint64_t>(cfg_u64(c, "initial_pages"), po.max_pages));
    po.grow_pages = uint32_t(cfg_u64(c, "grow_pages"));
    po.aux_bytes = SubPageAllocator::aux_bytes_for(2 * parents_max + cfg_u64(c, "short_lifetime") + 64);
    if (!parse_sync_mode(cfg_str(c, "sync"), &po.sync)) throw ConfigError("pager-churn: bad sync");
    auto pr = Pager::open(path, po);
    if (!pr) throw RunError("pager-churn: opening " + path + ": " + pr.status().to_string());
    Pager& pager = **pr;
    auto sr = SubPageAllocator::attach(pager, sps);
    if (!sr) throw RunError("pager-churn: sub-page allocator: " + sr.status().to_string());
    SubPageAllocator& sub = **sr;
    PagerChurnOps ops(pager, sub, cfg_u64(c, "seed"), cfg_double(c, "short_lived_fraction"),
                      uint32_t(cfg_u64(c, "short_lifetime")), uint32_t(cfg_u64(c, "touch_every")));

    ResultDoc& doc = *ctx.result;
    doc.set_allocator({{"name", "pager"},
                       {"version", "1"},
                       {"options",
                        {{"page_size", ps},
                         {"sub_page_size", sps},
                         {"max_pages", pager.max_pages()},
                         {"sync", sync_mode_name(po.sync)},
                         {"aux_bytes", pager.aux_bytes()},
                         {"path", path}}}});
    doc.doc()["timer"] = timer_json();
    Sampler sampler;
    LatencyHistogram commit_lat, pair_lat, sub_pair_lat;
    Status err;
    uint64_t since_commit = 0, peak = 0;
    const uint64_t sample_every = cfg_u64(c, "sample_every");
    auto commit = [&] {
      uint64_t t = timer_start();
      Status s = pager.commit();
      commit_lat.record(ticks_to_ns(timer_stop() - t));
      if (!s) throw RunError("pager-churn: commit: " + s.to_string());
      since_commit = 0;
    };
    auto sample = [&](const char* phase) {
      json s = sampler.sample();
      s["phase"] = phase;
      s["pages_allocated"] = pager.allocated();
      s["sub_pages_live"] = sub.live();
      s["file_bytes"] = pager.stats().file_bytes;
      doc.add_sample(std::move(s));
    };
    auto step = [&](bool ok, const char* what) {
      if (!ok) throw RunError(std::string("pager-churn: ") + what + ": " + err.to_string());
      peak = std::max<uint64_t>(peak, pager.allocated());
      if (++since_commit >= commit_every) commit();
      if (ops.ops() % sample_every == 0) sample("fill");
    };

    // Fill: pages and sub-pages in proportion until both long-lived counts reach the peak.
    const uint64_t t0 = monotonic_ns();
    while (ops.long_pages() < pages || ops.long_subs() < sub_pages) {
      const bool want_page = ops.long_pages() < pages &&
                             (ops.long_subs() >= sub_pages || ops.rng()() % (pages + sub_pages) < pages);
      step(ops.alloc(want_page ? 0 : 1, &err), "fill alloc");
    }
    if (ctx.progress)
      std::fprintf(stderr, "pager-churn: fill done: %zu pages, %zu sub-pages, file %.1f MiB, %.1f s\n", ops.long_pages(),
                   ops.long_subs(), double(pager.stats().file_bytes) / 1048576.0, double(monotonic_ns() - t0) / 1e9);
    // Churn at the peak.
    const uint64_t churn = cfg_u64(c, "churn_ops");
    for (uint64_t i = 0; i < churn; ++i) {
      const int kind = ops.rng()() % (pages + sub_pages) < pages ? 0 : 1;
      step(ops.free_random(kind, &err), "churn free");
      step(ops.alloc(kind, &err), "churn alloc");
    }
    if (!ops.flush_short(&err)) throw RunError("pager-churn: " + err.to_string());
    commit();
    const uint64_t t_ops = monotonic_ns() - t0;
    const uint64_t n_ops = ops.ops();
    peak = std::max<uint64_t>(peak, pager.allocated());
    sample("peak");

    // Timing: batches of 64 alloc+free pairs at the peak state.
    const uint64_t batches = cfg_u64(c, "timing_batches");
    uint64_t timing_errors = 0;
    for (uint64_t b = 0; b < batches; ++b) {
      uint64_t t = timer_start();
      for (int j = 0; j < 64; ++j) {
        auto id = pager.alloc();
        if (!id || !pager.free(*id)) ++timing_errors;
      }
      pair_lat.record((ticks_to_ns(timer_stop() - t) + 32) / 64);
    }
    for (uint64_t b = 0; b < batches; ++b) {
      uint64_t t = timer_start();
      for (int j = 0; j < 64; ++j) {
        auto id = sub.alloc();
        if (!id || !sub.free(*id)) ++timing_errors;
      }
      sub_pair_lat.record((ticks_to_ns(timer_stop() - t) + 32) / 64);
    }
    if (timing_errors) throw RunError("pager-churn: " + std::to_string(timing_errors) + " timed alloc/free pairs failed");

    // Drain: free the final fraction of what is live, commit.
    const double ff = cfg_double(c, "final_free_fraction");
    for (uint64_t i = 0, n = uint64_t(double(ops.long_pages()) * ff); i < n; ++i)
      if (!ops.free_random(0, &err)) throw RunError("pager-churn: drain: " + err.to_string());
    for (uint64_t i = 0, n = uint64_t(double(ops.long_subs()) * ff); i < n; ++i)
      if (!ops.free_random(1, &err)) throw RunError("pager-churn: drain: " + err.to_string());
    commit();
    sample("end");

    const PagerStats st = pager.stats();
    const uint64_t sub_mem = sub.slot_capacity() * 4 + (sub.parents() + 64) * 8;
    const uint64_t metadata = st.metadata_file_bytes + st.metadata_mem_bytes + sub_mem;
    auto fsz = file_size_of(path);
    const uint64_t whole_pages = pager.allocated() - sub.parents();
    const uint64_t live_bytes = whole_pages * ps + sub.live() * sps;
    json& sum = doc.summary();
    sum["pages_max"] = peak;
    sum["alloc_free_ns"] = pair_lat.to_json();
    sum["subpage_alloc_free_ns"] = sub_pair_lat.to_json();
    sum["commit_ns"] = commit_lat.to_json();
    sum["metadata_bytes"] = metadata;
    sum["metadata_pct"] = fsz ? 100.0 * double(metadata) / double(fsz) : 0.0;
    // The page allocation map alone: without the sub-page table (3 aux copies:
    // two on disk, one in memory) and the sub-page allocator's memory.
    const uint64_t pager_meta = metadata - 3 * pager.aux_bytes() - sub_mem;
    sum["pager_metadata_bytes"] = pager_meta;
    sum["pager_metadata_pct"] = fsz ? 100.0 * double(pager_meta) / double(fsz) : 0.0;
    sum["file_bytes"] = fsz;
    sum["live_bytes"] = live_bytes;
    sum["space_amplification"] = live_bytes ? double(fsz) / double(live_bytes) : 0.0;
    sum["rss_bytes"] = sampler.rss_bytes();
    sum["ops_per_sec"] = t_ops ? double(n_ops) * 1e9 / double(t_ops) : 0.0;
    sum["pager_stats"] = counters_json(st);  // every PagerStats counter (src/pages/pager.h)
    sum["counters"] = {{"commits", st.commits},
                       {"grows", st.grows},
                       {"meta_chunks_written", st.meta_chunks_written},
                       {"page_count", st.page_count},
                       {"pages_allocated", st.allocated},
                       {"sub_pages_live", sub.live()},
                       {"sub_page_parents", sub.parents()},
                       {"ops", n_ops}};
    doc.set_latency("alloc_free", pair_lat);
    doc.set_latency("subpage_alloc_free", sub_pair_lat);
    doc.set_latency("commit", commit_lat);
    if (ctx.progress)
      std::fprintf(stderr,
                   "pager-churn: peak %" PRIu64 " pages, file %.2f GiB, metadata %.4f%%; alloc+free p50 %" PRIu64
                   " ns, sub-page p50 %" PRIu64 " ns, commit p50 %" PRIu64 " ns; space amplification %.2f\n",
                   peak, double(fsz) / double(1ull << 30), sum["metadata_pct"].get<double>(), pair_lat.percentile(0.5),
                   sub_pair_lat.percentile(0.5), commit_lat.percentile(0.5), sum["space_amplification"].get<double>());
  }

  static uint64_t file_size_of(const std::string& path) {
    std::error_code ec;
    auto n = std::filesystem::file_size(path, ec);
    return ec ? 0 : uint64_t(n);
  }
};

Registrar reg{WorkloadInfo{"pager-churn", "pages and sub-pages of a file-backed pager: alloc/free, growth, commits",
                           [] { return std::make_unique<PagerChurn>(); }}};

}  // namespace
}  // namespace znslab::harness
