// The runner of phased, single-owner workloads over a file-backed allocator
// (pager-churn, overflow-spill; DESIGN.md "The data path": one runner,
// generators apart). A generator (workloads/pager_churn_gen.h,
// workloads/overflow_spill_gen.h) yields its operations phase by phase
// through an executor; this runner owns everything else:
//   - the scratch folder (harness/scratch_dir.h) and the allocator under test
//     (a Pager with its SubPageAllocator; an OverflowRegion), built from the
//     options below;
//   - named phases, named latency histograms (single timed operations and
//     timed batches), samples tagged with their phase, progress lines;
//   - reader threads (ReaderPool: one mailbox per thread; the owner posts a
//     job, the reader runs it through its own mapping and reports back);
//   - the summary (docs/pages.md "pager-churn", docs/overflow.md
//     "overflow-spill") and the result document.
// PhaseRun and ReaderPool are the shared core; run_pager_phases
// (harness/phase_pager.cpp) and run_overflow_phases
// (harness/phase_overflow.cpp) put an allocator under them. Each plan is
// one virtual call (the whole stream); executor calls are out of line
// (pager and region operations take tens of ns to microseconds).
// Thread-safety: a run is single-threaded except for the reader threads,
// which touch only their mailbox; run_* are not reentrant.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "harness/registry.h"
#include "harness/result.h"
#include "harness/sampler.h"
#include "harness/timer.h"
#include "src/common/status.h"
#include "src/overflow/overflow.h"
#include "src/pages/pager.h"

namespace znslab::harness {

// ---- the core ---------------------------------------------------------------

// Measurement state of one phased run: histograms by name, the current
// phase, samples, progress. Owner thread only.
class PhaseRun {
 public:
  // Sets the result document's timer block. `experiment` prefixes
  // progress lines and error messages ("pager-churn").
  PhaseRun(RunContext& ctx, std::string experiment);

  const std::string& experiment() const noexcept { return x_; }
  ResultDoc& doc() noexcept { return *ctx_.result; }
  Sampler& sampler() noexcept { return sampler_; }
  bool progress_on() const noexcept { return ctx_.progress; }

  // The histogram `name` (ns), created empty on first use; the reference
  // stays valid for the run.
  LatencyHistogram& latency(const std::string& name) { return hist_[name]; }
  // Times one call of f() (timer overhead included) into h; returns f()'s value.
  template <class F>
  decltype(auto) timed(LatencyHistogram& h, F&& f) {
    struct Rec {
      LatencyHistogram& h;
      uint64_t t = timer_start();
      ~Rec() { h.record(ticks_to_ns(timer_stop() - t)); }
    } rec{h};
    return f();
  }
  // Times n calls f(j), j = 0..n-1, as one window and records the rounded
  // mean (window + n/2) / n ns: for operations shorter than the timer's
  // resolution (timer overhead included once per window).
  template <class F>
  void timed_batch(LatencyHistogram& h, unsigned n, F&& f) {
    const uint64_t t = timer_start();
    for (unsigned j = 0; j < n; ++j) f(j);
    h.record((ticks_to_ns(timer_stop() - t) + n / 2) / n);
  }

  // The phase later samples carry (a static string: "fill", "peak", ...).
  void phase(const char* name) noexcept { phase_ = name; }
  const char* phase() const noexcept { return phase_; }
  // Appends one sample: the process sample (harness/sampler.h), "phase",
  // then `fields` (an object).
  void sample(const char* phase, const nlohmann::json& fields);
  // Time spent in sample() so far (ns): runners subtract what falls inside
  // their timed span (a process sample reads smaps_rollup, whose page-table
  // walk grows with RSS).
  uint64_t sampling_ns() const noexcept { return sampling_ns_; }
  // One stderr line "<experiment>: <text>" when progress is on.
  void progress(const char* fmt, ...) const __attribute__((format(printf, 2, 3)));
  // Throws RunError "<experiment>: <what>: <status>".
  [[noreturn]] void fail(const std::string& what, const Status& s) const;
  [[noreturn]] void fail(const std::string& what) const;
  // Copies histogram `name` to the result's latency_ns.<name>.
  void publish_latency(const std::string& name) { doc().set_latency(name, hist_[name]); }

 private:
  RunContext& ctx_;
  std::string x_;
  Sampler sampler_;
  uint64_t sampling_ns_ = 0;
  std::map<std::string, LatencyHistogram> hist_;  // node-based: references stay valid
  const char* phase_ = "";
};

// One job for a reader thread: a byte range and the tag its contents derive from.
struct ReaderJob {
  uint64_t off = 0, len = 0, tag = 0;
};

// Reader threads owned by the runner, one mailbox each. The owner posts a
// job to an idle reader; the reader runs its handler on it and marks it
// done. The owner's cookie (e.g. the pinned blob) stays with the mailbox
// until the next post. Owner-side calls: owner thread only.
class ReaderPool {
 public:
  using Handler = std::function<void(const ReaderJob&)>;
  ReaderPool() = default;
  ReaderPool(const ReaderPool&) = delete;
  ReaderPool& operator=(const ReaderPool&) = delete;
  ~ReaderPool() { stop(); }

  // Starts n threads; thread i first calls make(i) (in the thread: opens
  // its own mapping) and then runs the handler it returned for every job
  // posted to it (an empty handler completes jobs without running them).
  void start(int n, std::function<Handler(int)> make);
  int size() const noexcept { return int(boxes_.size()); }
  // Reader i finished its last job (true before the first).
  bool idle(int i) const noexcept;
  // A job was posted to reader i before; cookie(i) is the owner's cookie of it.
  bool has_job(int i) const noexcept;
  uint64_t cookie(int i) const noexcept { return boxes_[size_t(i)]->cookie; }
  // Posts a job to idle reader i.
  void post(int i, const ReaderJob& j, uint64_t cookie);
  // Waits until every reader is idle, stops and joins them (idempotent).
  void stop();

 private:
  struct Box {
    alignas(64) std::atomic<uint64_t> req{0};
    ReaderJob job;
    uint64_t cookie = 0;  // owner side only
    alignas(64) std::atomic<uint64_t> done{0};
    std::atomic<bool> stop{false};
  };
  static void loop(Box* b, Handler h);
  std::vector<std::unique_ptr<Box>> boxes_;
  std::vector<std::thread> threads_;
};

// ---- pager target (pager-churn) -------------------------------------------------

class PagerExecState;

// The executor a pager generator calls. Throws RunError when the pager or
// sub-page allocator refuses an operation. kind: 0 = page, 1 = sub-page.
class PagerExec {
 public:
  explicit PagerExec(PagerExecState& s) : s_(s) {}
  void phase(const char* name);
  uint64_t alloc(int kind);                         // returns the new id
  void touch(int kind, uint64_t id, uint64_t word); // writes 8 bytes at its start
  void free(int kind, uint64_t id);
  // One operation of the fill/churn stream is done (`ops` so far): the
  // runner tracks the peak, commits every commit_every steps and samples
  // every sample_every ops.
  void step(uint64_t ops);
  // The fill reached the peak with these long-lived counts (progress line).
  void filled(uint64_t long_pages, uint64_t long_subs);
  void commit();  // timed: latency "commit"
  // The fill+churn stream ended after `ops` operations (ops_per_sec window
  // closes; sample "peak").
  void at_peak(uint64_t ops);
  // 64 alloc+free pairs of `kind`, timed as one batch.
  void pair_batch(int kind);
  void end();     // sample "end"

 private:
  PagerExecState& s_;
};

class PagerPlan {
 public:
  virtual ~PagerPlan() = default;
  virtual void run(PagerExec& ex) const = 0;
};

template <class Gen>
class PagerPlanOf final : public PagerPlan {
 public:
  explicit PagerPlanOf(const Gen& g) : g_(g) {}
  void run(PagerExec& ex) const override { g_.run(ex); }

 private:
  const Gen& g_;
};

struct PagerRunOptions {
  std::string experiment = "pager-churn";
  pages::PagerOptions pager;      // max_pages, aux_bytes, ... (file name: <dir>/pager.pages)
  uint32_t sub_page_size = 512;   // bytes
  uint64_t commit_every = 1;      // steps between commits
  uint64_t sample_every = 1;      // ops between samples
  std::string dir;                // "" = a new temp folder
  bool keep_files = false;
};

// Runs the plan and fills ctx.result. Throws RunError (open, any refused
// operation, failed timed pairs).
void run_pager_phases(RunContext& ctx, const PagerPlan& plan, const PagerRunOptions& opt);

// ---- overflow-region target (overflow-spill) -------------------------------------

class OverflowExecState;

// The executor an overflow generator calls. Blobs are numbered in write
// order (the number is the tag their contents derive from: 64-bit word at
// byte i = tag * 0x9E3779B97F4A7C15 + i). Throws RunError when the region
// refuses an operation.
class OverflowExec {
 public:
  explicit OverflowExec(OverflowExecState& s) : s_(s) {}
  size_t write(uint32_t len);  // timed: "write" (and write_4k after the warm-up); returns the blob
  // After a write and the frees it caused: the peak figures are taken here.
  void observe();
  void free(size_t blob);
  void read(size_t blob);      // owner read, timed ("read") and checked
  // Handed to a reader that may still be reading it (must not be freed).
  bool pinned(size_t blob) const;
  uint64_t live_bytes() const;  // the region's live bytes now
  // Gives every idle reader the blob choose() returns (-1: none), after
  // releasing the one it had.
  template <class Choose>
  void serve_readers(Choose&& choose) {
    serve(+[](void* c) -> int64_t { return (*static_cast<Choose*>(c))(); }, &choose);
  }
  void fill_done();                       // sample "fill"
  void free_done(uint64_t freed_bytes);   // sample "free"
  void refill_done();                     // end figures, sample "refill", ops window closes

 private:
  void serve(int64_t (*choose)(void*), void* arg);
  OverflowExecState& s_;
};

class OverflowPlan {
 public:
  virtual ~OverflowPlan() = default;
  virtual void run(OverflowExec& ex) const = 0;
};

template <class Gen>
class OverflowPlanOf final : public OverflowPlan {
 public:
  explicit OverflowPlanOf(const Gen& g) : g_(g) {}
  void run(OverflowExec& ex) const override { g_.run(ex); }

 private:
  const Gen& g_;
};

struct OverflowRunOptions {
  std::string experiment = "overflow-spill";
  overflow::OverflowOptions region;  // file name: <dir>/overflow.region
  std::string advice = "normal";     // as named in the config (recorded)
  int readers = 0;                   // reader threads, each with its own OverflowReader
  uint64_t warmup_writes = 0;        // writes before write_4k is recorded
  uint32_t max_blob_bytes = 1;       // buffer size
  std::string dir;                   // "" = a new temp folder
  bool keep_files = false;
};

// Runs the plan and fills ctx.result. Throws RunError (open, a refused
// operation, stale bytes read, reader errors).
void run_overflow_phases(RunContext& ctx, const OverflowPlan& plan, const OverflowRunOptions& opt);

}  // namespace znslab::harness
