// The runner of raw zoned-device I/O workloads (zone-write; DESIGN.md "The
// data path": one runner, generators apart). The generator
// (workloads/zone_write_gen.h) yields one pass of writes or appends over a
// few concurrently written zone streams; this runner owns the device
// (--device, else an emulator in a scratch file; its ring sized to the
// queue depth), the I/O buffers and their contents (the pattern of seed 1
// at offset 0), zone selection (the next writable zone, reset when not
// empty), the untimed resets before each pass, batching to the queue depth
// (submit, reap at least one), submit-to-reap latency of every I/O, CPU
// time, the untimed read-back of each zone's first block, the repeats
// (passes alternating with fio's io_uring baseline on the same filesystem,
// medians reported), one sample per repeat, progress, the summary
// (docs/zns.md "Experiment: zone-write") and the result document.
// Thread-safety: single-threaded; run_zone_writes is not reentrant.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "harness/registry.h"

namespace znslab::harness {

class DeviceExecState;

// The executor a zone-write generator calls. `stream` is one of the
// generator's concurrently written zones (0 .. streams-1). Throws RunError
// on a device error or when no writable zone is left.
class DeviceExec {
 public:
  explicit DeviceExec(DeviceExecState& s) : s_(s) {}
  uint64_t zone_capacity() const;  // bytes writable per zone
  // Stream `stream` moves to the next writable zone (its first call opens it).
  void next_zone(uint32_t stream);
  // Queues one I/O of len bytes at byte offset `offset` of the stream's
  // zone (append: the offset only labels it); submits and reaps when the
  // queue depth is reached.
  void write(uint32_t stream, uint64_t offset, uint64_t len);
  void append(uint32_t stream, uint64_t offset, uint64_t len);
  // Submits what is queued and waits for every I/O of the pass.
  void drain();

 private:
  DeviceExecState& s_;
};

// What the runner needs of a device generator.
class DevicePlan {
 public:
  virtual ~DevicePlan() = default;
  virtual void run_pass(DeviceExec& ex) const = 0;  // one timed pass
  virtual uint64_t total_bytes() const = 0;         // bytes per pass
  virtual uint32_t streams() const = 0;             // zones written concurrently
};

template <class Gen>
class DevicePlanOf final : public DevicePlan {
 public:
  explicit DevicePlanOf(const Gen& g) : g_(g) {}
  void run_pass(DeviceExec& ex) const override { g_.run_pass(ex); }
  uint64_t total_bytes() const override { return g_.params().total_bytes; }
  uint32_t streams() const override { return g_.params().zones; }

 private:
  const Gen& g_;
};

struct DeviceRunOptions {
  std::string experiment;       // "zone-write"
  std::string default_device;   // emulator parameters when --device is absent
  uint64_t block_size = 0;      // bytes per I/O (checked against the LBA size, append limit)
  unsigned queue_depth = 1;     // I/Os in flight in total
  bool append = false;          // latency name "append" (else "write"); checks the append limit
  unsigned repeats = 1;         // passes; medians are reported
  std::string fio = "auto";     // "auto" (emu: devices), "on", "off"
};

// Runs `repeats` passes of the plan and fills ctx.result. Throws RunError
// (device, read-back mismatch), ConfigError (block size, zone count).
void run_zone_writes(RunContext& ctx, const DevicePlan& plan, const DeviceRunOptions& opt);

}  // namespace znslab::harness
