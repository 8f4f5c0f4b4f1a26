// The temporal-slab adapter: src/slab through its public API (src/slab/slab.h).
// Allocator options come from the workload keys slab_<field>, one per
// slab::Options field (harness/slab_options.h), when present.
#include <mutex>
#include <string>
#include <vector>

#include "harness/allocators.h"
#include "harness/peers.h"
#include "harness/registry.h"
#include "harness/result.h"
#include "harness/slab_options.h"
#include "src/slab/slab.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

// The runner's slab::EventSink: records epoch closes and decommits with
// their time into storage reserved up front (no allocation in the
// callbacks, which run on the allocator's cold paths); events past the
// capacity are counted, not stored.
class TimelineSink final : public slab::EventSink {
 public:
  static constexpr size_t kCapacity = 1 << 16;
  TimelineSink() { events_.reserve(kCapacity); }
  void on_epoch_close(const slab::EpochStats& e) override {
    Event ev{monotonic_ns(), Kind::kEpochClose, e.epoch, e.committed_bytes, e.live_objects, e.rss_before_close,
             e.rss_after_close};
    push(ev);
  }
  void on_decommit(uint64_t bytes, uint64_t ranges) override {
    push(Event{monotonic_ns(), Kind::kDecommit, 0, bytes, ranges, 0, 0});
  }
  json to_json(uint64_t t0) const {
    std::lock_guard<std::mutex> g(mu_);
    json out = json::array();
    for (const Event& e : events_) {
      json j{{"t_ns", e.t >= t0 ? e.t - t0 : 0}};
      if (e.kind == Kind::kEpochClose) {
        j["event"] = "epoch_close";
        j["epoch"] = e.epoch;
        j["committed_bytes"] = e.a;
        j["live_objects"] = e.b;
        j["rss_before_close"] = e.c;
        j["rss_after_close"] = e.d;
      } else {
        j["event"] = "decommit";
        j["bytes"] = e.a;
        j["ranges"] = e.b;
      }
      out.push_back(std::move(j));
    }
    if (dropped_) out.push_back(json{{"t_ns", nullptr}, {"event", "dropped"}, {"count", dropped_}});
    return out;
  }

 private:
  enum class Kind : uint8_t { kEpochClose, kDecommit };
  struct Event {
    uint64_t t;
    Kind kind;
    uint32_t epoch;
    uint64_t a, b, c, d;
  };
  void push(const Event& e) {
    std::lock_guard<std::mutex> g(mu_);
    if (events_.size() < kCapacity) events_.push_back(e);
    else ++dropped_;
  }
  mutable std::mutex mu_;
  std::vector<Event> events_;
  uint64_t dropped_ = 0;
};

class SlabAdapter final : public AllocatorAdapter {
 public:
  explicit SlabAdapter(const json& config) {
    validate_slab_options(config);
    opts_ = slab_options_from(config);
    auto r = slab::SlabAllocator::create(opts_, &timeline_);
    if (!r) throw RunError("temporal-slab: create failed: " + r.status().to_string());
    a_ = std::move(r.value());
  }
  const char* name() const noexcept override { return "temporal-slab"; }
  bool has_epochs() const noexcept override { return true; }
  bool allocate(size_t bytes, uint32_t epoch, Obj& out) noexcept override {
    auto r = a_->allocate(bytes, epoch);
    if (!r) return false;
    const slab::Allocation& al = *r;
    out.ptr = al.ptr;
    out.handle = al.handle.raw;
    out.usable = al.usable;
    out.requested = uint32_t(bytes);
    return true;
  }
  bool release(const Obj& o) noexcept override { return a_->free(slab::Handle{o.handle}).is_ok(); }
  size_t usable_size(const Obj& o) const noexcept override { return o.usable; }

  void epoch_open(uint32_t epoch, std::string_view label) override {
    if (a_->stats_epoch(epoch).state == slab::EpochState::kClosing) {
      Status s = a_->epoch_reopen(epoch);
      if (!s) throw RunError("temporal-slab: epoch_reopen(" + std::to_string(epoch) + "): " + s.to_string());
    }
    Status s = a_->epoch_set_label(epoch, label);
    if (!s) throw RunError("temporal-slab: epoch_set_label(" + std::to_string(epoch) + "): " + s.to_string());
  }
  void epoch_close(uint32_t epoch) override {
    Status s = a_->epoch_close(epoch);
    if (!s) throw RunError("temporal-slab: epoch_close(" + std::to_string(epoch) + "): " + s.to_string());
  }
  bool counters(AllocatorCounters& out) const noexcept override {
    const slab::GlobalStats g = a_->stats_global();
#define ZNSLAB_COPY(type, field, key, unit, meaning) out.field = g.field;
    ZNSLAB_ALLOCATOR_SAMPLE_COUNTERS(ZNSLAB_COPY)
#undef ZNSLAB_COPY
    return true;
  }
  json describe() const override {
    const slab::Options& o = a_->options();
    json d{{"name", "temporal-slab"},
           {"kind", "slab"},
           {"version", "znslab " + git_rev()},
           {"version_source", "git rev of this tree"},
           {"library", "build/libznsslab.a (linked in)"},
           {"counters", true},
           {"options", slab_options_json(o)}};
    d["loaded_malloc_libraries"] = loaded_peer_allocators(read_self_maps());
    return d;
  }
  json timeline(uint64_t t0_ns) const override { return timeline_.to_json(t0_ns); }
  json final_stats() const override {
    try {
      return json::parse(a_->stats_json());
    } catch (const json::exception& e) {
      return json{{"error", std::string("stats_json did not parse: ") + e.what()}};
    }
  }

 private:
  slab::Options opts_;
  TimelineSink timeline_;  // declared before a_: outlives the allocator that calls it
  std::unique_ptr<slab::SlabAllocator> a_;
};

AllocatorRegistrar reg{AllocatorInfo{
    "temporal-slab", "the temporal (epoch-based) slab allocator of src/slab", false,
    [](const json& config) { return std::make_unique<SlabAdapter>(config); }}};

}  // namespace
}  // namespace znslab::harness
