// The trace replay generator (issue 12; docs/trace.md "Replay"): the
// operation stream of the `trace` workload and nothing else (no threads,
// timers, samples or JSON). It reads a trace::ReplayPlan (src/trace/
// replay_plan.h: per recorded thread, in recorded order, each object's
// placement under the epoch policy) and yields, per replay thread, calls
// on an executor `ex` (harness/replay_runner.h: ReplayExec) that owns the
// object table, the allocator and the epoch ring.
//
// Objects are plan ids (1..max_obj). An allocation is made unpublished,
// written (`touch`), then published: only then may another thread free or
// realloc it (a free of an object created by another thread first waits
// for its publication: ex.wait_created). realloc: on an allocator with
// epochs (temporal-slab) allocate + write + copy + publish + free the old
// object -- published only after its bytes are copied, else another thread
// could free or realloc it mid-copy (found by TSan); on peers and glibc the
// process's own realloc, the grown tail written, then published.
// Routing: on the temporal slab a kFallback placement goes to the fallback
// (glibc malloc of this process); on peers and glibc an alignment above
// 16 B is an aligned allocation; otherwise the allocator, in the window's
// epoch (placement kWindowEpoch with epochs in use) or the long-lived one.
//
// Executor vocabulary (Ex): ok(), has_epochs(), at(ts_ns),
// enter_window(w), thread_done(), op_done(), wait_created(id); the
// allocations return a nonzero token `made` for publish, 0 when refused:
// allocate(id, bytes, requested, in_window, window), allocate_aligned(id,
// bytes, align, requested), allocate_fallback(id, bytes, requested),
// realloc(old, id, bytes); probe(bytes), requested(id), touch_pages(id,
// off, n), fill(id, off, n, byte), copy(from, to, n), publish(id, made),
// release(id), usable(id), epoch_open(e, label), close_open_windows(),
// epoch_close(e).
// Thread-safety: replay_thread may run concurrently for different t.
#pragma once

#include <algorithm>
#include <cstdint>

#include "src/trace/replay_plan.h"
#include "src/trace/trace_format.h"

namespace znslab::workloads {

enum class TraceTouch : uint8_t { kNone, kPages, kFull };

struct TraceReplayParams {
  bool use_epochs = true;  // epoch_policy != none
  bool recorded = false;   // timing: each op waits for its trace time
  TraceTouch touch = TraceTouch::kPages;
};

class TraceReplayGenerator {
 public:
  // `plan` is read (not copied) by every call below; it may be filled after
  // construction, before the first call.
  TraceReplayGenerator(const trace::ReplayPlan& plan, const TraceReplayParams& p) : plan_(plan), p_(p) {}

  const trace::ReplayPlan& plan() const noexcept { return plan_; }
  const TraceReplayParams& params() const noexcept { return p_; }
  uint32_t threads() const noexcept { return uint32_t(plan_.threads.size()); }
  uint64_t ops() const noexcept { return plan_.ops; }
  uint64_t max_obj() const noexcept { return plan_.max_obj; }
  uint64_t windows() const noexcept { return plan_.windows; }

  // Before any replay thread (main thread): the long-lived epoch.
  template <class Ex>
  void begin(Ex& ex) const {
    if (ex.has_epochs()) ex.epoch_open(trace::kLongEpoch, "long-lived");
  }

  // Replay thread t: its ops in recorded order. Stops when !ex.ok().
  template <class Ex>
  void replay_thread(uint32_t t, Ex& ex) const {
    const bool windows = p_.use_epochs && ex.has_epochs();
    uint64_t my_window = 0;
    for (const trace::ReplayOp& r : plan_.threads[t]) {
      if (!ex.ok()) return;
      if (p_.recorded) ex.at(r.ts_ns);
      if (windows && r.window > my_window) {
        my_window = r.window;
        ex.enter_window(my_window);
      }
      step(r, ex);
      ex.op_done();
    }
    ex.thread_done();
  }

  // After every thread (main thread): frees every object still live, closes
  // the windows left open and the long-lived epoch.
  template <class Ex>
  void drain(Ex& ex) const {
    for (uint64_t id = 1; id <= plan_.max_obj; ++id) ex.release(uint32_t(id));
    if (p_.use_epochs && ex.has_epochs()) ex.close_open_windows();
    if (ex.has_epochs()) ex.epoch_close(trace::kLongEpoch);
  }

 private:
  template <class Ex>
  void step(const trace::ReplayOp& r, Ex& ex) const {
    switch (trace::Op(r.op)) {
      case trace::Op::kFree:
        ex.wait_created(r.obj);
        ex.release(r.obj);
        return;
      case trace::Op::kUsableSize:
        ex.wait_created(r.obj);
        ex.usable(r.obj);
        return;
      case trace::Op::kRealloc:
        if (r.old_obj) {
          realloc(r, ex);
          return;
        }
        [[fallthrough]];
      default:
        if (r.obj) {
          if (const uint8_t made = create(r, ex)) ex.publish(r.obj, made);
        } else {  // a failed allocation in the trace: attempt it, give it back
          ex.probe(std::min<uint64_t>(r.size ? r.size : 1, 768));
        }
    }
  }

  template <class Ex>
  void realloc(const trace::ReplayOp& r, Ex& ex) const {
    ex.wait_created(r.old_obj);
    if (!ex.has_epochs() && r.obj) {  // the peer's own realloc
      const uint64_t old_size = ex.requested(r.old_obj);
      const uint8_t made = ex.realloc(r.old_obj, r.obj, r.size);
      if (!made) return;
      if (r.size > old_size) write(r.obj, old_size, r.size - old_size, ex);
      ex.publish(r.obj, made);
      return;
    }
    if (r.obj) {
      // Published only once its bytes are copied: another thread may free
      // or realloc it as soon as it sees it created.
      if (const uint8_t made = create(r, ex)) {
        ex.copy(r.old_obj, r.obj, std::min<uint64_t>(ex.requested(r.old_obj), r.size));
        ex.publish(r.obj, made);
      }
    }
    ex.release(r.old_obj);
  }

  // Allocates and writes object r.obj, unpublished; returns the
  // executor's token for publish (0: the allocator refused; counted there).
  template <class Ex>
  uint8_t create(const trace::ReplayOp& r, Ex& ex) const {
    const uint64_t n = r.size ? r.size : 1;
    uint8_t ok;
    if (!ex.has_epochs() && r.align_log2 > 4) {
      ok = ex.allocate_aligned(r.obj, n, uint64_t(1) << r.align_log2, r.size);
    } else if (ex.has_epochs() && r.placement == trace::Placement::kFallback) {
      ok = ex.allocate_fallback(r.obj, n, r.size);
    } else {
      const bool in_window = p_.use_epochs && ex.has_epochs() && r.placement == trace::Placement::kWindowEpoch;
      ok = ex.allocate(r.obj, n, r.size, in_window, r.window);
    }
    if (ok) write(r.obj, 0, r.size, ex);
    return ok;
  }

  template <class Ex>
  void write(uint32_t id, uint64_t off, uint64_t n, Ex& ex) const {
    if (p_.touch == TraceTouch::kPages) ex.touch_pages(id, off, n);
    else if (p_.touch == TraceTouch::kFull) ex.fill(id, off, n, 0x5a);
  }

  const trace::ReplayPlan& plan_;
  TraceReplayParams p_;
};

}  // namespace znslab::workloads
