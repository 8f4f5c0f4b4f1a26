// TraceReplayGenerator (workloads/trace_replay_gen.h) on a recording
// executor: the order of the calls it yields, in particular that a
// realloc's new object is published only after its bytes are copied (the
// TSan race of the replay: another thread may free or realloc it as soon
// as it is published).
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "src/trace/replay_plan.h"
#include "src/trace/trace_format.h"
#include "workloads/trace_replay_gen.h"

namespace {

using znslab::trace::Op;
using znslab::trace::Placement;
using znslab::trace::ReplayOp;
using znslab::trace::ReplayPlan;
using znslab::workloads::TraceReplayGenerator;
using znslab::workloads::TraceReplayParams;
using znslab::workloads::TraceTouch;

// Records every call as text; allocations succeed unless `refuse` names the id.
struct RecordingExec {
  bool epochs = true;
  uint32_t refuse = 0;
  std::vector<std::string> calls;
  std::vector<uint64_t> sizes = std::vector<uint64_t>(16, 0);

  void log(const std::string& s) { calls.push_back(s); }
  bool ok() const { return true; }
  bool has_epochs() const { return epochs; }
  void at(uint64_t) {}
  void enter_window(uint64_t w) { log("window " + std::to_string(w)); }
  void thread_done() { log("done"); }
  void op_done() {}
  void wait_created(uint32_t id) { log("wait " + std::to_string(id)); }
  uint8_t made(uint32_t id, uint64_t req, const char* what) {
    log(std::string(what) + " " + std::to_string(id));
    if (id == refuse) return 0;
    sizes[id] = req;
    return 1;
  }
  uint8_t allocate(uint32_t id, uint64_t, uint64_t req, bool in_window, uint32_t) {
    return made(id, req, in_window ? "alloc_window" : "alloc");
  }
  uint8_t allocate_aligned(uint32_t id, uint64_t, uint64_t, uint64_t req) { return made(id, req, "aligned"); }
  uint8_t allocate_fallback(uint32_t id, uint64_t, uint64_t req) { return made(id, req, "fallback"); }
  uint8_t realloc(uint32_t old_id, uint32_t id, uint64_t bytes) {
    log("realloc " + std::to_string(old_id));
    return made(id, bytes, "into");
  }
  void probe(uint64_t) { log("probe"); }
  uint64_t requested(uint32_t id) const { return sizes[id]; }
  void touch_pages(uint32_t id, uint64_t off, uint64_t n) {
    log("touch " + std::to_string(id) + " " + std::to_string(off) + "+" + std::to_string(n));
  }
  void fill(uint32_t id, uint64_t, uint64_t, int) { log("fill " + std::to_string(id)); }
  void copy(uint32_t from, uint32_t to, uint64_t n) {
    log("copy " + std::to_string(from) + "->" + std::to_string(to) + " " + std::to_string(n));
  }
  void publish(uint32_t id, uint8_t) { log("publish " + std::to_string(id)); }
  void release(uint32_t id) { log("release " + std::to_string(id)); }
  size_t usable(uint32_t) { return 0; }
  void epoch_open(uint32_t e, const char*) { log("open " + std::to_string(e)); }
  void close_open_windows() { log("close_windows"); }
  void epoch_close(uint32_t e) { log("close " + std::to_string(e)); }
};

ReplayOp op(Op o, uint32_t obj, uint64_t size, uint32_t old_obj = 0, uint32_t window = 0,
            Placement pl = Placement::kLongEpoch, uint8_t align_log2 = 0) {
  ReplayOp r{};
  r.op = uint8_t(o);
  r.obj = obj;
  r.size = size;
  r.old_obj = old_obj;
  r.window = window;
  r.placement = pl;
  r.align_log2 = align_log2;
  return r;
}

using Calls = std::vector<std::string>;

}  // namespace

TEST_CASE("trace replay generator: a realloc's new object is published only after its bytes are copied",
          "[trace]") {
  ReplayPlan plan;
  plan.threads = {{op(Op::kMalloc, 1, 100), op(Op::kRealloc, 2, 5000, 1), op(Op::kFree, 2, 0)}};
  plan.ops = 3;
  plan.max_obj = 2;
  TraceReplayParams p;
  p.use_epochs = false;
  const TraceReplayGenerator gen(plan, p);

  SECTION("with epochs (temporal-slab): allocate, write, copy, publish, then free the old object") {
    RecordingExec ex;
    gen.replay_thread(0, ex);
    CHECK(ex.calls == Calls{"alloc 1", "touch 1 0+100", "publish 1", "wait 1", "alloc 2", "touch 2 0+5000",
                            "copy 1->2 100", "publish 2", "release 1", "wait 2", "release 2", "done"});
  }
  SECTION("peers: the process's realloc, the grown tail written, then published") {
    RecordingExec ex;
    ex.epochs = false;
    gen.replay_thread(0, ex);
    CHECK(ex.calls == Calls{"alloc 1", "touch 1 0+100", "publish 1", "wait 1", "realloc 1", "into 2",
                            "touch 2 100+4900", "publish 2", "wait 2", "release 2", "done"});
  }
  SECTION("a refused new object is never published; the old one is still freed") {
    RecordingExec ex;
    ex.refuse = 2;
    gen.replay_thread(0, ex);
    CHECK(ex.calls == Calls{"alloc 1", "touch 1 0+100", "publish 1", "wait 1", "alloc 2", "release 1", "wait 2",
                            "release 2", "done"});
  }
}

TEST_CASE("trace replay generator: routing by placement and alignment, windows, drain", "[trace]") {
  ReplayPlan plan;
  plan.threads = {{op(Op::kMalloc, 1, 64, 0, 0, Placement::kWindowEpoch),
                   op(Op::kMalloc, 2, 4000, 0, 1, Placement::kFallback),
                   op(Op::kAlignedAlloc, 3, 64, 0, 1, Placement::kFallback, 6), op(Op::kMalloc, 0, 9)}};
  plan.ops = 4;
  plan.max_obj = 3;
  TraceReplayParams p;
  p.touch = TraceTouch::kFull;
  const TraceReplayGenerator gen(plan, p);

  RecordingExec slab;
  gen.begin(slab);
  gen.replay_thread(0, slab);
  gen.drain(slab);
  CHECK(slab.calls == Calls{"open 0", "alloc_window 1", "fill 1", "publish 1", "window 1", "fallback 2", "fill 2",
                            "publish 2", "fallback 3", "fill 3", "publish 3", "probe", "done", "release 1",
                            "release 2", "release 3", "close_windows", "close 0"});

  RecordingExec peer;
  peer.epochs = false;
  gen.begin(peer);
  gen.replay_thread(0, peer);
  gen.drain(peer);
  CHECK(peer.calls == Calls{"alloc 1", "fill 1", "publish 1", "alloc 2", "fill 2", "publish 2", "aligned 3",
                            "fill 3", "publish 3", "probe", "done", "release 1", "release 2", "release 3"});
}
