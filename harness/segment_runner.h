// The runner of segment workloads (segment-scale; DESIGN.md "The data
// path": one runner, generators apart). The generator
// (workloads/segment_scale_gen.h) yields record inserts, pin batches and
// verifications; this runner owns the data folder, the file registry,
// mapping manager and segment allocator, the append-only structures
// (one current segment per structure, class classes[s % n]; a full
// segment's pin is dropped and a new one allocated; records are
// [u32 length][u32 index][payload]), latency timing (segment allocations;
// pin + unpin in batches of 64), fd/VMA sampling, the summary
// (docs/segment.md "segment-scale") and the result document.
// Thread-safety: single-threaded; not reentrant.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "harness/registry.h"

namespace znslab::harness {

class SegmentExecState;

// The executor a segment generator calls. Throws RunError when the
// allocator refuses a segment.
class SegmentExec {
 public:
  explicit SegmentExec(SegmentExecState& s) : s_(s) {}
  void insert(uint32_t structure, uint32_t idx, uint32_t len);
  void inserts_done();
  void pin_batch(uint64_t r);
  void verify(uint32_t idx);

 private:
  SegmentExecState& s_;
};

class SegmentPlan {
 public:
  virtual ~SegmentPlan() = default;
  virtual void run(SegmentExec& ex) const = 0;
};

template <class Gen>
class SegmentPlanOf final : public SegmentPlan {
 public:
  explicit SegmentPlanOf(const Gen& g) : g_(g) {}
  void run(SegmentExec& ex) const override { g_.run(ex); }

 private:
  const Gen& g_;
};

struct SegmentRunOptions {
  std::string experiment;          // "segment-scale"
  uint64_t records = 0;            // for progress and the summary
  uint32_t structures = 1;
  uint32_t min_size = 1, max_size = 1;  // record payload bounds (verification)
  std::vector<uint64_t> classes;   // segment sizes, bytes
  uint64_t window_bytes = 0;
  uint64_t max_open_files = 0, max_mappings = 0;  // 0 = derived
  uint64_t sample_every = 1;       // records between fd/VMA samples
  std::string dir;                 // "" = a new temp folder
  bool keep_files = false;
  uint8_t (*payload_byte)(uint32_t idx, uint32_t i) = nullptr;
};

void run_segment_scale(RunContext& ctx, const SegmentPlan& plan, const SegmentRunOptions& opt);

}  // namespace znslab::harness
