// The phase runner's pager target: run_pager_phases (harness/phase_runner.h).
// Summary keys: docs/pages.md "Workload pager-churn".
#include <cinttypes>
#include <cstring>
#include <filesystem>

#include "harness/counters.h"
#include "harness/phase_runner.h"
#include "harness/scratch_dir.h"
#include "src/pages/subpage.h"

namespace znslab::harness {

using nlohmann::json;
using namespace znslab::pages;

class PagerExecState {
 public:
  PhaseRun* run = nullptr;
  const PagerRunOptions* opt = nullptr;
  Pager* pager = nullptr;
  SubPageAllocator* sub = nullptr;
  LatencyHistogram *commit_lat = nullptr, *pair_lat = nullptr, *sub_pair_lat = nullptr;
  uint64_t since_commit = 0, peak = 0, t0 = 0, t_ops = 0, n_ops = 0, timing_errors = 0;
  uint64_t sampled0 = 0, t_sampling = 0;  // run->sampling_ns() at t0; samples inside t_ops

  void sample(const char* phase) {
    run->sample(phase, {{"pages_allocated", pager->allocated()},
                        {"sub_pages_live", sub->live()},
                        {"file_bytes", pager->stats().file_bytes}});
  }
};

void PagerExec::phase(const char* name) { s_.run->phase(name); }

uint64_t PagerExec::alloc(int kind) {
  if (kind == 0) {
    auto id = s_.pager->alloc();
    if (!id) s_.run->fail(std::string(s_.run->phase()) + " alloc", id.status());
    return *id;
  }
  auto id = s_.sub->alloc();
  if (!id) s_.run->fail(std::string(s_.run->phase()) + " sub-page alloc", id.status());
  return *id;
}

void PagerExec::touch(int kind, uint64_t id, uint64_t word) {
  std::memcpy(kind == 0 ? s_.pager->get(PageId(id)) : s_.sub->get(id), &word, 8);
}

void PagerExec::free(int kind, uint64_t id) {
  Status s = kind == 0 ? s_.pager->free(PageId(id)) : s_.sub->free(id);
  if (!s) s_.run->fail(std::string(s_.run->phase()) + " free", s);
}

void PagerExec::step(uint64_t ops) {
  PagerExecState& s = s_;
  s.peak = std::max<uint64_t>(s.peak, s.pager->allocated());
  if (++s.since_commit >= s.opt->commit_every) commit();
  // Churn samples keep the label "fill" (the workload's samples before the runner).
  if (ops % s.opt->sample_every == 0) s.sample("fill");
}

void PagerExec::filled(uint64_t long_pages, uint64_t long_subs) {
  s_.run->progress("fill done: %" PRIu64 " pages, %" PRIu64 " sub-pages, file %.1f MiB, %.1f s", long_pages, long_subs,
                   double(s_.pager->stats().file_bytes) / 1048576.0, double(monotonic_ns() - s_.t0) / 1e9);
}

void PagerExec::commit() {
  Status st = s_.run->timed(*s_.commit_lat, [&] { return s_.pager->commit(); });
  if (!st) s_.run->fail("commit", st);
  s_.since_commit = 0;
}

void PagerExec::at_peak(uint64_t ops) {
  PagerExecState& s = s_;
  // The operations' time, without the samples taken between them.
  s.t_sampling = s.run->sampling_ns() - s.sampled0;
  s.t_ops = monotonic_ns() - s.t0;
  s.t_ops = s.t_ops > s.t_sampling ? s.t_ops - s.t_sampling : 0;
  s.n_ops = ops;
  s.peak = std::max<uint64_t>(s.peak, s.pager->allocated());
  s.sample("peak");
}

void PagerExec::pair_batch(int kind) {
  PagerExecState& s = s_;
  if (kind == 0) {
    s.run->timed_batch(*s.pair_lat, 64, [&](unsigned) {
      auto id = s.pager->alloc();
      if (!id || !s.pager->free(*id)) ++s.timing_errors;
    });
  } else {
    s.run->timed_batch(*s.sub_pair_lat, 64, [&](unsigned) {
      auto id = s.sub->alloc();
      if (!id || !s.sub->free(*id)) ++s.timing_errors;
    });
  }
}

void PagerExec::end() { s_.sample("end"); }

void run_pager_phases(RunContext& ctx, const PagerPlan& plan, const PagerRunOptions& opt) {
  const std::string& X = opt.experiment;
  ScratchDir dir(X, opt.dir, opt.keep_files);
  const std::string path = dir.path() + "/pager.pages";
  const PagerOptions& po = opt.pager;
  auto pr = Pager::open(path, po);
  if (!pr) throw RunError(X + ": opening " + path + ": " + pr.status().to_string());
  Pager& pager = **pr;
  auto sr = SubPageAllocator::attach(pager, opt.sub_page_size);
  if (!sr) throw RunError(X + ": sub-page allocator: " + sr.status().to_string());
  SubPageAllocator& sub = **sr;

  PhaseRun run(ctx, X);
  ResultDoc& doc = run.doc();
  doc.set_allocator({{"name", "pager"},
                     {"version", "1"},
                     {"options",
                      {{"page_size", po.page_size},
                       {"sub_page_size", opt.sub_page_size},
                       {"max_pages", pager.max_pages()},
                       {"sync", sync_mode_name(po.sync)},
                       {"aux_bytes", pager.aux_bytes()},
                       {"path", path}}}});
  PagerExecState s;
  s.run = &run;
  s.opt = &opt;
  s.pager = &pager;
  s.sub = &sub;
  s.commit_lat = &run.latency("commit");
  s.pair_lat = &run.latency("alloc_free");
  s.sub_pair_lat = &run.latency("subpage_alloc_free");
  PagerExec ex(s);
  s.sampled0 = run.sampling_ns();
  s.t0 = monotonic_ns();
  plan.run(ex);
  if (s.timing_errors) run.fail(std::to_string(s.timing_errors) + " timed alloc/free pairs failed");

  const PagerStats st = pager.stats();
  const uint64_t sub_mem = sub.slot_capacity() * 4 + (sub.parents() + 64) * 8;
  const uint64_t metadata = st.metadata_file_bytes + st.metadata_mem_bytes + sub_mem;
  std::error_code ec;
  const auto fsz_raw = std::filesystem::file_size(path, ec);
  const uint64_t fsz = ec ? 0 : uint64_t(fsz_raw);
  const uint64_t whole_pages = pager.allocated() - sub.parents();
  const uint64_t live_bytes = whole_pages * po.page_size + sub.live() * opt.sub_page_size;
  json& sum = doc.summary();
  sum["pages_max"] = s.peak;
  sum["alloc_free_ns"] = s.pair_lat->to_json();
  sum["subpage_alloc_free_ns"] = s.sub_pair_lat->to_json();
  sum["commit_ns"] = s.commit_lat->to_json();
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
  sum["rss_bytes"] = run.sampler().rss_bytes();
  sum["ops_per_sec"] = s.t_ops ? double(s.n_ops) * 1e9 / double(s.t_ops) : 0.0;
  sum["ops_ns"] = s.t_ops;
  sum["sampling_ns"] = s.t_sampling;
  sum["pager_stats"] = counters_json(st);  // every PagerStats counter (src/pages/pager.h)
  sum["counters"] = {{"commits", st.commits},
                     {"grows", st.grows},
                     {"meta_chunks_written", st.meta_chunks_written},
                     {"page_count", st.page_count},
                     {"pages_allocated", st.allocated},
                     {"sub_pages_live", sub.live()},
                     {"sub_page_parents", sub.parents()},
                     {"ops", s.n_ops}};
  run.publish_latency("alloc_free");
  run.publish_latency("subpage_alloc_free");
  run.publish_latency("commit");
  run.progress("peak %" PRIu64 " pages, file %.2f GiB, metadata %.4f%%; alloc+free p50 %" PRIu64
               " ns, sub-page p50 %" PRIu64 " ns, commit p50 %" PRIu64 " ns; space amplification %.2f",
               s.peak, double(fsz) / double(1ull << 30), sum["metadata_pct"].get<double>(), s.pair_lat->percentile(0.5),
               s.sub_pair_lat->percentile(0.5), s.commit_lat->percentile(0.5),
               sum["space_amplification"].get<double>());
}

}  // namespace znslab::harness
