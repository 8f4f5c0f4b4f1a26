// The temporal-slab adapter: src/slab through its public API (src/slab/slab.h).
// Allocator options come from the workload config keys slab_reclaim
// ("immediate" | "on_close" | "off"), slab_use_thp and slab_thread_cache,
// when present.
#include <string>

#include "harness/allocators.h"
#include "harness/peers.h"
#include "harness/registry.h"
#include "harness/result.h"
#include "src/slab/slab.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

class SlabAdapter final : public AllocatorAdapter {
 public:
  explicit SlabAdapter(const json& config) {
    if (config.contains("slab_reclaim") && config["slab_reclaim"].is_string()) {
      auto p = slab::parse_reclaim_policy(config["slab_reclaim"].get<std::string>());
      if (!p) throw ConfigError("key \"slab_reclaim\": " + p.status().to_string());
      opts_.reclaim = *p;
    }
    if (config.contains("slab_use_thp") && config["slab_use_thp"].is_boolean())
      opts_.use_thp = config["slab_use_thp"].get<bool>();
    if (config.contains("slab_thread_cache") && config["slab_thread_cache"].is_boolean())
      opts_.thread_cache = config["slab_thread_cache"].get<bool>();
    auto r = slab::SlabAllocator::create(opts_);
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
    slab::GlobalStats g = a_->stats_global();
    out.committed_bytes = g.committed_bytes;
    out.live_bytes = g.live_bytes;
    out.requested_bytes = g.requested_bytes;
    out.live_objects = g.live_objects;
    out.empty_slabs = g.empty_slabs;
    out.madvise_calls = g.madvise_calls;
    out.madvise_bytes = g.madvise_bytes;
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
           {"options",
            {{"reclaim", slab::reclaim_policy_name(o.reclaim)},
             {"arena_bytes", o.arena_bytes},
             {"chunk_bytes", o.chunk_bytes},
             {"use_thp", o.use_thp},
             {"reclaim_batch_slabs", o.reclaim_batch_slabs},
             {"scan_retry_threshold", o.scan_retry_threshold},
             {"scan_dwell_checks", o.scan_dwell_checks},
             {"thread_cache", o.thread_cache},
             {"populate_slabs", o.populate_slabs}}}};
    d["loaded_malloc_libraries"] = loaded_peer_allocators(read_self_maps());
    return d;
  }
  json final_stats() const override {
    try {
      return json::parse(a_->stats_json());
    } catch (const json::exception& e) {
      return json{{"error", std::string("stats_json did not parse: ") + e.what()}};
    }
  }

 private:
  slab::Options opts_;
  std::unique_ptr<slab::SlabAllocator> a_;
};

AllocatorRegistrar reg{AllocatorInfo{
    "temporal-slab", "the temporal (epoch-based) slab allocator of src/slab", false,
    [](const json& config) { return std::make_unique<SlabAdapter>(config); }}};

}  // namespace
}  // namespace znslab::harness
