// Allocator adapters: the one interface workloads drive allocators through.
//
// Two kinds (DESIGN.md, "The data path"):
//   * "temporal-slab": src/slab through its public API (harness/alloc_slab.cpp),
//     with epochs and its own counters;
//   * the peers "glibc", "jemalloc", "mimalloc", "tcmalloc": one malloc
//     adapter (malloc/free/malloc_usable_size). Which library answers is
//     decided by the process (LD_PRELOAD, see harness/peers.h), never by
//     the adapter: a peer result is only reported after the library was
//     found in /proc/self/maps.
// Both are called through the same virtual calls, so the dispatch cost
// (one indirect call per operation, ~1-2 ns) is the same for everyone.
//
// Thread-safety: allocate/release/usable_size are safe from any thread (as
// the underlying allocator is) and are fast-path: no exceptions, no locks
// added by the adapter. Epoch calls and counters() are cold-path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/common/counters.h"

namespace znslab::harness {

// One live object as a workload keeps it.
struct Obj {
  void* ptr = nullptr;
  uint64_t handle = 0;     // temporal-slab handle (raw); 0 for malloc
  uint32_t usable = 0;     // usable bytes when known at allocation (slot size), else 0
  uint32_t requested = 0;  // bytes asked for
};

// The allocator's own accounting (temporal-slab; peers have none), as
// churn's samples carry it: declared once (src/common/counters.h); each row
// is the slab::GlobalStats counter of the same name (harness/alloc_slab.cpp
// copies them by this list). X(type, field, json key, unit, meaning).
#define ZNSLAB_ALLOCATOR_SAMPLE_COUNTERS(X)                                                             \
  X(uint64_t, committed_bytes, "committed_bytes", "bytes", "slabs backed by physical pages x slab size") \
  X(uint64_t, live_bytes, "live_bytes", "bytes", "slot sizes of live objects")                          \
  X(uint64_t, requested_bytes, "requested_bytes", "bytes", "bytes callers asked for, live objects")     \
  X(uint64_t, live_objects, "live_objects", "count", "live objects")                                   \
  X(uint64_t, empty_slabs, "empty_slabs", "slabs", "committed slabs with no live object")              \
  X(uint64_t, madvise_calls, "madvise_calls", "count", "madvise calls returning memory to the OS")     \
  X(uint64_t, madvise_bytes, "madvise_bytes", "bytes", "bytes returned to the OS by madvise")

struct AllocatorCounters {
  ZNSLAB_ALLOCATOR_SAMPLE_COUNTERS(ZNSLAB_COUNTER_FIELD)
};
ZNSLAB_COUNTER_FUNCTIONS(AllocatorCounters, ZNSLAB_ALLOCATOR_SAMPLE_COUNTERS)

class AllocatorAdapter {
 public:
  virtual ~AllocatorAdapter() = default;
  virtual const char* name() const noexcept = 0;
  // True when allocate() honours `epoch` (temporal-slab).
  virtual bool has_epochs() const noexcept = 0;
  // Allocates `bytes` in ring epoch `epoch` (ignored without epochs).
  // Returns false (out untouched) when the allocator refused.
  virtual bool allocate(size_t bytes, uint32_t epoch, Obj& out) noexcept = 0;
  // Frees an object returned by allocate(). Returns false when the
  // allocator reported an error (stale/double free on temporal-slab).
  virtual bool release(const Obj& o) noexcept = 0;
  // Usable bytes of a live object (slot size; malloc_usable_size for peers).
  virtual size_t usable_size(const Obj& o) const noexcept = 0;

  // Epoch lifecycle (no-ops without epochs). epoch_open makes `epoch`
  // ACTIVE (re-opening it if it was CLOSING) and labels it; epoch_close
  // marks it CLOSING and returns its empty slabs to the OS.
  // Throw RunError when the allocator refuses (cold path, CLI boundary).
  virtual void epoch_open(uint32_t /*epoch*/, std::string_view /*label*/) {}
  virtual void epoch_close(uint32_t /*epoch*/) {}
  // Fills `out` and returns true when the allocator keeps counters.
  virtual bool counters(AllocatorCounters& /*out*/) const noexcept { return false; }
  // The result document's "allocator" object: name, kind, version,
  // library, options, ... Throws RunError if the identity cannot be proven
  // (a peer whose library is not loaded).
  virtual nlohmann::json describe() const = 0;
  // Allocator statistics at the end of a run (temporal-slab: its stats
  // JSON), or null.
  virtual nlohmann::json final_stats() const { return nullptr; }
  // The allocator's cold-path events (temporal-slab: epoch closes and
  // decommits, through slab::EventSink) as the result's "timeline": each
  // {"t_ns" (since `t0_ns`, CLOCK_MONOTONIC), "event", ...}; [] when none.
  virtual nlohmann::json timeline(uint64_t /*t0_ns*/) const { return nlohmann::json::array(); }
};

// Registry of allocator names (static registration, like workloads).
struct AllocatorInfo {
  std::string name;      // "temporal-slab", "glibc", ...
  std::string summary;
  bool is_peer = false;  // malloc family, run under LD_PRELOAD
  // `config` is the resolved workload config (allocator options such as
  // slab_reclaim live there). Throws ConfigError/RunError.
  std::function<std::unique_ptr<AllocatorAdapter>(const nlohmann::json& config)> make;
};
void register_allocator(AllocatorInfo a);
const AllocatorInfo* find_allocator(std::string_view name);
std::vector<const AllocatorInfo*> all_allocators();
// "temporal-slab, glibc, ..." in the order of kAllocatorOrder, then others.
std::string allocator_names();
// The five allocators of `make run-churn`, in table order.
inline constexpr const char* kAllocatorOrder[] = {"temporal-slab", "glibc", "jemalloc",
                                                  "mimalloc", "tcmalloc"};
// The allocator a workload uses when --allocator is not given.
inline constexpr const char* kDefaultAllocator = "temporal-slab";

// Makes the adapter `name` ("" = kDefaultAllocator). Throws UsageError for an
// unknown name, RunError when it cannot be created.
std::unique_ptr<AllocatorAdapter> make_allocator(const std::string& name,
                                                 const nlohmann::json& config);

struct AllocatorRegistrar {
  explicit AllocatorRegistrar(AllocatorInfo a) { register_allocator(std::move(a)); }
};

}  // namespace znslab::harness
