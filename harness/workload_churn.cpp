// Workload "churn": the RSS-boundedness experiment of seed 002 ("Bounded
// RSS", "Immediate Empty Slab Reclamation"), made precise in issue 2 §4.
//
// Per cycle c (0 <= c < cycles), with T = threads worker threads:
//   alloc phase  each worker allocates its share of objects_per_cycle
//                objects (sizes from size_distribution in [min_size,
//                max_size]) and, with fill, writes every requested byte;
//   peak sample  (workers parked at a barrier);
//   free phase   worker t frees the objects of worker (t+1) % T (so T >= 2
//                means every free is cross-thread) in free_order; then the
//                cycle's epoch is closed (part of the timed free phase);
//   idle         idle_ms_before_sample, then the post_free sample.
// Epochs (temporal-slab): pinned objects live in epoch 0, ACTIVE for the
// whole run; cycle c allocates in epoch 1 + c % 15, which is (re)opened at
// the start of the cycle and closed after its frees, so each of the ring
// slots 1..15 is reused every 15 cycles and never holds a live object when
// it is reopened. Pinned objects: round(pinned_fraction x objects_per_cycle)
// indices of cycle 0, chosen up front from `seed`; allocated interleaved in
// time with cycle 0's other objects (in epoch 0) and freed after the last
// sample. Peers get exactly the same malloc/free calls per thread.
//
// Samples: phase "peak" and "post_free" per cycle, "periodic" every
// sample_interval_ms from a background thread, "start" and "end".
// Summary metrics: see DESIGN.md "Metrics" and the README.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <system_error>
#include <mutex>
#include <thread>
#include <vector>

#include "harness/allocators.h"
#include "harness/config.h"
#include "harness/metrics.h"
#include "harness/registry.h"
#include "harness/result.h"
#include "harness/sampler.h"
#include "harness/slab_options.h"
#include "harness/timer.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

constexpr uint32_t kPinnedEpoch = 0;
constexpr uint32_t kCycleEpochs = 15;  // ring slots 1..15

inline uint64_t splitmix64(uint64_t& x) noexcept {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

enum class SizeDist { kUniform, kLogUniform, kSizeClasses };
enum class FreeOrder { kRandom, kFifo, kLifo };

struct Params {
  uint64_t cycles, objects, threads, seed, latency_every;
  uint32_t min_size, max_size, idle_ms, sample_ms, progress_pct;
  double pinned_fraction;
  bool fill;
  SizeDist dist;
  FreeOrder order;
};

// Draws object sizes for one (cycle, thread) stream.
class SizeGen {
 public:
  SizeGen(const Params& p, uint64_t cycle, uint64_t thread) : p_(p) {
    state_ = p.seed * 0x100000001B3ull ^ (cycle + 1) * 0x9E3779B97F4A7C15ull ^ (thread + 1) * 0xD6E8FEB86659FD93ull;
    static constexpr uint32_t kClasses[] = {64, 96, 128, 192, 256, 384, 512, 768};
    for (uint32_t c : kClasses)
      if (c >= p.min_size && c <= p.max_size) classes_[nclasses_++] = c;
    if (nclasses_ == 0) classes_[nclasses_++] = p.max_size;
    lmin_ = std::log(double(p.min_size));
    lspan_ = std::log(double(p.max_size) + 1.0) - lmin_;
  }
  uint32_t next() noexcept {
    uint64_t r = splitmix64(state_);
    switch (p_.dist) {
      case SizeDist::kUniform:
        return p_.min_size + uint32_t(r % (p_.max_size - p_.min_size + 1));
      case SizeDist::kLogUniform: {
        double u = double(r >> 11) * (1.0 / 9007199254740992.0);
        uint32_t s = uint32_t(std::exp(lmin_ + u * lspan_));
        return std::clamp(s, p_.min_size, p_.max_size);
      }
      case SizeDist::kSizeClasses:
        return classes_[r % nclasses_];
    }
    return p_.min_size;
  }

 private:
  const Params& p_;
  uint64_t state_;
  uint32_t classes_[8] = {};
  uint32_t nclasses_ = 0;
  double lmin_ = 0, lspan_ = 0;
};

enum class Phase : uint8_t { kStart, kPeak, kPostFree, kPeriodic, kEnd };
const char* phase_name(Phase p) {
  switch (p) {
    case Phase::kStart: return "start";
    case Phase::kPeak: return "peak";
    case Phase::kPostFree: return "post_free";
    case Phase::kPeriodic: return "periodic";
    case Phase::kEnd: return "end";
  }
  return "?";
}
// Periodic samples live in a fixed, pre-touched buffer; when it is full,
// every other sample is dropped and the sampling stride doubles, so the
// whole run stays covered and the harness's memory never grows.
constexpr size_t kPeriodicCapacity = 2048;

// One sample as plain values (see the README for the JSON fields).
struct CycleSample {
  uint64_t t_ns = 0;
  Phase phase = Phase::kPeriodic;
  int64_t cycle = -1;       // -1: not in a cycle (null)
  int32_t epoch = -1;       // -1: none (null)
  uint64_t phase_ns = 0;    // alloc phase (peak) or free phase (post_free)
  ProcSample proc;
  bool have_counters = false;
  AllocatorCounters ac;
  bool have_tally = false;
  uint64_t objects_live = 0, objects_live_bytes = 0, objects_requested_bytes = 0;

  json to_json(bool has_epochs) const {
    json s;
    s["t_ns"] = t_ns;
    s["phase"] = phase_name(phase);
    s["cycle"] = cycle < 0 ? json(nullptr) : json(cycle);
    if (phase == Phase::kPeak || phase == Phase::kPostFree)
      s["epoch"] = has_epochs && epoch >= 0 ? json(epoch) : json(nullptr);
    if (phase == Phase::kPeak) s["alloc_phase_ns"] = phase_ns;
    if (phase == Phase::kPostFree) s["free_phase_ns"] = phase_ns;
    proc.to_json(s);
    if (have_counters) {
      s["committed_bytes"] = ac.committed_bytes;
      s["live_bytes"] = ac.live_bytes;
      s["requested_bytes"] = ac.requested_bytes;
      s["live_objects"] = ac.live_objects;
      s["empty_slabs"] = ac.empty_slabs;
      s["madvise_calls"] = ac.madvise_calls;
      s["madvise_bytes"] = ac.madvise_bytes;
    } else {
      s["committed_bytes"] = nullptr;
      s["live_bytes"] = nullptr;
      s["requested_bytes"] = nullptr;
    }
    if (have_tally) {
      s["objects_live"] = objects_live;
      s["objects_live_bytes"] = objects_live_bytes;
      s["objects_requested_bytes"] = objects_requested_bytes;
    }
    return s;
  }
};

struct Worker {
  uint32_t id = 0;
  uint64_t lo = 0, hi = 0;            // global object indices [lo, hi)
  std::vector<Obj> objs;              // this cycle's objects (ptr null: pinned slot)
  std::vector<Obj> pinned;            // epoch-0 objects, live to the end
  std::vector<uint32_t> free_perm;    // order in which another worker frees objs
  LatencyHistogram h_alloc, h_free;
  uint64_t alloc_failures = 0, free_failures = 0;
};

class Churn final : public Workload {
 public:
  json defaults() const override {
    json d = base_defaults();
    d.update(slab_option_defaults());  // every slab::Options field as slab_<field>
    return d;
  }
  json base_defaults() const {
    return json{{"cycles", 150},
                {"objects_per_cycle", 64000},
                {"min_size", 64},
                {"max_size", 768},
                {"size_distribution", "uniform"},
                {"pinned_fraction", 0.2},
                {"threads", 1},
                {"fill", true},
                {"seed", 42},
                {"idle_ms_before_sample", 5},
                {"free_order", "random"},
                {"sample_interval_ms", 100},
                {"latency_sample_every", 16},
                {"progress_every_pct", 5}};
  }

  void validate(const json& c) const override {
    check_int_range(c, "cycles", 2, 100000000);
    check_int_range(c, "objects_per_cycle", 1, 100000000);
    check_int_range(c, "min_size", 1, 768);
    check_int_range(c, "max_size", 1, 768);
    if (cfg_int(c, "max_size") < cfg_int(c, "min_size"))
      throw_key_error("max_size", "must be >= min_size (" + std::to_string(cfg_int(c, "min_size")) +
                                      "), got " + std::to_string(cfg_int(c, "max_size")));
    check_one_of(c, "size_distribution", {"uniform", "log_uniform", "size_classes"});
    check_number_range(c, "pinned_fraction", 0.0, 1.0);
    check_int_range(c, "threads", 1, 64);
    if (cfg_int(c, "objects_per_cycle") < cfg_int(c, "threads"))
      throw_key_error("objects_per_cycle", "must be >= threads (" + std::to_string(cfg_int(c, "threads")) + ")");
    check_int_range(c, "seed", 0, INT64_MAX);
    check_int_range(c, "idle_ms_before_sample", 0, 60000);
    check_one_of(c, "free_order", {"random", "fifo", "lifo"});
    check_int_range(c, "sample_interval_ms", 0, 3600000);
    check_int_range(c, "latency_sample_every", 1, 1000000);
    check_int_range(c, "progress_every_pct", 1, 100);
    validate_slab_options(c);
    check_memory(c);
  }

  // Refuses (at validation, naming the keys) a configuration whose harness
  // arrays and live objects cannot fit: more than half of the physical
  // memory or of the address-space limit (RLIMIT_AS).
  static void check_memory(const json& c) {
    const uint64_t cycles = cfg_u64(c, "cycles"), n = cfg_u64(c, "objects_per_cycle");
    const double pinned = cfg_double(c, "pinned_fraction");
    const uint64_t samples = (2 * cycles + 2 + kPeriodicCapacity) * sizeof(CycleSample) + 2 * cycles * sizeof(size_t);
    const uint64_t books = n * (2 * sizeof(Obj) + sizeof(uint32_t) * 2 + 1);
    const uint64_t live = uint64_t(double(n) * (1.0 + pinned) * double(cfg_u64(c, "max_size")));
    const uint64_t need = samples + books + live;
    uint64_t limit = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGESIZE)) / 2;
    const char* what = "half of this machine's memory";
    rlimit rl{};
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 2 < limit) {
      limit = rl.rlim_cur / 2;
      what = "half of the address-space limit (ulimit -v)";
    }
    if (need > limit) {
      char m[320];
      std::snprintf(m, sizeof m,
                    "needs about %.0f MiB (samples %.0f MiB for %llu cycles, bookkeeping %.0f MiB and live "
                    "objects %.0f MiB for %llu objects per cycle), more than %s (%.0f MiB)",
                    double(need) / 1048576.0, double(samples) / 1048576.0, (unsigned long long)cycles,
                    double(books) / 1048576.0, double(live) / 1048576.0, (unsigned long long)n, what,
                    double(limit) / 1048576.0);
      throw_key_error(samples > books + live ? "cycles" : "objects_per_cycle", m);
    }
  }

  std::vector<KeyDoc> key_docs() const override {
    return {{"cycles", "integer", "count", "alloc/free cycles (steady state: every cycle after the first 10 %)"},
            {"objects_per_cycle", "integer", "count", "objects allocated (and freed) per cycle, over all threads"},
            {"min_size", "integer", "bytes", "smallest object requested"},
            {"max_size", "integer", "bytes", "largest object requested (<= 768, the slab's largest class)"},
            {"size_distribution", "string", "", "uniform, log_uniform or size_classes"},
            {"pinned_fraction", "number", "ratio", "share of cycle 0's objects kept to the end (epoch 0)"},
            {"threads", "integer", "count", "worker threads; worker t frees worker t+1's objects"},
            {"fill", "boolean", "", "write every requested byte after allocation"},
            {"seed", "integer", "", "seed of sizes, pinned choice and free order"},
            {"idle_ms_before_sample", "integer", "ms", "pause after the frees before the post_free sample"},
            {"free_order", "string", "", "random, fifo or lifo"},
            {"sample_interval_ms", "integer", "ms", "period of the background RSS samples (0 = none)"},
            {"latency_sample_every", "integer", "ops", "time one operation in this many"},
            {"progress_every_pct", "integer", "%", "progress line period on stderr"}};
  }

  void run(RunContext& ctx) override;
};

Params params_of(const json& c) {
  Params p{};
  p.cycles = cfg_u64(c, "cycles");
  p.objects = cfg_u64(c, "objects_per_cycle");
  p.threads = cfg_u64(c, "threads");
  p.seed = cfg_u64(c, "seed");
  p.latency_every = cfg_u64(c, "latency_sample_every");
  p.min_size = uint32_t(cfg_u64(c, "min_size"));
  p.max_size = uint32_t(cfg_u64(c, "max_size"));
  p.idle_ms = uint32_t(cfg_u64(c, "idle_ms_before_sample"));
  p.sample_ms = uint32_t(cfg_u64(c, "sample_interval_ms"));
  p.progress_pct = uint32_t(cfg_u64(c, "progress_every_pct"));
  p.pinned_fraction = cfg_double(c, "pinned_fraction");
  p.fill = cfg_bool(c, "fill");
  std::string d = cfg_str(c, "size_distribution");
  p.dist = d == "log_uniform" ? SizeDist::kLogUniform
           : d == "size_classes" ? SizeDist::kSizeClasses : SizeDist::kUniform;
  std::string o = cfg_str(c, "free_order");
  p.order = o == "fifo" ? FreeOrder::kFifo : o == "lifo" ? FreeOrder::kLifo : FreeOrder::kRandom;
  return p;
}

double mib(uint64_t b) { return double(b) / (1024.0 * 1024.0); }

void Churn::run(RunContext& ctx) {
  const Params p = params_of(ctx.config);
  ResultDoc& doc = *ctx.result;
  auto alloc = make_allocator(ctx.allocator, ctx.config);
  doc.set_allocator(alloc->describe());
  timer_calibration();
  doc.doc()["timer"] = timer_json();
  doc.doc()["epoch_plan"] =
      alloc->has_epochs()
          ? json("pinned objects in epoch 0 (ACTIVE for the whole run); cycle c allocates in epoch "
                 "1 + c % 15, reopened at the cycle's start and closed after its frees")
          : json("none (malloc peer: same malloc/free sequence, no epochs)");
  Sampler sampler;

  // Pinned indices of cycle 0, chosen up front (partial Fisher-Yates).
  const uint64_t n = p.objects;
  const uint64_t npinned = uint64_t(std::llround(p.pinned_fraction * double(n)));
  std::vector<uint8_t> is_pinned(n, 0);
  {
    std::vector<uint32_t> idx(n);
    for (uint64_t i = 0; i < n; ++i) idx[i] = uint32_t(i);
    uint64_t st = p.seed ^ 0x5A17ED5EEDull;
    for (uint64_t i = 0; i < npinned; ++i) {
      uint64_t j = i + splitmix64(st) % (n - i);
      std::swap(idx[i], idx[j]);
      is_pinned[idx[i]] = 1;
    }
  }

  const uint32_t T = uint32_t(p.threads);
  std::vector<Worker> workers(T);
  for (uint32_t t = 0; t < T; ++t) {
    Worker& w = workers[t];
    w.id = t;
    w.lo = n * t / T;
    w.hi = n * (t + 1) / T;
    w.objs.resize(w.hi - w.lo);
    w.free_perm.resize(w.hi - w.lo);
    for (uint32_t i = 0; i < w.free_perm.size(); ++i) w.free_perm[i] = i;
    if (p.order == FreeOrder::kLifo) std::reverse(w.free_perm.begin(), w.free_perm.end());
    if (p.order == FreeOrder::kRandom) {
      uint64_t st = p.seed ^ (0xF4EEull + t);
      for (size_t i = w.free_perm.size(); i > 1; --i)
        std::swap(w.free_perm[i - 1], w.free_perm[splitmix64(st) % i]);
    }
    w.pinned.reserve(size_t(double(w.hi - w.lo) * p.pinned_fraction) + 16);
    // Touched now, so the baseline RSS includes it (like the other harness arrays).
    w.pinned.resize(w.pinned.capacity());
    w.pinned.clear();
  }

  // Samples are kept as plain structs in storage sized up front and turned
  // into JSON after the last measurement, so the harness's own memory does
  // not grow with the run (it would show up as RSS drift).
  std::vector<CycleSample> cs(2 * p.cycles + 2);  // value-initialised: touched now
  size_t ncs = 0;
  std::mutex periodic_mu;
  std::vector<CycleSample> periodic(kPeriodicCapacity);  // value-initialised: touched now
  size_t nperiodic = 0;
  uint64_t periodic_stride = 1, periodic_ticks = 0, periodic_dropped = 0;
  std::vector<size_t> peak_at(p.cycles), post_at(p.cycles);

  // Phase protocol: main and T workers meet at `sync` four times per cycle:
  // [start alloc] ... [alloc done] (sample) [start free] ... [free done].
  std::barrier<> sync(T + 1);
  std::atomic<bool> stop{false};
  std::atomic<int> go{0};
  std::atomic<uint32_t> cur_epoch{1};
  std::atomic<uint64_t> cur_cycle{0};
  std::vector<std::thread> threads;
  auto worker_main = [&](uint32_t t) {
      Worker& me = workers[t];
      Worker& victim = workers[(t + 1) % T];
      sampler.attach_thread();
      // Wait until every worker exists (a failed thread creation stops the
      // ones started before they ever touch the barrier).
      while (go.load(std::memory_order_acquire) == 0) go.wait(0, std::memory_order_acquire);
      if (stop.load(std::memory_order_acquire)) return;
      uint64_t op = 0;
      for (;;) {
        sync.arrive_and_wait();  // start alloc
        if (stop.load(std::memory_order_acquire)) return;
        const uint64_t c = cur_cycle.load(std::memory_order_relaxed);
        const uint32_t e = cur_epoch.load(std::memory_order_relaxed);
        SizeGen sizes(p, c, t);
        for (uint64_t i = me.lo; i < me.hi; ++i) {
          const uint32_t size = sizes.next();
          const bool pin = c == 0 && is_pinned[i];
          Obj o;
          bool ok;
          if (++op % p.latency_every == 0) {
            uint64_t a = timer_start();
            ok = alloc->allocate(size, pin ? kPinnedEpoch : e, o);
            uint64_t b = timer_stop();
            me.h_alloc.record(ticks_to_ns(b - a));
          } else {
            ok = alloc->allocate(size, pin ? kPinnedEpoch : e, o);
          }
          if (!ok) {
            ++me.alloc_failures;
            me.objs[i - me.lo] = Obj{};
            continue;
          }
          if (p.fill) std::memset(o.ptr, int(0x5A ^ (c & 0xFF)), size);
          if (pin) {
            me.pinned.push_back(o);
            me.objs[i - me.lo] = Obj{};
          } else {
            me.objs[i - me.lo] = o;
          }
        }
        sync.arrive_and_wait();  // alloc done
        sync.arrive_and_wait();  // start free
        for (uint32_t k : victim.free_perm) {
          Obj& o = victim.objs[k];
          if (!o.ptr) continue;
          bool ok;
          if (++op % p.latency_every == 0) {
            uint64_t a = timer_start();
            ok = alloc->release(o);
            uint64_t b = timer_stop();
            me.h_free.record(ticks_to_ns(b - a));
          } else {
            ok = alloc->release(o);
          }
          if (!ok) ++me.free_failures;
          o = Obj{};
        }
        sync.arrive_and_wait();  // free done
      }
    };
  // Every exit from here on (an error, a failed thread creation, an
  // exception anywhere in the main loop) stops and joins the workers first:
  // a joinable std::thread must never be destroyed (std::terminate).
  // Main's place in the four-barrier protocol: the next barrier it meets
  // (0 start alloc, 1 alloc done, 2 start free, 3 free done). Workers check
  // `stop` only after "start alloc", so stopping means walking the protocol
  // to the next "start alloc" with them (a worker mid-cycle finishes its
  // phase first); no worker can return while others wait at a barrier.
  unsigned main_pos = 0;
  auto main_barrier = [&] {
    sync.arrive_and_wait();
    main_pos = (main_pos + 1) % 4;
  };
  bool stopped = false;
  auto stop_workers = [&] {
    if (stopped) return;
    stopped = true;
    stop.store(true, std::memory_order_release);
    if (go.load(std::memory_order_acquire) == 0) {
      go.store(1, std::memory_order_release);  // not started: they return at once
      go.notify_all();
    } else {
      bool released = false;
      while (!released) {
        released = main_pos == 0;  // this arrival completes "start alloc"
        main_barrier();
      }
    }
    for (auto& th : threads)
      if (th.joinable()) th.join();
  };
  struct Guard {
    std::function<void()> f;
    ~Guard() { if (f) f(); }
  } guard{stop_workers};
  for (uint32_t t = 0; t < T; ++t) {
    try {
      threads.emplace_back(worker_main, t);
    } catch (const std::system_error& e) {
      // The guard stops the workers started so far (they wait on `go`).
      throw RunError("churn: cannot start worker thread " + std::to_string(t) + " of " + std::to_string(T) +
                     ": " + e.what());
    }
  }
  go.store(1, std::memory_order_release);
  go.notify_all();


  auto take = [&](CycleSample& s, Phase ph, int64_t cycle, bool with_tally) {
    s.t_ns = doc.elapsed_ns();
    s.phase = ph;
    s.cycle = cycle;
    sampler.sample_into(s.proc);
    s.have_counters = alloc->counters(s.ac);
    s.have_tally = with_tally;
    if (with_tally) {
      uint64_t live = 0, req = 0, count = 0;
      for (auto& w : workers) {
        for (auto& o : w.objs)
          if (o.ptr) { live += alloc->usable_size(o); req += o.requested; ++count; }
        for (auto& o : w.pinned) { live += alloc->usable_size(o); req += o.requested; ++count; }
      }
      s.objects_live = count;
      s.objects_live_bytes = live;
      s.objects_requested_bytes = req;
    }
  };
  PeriodicSampler ps;
  ps.start(p.sample_ms, [&] {
    if (periodic_ticks++ % periodic_stride != 0) return;  // only this thread touches these
    CycleSample s;
    take(s, Phase::kPeriodic, int64_t(cur_cycle.load(std::memory_order_relaxed)), false);
    std::lock_guard<std::mutex> g(periodic_mu);
    if (nperiodic == kPeriodicCapacity) {
      for (size_t i = 0; i < kPeriodicCapacity / 2; ++i) periodic[i] = periodic[2 * i];
      nperiodic = kPeriodicCapacity / 2;
      periodic_dropped += kPeriodicCapacity / 2;
      periodic_stride *= 2;
    }
    periodic[nperiodic++] = s;
  });

  auto abort_run = [&](const std::string& why) {
    stop_workers();
    ps.stop();
    throw RunError(why);
  };

  // Baseline: harness arrays allocated, no workload object yet.
  take(cs[ncs++], Phase::kStart, -1, true);
  const uint64_t baseline_rss = cs[0].proc.rss_bytes;

  uint64_t phase_ns_total = 0, live_mismatch_cycles = 0;
  const uint64_t t_run0 = monotonic_ns();
  const uint64_t progress_every = std::max<uint64_t>(1, p.cycles * p.progress_pct / 100);
  for (uint64_t c = 0; c < p.cycles; ++c) {
    const uint32_t e = 1 + uint32_t(c % kCycleEpochs);
    try {
      alloc->epoch_open(e, "cycle " + std::to_string(c));
    } catch (const RunError& err) {
      abort_run(std::string("churn cycle ") + std::to_string(c) + ": " + err.what());
    }
    cur_cycle.store(c, std::memory_order_relaxed);
    cur_epoch.store(e, std::memory_order_relaxed);
    const uint64_t a0 = monotonic_ns();
    main_barrier();  // start alloc
    main_barrier();  // alloc done
    const uint64_t a1 = monotonic_ns();
    CycleSample& pk = cs[ncs];
    peak_at[c] = ncs++;
    take(pk, Phase::kPeak, int64_t(c), true);
    pk.epoch = alloc->has_epochs() ? int32_t(e) : -1;
    pk.phase_ns = a1 - a0;
    const uint64_t f0 = monotonic_ns();
    main_barrier();  // start free
    main_barrier();  // free done
    try {
      alloc->epoch_close(e);
    } catch (const RunError& err) {
      abort_run(std::string("churn cycle ") + std::to_string(c) + ": " + err.what());
    }
    const uint64_t f1 = monotonic_ns();
    phase_ns_total += (a1 - a0) + (f1 - f0);
    uint64_t fails = 0;
    for (auto& w : workers) fails += w.alloc_failures + w.free_failures;
    if (fails)
      abort_run("churn cycle " + std::to_string(c) + ": " + alloc->name() + " reported " +
                std::to_string(fails) + " failed allocations/frees");
    if (p.idle_ms) std::this_thread::sleep_for(std::chrono::milliseconds(p.idle_ms));
    CycleSample& pf = cs[ncs];
    post_at[c] = ncs++;
    take(pf, Phase::kPostFree, int64_t(c), true);
    pf.epoch = alloc->has_epochs() ? int32_t(e) : -1;
    pf.phase_ns = f1 - f0;
    if (pf.have_counters && (pf.ac.live_bytes != pf.objects_live_bytes || pk.ac.live_bytes != pk.objects_live_bytes))
      ++live_mismatch_cycles;
    if (ctx.progress && ((c + 1) % progress_every == 0 || c + 1 == p.cycles)) {
      std::fprintf(stderr,
                   "[churn %s] cycle %lu/%lu (%3.0f%%)  rss peak %.1f MiB post-free %.1f MiB",
                   alloc->name(), (unsigned long)(c + 1), (unsigned long)p.cycles,
                   100.0 * double(c + 1) / double(p.cycles), mib(pk.proc.rss_bytes), mib(pf.proc.rss_bytes));
      if (pf.have_counters) std::fprintf(stderr, "  committed %.1f MiB", mib(pf.ac.committed_bytes));
      std::fprintf(stderr, "  live %.1f MiB  elapsed %.1f s\n", mib(pf.objects_live_bytes),
                   double(monotonic_ns() - t_run0) / 1e9);
    }
  }
  stop_workers();
  ps.stop();
  take(cs[ncs++], Phase::kEnd, -1, true);
  const double elapsed_s = double(monotonic_ns() - t_run0) / 1e9;
  // Pinned objects die last.
  uint64_t end_free_failures = 0;
  for (auto& w : workers)
    for (auto& o : w.pinned) end_free_failures += !alloc->release(o);

  // ---- JSON: the time series, merged by t_ns ---------------------------------
  const bool has_epochs = alloc->has_epochs();
  {
    std::vector<const CycleSample*> all;
    for (size_t i = 0; i < ncs; ++i) all.push_back(&cs[i]);
    for (size_t i = 0; i < nperiodic; ++i) all.push_back(&periodic[i]);
    std::stable_sort(all.begin(), all.end(), [](auto* a, auto* b) { return a->t_ns < b->t_ns; });
    for (const CycleSample* s : all) doc.add_sample(s->to_json(has_epochs));
  }

  LatencyHistogram ha, hf;
  for (auto& w : workers) {
    ha.merge(w.h_alloc);
    hf.merge(w.h_free);
  }
  doc.set_latency("alloc", ha);
  doc.set_latency("free", hf);

  // ---- Summary (DESIGN.md "Metrics") -----------------------------------------
  const uint64_t s0 = metrics::steady_state_first_cycle(p.cycles);
  auto post = [&](uint64_t c) -> const CycleSample& { return cs[post_at[c]]; };
  auto peak = [&](uint64_t c) -> const CycleSample& { return cs[peak_at[c]]; };
  std::vector<uint64_t> post_rss(p.cycles), post_committed;
  for (uint64_t c = 0; c < p.cycles; ++c) post_rss[c] = post(c).proc.rss_bytes;
  if (post(s0).have_counters)
    for (uint64_t c = 0; c < p.cycles; ++c) post_committed.push_back(post(c).ac.committed_bytes);
  const uint64_t worst = metrics::worst_post_free_cycle(post_rss, s0);
  uint64_t pmin = UINT64_MAX;
  double ret_max = 0, ret_min = 1e300, excess_max = -1e300;
  for (uint64_t c = s0; c < p.cycles; ++c) {
    pmin = std::min(pmin, post_rss[c]);
    const double ret = metrics::retention_pct(post_rss[c], peak(c).proc.rss_bytes).value_or(0.0);
    ret_max = std::max(ret_max, ret);
    ret_min = std::min(ret_min, ret);
    excess_max = std::max(excess_max, double(post_rss[c]) - double(post(c).objects_live_bytes));
  }
  uint64_t run_peak_rss = 0;
  for (size_t i = 0; i < ncs; ++i) run_peak_rss = std::max(run_peak_rss, cs[i].proc.rss_bytes);
  for (size_t i = 0; i < nperiodic; ++i) run_peak_rss = std::max(run_peak_rss, periodic[i].proc.rss_bytes);

  json& s = doc.summary();
  const uint64_t objects_allocated = p.cycles * n;
  const double phase_s = double(phase_ns_total) / 1e9;
  const CycleSample& w = post(worst);
  s["ops_per_sec"] = metrics::ops_per_sec(2 * objects_allocated, phase_ns_total).value_or(0.0);
  s["ns_per_object"] = metrics::ns_per_object(phase_ns_total, objects_allocated).value_or(0.0);
  s["objects_allocated"] = objects_allocated;
  s["pinned_objects"] = npinned;
  s["cycles"] = p.cycles;
  s["steady_state_first_cycle"] = s0;
  s["steady_state_cycles"] = p.cycles - s0;
  s["peak_rss_bytes"] = run_peak_rss;
  s["post_free_rss_bytes"] = w.proc.rss_bytes;
  s["post_free_rss_cycle"] = worst;
  s["live_bytes_post_free"] = w.objects_live_bytes;
  s["requested_bytes_post_free"] = w.objects_requested_bytes;
  s["post_free_rss_min_bytes"] = pmin;
  s["post_free_rss_excess_max_bytes"] = excess_max;
  s["post_free_anon_rss_bytes"] = w.proc.anon_rss_bytes < 0 ? json(nullptr) : json(w.proc.anon_rss_bytes);
  s["baseline_rss_bytes"] = baseline_rss;
  s["post_free_rss_above_baseline_bytes"] = int64_t(w.proc.rss_bytes) - int64_t(baseline_rss);
  s["rss_stability_pct"] = metrics::rss_stability_pct(post_rss, s0).value_or(0.0);
  s["retention_pct"] = ret_max;
  s["retention_pct_min"] = ret_min;
  const bool have_counters = post(s0).have_counters;
  if (have_counters) {
    const auto drift = metrics::committed_drift_pct(post_committed, s0);
    s["committed_drift_pct"] = drift ? json(*drift) : json(nullptr);
    s["committed_post_free_first_bytes"] = post(s0).ac.committed_bytes;
    s["committed_post_free_last_bytes"] = post(p.cycles - 1).ac.committed_bytes;
    uint64_t pc = 0, pfc = 0;
    for (uint64_t c = 0; c < p.cycles; ++c) pc = std::max(pc, peak(c).ac.committed_bytes);
    for (uint64_t c = s0; c < p.cycles; ++c) pfc = std::max(pfc, post(c).ac.committed_bytes);
    s["peak_committed_bytes"] = pc;
    s["post_free_committed_max_bytes"] = pfc;
    s["live_bytes_counter_mismatch_cycles"] = live_mismatch_cycles;
  } else {
    for (const char* k : {"committed_drift_pct", "committed_post_free_first_bytes", "committed_post_free_last_bytes",
                          "peak_committed_bytes", "post_free_committed_max_bytes", "live_bytes_counter_mismatch_cycles"})
      s[k] = nullptr;
  }
  s["phase_seconds"] = phase_s;
  s["elapsed_seconds"] = elapsed_s;
  s["periodic_samples_dropped"] = periodic_dropped;
  s["periodic_sample_stride"] = periodic_stride;
  s["end_free_errors"] = end_free_failures;
  doc.doc()["allocator_stats"] = alloc->final_stats();
  doc.doc()["timeline"] = alloc->timeline(doc.t0_ns());
  doc.doc()["perf"] = sampler.perf_info();
  if (end_free_failures)
    throw RunError("churn: " + std::to_string(end_free_failures) + " pinned frees failed on " +
                   alloc->name());
}

Registrar reg{WorkloadInfo{"churn",
                           "RSS under alloc/fill/free cycles with pinned long-lived objects (seed 002)",
                           [] { return std::make_unique<Churn>(); }}};

}  // namespace
}  // namespace znslab::harness
