// Workload "trace": replays an allocation trace (docs/trace.md) on any
// allocator through the one runner (issue 12).
//
// The plan (src/trace/replay_plan.h) splits the trace per recorded thread
// and decides each object's placement under `epoch_policy`. TraceReplayer
// below executes it: one replay thread per recorded thread, each in its
// recorded order; a free (or realloc) of an object created by another
// thread waits until that allocation was replayed; `timing` asap runs
// back to back, `recorded` waits for each op's trace time.
// Operations: allocations go through the allocator adapter; on
// temporal-slab, objects above 768 B or aligned above 16 B go to the
// fallback (glibc malloc of this process) and are counted (fallback_ops,
// fallback_bytes). realloc: on peers the process's realloc (their own); on
// temporal-slab allocate + copy + free. calloc is an allocation (touched
// like the others). On peers and glibc an aligned allocation (above 16 B)
// is replayed with aligned_alloc, which their preloaded library serves.
// `touch`: pages = write one byte per 4 KiB of each new object (its pages
// become resident, as the program's writes made them), full = memset,
// none. Epochs (temporal-slab, policy != none): the long-lived epoch 0 is
// never closed; window w uses ring slot 1 + w % 15, opened on its first
// allocation and closed once every replay thread has passed the window.
// After the replay every object still live is freed (the drain), every
// opened epoch closed, and the post_drain sample taken.
// Samples: "start" (trace loaded, before the first op), "periodic" every
// sample_ms, "end" (last op), "post_drain".
#include <dlfcn.h>
#include <sched.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <malloc.h>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "harness/allocators.h"
#include "harness/config.h"
#include "harness/registry.h"
#include "harness/result.h"
#include "harness/sampler.h"
#include "src/trace/replay_plan.h"
#include "src/trace/trace_format.h"

namespace znslab::harness {
namespace {

using nlohmann::json;
using trace::Op;
using trace::Placement;
using trace::ReplayOp;
using trace::ReplayPlan;

enum class Touch { kNone, kPages, kFull };

// Returns the memory freed after loading the trace to the OS, with whichever
// allocator serves this process (glibc malloc_trim, jemalloc's purge of all
// arenas, mimalloc's mi_collect, tcmalloc's ReleaseFreeMemory), so that the
// loading phase does not inflate the baseline of allocators that retain
// freed memory. Cold; called once before the baseline sample.
void release_loading_memory() {
  malloc_trim(0);
  using mallctl_fn = int (*)(const char*, void*, size_t*, void*, size_t);
  if (auto f = reinterpret_cast<mallctl_fn>(dlsym(RTLD_DEFAULT, "mallctl")))
    f("arena.4096.purge", nullptr, nullptr, nullptr, 0);  // 4096 = MALLCTL_ARENAS_ALL
  if (auto f = reinterpret_cast<void (*)(bool)>(dlsym(RTLD_DEFAULT, "mi_collect"))) f(true);
  if (auto f = reinterpret_cast<void (*)()>(dlsym(RTLD_DEFAULT, "MallocExtension_ReleaseFreeMemory"))) f();
}

// Executes a ReplayPlan on one allocator. Knows nothing of sampling or JSON.
class TraceReplayer {
 public:
  struct Counters {
    std::atomic<uint64_t> ops{0}, skipped{0}, fallback_ops{0}, fallback_bytes{0};
    std::atomic<uint64_t> cross_waits{0}, epoch_fallbacks{0}, forced_closes{0}, epochs_closed{0};
  };

  TraceReplayer(const ReplayPlan& plan, AllocatorAdapter& alloc, bool use_epochs, bool recorded, Touch touch)
      : plan_(plan), a_(alloc), slab_(alloc.has_epochs()), epochs_(use_epochs && alloc.has_epochs()),
        recorded_(recorded), touch_(touch), objs_(plan.max_obj + 1),
        state_(new std::atomic<uint8_t>[plan.max_obj + 1]), cur_window_(plan.threads.size()) {
    for (uint64_t i = 0; i <= plan.max_obj; ++i) state_[i].store(kNone, std::memory_order_relaxed);
    for (auto& w : cur_window_) w.store(0);
    for (auto& s : slot_window_) s = -1;
  }

  // Runs every thread to completion. Throws RunError when an allocator
  // refuses an epoch call.
  void run() {
    if (slab_) a_.epoch_open(trace::kLongEpoch, "long-lived");
    t0_ = monotonic_ns();
    std::vector<std::thread> th;
    for (size_t i = 0; i < plan_.threads.size(); ++i) th.emplace_back([this, i] { thread_main(i); });
    for (auto& t : th) t.join();
    if (!error_.empty()) throw RunError("trace replay: " + error_);
  }
  // Frees every object still live and closes every epoch this replay opened.
  void drain() {
    for (uint64_t id = 1; id <= plan_.max_obj; ++id) release(uint32_t(id));
    if (epochs_)
      for (uint32_t s = 0; s < 16; ++s)
        if (slot_window_[s] >= 0 && slot_window_[s] >= int64_t(closed_upto_.load())) a_.epoch_close(s);
    if (slab_) a_.epoch_close(trace::kLongEpoch);
  }
  const Counters& counters() const { return c_; }

 private:
  // kAligned: a peer's aligned allocation (aligned_alloc, freed with free).
  enum : uint8_t { kNone = 0, kAdapter = 1, kFallback = 2, kDone = 3, kAligned = 4 };

  void thread_main(size_t ti) {
    const std::vector<ReplayOp>& ops = plan_.threads[ti];
    uint64_t my_window = 0;
    for (const ReplayOp& r : ops) {
      if (!error_.empty()) return;
      if (recorded_) wait_until(t0_ + r.ts_ns);
      if (epochs_ && r.window > my_window) {
        my_window = r.window;
        cur_window_[ti].store(my_window);
        maybe_close();
      }
      try {
        step(r);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> g(mu_);
        if (error_.empty()) error_ = e.what();
        return;
      }
      c_.ops.fetch_add(1, std::memory_order_relaxed);
    }
    cur_window_[ti].store(UINT64_MAX);
    if (epochs_) maybe_close();
  }

  void step(const ReplayOp& r) {
    switch (Op(r.op)) {
      case Op::kFree:
        wait_created(r.obj);
        release(r.obj);
        return;
      case Op::kUsableSize: {
        wait_created(r.obj);
        volatile size_t u = usable(r.obj);
        (void)u;
        return;
      }
      case Op::kRealloc:
        if (r.old_obj) {
          wait_created(r.old_obj);
          if (!slab_ && r.obj) {  // the peer's own realloc
            Obj& o = objs_[r.old_obj];
            void* p = ::realloc(o.ptr, r.size ? r.size : 1);
            if (!p) {
              c_.skipped.fetch_add(1);
              return;
            }
            const uint64_t old_size = o.requested;
            Obj& n = objs_[r.obj];
            n.ptr = p;
            n.requested = uint32_t(std::min<uint64_t>(r.size, UINT32_MAX));
            state_[r.old_obj].store(kDone, std::memory_order_relaxed);
            if (r.size > old_size) touch(static_cast<char*>(p) + old_size, r.size - old_size);
            state_[r.obj].store(kAdapter, std::memory_order_release);
            return;
          }
          if (r.obj) {
            // Published only once its bytes are copied: another thread may
            // free or realloc it as soon as it sees it created.
            const uint8_t st = create(r, /*publish=*/false);
            if (st != kNone) {
              Obj& o = objs_[r.old_obj];
              const uint64_t n = std::min<uint64_t>(o.requested, r.size);
              if (n) std::memcpy(objs_[r.obj].ptr, o.ptr, n);
              state_[r.obj].store(st, std::memory_order_release);
            }
          }
          release(r.old_obj);
          return;
        }
        [[fallthrough]];
      default:
        if (r.obj) {
          create(r);
        } else {  // a failed allocation in the trace: attempt it, give it back
          Obj tmp;
          if (a_.allocate(std::min<uint64_t>(r.size ? r.size : 1, 768), trace::kLongEpoch, tmp)) a_.release(tmp);
        }
    }
  }

  // Allocates and touches object r.obj; with `publish`, marks it created
  // (release) for the threads that wait on it. Returns its state, kNone
  // when the allocation failed (counted in skipped).
  uint8_t create(const ReplayOp& r, bool publish = true) {
    Obj& o = objs_[r.obj];
    const size_t n = r.size ? r.size : 1;
    uint8_t st = kAdapter;
    if (!slab_ && r.align_log2 > 4) {
      // The process's allocator is the peer (LD_PRELOAD): its aligned_alloc.
      const size_t al = size_t(1) << r.align_log2;
      o.ptr = std::aligned_alloc(al, (n + al - 1) / al * al);
      o.handle = 0;
      st = kAligned;
      if (!o.ptr) {
        c_.skipped.fetch_add(1);
        return kNone;
      }
    } else if (slab_ && r.placement == Placement::kFallback) {
      o.ptr = std::malloc(n);
      o.handle = 0;
      st = kFallback;
      c_.fallback_ops.fetch_add(1, std::memory_order_relaxed);
      c_.fallback_bytes.fetch_add(r.size, std::memory_order_relaxed);
      if (!o.ptr) {
        c_.skipped.fetch_add(1);
        return kNone;
      }
    } else {
      uint32_t epoch = trace::kLongEpoch;
      if (epochs_ && r.placement == Placement::kWindowEpoch) epoch = window_epoch(r.window);
      if (!a_.allocate(n, epoch, o)) {
        if (epoch == trace::kLongEpoch || !a_.allocate(n, trace::kLongEpoch, o)) {
          c_.skipped.fetch_add(1);
          return kNone;
        }
        c_.epoch_fallbacks.fetch_add(1, std::memory_order_relaxed);
      }
    }
    o.requested = uint32_t(std::min<uint64_t>(r.size, UINT32_MAX));
    touch(static_cast<char*>(o.ptr), r.size);
    if (publish) state_[r.obj].store(st, std::memory_order_release);
    return st;
  }

  void release(uint32_t id) {
    const uint8_t st = state_[id].load(std::memory_order_acquire);
    if (st == kAdapter) {
      a_.release(objs_[id]);
    } else if (st == kFallback || st == kAligned) {
      std::free(objs_[id].ptr);
    } else {
      return;
    }
    state_[id].store(kDone, std::memory_order_relaxed);
  }

  size_t usable(uint32_t id) {
    const uint8_t st = state_[id].load(std::memory_order_acquire);
    if (st == kAdapter) return a_.usable_size(objs_[id]);
    if (st == kFallback || st == kAligned) return malloc_usable_size(objs_[id].ptr);
    return 0;
  }

  void touch(char* p, uint64_t n) {
    if (!p || n == 0) return;
    if (touch_ == Touch::kFull) {
      std::memset(p, 0x5a, n);
    } else if (touch_ == Touch::kPages) {
      for (uint64_t off = 0; off < n; off += 4096) p[off] = 1;
    }
  }

  void wait_created(uint32_t id) {
    if (state_[id].load(std::memory_order_acquire) != kNone) return;
    c_.cross_waits.fetch_add(1, std::memory_order_relaxed);
    for (unsigned spins = 0; state_[id].load(std::memory_order_acquire) == kNone; ++spins) {
      if (!error_.empty()) throw RunError("aborted");
      if (spins > 64) sched_yield();
    }
  }

  static void wait_until(uint64_t t) {
    for (;;) {
      const uint64_t now = monotonic_ns();
      if (now >= t) return;
      if (t - now > 200'000) {
        timespec ts{0, long(t - now - 100'000)};
        nanosleep(&ts, nullptr);
      }
    }
  }

  // The ring slot of window w, (re)opened for it; the long-lived epoch when
  // the slot was already recycled for a later window (a lagging thread).
  uint32_t window_epoch(uint32_t w) {
    const uint32_t slot = trace::window_slot(w);
    if (slot_window_[slot] == int64_t(w)) return slot;
    std::lock_guard<std::mutex> g(mu_);
    const int64_t cur = slot_window_[slot];
    if (cur == int64_t(w)) return slot;
    if (cur > int64_t(w)) {
      c_.epoch_fallbacks.fetch_add(1, std::memory_order_relaxed);
      return trace::kLongEpoch;
    }
    if (cur >= 0 && cur >= int64_t(closed_upto_.load())) {  // recycled before every thread passed it
      a_.epoch_close(slot);
      c_.forced_closes.fetch_add(1, std::memory_order_relaxed);
    }
    a_.epoch_open(slot, "window " + std::to_string(w));
    slot_window_[slot] = w;
    return slot;
  }

  // Closes every window all threads have passed.
  void maybe_close() {
    uint64_t m = UINT64_MAX;
    for (auto& w : cur_window_) m = std::min(m, w.load());
    if (m == UINT64_MAX) m = plan_.windows;
    if (m <= closed_upto_.load()) return;
    std::lock_guard<std::mutex> g(mu_);
    try {
      for (uint64_t x = closed_upto_.load(); x < m; ++x) {
        const uint32_t slot = trace::window_slot(x);
        if (slot_window_[slot] == int64_t(x)) {
          a_.epoch_close(slot);
          c_.epochs_closed.fetch_add(1, std::memory_order_relaxed);
        }
        closed_upto_.store(x + 1);
      }
    } catch (const std::exception& e) {
      if (error_.empty()) error_ = e.what();
    }
  }

  const ReplayPlan& plan_;
  AllocatorAdapter& a_;
  const bool slab_, epochs_, recorded_;
  const Touch touch_;
  std::vector<Obj> objs_;
  std::unique_ptr<std::atomic<uint8_t>[]> state_;
  std::vector<std::atomic<uint64_t>> cur_window_;
  std::atomic<int64_t> slot_window_[16];
  std::atomic<uint64_t> closed_upto_{0};
  std::mutex mu_;
  std::string error_;
  uint64_t t0_ = 0;
  Counters c_;
};

class TraceReplay final : public Workload {
 public:
  json defaults() const override {
    return json{{"trace", ""},         {"timing", "asap"}, {"epoch_policy", "time"},
                {"epoch_ms", 10},      {"touch", "pages"}, {"sample_ms", 10},
                {"slab_reclaim", "immediate"}, {"slab_use_thp", false}};
  }
  void validate(const json& c) const override {
    if (cfg_str(c, "trace").empty()) throw_key_error("trace", "must name a trace file (.ztr)");
    check_one_of(c, "timing", {"asap", "recorded"});
    check_one_of(c, "epoch_policy", {"none", "time", "callsite", "oracle"});
    check_number_range(c, "epoch_ms", 0.001, 3.6e6);
    check_one_of(c, "touch", {"none", "pages", "full"});
    check_int_range(c, "sample_ms", 1, 60000);
    check_one_of(c, "slab_reclaim", {"immediate", "on_close", "off"});
  }

  void run(RunContext& ctx) override {
    const json& c = ctx.config;
    ResultDoc& doc = *ctx.result;
    const std::string path = cfg_str(c, "trace");
    trace::PlanOptions po;
    trace::parse_epoch_policy(cfg_str(c, "epoch_policy"), po.policy);
    po.epoch_ns = uint64_t(cfg_double(c, "epoch_ms") * 1e6);
    const std::string touch_s = cfg_str(c, "touch");
    const Touch touch = touch_s == "none" ? Touch::kNone : touch_s == "full" ? Touch::kFull : Touch::kPages;

    auto alloc = make_allocator(ctx.allocator, c);
    doc.set_allocator(alloc->describe());
    const bool slab = alloc->has_epochs();

    // Load and plan; the Trace is released before the baseline sample.
    ReplayPlan plan;
    json trace_meta;
    {
      trace::Trace t;
      trace::TraceError err;
      if (!trace::read_trace(path, t, err)) throw RunError("trace: refused: " + err.to_string(path));
      std::string perr;
      if (!trace::make_plan(t, po, plan, perr)) throw RunError("trace: " + path + ": " + perr);
      trace_meta = {{"path", path},
                    {"program", t.header.program},
                    {"args", t.header.args},
                    {"events", t.events.size()},
                    {"start_unix_ns", t.header.start_unix_ns}};
    }
    release_loading_memory();
    doc.doc()["trace"] = trace_meta;
    if (ctx.progress)
      std::fprintf(stderr, "[trace %s] %s: %lu ops, %zu threads, %lu windows, policy %s\n", alloc->name(),
                   path.c_str(), (unsigned long)plan.ops, plan.threads.size(), (unsigned long)plan.windows,
                   slab ? trace::epoch_policy_name(po.policy) : "n/a");

    TraceReplayer rep(plan, *alloc, po.policy != trace::EpochPolicy::kNone, cfg_str(c, "timing") == "recorded",
                      touch);
    Sampler sampler;
    // Periodic samples into a fixed array (no allocation while replaying).
    struct Pt {
      uint64_t t_ns;
      ProcSample p;
      AllocatorCounters ac;
      bool have;
      uint64_t ops;
    };
    constexpr size_t kCap = 4096;
    std::unique_ptr<Pt[]> pts(new Pt[kCap]);
    size_t npts = 0, stride = 1, ticks = 0;
    std::mutex pmu;
    auto take = [&](Pt& pt) {
      pt.t_ns = doc.elapsed_ns();
      sampler.sample_into(pt.p);
      pt.have = alloc->counters(pt.ac);
      pt.ops = rep.counters().ops.load(std::memory_order_relaxed);
    };
    auto add = [&](const Pt& pt, const char* phase) {
      json s;
      s["t_ns"] = pt.t_ns;
      s["phase"] = phase;
      pt.p.to_json(s);
      s["committed_bytes"] = pt.have ? json(pt.ac.committed_bytes) : json(nullptr);
      s["live_bytes"] = pt.have ? json(pt.ac.live_bytes) : json(nullptr);
      s["requested_bytes"] = pt.have ? json(pt.ac.requested_bytes) : json(nullptr);
      s["ops_done"] = pt.ops;
      doc.add_sample(std::move(s));
    };
    Pt start_pt;
    take(start_pt);
    add(start_pt, "start");
    const uint64_t baseline_rss = start_pt.p.rss_bytes;

    PeriodicSampler ps;
    ps.start(uint32_t(cfg_int(c, "sample_ms")), [&] {
      if (ticks++ % stride != 0) return;
      std::lock_guard<std::mutex> g(pmu);
      if (npts == kCap) {
        for (size_t i = 0; i < kCap / 2; ++i) pts[i] = pts[2 * i];
        npts = kCap / 2;
        stride *= 2;
      }
      take(pts[npts++]);
    });
    const uint64_t t0 = monotonic_ns();
    try {
      rep.run();
    } catch (...) {
      ps.stop();
      throw;
    }
    const uint64_t t1 = monotonic_ns();
    ps.stop();
    Pt end_pt;
    take(end_pt);
    rep.drain();
    if (ctx.progress) std::fprintf(stderr, "[trace %s] replayed in %.2f s; drained\n", alloc->name(), double(t1 - t0) / 1e9);
    Pt drain_pt;
    take(drain_pt);
    uint64_t peak = std::max(start_pt.p.rss_bytes, end_pt.p.rss_bytes);
    for (size_t i = 0; i < npts; ++i) {
      add(pts[i], "periodic");
      peak = std::max(peak, pts[i].p.rss_bytes);
    }
    add(end_pt, "end");
    add(drain_pt, "post_drain");

    const auto& k = rep.counters();
    const double secs = double(t1 - t0) / 1e9;
    json& s = doc.summary();
    s["trace_events"] = plan.ops;
    s["ops_replayed"] = k.ops.load();
    s["ops_skipped"] = k.skipped.load();
    s["threads"] = plan.threads.size();
    s["replay_seconds"] = secs;
    s["ops_per_sec"] = secs > 0 ? double(k.ops.load()) / secs : 0.0;
    s["ns_per_op"] = k.ops.load() ? double(t1 - t0) / double(k.ops.load()) : 0.0;
    s["baseline_rss_bytes"] = baseline_rss;
    s["peak_rss_bytes"] = peak;
    s["peak_rss_over_baseline_bytes"] = peak > baseline_rss ? peak - baseline_rss : 0;
    s["post_drain_rss_bytes"] = drain_pt.p.rss_bytes;
    // Signed: below 0 when the allocator returned more than the replay added.
    s["post_drain_over_baseline_bytes"] = int64_t(drain_pt.p.rss_bytes) - int64_t(baseline_rss);
    s["fallback_ops"] = k.fallback_ops.load();
    s["fallback_bytes"] = k.fallback_bytes.load();
    s["cross_thread_frees"] = plan.cross_thread_frees;
    s["cross_thread_waits"] = k.cross_waits.load();
    s["epoch_policy"] = slab ? trace::epoch_policy_name(po.policy) : "n/a";
    s["windows"] = plan.windows;
    s["mispredicted_objects"] = slab ? json(plan.mispredicted) : json(nullptr);
    s["mispredicted_pct"] = slab ? json(plan.mispredicted_pct()) : json(nullptr);
    s["window_objects"] = slab ? json(plan.window_objects) : json(nullptr);
    s["long_epoch_objects"] = slab ? json(plan.long_objects) : json(nullptr);
    s["epochs_closed"] = k.epochs_closed.load();
    s["epoch_fallbacks"] = k.epoch_fallbacks.load();
    s["forced_epoch_closes"] = k.forced_closes.load();
    doc.doc()["allocator_stats"] = alloc->final_stats();
  doc.doc()["timeline"] = alloc->timeline(doc.t0_ns());
    doc.doc()["perf"] = sampler.perf_info();
    if (ctx.progress)
      std::fprintf(stderr, "[trace %s] %lu ops (%lu skipped), %.2f Mops/s, peak RSS %.1f MiB (+%.1f), post-drain %.1f MiB%s\n",
                   alloc->name(), (unsigned long)k.ops.load(), (unsigned long)k.skipped.load(),
                   s["ops_per_sec"].get<double>() / 1e6, double(peak) / 1048576.0,
                   double(peak > baseline_rss ? peak - baseline_rss : 0) / 1048576.0,
                   double(drain_pt.p.rss_bytes) / 1048576.0,
                   slab ? (", mispredicted " + std::to_string(plan.mispredicted_pct()).substr(0, 5) + " %").c_str() : "");
    if (k.ops.load() != plan.ops)
      throw RunError("trace: replayed " + std::to_string(k.ops.load()) + " of " + std::to_string(plan.ops) + " ops");
  }
};

Registrar reg{WorkloadInfo{"trace", "replays an allocation trace (docs/trace.md) with an epoch policy",
                           [] { return std::make_unique<TraceReplay>(); }}};

}  // namespace
}  // namespace znslab::harness
