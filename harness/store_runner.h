// The runner of record workloads over the zoned segment store (zone-churn;
// DESIGN.md "The data path": one runner, generators apart). The generator
// (workloads/zone_churn_gen.h) yields puts, removes, reads and epoch ends;
// this runner owns the device (--device, else an emulator in a scratch
// file), the store and its options, record contents and checks, latency
// timing (every put, remove and read), one sample per epoch, progress, the
// summary (docs/segment.md "zone-churn") and the result document.
// Thread-safety: single-threaded; run_zone_store is not reentrant.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "harness/registry.h"
#include "src/segment/zoned_store.h"

namespace znslab::harness {

class StoreExecState;

// The executor a record generator calls (out-of-line: store operations
// take microseconds, the call does not matter). Throws RunError when the
// store refuses a put or a remove.
class StoreExec {
 public:
  explicit StoreExec(StoreExecState& s) : s_(s) {}
  bool put(uint64_t id, uint32_t len, uint32_t lifetime_class);
  void remove(uint64_t id);
  void read(uint64_t id);
  void end_epoch(uint64_t epoch);

 private:
  StoreExecState& s_;
};

// What the runner needs of a record generator.
class StorePlan {
 public:
  virtual ~StorePlan() = default;
  virtual void run(StoreExec& ex) const = 0;
  virtual uint64_t epoch_bytes() const = 0;
  virtual uint64_t target_bytes() const = 0;
};

// Owns a copy of the generator (cheap: its parameters).
template <class Gen>
class StorePlanOf final : public StorePlan {
 public:
  explicit StorePlanOf(Gen g) : g_(std::move(g)) {}
  void run(StoreExec& ex) const override { g_.run(ex); }
  uint64_t epoch_bytes() const override { return g_.params().epoch_bytes; }
  uint64_t target_bytes() const override { return g_.params().target_bytes; }

 private:
  Gen g_;
};

struct StoreRunOptions {
  std::string experiment;        // "zone-churn"
  std::string default_device;    // emulator parameters when --device is absent
  segment::ZonedStoreOptions store;
  uint64_t max_record_bytes = 0;  // refused (ConfigError) when above the zone capacity
  // The record contents: word w of record id.
  uint64_t (*record_word)(uint64_t id, uint64_t w) = nullptr;
  // Builds the generator's plan once the device's capacity (bytes) is known.
  std::function<std::unique_ptr<StorePlan>(uint64_t capacity_bytes)> make_plan;
};

// Runs the plan and fills ctx.result. Throws RunError (device, store,
// records read back wrong), ConfigError (records larger than a zone).
void run_zone_store(RunContext& ctx, const StoreRunOptions& opt);

}  // namespace znslab::harness
