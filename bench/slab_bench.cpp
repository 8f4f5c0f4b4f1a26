// slab_bench: microbenchmark of the temporal slab allocator (not a test).
//
//   build/bench/slab_bench [--mode slab|malloc] [--workload alternating|churn|both]
//                          [--runs N] [--steps N] [--live N] [--cycles N] [--objects N]
//                          [--pinned F] [--reclaim immediate|on_close|off] [--thp]
//                          [--chunk BYTES] [--batch N]
//
// The operation streams are the workloads' own generators
// (workloads/alternating_gen.h, workloads/churn_gen.h, seed 42): this file
// only executes and times them.
// alternating: a table of --live (4096) slots; each step frees a random slot
//   and allocates a random size 64..768 B (the harness's `alternating`
//   workload, one thread). Every operation is timed alone with rdtsc (lfence-ordered),
//   converted to ns with a TSC frequency calibrated against CLOCK_MONOTONIC;
//   the timer's own cost (two back-to-back reads) is reported, not
//   subtracted. A second, untimed pass gives alloc+free pairs per second.
// churn: --cycles cycles of --objects objects (64..768 B, every byte
//   written); a --pinned fraction of cycle 0's objects lives in epoch 0 for
//   the whole run; every other object is freed in the workload's random
//   order, and its epoch (1..15) closed (the harness's `churn`, one thread).
//   Reports ns per object (allocate + fill + free wall time / objects), and
//   RSS / committed bytes after the last cycle's frees.
// --mode malloc runs the same sequences through malloc/free: run it under
//   LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2 to measure a peer.
// Each figure is the median over --runs runs. Output: one JSON line per
// workload on stdout, a human summary on stderr.
#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <malloc.h>
#include <random>
#include <string>
#include <vector>

#include "src/pages/pages.h"
#include "src/slab/slab.h"
#include "workloads/alternating_gen.h"
#include "workloads/churn_gen.h"

using namespace znslab;
using namespace znslab::slab;

namespace {

struct Args {
  std::string mode = "slab", workload = "both";
  int runs = 5;
  size_t steps = 2000000, live = 4096;
  size_t cycles = 50, objects = 100000;
  double pinned = 0.2;
  ReclaimPolicy reclaim = ReclaimPolicy::kImmediate;
  bool thp = false;
  size_t chunk = size_t(2) << 20;
  uint32_t batch = 64;
};

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "slab_bench: %s\nusage: slab_bench [--mode slab|malloc] [--workload "
               "alternating|churn|both] [--runs N] [--steps N] [--live N] [--cycles N] "
               "[--objects N] [--pinned F] [--reclaim immediate|on_close|off] [--thp] "
               "[--chunk BYTES] [--batch N]\n",
               msg);
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value for " + k).c_str());
      return argv[++i];
    };
    if (k == "--mode") a.mode = val();
    else if (k == "--workload") a.workload = val();
    else if (k == "--runs") a.runs = std::stoi(val());
    else if (k == "--steps") a.steps = std::stoull(val());
    else if (k == "--live") a.live = std::stoull(val());
    else if (k == "--cycles") a.cycles = std::stoull(val());
    else if (k == "--objects") a.objects = std::stoull(val());
    else if (k == "--pinned") a.pinned = std::stod(val());
    else if (k == "--reclaim") {
      auto p = parse_reclaim_policy(val());
      if (!p) usage("bad --reclaim");
      a.reclaim = *p;
    } else if (k == "--thp") a.thp = true;
    else if (k == "--chunk") a.chunk = std::stoull(val());
    else if (k == "--batch") a.batch = uint32_t(std::stoul(val()));
    else if (k == "--help" || k == "-h") usage("help");
    else usage(("unknown option " + k).c_str());
  }
  if (a.mode != "slab" && a.mode != "malloc") usage("--mode must be slab or malloc");
  if (a.runs < 1 || a.live == 0 || a.objects == 0 || a.cycles == 0) usage("counts must be > 0");
  return a;
}

uint64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

inline uint64_t tsc() {
  _mm_lfence();
  uint64_t t = __rdtsc();
  _mm_lfence();
  return t;
}

double tsc_per_ns() {
  const uint64_t n0 = mono_ns(), t0 = tsc();
  while (mono_ns() - n0 < 100000000ull) {
  }
  const uint64_t n1 = mono_ns(), t1 = tsc();
  return double(t1 - t0) / double(n1 - n0);
}

double pct(std::vector<uint32_t>& v, double p) {
  if (v.empty()) return 0;
  size_t k = size_t(p / 100.0 * double(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + long(k), v.end());
  return v[k];
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::unique_ptr<SlabAllocator> make_alloc(const Args& a) {
  Options o;
  o.reclaim = a.reclaim;
  o.use_thp = a.thp;
  o.chunk_bytes = a.chunk;
  o.reclaim_batch_slabs = a.batch;
  auto r = SlabAllocator::create(o);
  if (!r) {
    std::fprintf(stderr, "slab_bench: create: %s\n", r.status().to_string().c_str());
    std::exit(1);
  }
  return std::move(*r);
}

// One object: the slab handle or the malloc pointer.
struct Obj {
  uint64_t h = 0;
  void* p = nullptr;
};

struct Backend {
  const Args& a;
  std::unique_ptr<SlabAllocator> s;
  explicit Backend(const Args& args) : a(args) {
    if (a.mode == "slab") s = make_alloc(a);
  }
  inline Obj alloc(size_t n, uint32_t epoch) {
    if (s) {
      auto r = s->allocate(n, epoch);
      if (!r) {
        std::fprintf(stderr, "slab_bench: allocate: %s\n", r.status().to_string().c_str());
        std::exit(1);
      }
      return Obj{r->handle.raw, r->ptr};
    }
    return Obj{0, std::malloc(n)};
  }
  inline void release(const Obj& o) {
    if (s) {
      if (!s->free(Handle{o.h})) {
        std::fprintf(stderr, "slab_bench: free failed\n");
        std::exit(1);
      }
    } else {
      std::free(o.p);
    }
  }
};

struct AltResult {
  double alloc[5], free_[5];  // p50 p90 p99 p999 max
  double pairs_per_sec, timer_ns;
};

// Executes the alternating generator's slot stream on the backend; kTimed:
// every operation timed alone with rdtsc into la/lf (ns).
template <bool kTimed>
struct AltExec {
  Backend& be;
  std::vector<Obj>& table;
  double tpn;
  std::vector<uint32_t>* la = nullptr;
  std::vector<uint32_t>* lf = nullptr;
  bool ok() const { return true; }
  void allocate(uint64_t slot, uint32_t size, int fill_byte) {
    if constexpr (kTimed) {
      const uint64_t x = tsc();
      table[slot] = be.alloc(size, workloads::AlternatingGenerator::kEpoch);
      la->push_back(uint32_t(double(tsc() - x) / tpn));
    } else {
      table[slot] = be.alloc(size, workloads::AlternatingGenerator::kEpoch);
    }
    if (fill_byte >= 0) std::memset(table[slot].p, fill_byte, size);
    else *static_cast<volatile uint64_t*>(table[slot].p) = slot;  // touch it
  }
  void release(uint64_t slot) {
    if constexpr (kTimed) {
      const uint64_t x = tsc();
      be.release(table[slot]);
      lf->push_back(uint32_t(double(tsc() - x) / tpn));
    } else {
      be.release(table[slot]);
    }
  }
};

// The alternating workload's operation stream (workloads/alternating_gen.h,
// one worker, seed 42): fill, an untimed pass (pairs per second), a timed pass.
AltResult run_alternating(const Args& a, double tpn) {
  Backend be(a);
  workloads::AlternatingParams p;
  p.live_slots = a.live;
  p.steps = a.steps;
  p.warmup_steps = 0;
  const workloads::AlternatingGenerator gen(p);
  std::vector<Obj> table(a.live);
  std::vector<uint32_t> la, lf;
  la.reserve(a.steps);
  lf.reserve(a.steps);
  AltExec<false> ux{be, table, tpn};
  AltExec<true> tx{be, table, tpn, &la, &lf};
  gen.fill_phase(0, ux);
  const uint64_t t0 = mono_ns();
  gen.steps(0, a.steps, ux);
  const uint64_t t1 = mono_ns();
  gen.steps(0, a.steps, tx);
  std::vector<uint32_t> tv(100000);
  for (auto& t : tv) {
    uint64_t x = tsc(), y = tsc();
    t = uint32_t(double(y - x) / tpn);
  }
  AltResult r;
  const double ps[5] = {50, 90, 99, 99.9, 100};
  for (int k = 0; k < 5; ++k) {
    r.alloc[k] = pct(la, ps[k]);
    r.free_[k] = pct(lf, ps[k]);
  }
  r.timer_ns = pct(tv, 50);
  r.pairs_per_sec = double(a.steps) / (double(t1 - t0) / 1e9);
  if (be.s && std::getenv("SLAB_BENCH_STATS")) {
    const GlobalStats g = be.s->stats_global();
    std::fprintf(stderr,
                 "  stats: allocs %lu cache_miss %lu partial_null %lu partial_full %lu recycled %lu "
                 "fresh %lu madvise %lu committed %lu KiB empty %lu pending %lu cas %lu/%lu\n",
                 g.allocs, g.slow_path_cache_miss, g.slow_path_partial_null, g.slow_path_partial_full,
                 g.slabs_recycled, g.slabs_fresh, g.madvise_calls, g.committed_bytes >> 10,
                 g.empty_slabs, g.pending_slabs, g.scan_cas_retries, g.scan_cas_attempts);
  }
  gen.drain_phase(0, ux);
  return r;
}

struct ChurnResult {
  double ns_per_object, post_free_rss_mib, live_mib, committed_mib, peak_rss_mib;
};

// Executes the churn generator's stream on the backend (one worker).
struct ChurnExec {
  Backend& be;
  std::vector<Obj>& slots;
  std::vector<Obj>& pinned;
  uint64_t pinned_live_bytes = 0;
  void allocate(uint64_t slot, uint32_t size, uint32_t epoch, int fill_byte, bool pin) {
    Obj o = be.alloc(size, epoch);
    if (fill_byte >= 0) std::memset(o.p, fill_byte, size);
    if (pin) {
      pinned.push_back(o);
      pinned_live_bytes += be.s ? kSizeClasses[size_class_of(size)] : malloc_usable_size(o.p);
      slots[slot] = Obj{};
    } else {
      slots[slot] = o;
    }
  }
  void release(uint64_t slot) {
    if (!slots[slot].p) return;
    be.release(slots[slot]);
    slots[slot] = Obj{};
  }
  void epoch_open(uint32_t epoch, uint64_t /*round*/) {
    if (be.s && be.s->stats_epoch(epoch).state == EpochState::kClosing) (void)be.s->epoch_reopen(epoch);
  }
  void epoch_close(uint32_t epoch) {
    if (be.s) (void)be.s->epoch_close(epoch);
  }
};

// The churn workload's operation stream (workloads/churn_gen.h: uniform
// 64..768 B, every byte written, random free order, seed 42), one worker.
ChurnResult run_churn(const Args& a) {
  Backend be(a);
  workloads::ChurnParams p;
  p.cycles = a.cycles;
  p.objects = a.objects;
  p.pinned_fraction = a.pinned;
  const workloads::ChurnGenerator gen(p);
  std::vector<Obj> slots(gen.slots());
  std::vector<Obj> pinned;
  pinned.reserve(gen.pinned_capacity(0));
  ChurnExec ex{be, slots, pinned};
  uint64_t work_ns = 0, objects = 0;
  double peak = 0, post = 0;
  for (uint64_t c = 0; c < gen.rounds(); ++c) {
    gen.begin_round(c, ex);
    const uint64_t t0 = mono_ns();
    gen.alloc_phase(c, 0, ex);
    const uint64_t t1 = mono_ns();
    peak = std::max(peak, double(pages::rss_bytes()));
    const uint64_t t2 = mono_ns();
    gen.free_phase(c, 0, ex);
    gen.end_round(c, ex);
    const uint64_t t3 = mono_ns();
    work_ns += (t1 - t0) + (t3 - t2);
    objects += gen.objects_per_round();
    if (c >= a.cycles / 10) post = std::max(post, double(pages::rss_bytes()));
  }
  ChurnResult r;
  r.ns_per_object = double(work_ns) / double(objects);
  r.post_free_rss_mib = post / 1048576.0;
  r.peak_rss_mib = peak / 1048576.0;
  r.live_mib = double(ex.pinned_live_bytes) / 1048576.0;
  r.committed_mib = be.s ? double(be.s->stats_global().committed_bytes) / 1048576.0 : -1;
  for (auto& o : pinned) be.release(o);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  const char* pre = std::getenv("LD_PRELOAD");
  const std::string label = a.mode == "slab" ? "temporal-slab" : (pre ? pre : "glibc");
  if (a.workload == "alternating" || a.workload == "both") {
    const double tpn = tsc_per_ns();
    std::vector<double> al[5], fr[5], tput, timer;
    for (int r = 0; r < a.runs; ++r) {
      AltResult x = run_alternating(a, tpn);
      for (int k = 0; k < 5; ++k) {
        al[k].push_back(x.alloc[k]);
        fr[k].push_back(x.free_[k]);
      }
      tput.push_back(x.pairs_per_sec);
      timer.push_back(x.timer_ns);
      std::fprintf(stderr,
                   "  run %d: alloc p50/p99/p99.9 %.0f/%.0f/%.0f ns, free p50/p99/p99.9 "
                   "%.0f/%.0f/%.0f ns, %.1f M pairs/s\n",
                   r, x.alloc[0], x.alloc[2], x.alloc[3], x.free_[0], x.free_[2], x.free_[3],
                   x.pairs_per_sec / 1e6);
    }
    std::printf(
        "{\"bench\":\"alternating\",\"allocator\":\"%s\",\"runs\":%d,\"steps\":%zu,\"live_slots\":%zu,"
        "\"timer_overhead_ns\":%.1f,\"alloc_ns\":{\"p50\":%.0f,\"p90\":%.0f,\"p99\":%.0f,\"p999\":%.0f,"
        "\"max\":%.0f},\"free_ns\":{\"p50\":%.0f,\"p90\":%.0f,\"p99\":%.0f,\"p999\":%.0f,\"max\":%.0f},"
        "\"pairs_per_sec\":%.0f}\n",
        label.c_str(), a.runs, a.steps, a.live, median(timer), median(al[0]), median(al[1]),
        median(al[2]), median(al[3]), median(al[4]), median(fr[0]), median(fr[1]), median(fr[2]),
        median(fr[3]), median(fr[4]), median(tput));
  }
  if (a.workload == "churn" || a.workload == "both") {
    std::vector<double> npo, post, live, comm, peak;
    for (int r = 0; r < a.runs; ++r) {
      ChurnResult x = run_churn(a);
      npo.push_back(x.ns_per_object);
      post.push_back(x.post_free_rss_mib);
      live.push_back(x.live_mib);
      comm.push_back(x.committed_mib);
      peak.push_back(x.peak_rss_mib);
      std::fprintf(stderr,
                   "  run %d: churn %.1f ns/object, peak RSS %.1f MiB, post-free RSS %.1f MiB, "
                   "live %.1f MiB, committed %.1f MiB\n",
                   r, x.ns_per_object, x.peak_rss_mib, x.post_free_rss_mib, x.live_mib,
                   x.committed_mib);
    }
    std::printf(
        "{\"bench\":\"churn\",\"allocator\":\"%s\",\"runs\":%d,\"cycles\":%zu,\"objects_per_cycle\":%zu,"
        "\"reclaim\":\"%s\",\"thp\":%s,\"ns_per_object\":%.1f,\"peak_rss_mib\":%.1f,"
        "\"post_free_rss_mib\":%.1f,\"live_mib\":%.1f,\"committed_mib\":%.1f}\n",
        label.c_str(), a.runs, a.cycles, a.objects, reclaim_policy_name(a.reclaim),
        a.thp ? "true" : "false", median(npo), median(peak), median(post), median(live),
        median(comm));
  }
  return 0;
}
