// Workload "varslot-growth" (issue 13, seed 000): a host and `guests` guest
// processes (children of build/znslab, made by fork) share one src/varslot
// pool that starts at `initial_bytes` and grows by 16 MiB extents while
// every process allocates slots of a size mix, writes patterned payloads,
// verifies them, passes some handles to other processes (transfer + a
// shared ring) to free, and frees.
//
// Operations (VarslotDriver, below): each process keeps per class a target
// of live slots (live_bytes split evenly over the classes and processes).
// A step picks a class by `op_weights`; below target it allocates (a size
// within the class), writes the payload pattern and holds the slot; at
// target it releases one held slot of that class: verifies the pattern,
// then frees it, or every `pass_every`-th time transfers it to another
// process, which verifies and frees it. Every `timed_every`-th step also
// runs one alloc + free of one slot timed together (alloc_free_ns). An op
// is one allocation or one free (a timed pair counts two).
//
// Summary: growth_events, remaps (new mappings over all processes),
// grow_ns {p50,p99,...} (host, per growth, wall), grow_cpu_ns (the same
// growths' CPU time on the growing thread), alloc_free_ns {p50,p99,...}
// (pooled over processes), segment_bytes_final (current_size),
// segment_allocated_bytes (tmpfs blocks of the files), live_bytes_peak
// (class bytes of live slots, sampled sum over processes, and at least each
// process's own peak), segment_over_peak (segment_bytes_final /
// live_bytes_peak), fixed_segment_bytes (what `fixed` sizing needs for this
// peak without knowing the mix: every class sized to hold live_bytes),
// fallback_allocs, corruptions (payloads that failed verification: must be
// 0), handle_errors (a held handle refused: must be 0), alloc_failures,
// recovered_slots, killed_guests, leaked_slots (allocated after everyone
// finished: must be 0), ops, ops_per_sec.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "harness/counters.h"
#include "harness/config.h"
#include "harness/registry.h"
#include "harness/result.h"
#include "harness/sampler.h"
#include "harness/timer.h"
#include "src/pages/pages.h"
#include "src/varslot/pool.h"

namespace znslab::harness {
namespace {

using nlohmann::json;
using varslot::Handle;
using varslot::Pool;

constexpr uint32_t kMaxProcs = 16;
constexpr uint32_t kRing = 32;  // bounds the handles in flight per pair

// ---- shared control block (MAP_SHARED anonymous, made before fork) --------
struct alignas(64) Ring {  // single producer, single consumer
  std::atomic<uint32_t> head{0}, tail{0};
  uint64_t h[kRing];
};

struct alignas(64) ProcShared {
  std::atomic<uint32_t> peer{0}, ready{0}, done{0}, dead{0};
  std::atomic<uint64_t> ops{0}, live_bytes{0}, live_peak{0};
  std::atomic<uint64_t> inflight_bytes{0};  // passed to this process, not yet freed
  std::atomic<uint64_t> corruptions{0}, handle_errors{0}, alloc_failures{0};
  std::atomic<uint64_t> passed{0}, remaps{0};
  LatencyHistogram alloc_free;  // written once by the process at its end
};
static_assert(std::is_trivially_copyable_v<LatencyHistogram>);

struct Control {
  std::atomic<uint32_t> start{0}, stop_passing{0};
  // kill_guest: nobody releases its slots at the end until the host has
  // killed guest 1 (so the kill always finds it holding slots).
  std::atomic<uint32_t> hold{0};
  std::atomic<uint64_t> live_peak{0};  // max over time of the sum of live + in-flight bytes
  ProcShared proc[kMaxProcs];
  Ring ring[kMaxProcs][kMaxProcs];  // [from][to]
};

// ---- payload pattern -------------------------------------------------------
// Word 0 holds the handle; words spread over the slot (at most 8, plus the
// last word) hold a mix of the handle and their index. Two owners of one
// slot, or a write past a slot, break it.
inline uint64_t mix(uint64_t raw, uint64_t i) noexcept {
  uint64_t x = raw * 0x9E3779B97F4A7C15ull + i * 0xBF58476D1CE4E5B9ull;
  return x ^ (x >> 29);
}
void write_payload(uint8_t* p, uint32_t bytes, Handle h) noexcept {
  const uint32_t words = bytes / 8, stride = std::max<uint32_t>(1, words / 8);
  std::memcpy(p, &h.raw, 8);
  for (uint32_t w = 1; w < words; w += stride) {
    uint64_t v = mix(h.raw, w);
    std::memcpy(p + 8 * size_t(w), &v, 8);
  }
  uint64_t v = mix(h.raw, words - 1);
  std::memcpy(p + 8 * size_t(words - 1), &v, 8);
}
bool verify_payload(const uint8_t* p, uint32_t bytes, Handle h) noexcept {
  const uint32_t words = bytes / 8, stride = std::max<uint32_t>(1, words / 8);
  uint64_t v;
  std::memcpy(&v, p, 8);
  if (v != h.raw) return false;
  for (uint32_t w = 1; w < words; w += stride) {
    std::memcpy(&v, p + 8 * size_t(w), 8);
    if (v != mix(h.raw, w)) return false;
  }
  std::memcpy(&v, p + 8 * size_t(words - 1), 8);
  return v == mix(h.raw, words - 1);
}

// ---- the operation logic of one process (no timing, no JSON) --------------
class VarslotDriver {
 public:
  VarslotDriver(Pool& pool, Control& ctl, uint32_t me, uint32_t nprocs, const std::vector<uint64_t>& target,
                const std::vector<double>& weights, uint32_t pass_every, uint64_t seed)
      : pool_(pool), ctl_(ctl), me_(me), nprocs_(nprocs), target_(target), held_(target.size()),
        pick_(weights.begin(), weights.end()), pass_every_(pass_every), rng_(seed) {}

  // One step: an allocation or a release of class picked by the weights.
  // Returns the ops done (1, or 0 when allocation failed).
  uint32_t step() noexcept {
    const uint32_t c = uint32_t(pick_(rng_));
    auto& v = held_[c];
    if (v.size() < target_[c]) {
      auto h = pool_.alloc(request_size(c));
      if (!h) {
        ps().alloc_failures.fetch_add(1, std::memory_order_relaxed);
        return 0;
      }
      uint8_t* p = pool_.ptr(*h);
      if (!p) {
        ps().handle_errors.fetch_add(1, std::memory_order_relaxed);
        return 1;
      }
      write_payload(p, pool_.slot_size(*h), *h);
      v.push_back(*h);
      add_live(pool_.slot_size(*h));
      return 1;
    }
    if (v.empty()) return 0;
    const size_t k = rng_() % v.size();
    const Handle h = v[k];
    v[k] = v.back();
    v.pop_back();
    sub_live(pool_.slot_size(h));
    if (pass_every_ && ++since_pass_ >= pass_every_ && nprocs_ > 1 &&
        !ctl_.stop_passing.load(std::memory_order_relaxed)) {
      since_pass_ = 0;
      if (pass(h)) return 0;  // the receiver's free is its op
    }
    release(h);
    return 1;
  }

  // One alloc + free of the same slot; returns its duration in ns, or 0
  // when the allocation failed.
  uint64_t timed_pair() noexcept {
    const uint32_t c = uint32_t(pick_(rng_));
    const uint32_t sz = request_size(c);
    const uint64_t t0 = timer_start();
    auto h = pool_.alloc(sz);
    if (!h) return 0;
    Status s = pool_.free(*h);
    const uint64_t t1 = timer_stop();
    if (!s) ps().handle_errors.fetch_add(1, std::memory_order_relaxed);
    return std::max<uint64_t>(1, ticks_to_ns(t1 - t0));
  }

  // Frees what other processes passed to this one. Returns frees done.
  uint32_t drain() noexcept {
    uint32_t n = 0;
    for (uint32_t from = 0; from < nprocs_; ++from) {
      Ring& r = ctl_.ring[from][me_];
      uint32_t t = r.tail.load(std::memory_order_relaxed);
      const uint32_t hd = r.head.load(std::memory_order_acquire);
      while (t != hd) {
        Handle h{r.h[t % kRing]};
        ++t;
        r.tail.store(t, std::memory_order_release);
        release(h);
        ps().inflight_bytes.fetch_sub(pool_.slot_size(h), std::memory_order_relaxed);
        ++n;
      }
    }
    return n;
  }

  // Folds the current sum of live and in-flight bytes over all processes
  // into ctl.live_peak (called every few steps: P cache lines read).
  void note_global_live() noexcept {
    uint64_t sum = 0;
    for (uint32_t i = 0; i < nprocs_; ++i)
      if (!ctl_.proc[i].dead.load(std::memory_order_relaxed))
        sum += ctl_.proc[i].live_bytes.load(std::memory_order_relaxed) +
               ctl_.proc[i].inflight_bytes.load(std::memory_order_relaxed);
    uint64_t cur = ctl_.live_peak.load(std::memory_order_relaxed);
    while (sum > cur && !ctl_.live_peak.compare_exchange_weak(cur, sum, std::memory_order_relaxed)) {
    }
  }

  // Releases everything held (end of the run). Returns frees done.
  uint64_t release_all() noexcept {
    uint64_t n = 0;
    for (auto& v : held_) {
      for (Handle h : v) {
        sub_live(pool_.slot_size(h));
        release(h);
        ++n;
      }
      v.clear();
    }
    return n;
  }

 private:
  ProcShared& ps() noexcept { return ctl_.proc[me_]; }
  uint32_t request_size(uint32_t c) noexcept {
    const uint32_t hi = pool_.class_size(c), lo = c ? pool_.class_size(c - 1) : 0;
    return lo + 1 + uint32_t(rng_() % (hi - lo));
  }
  void add_live(uint64_t b) noexcept {
    live_ += b;
    ps().live_bytes.store(live_, std::memory_order_relaxed);
    if (live_ > peak_) ps().live_peak.store(peak_ = live_, std::memory_order_relaxed);
  }
  void sub_live(uint64_t b) noexcept {
    live_ -= b;
    ps().live_bytes.store(live_, std::memory_order_relaxed);
  }
  // Verifies the payload, then frees.
  void release(Handle h) noexcept {
    const uint8_t* p = pool_.ptr(h);
    if (!p) {
      ps().handle_errors.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (!verify_payload(p, pool_.slot_size(h), h)) ps().corruptions.fetch_add(1, std::memory_order_relaxed);
    if (!pool_.free(h)) ps().handle_errors.fetch_add(1, std::memory_order_relaxed);
  }
  // Transfers ownership to a live process and enqueues; false if not possible.
  bool pass(Handle h) noexcept {
    const uint32_t to = (me_ + 1 + uint32_t(rng_() % (nprocs_ - 1))) % nprocs_;
    ProcShared& dst = ctl_.proc[to];
    if (dst.dead.load(std::memory_order_acquire) || dst.done.load(std::memory_order_acquire)) return false;
    Ring& r = ctl_.ring[me_][to];
    const uint32_t hd = r.head.load(std::memory_order_relaxed);
    if (hd - r.tail.load(std::memory_order_acquire) >= kRing) return false;
    if (!pool_.transfer(h, dst.peer.load(std::memory_order_acquire))) return false;
    dst.inflight_bytes.fetch_add(pool_.slot_size(h), std::memory_order_relaxed);
    r.h[hd % kRing] = h.raw;
    r.head.store(hd + 1, std::memory_order_release);
    ps().passed.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  Pool& pool_;
  Control& ctl_;
  uint32_t me_, nprocs_;
  std::vector<uint64_t> target_;
  std::vector<std::vector<Handle>> held_;
  std::discrete_distribution<uint32_t> pick_;
  uint32_t pass_every_, since_pass_ = 0;
  std::mt19937_64 rng_;
  uint64_t live_ = 0, peak_ = 0;
};

// ---- the process loop (measurement) -----------------------------------------
struct Share {
  uint64_t ops;
  uint32_t timed_every;
};

// Runs `share.ops` ops in this process; `on_tick` every 1024 steps (host:
// kill_guest). Leaves the histogram and counters in ctl.proc[me].
template <typename Tick>
void run_process(VarslotDriver& d, Control& ctl, uint32_t me, uint32_t nprocs, Share share, Tick on_tick) {
  ProcShared& ps = ctl.proc[me];
  LatencyHistogram hist;
  uint64_t ops = 0, steps = 0;
  while (ops < share.ops) {
    ops += d.step();
    ++steps;
    if (share.timed_every && steps % share.timed_every == 0) {
      uint64_t ns = d.timed_pair();
      if (ns) {
        hist.record(ns);
        ops += 2;
      }
    }
    if ((steps & 3) == 0) ops += d.drain();
    if ((steps & 63) == 0) d.note_global_live();
    if ((steps & 1023) == 0) {
      ps.ops.store(ops, std::memory_order_relaxed);
      on_tick();
    }
  }
  // Stop passing, wait for everyone (dead guests count), then drain and free all.
  ps.done.store(1, std::memory_order_release);
  for (;;) {
    on_tick();
    ops += d.drain();
    uint32_t finished = 0;
    for (uint32_t i = 0; i < nprocs; ++i)
      finished += ctl.proc[i].done.load(std::memory_order_acquire) | ctl.proc[i].dead.load(std::memory_order_acquire);
    if (finished >= nprocs && !ctl.hold.load(std::memory_order_acquire)) break;
    ::usleep(200);
  }
  ops += d.drain();
  ops += d.release_all();
  ops += d.drain();
  ps.ops.store(ops, std::memory_order_relaxed);
  std::memcpy(static_cast<void*>(&ps.alloc_free), &hist, sizeof hist);
}

uint64_t file_blocks_bytes(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? uint64_t(st.st_blocks) * 512 : 0;
}
uint64_t fd_blocks_bytes(int fd) {
  struct stat st;
  return ::fstat(fd, &st) == 0 ? uint64_t(st.st_blocks) * 512 : 0;
}

class VarslotGrowth final : public Workload {
 public:
  json defaults() const override {
    return json{{"workload", "varslot-growth"},
                {"guests", 3},
                {"growth", "remap"},
                {"segment", "file"},
                {"initial_bytes", 33554432},
                {"ops", 4000000},
                {"kill_guest", false},
                {"live_bytes", 251658240},
                {"class_sizes", json::array({1024, 16384, 262144, 4194304})},
                {"op_weights", json::array({0.8, 0.16, 0.035, 0.005})},
                {"extent_bytes", 16777216},
                {"max_bytes", 4294967296},
                {"pass_every", 8},
                {"timed_every", 4},
                {"sample_ms", 100},
                {"service_nice", 0},
                {"grow_staging", true},
                {"grow_rt_priority", 1},
                {"dir", "/dev/shm"},
                {"seed", 1}};
  }

  void validate(const json& c) const override {
    check_int_range(c, "guests", 1, kMaxProcs - 1);
    check_one_of(c, "growth", {"remap", "extent_files", "fixed"});
    check_one_of(c, "segment", {"file", "memfd"});
    if (cfg_str(c, "segment") == "memfd" && cfg_str(c, "growth") == "extent_files")
      throw_key_error("segment", "memfd works with growth remap or fixed (extent_files needs one named file per extent)");
    check_int_range(c, "initial_bytes", 0, int64_t(1) << 40);
    check_int_range(c, "ops", 1, int64_t(1) << 40);
    check_int_range(c, "live_bytes", 1 << 20, int64_t(1) << 40);
    check_int_range(c, "extent_bytes", 4096, int64_t(1) << 34);
    check_int_range(c, "max_bytes", 1 << 20, int64_t(1) << 44);
    check_int_range(c, "pass_every", 0, 1 << 20);
    check_int_range(c, "timed_every", 0, 1 << 20);
    check_int_range(c, "sample_ms", 1, 60000);
    check_int_range(c, "service_nice", -20, 19);
    check_int_range(c, "grow_rt_priority", 0, 99);
    check_int_range(c, "seed", 0, INT64_MAX);
    const json& cs = c.at("class_sizes");
    const json& w = c.at("op_weights");
    if (!cs.is_array() || cs.empty() || cs.size() > varslot::kMaxClasses)
      throw_key_error("class_sizes", "expected 1..8 slot sizes (bytes)");
    int64_t prev = 0;
    for (auto& v : cs) {
      if (!v.is_number_integer() || v.get<int64_t>() <= prev || v.get<int64_t>() % 64 != 0 ||
          v.get<int64_t>() > cfg_int(c, "extent_bytes"))
        throw_key_error("class_sizes", "sizes must be ascending multiples of 64, each <= extent_bytes");
      prev = v.get<int64_t>();
    }
    if (!w.is_array() || w.size() != cs.size())
      throw_key_error("op_weights", "expected one weight per class");
    double sum = 0;
    for (auto& v : w) {
      if (!v.is_number() || v.get<double>() < 0) throw_key_error("op_weights", "weights must be numbers >= 0");
      sum += v.get<double>();
    }
    if (sum <= 0) throw_key_error("op_weights", "at least one weight must be > 0");
    if (cfg_str(c, "dir").empty()) throw_key_error("dir", "must name a folder (e.g. /dev/shm)");
  }

  void run(RunContext& ctx) override {
    const json& c = ctx.config;
    const uint32_t guests = uint32_t(cfg_u64(c, "guests")), nprocs = guests + 1;
    const std::string growth = cfg_str(c, "growth");
    const uint64_t ops = cfg_u64(c, "ops"), live_bytes = cfg_u64(c, "live_bytes");
    const uint64_t extent_bytes = cfg_u64(c, "extent_bytes");
    const bool kill_guest = cfg_bool(c, "kill_guest");
    const auto class_sizes = c["class_sizes"].get<std::vector<uint32_t>>();
    const auto weights = c["op_weights"].get<std::vector<double>>();
    ResultDoc& doc = *ctx.result;

    varslot::PoolOptions po;
    po.path = cfg_str(c, "dir") + "/znslab-varslot-" + std::to_string(::getpid());
    // segment=memfd: no file; guests (forked below) inherit the host's
    // descriptor and attach through it.
    po.memfd = cfg_str(c, "segment") == "memfd";
    if (po.memfd) po.path = "znslab-varslot-" + std::to_string(::getpid());
    (void)varslot::parse_growth_mode(growth, &po.mode);
    po.class_sizes = class_sizes;
    po.extent_bytes = extent_bytes;
    po.initial_bytes = cfg_u64(c, "initial_bytes");
    po.max_bytes = cfg_u64(c, "max_bytes");
    po.stage_growth = cfg_bool(c, "grow_staging");
    po.grow_rt_priority = int(cfg_int(c, "grow_rt_priority"));
    // fixed: every class sized to hold the whole live set (the mix is not
    // known in advance), at most 16 extents.
    const uint64_t per_class_extents = (live_bytes + extent_bytes - 1) / extent_bytes;
    po.fixed_extents = uint32_t(std::min<uint64_t>(varslot::kMaxExtents, std::max<uint64_t>(1, per_class_extents)));
    // Live-slot targets per class and process: live_bytes split evenly.
    std::vector<uint64_t> target;
    for (uint32_t sz : class_sizes) target.push_back(live_bytes / class_sizes.size() / sz / nprocs);

    timer_calibration();
    doc.doc()["timer"] = timer_json();
    auto ctl_mem = pages::map_shared_anonymous(sizeof(Control));
    if (!ctl_mem) throw RunError("varslot-growth: control block: " + ctl_mem.status().to_string());
    Control& ctl = *new (*ctl_mem) Control();
    struct Unmap {
      void* p;
      ~Unmap() { (void)pages::unmap(p, sizeof(Control)); }
    } unmap_ctl{*ctl_mem};

    auto hr = Pool::create(po);
    if (!hr) throw RunError("varslot-growth: creating the pool at " + po.path + ": " + hr.status().to_string());
    Pool& host = **hr;
    struct Unlink {
      Pool& p;
      ~Unlink() { (void)p.unlink_files(); }
    } unlink_files{host};
    const uint64_t initial_segment = host.stats().segment_bytes;
    doc.set_allocator({{"name", "varslot-" + growth},
                       {"version", "1"},
                       {"options",
                        {{"growth", growth},
                         {"segment", cfg_str(c, "segment")},
                         {"path", po.path},
                         {"class_sizes", class_sizes},
                         {"extent_bytes", extent_bytes},
                         {"max_extents", po.max_extents},
                         {"fixed_extents", po.fixed_extents},
                         {"initial_segment_bytes", initial_segment},
                         {"live_slot_targets_per_process", target}}}});

    const uint64_t share_ops = ops / nprocs;
    const Share share{share_ops, uint32_t(cfg_u64(c, "timed_every"))};
    const uint64_t seed = cfg_u64(c, "seed");
    const uint32_t pass_every = uint32_t(cfg_u64(c, "pass_every"));

    // Guests: fork before any thread starts in this process.
    std::vector<pid_t> pids(nprocs, 0);
    for (uint32_t i = 1; i < nprocs; ++i) {
      std::fflush(nullptr);  // a child must not repeat buffered output
      pid_t pid = ::fork();
      if (pid < 0) throw RunError(std::string("varslot-growth: fork: ") + std::strerror(errno));
      if (pid == 0) {
        int rc = 0;
        {
          auto g = po.memfd ? Pool::attach_fd(host.segment_fd()) : Pool::attach(po.path);
          if (!g) _exit(2);
          ctl.proc[i].peer.store((*g)->peer_id(), std::memory_order_release);
          ctl.proc[i].ready.store(1, std::memory_order_release);
          while (!ctl.start.load(std::memory_order_acquire)) ::usleep(100);
          VarslotDriver d(**g, ctl, i, nprocs, target, weights, pass_every, seed * 1000 + i);
          run_process(d, ctl, i, nprocs, share, [] {});
          ctl.proc[i].remaps.store((*g)->stats().remaps, std::memory_order_relaxed);
        }
        _exit(rc);
      }
      pids[i] = pid;
    }
    ctl.proc[0].peer.store(host.peer_id());
    for (uint32_t i = 1; i < nprocs; ++i)
      while (!ctl.proc[i].ready.load(std::memory_order_acquire)) {
        int st;
        if (::waitpid(pids[i], &st, WNOHANG) == pids[i])
          throw RunError("varslot-growth: guest " + std::to_string(i) + " exited before starting");
        ::usleep(200);
      }
    // grow_rt_priority: the service thread (which then does every growth)
    // runs under SCHED_FIFO.
    host.start_service(1, int(cfg_int(c, "service_nice")), int(cfg_int(c, "grow_rt_priority")));

    // Samples: segment size, extents, live bytes (sum over processes).
    std::mutex smu;
    std::vector<json> samples;
    uint64_t live_peak_sampled = 0;
    const uint64_t t0 = monotonic_ns();
    auto take_sample = [&] {
      uint64_t live = 0, done_ops = 0;
      for (uint32_t i = 0; i < nprocs; ++i) {
        if (!ctl.proc[i].dead.load(std::memory_order_relaxed))
          live += ctl.proc[i].live_bytes.load(std::memory_order_relaxed) +
                  ctl.proc[i].inflight_bytes.load(std::memory_order_relaxed);
        done_ops += ctl.proc[i].ops.load(std::memory_order_relaxed);
      }
      varslot::PoolStats s = host.stats();
      json j{{"t_ns", doc.elapsed_ns()}, {"phase", "run"}, {"live_bytes", live}, {"segment_bytes", s.segment_bytes},
             {"growth_events", s.growth_events}, {"ops", done_ops}};
      std::lock_guard<std::mutex> g(smu);
      live_peak_sampled = std::max(live_peak_sampled, live);
      samples.push_back(std::move(j));
    };
    PeriodicSampler sampler;
    sampler.start(uint32_t(cfg_u64(c, "sample_ms")), take_sample);

    bool killed = false;
    uint32_t killed_peer = 0;
    std::vector<int> reaped(nprocs, -1);  // wait status of guests that exited early
    uint64_t ticks = 0;
    auto tick = [&] {
      // A guest that exited on its own (failure) must not keep the others
      // waiting for it at the end.
      if ((++ticks & 15) == 0)
        for (uint32_t i = 1; i < nprocs; ++i) {
          int st = 0;
          if (reaped[i] < 0 && ::waitpid(pids[i], &st, WNOHANG) == pids[i]) {
            reaped[i] = st;
            ctl.proc[i].dead.store(1, std::memory_order_release);
            if (i == 1) ctl.hold.store(0, std::memory_order_release);
          }
        }
      if (!kill_guest || killed) return;
      uint64_t done_ops = 0;
      for (uint32_t i = 0; i < nprocs; ++i) done_ops += ctl.proc[i].ops.load(std::memory_order_relaxed);
      // Half the ops done (or the host's share done: the others may be
      // behind), and guest 1 holds slots.
      if ((done_ops < ops / 2 && !ctl.proc[0].done.load(std::memory_order_acquire)) ||
          ctl.proc[1].live_bytes.load(std::memory_order_relaxed) == 0)
        return;
      killed_peer = ctl.proc[1].peer.load();
      ctl.proc[1].dead.store(1, std::memory_order_release);
      ::kill(pids[1], SIGKILL);
      killed = true;
      ctl.hold.store(0, std::memory_order_release);
      if (ctx.progress) std::fprintf(stderr, "varslot-growth: killed guest 1 (pid %d) at %" PRIu64 " ops\n", int(pids[1]), done_ops);
    };
    ctl.hold.store(kill_guest ? 1 : 0, std::memory_order_release);
    ctl.start.store(1, std::memory_order_release);
    {
      VarslotDriver d(host, ctl, 0, nprocs, target, weights, pass_every, seed * 1000);
      run_process(d, ctl, 0, nprocs, share, tick);
    }
    std::string child_errors;
    for (uint32_t i = 1; i < nprocs; ++i) {
      int st = reaped[i];
      if (st < 0) ::waitpid(pids[i], &st, 0);
      const bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
      if (!ok && !(killed && i == 1))
        child_errors += " guest " + std::to_string(i) + " status " + std::to_string(st);
    }
    const uint64_t t_run = monotonic_ns() - t0;
    sampler.stop();
    take_sample();
    host.stop_service();
    host.serve(0);  // a guest that died at the very end
    if (killed) host.reclaim_peer(killed_peer);  // handles passed to it after its reclaim
    for (auto& s : samples) doc.add_sample(std::move(s));

    // Aggregate.
    LatencyHistogram af;
    uint64_t total_ops = 0, corruptions = 0, handle_errors = 0, alloc_failures = 0, passed = 0, remaps = 0,
             peak_sum_own = 0;
    for (uint32_t i = 0; i < nprocs; ++i) {
      ProcShared& p = ctl.proc[i];
      total_ops += p.ops.load();
      corruptions += p.corruptions.load();
      handle_errors += p.handle_errors.load();
      alloc_failures += p.alloc_failures.load();
      passed += p.passed.load();
      remaps += i == 0 ? host.stats().remaps : p.remaps.load();
      peak_sum_own = std::max(peak_sum_own, p.live_peak.load());
      if (!(killed && i == 1)) af.merge(p.alloc_free);
    }
    LatencyHistogram grow;
    for (uint64_t ns : host.grow_durations_ns()) grow.record(ns);
    LatencyHistogram grow_cpu;
    for (uint64_t ns : host.grow_cpu_ns()) grow_cpu.record(ns);
    // Where the growths' wall time went (outside the summary: diagnostics).
    {
      static const char* const kPhase[varslot::kGrowPhases] = {"truncate", "map", "init", "publish", "wake"};
      LatencyHistogram ph[varslot::kGrowPhases];
      uint64_t preempted = 0;
      const auto phases = host.grow_phases();
      for (const auto& g : phases) {
        for (uint32_t i = 0; i < varslot::kGrowPhases; ++i) ph[i].record(std::max<uint64_t>(1, g.ns[i]));
        preempted += g.preemptions ? 1 : 0;
      }
      json j;
      for (uint32_t i = 0; i < varslot::kGrowPhases; ++i) j[kPhase[i]] = ph[i].to_json();
      j["growths_preempted"] = preempted;
      j["rt_refused"] = host.grow_rt_refused();
      j["service_rt_applied"] = host.service_rt_ok();
      j["growths"] = phases.size();
      doc.doc()["grow_phases_ns"] = std::move(j);
    }
    varslot::PoolStats s = host.stats();
    uint64_t leaked = 0;
    for (uint32_t k = 0; k < host.class_count(); ++k) {
      uint64_t f = 0, a = 0;
      host.count_slots(k, &f, &a);
      leaked += a;
    }
    uint64_t allocated = po.memfd ? fd_blocks_bytes(host.segment_fd()) : file_blocks_bytes(po.path);
    if (po.mode == varslot::GrowthMode::kExtentFiles)
      for (uint32_t k = 0; k < host.class_count(); ++k)
        for (uint32_t e = 0; e < s.extents[k]; ++e)
          allocated += file_blocks_bytes(po.path + ".c" + std::to_string(k) + ".e" + std::to_string(e));
    const uint64_t live_peak = std::max({live_peak_sampled, peak_sum_own, ctl.live_peak.load()});
    uint64_t fixed_bytes = varslot::kHeaderBytes;
    for (uint32_t sz : class_sizes) {
      uint64_t slots = extent_bytes / sz, d = 0;
      fixed_bytes += uint64_t(po.fixed_extents) * varslot::extent_layout_bytes(sz, uint32_t(slots), &d);
    }

    doc.set_latency("alloc_free", af);
    json& sum = doc.summary();
    sum["growth"] = growth;
    sum["processes"] = nprocs;
    sum["growth_events"] = s.growth_events;
    sum["growth_refused"] = s.growth_refused;
    sum["remaps"] = remaps;
    sum["grow_ns"] = grow.to_json();
    sum["grow_cpu_ns"] = grow_cpu.to_json();
    sum["service_nice_applied"] = host.service_nice_ok();
    sum["alloc_free_ns"] = af.to_json();
    sum["segment_bytes_initial"] = initial_segment;
    sum["segment_bytes_final"] = s.segment_bytes;
    sum["segment_allocated_bytes"] = allocated;
    sum["live_bytes_peak"] = live_peak;
    sum["segment_over_peak"] = live_peak ? double(s.segment_bytes) / double(live_peak) : 0.0;
    sum["fixed_segment_bytes"] = fixed_bytes;
    sum["fixed_over_peak"] = live_peak ? double(fixed_bytes) / double(live_peak) : 0.0;
    sum["fallback_allocs"] = s.fallback_allocs;
    sum["corruptions"] = corruptions;
    sum["handle_errors"] = handle_errors;
    sum["alloc_failures"] = alloc_failures;
    sum["double_frees"] = s.double_frees;
    sum["stale_handles"] = s.stale_handles;
    sum["recovered_slots"] = s.recovered_slots;
    sum["killed_guests"] = killed ? 1 : 0;
    sum["leaked_slots"] = leaked;
    sum["passed_handles"] = passed;
    sum["extents"] = std::vector<uint32_t>(s.extents, s.extents + host.class_count());
    sum["pool_stats"] = counters_json(s);  // every PoolStats counter of the host (src/varslot/pool.h)
    sum["ops"] = total_ops;
    sum["run_seconds"] = double(t_run) / 1e9;
    sum["ops_per_sec"] = t_run ? double(total_ops) * 1e9 / double(t_run) : 0.0;
    if (ctx.progress)
      std::fprintf(stderr,
                   "varslot-growth %s: %u processes, %" PRIu64 " ops in %.2f s (%.2f Mops/s); growths %" PRIu64
                   " (grow p99 %" PRIu64 " us), alloc+free p50 %" PRIu64 " ns p99 %" PRIu64
                   " ns; segment %.1f MiB / live peak %.1f MiB = %.3f (fixed %.3f); corruptions %" PRIu64
                   ", recovered %" PRIu64 ", leaked %" PRIu64 "\n",
                   growth.c_str(), nprocs, total_ops, double(t_run) / 1e9, double(total_ops) / double(t_run) * 1e3,
                   s.growth_events, grow.percentile(0.99) / 1000, af.percentile(0.5), af.percentile(0.99),
                   double(s.segment_bytes) / 1048576.0, double(live_peak) / 1048576.0,
                   sum["segment_over_peak"].get<double>(), sum["fixed_over_peak"].get<double>(), corruptions,
                   s.recovered_slots, leaked);
    if (!child_errors.empty()) throw RunError("varslot-growth: guests failed:" + child_errors);
    if (corruptions || handle_errors)
      throw RunError("varslot-growth: " + std::to_string(corruptions) + " corrupted payloads, " +
                     std::to_string(handle_errors) + " held handles refused");
  }
};

Registrar reg{WorkloadInfo{"varslot-growth",
                           "host + guest processes on a shared slot pool that grows by extents",
                           [] { return std::make_unique<VarslotGrowth>(); }}};

}  // namespace
}  // namespace znslab::harness
