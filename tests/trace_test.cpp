// [trace] tests: the trace format and reader, the LD_PRELOAD recorder
// (build/libznstrace.so) on a helper program with known allocations, fork
// and exec under it, `trace info` statistics.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "src/trace/trace_format.h"
#include "src/trace/trace_stats.h"
#include "tests/skip.h"
#include "tests/temp_dir.h"
#include "tests/trace_test_util.h"

using namespace znslab::trace;
using znslab::testutil::TempDir;
namespace tt = znslab::tracetest;

namespace {

// A ten-event trace: 3 mallocs, a realloc, a usable_size, frees.
Trace small_trace() {
  Trace t;
  t.header.pid = 42;
  t.header.program = "/bin/example";
  t.header.args = {"example", "--flag"};
  std::vector<TraceEvent> ev;
  uint64_t seq = 0;
  auto add = [&](Op op, uint64_t size, uint64_t obj, uint64_t old, uint32_t tid) {
    TraceEvent e{};
    e.seq = seq;
    e.ts_ns = 1000 * seq;
    ++seq;
    e.op = uint8_t(op);
    e.size = size;
    e.obj = obj;
    e.old_obj = old;
    e.tid = tid;
    e.callsite = uint32_t(size);
    ev.push_back(e);
  };
  add(Op::kMalloc, 100, 1, 0, 7);
  add(Op::kMalloc, 200, 2, 0, 7);
  add(Op::kCalloc, 300, 3, 0, 8);
  add(Op::kRealloc, 400, 4, 1, 7);
  add(Op::kUsableSize, 408, 4, 0, 7);
  add(Op::kFree, 0, 2, 0, 8);
  add(Op::kMalloc, 50, 5, 0, 8);
  add(Op::kFree, 0, 4, 0, 7);
  add(Op::kFree, 0, 3, 0, 7);
  add(Op::kFree, 0, 5, 0, 8);
  t.events = ev;
  return t;
}

// File bytes of `t`: header, two frames (second half first, as threads do),
// the end frame.
std::string encode(const Trace& t) {
  std::string s = encode_header(t.header);
  const uint32_t half = uint32_t(t.events.size() / 2);
  s += encode_frame(t.events.data() + half, uint32_t(t.events.size()) - half);
  s += encode_frame(t.events.data(), half);
  s += encode_end(t.events.size());
  return s;
}

}  // namespace

TEST_CASE("trace format round trip orders events by seq and keeps the header", "[trace]") {
  Trace in = small_trace();
  Trace out;
  TraceError err;
  REQUIRE(parse_trace(encode(in), out, err));
  CHECK(out.header.program == "/bin/example");
  CHECK(out.header.args == std::vector<std::string>{"example", "--flag"});
  CHECK(out.header.pid == 42u);
  CHECK(out.frames == 2u);
  REQUIRE(out.events.size() == in.events.size());
  for (size_t i = 0; i < in.events.size(); ++i) {
    CHECK(out.events[i].seq == in.events[i].seq);
    CHECK(out.events[i].obj == in.events[i].obj);
    CHECK(out.events[i].old_obj == in.events[i].old_obj);
    CHECK(out.events[i].op == in.events[i].op);
  }
}

TEST_CASE("a truncated trace is refused with the offset of the cut structure", "[trace]") {
  const std::string full = encode(small_trace());
  const size_t hdr = encode_header(small_trace().header).size();
  Trace out;
  TraceError err;
  SECTION("inside the header") {
    REQUIRE_FALSE(parse_trace(full.substr(0, 10), out, err));
    CHECK(err.offset == 10u);
    CHECK_THAT(err.message, Catch::Contains("truncated header"));
  }
  SECTION("inside the first frame's header") {
    REQUIRE_FALSE(parse_trace(full.substr(0, hdr + 7), out, err));
    CHECK(err.offset == hdr);
    CHECK_THAT(err.message, Catch::Contains("truncated frame header"));
  }
  SECTION("inside the first frame's payload") {
    REQUIRE_FALSE(parse_trace(full.substr(0, hdr + 30), out, err));
    CHECK(err.offset == hdr);
    CHECK_THAT(err.message, Catch::Contains("truncated frame"));
  }
  SECTION("the end frame missing") {
    const std::string cut = full.substr(0, full.size() - 20);
    REQUIRE_FALSE(parse_trace(cut, out, err));
    CHECK(err.offset == cut.size());
    CHECK_THAT(err.message, Catch::Contains("no end frame"));
  }
  SECTION("through a file, the message names path and offset") {
    TempDir d;
    std::ofstream(d.file("t.ztr"), std::ios::binary) << full.substr(0, hdr + 30);
    REQUIRE_FALSE(read_trace(d.file("t.ztr"), out, err));
    CHECK(err.to_string(d.file("t.ztr")) == d.file("t.ztr") + ": offset " + std::to_string(hdr) + ": " + err.message);
  }
}

TEST_CASE("a corrupt trace is refused with the offset of the bad frame", "[trace]") {
  std::string full = encode(small_trace());
  const size_t hdr = encode_header(small_trace().header).size();
  Trace out;
  TraceError err;
  SECTION("a flipped byte in compressed data fails the zstd checksum") {
    full[hdr + 20 + 12] ^= 0x5a;
    REQUIRE_FALSE(parse_trace(full, out, err));
    CHECK(err.offset == hdr);
    CHECK_THAT(err.message, Catch::Contains("corrupt frame payload"));
  }
  SECTION("a bad frame magic") {
    full[hdr] = 'X';
    REQUIRE_FALSE(parse_trace(full, out, err));
    CHECK(err.offset == hdr);
    CHECK_THAT(err.message, Catch::Contains("bad frame magic"));
  }
  SECTION("bad file magic") {
    full[0] = 'Y';
    REQUIRE_FALSE(parse_trace(full, out, err));
    CHECK(err.offset == 0u);
  }
  SECTION("a free of an object that is not live names the event") {
    Trace t = small_trace();
    t.events[7].obj = 2;  // object 2 was already freed at seq 5
    REQUIRE_FALSE(parse_trace(encode(t), out, err));
    CHECK_THAT(err.message, Catch::Contains("event seq 7 (free): object 2 is not live"));
  }
}

TEST_CASE("trace info counts ops, threads, peak live and lifetimes", "[trace]") {
  Trace t;
  TraceError err;
  REQUIRE(parse_trace(encode(small_trace()), t, err));
  auto j = trace_info(t);
  CHECK(j["ops"]["malloc"] == 3);
  CHECK(j["ops"]["free"] == 4);
  CHECK(j["ops"]["realloc"] == 1);
  CHECK(j["ops"]["usable_size"] == 1);
  CHECK(j["threads"].size() == 2);
  // Live after seq 3: objects 2 (200), 3 (300), 4 (400) = 900 bytes.
  CHECK(j["peak_live_bytes"] == 900);
  CHECK(j["peak_live_objects"] == 3);
  CHECK(j["end_live_objects"] == 0);
  CHECK(j["never_freed"] == 0);
  // Object 1 lives 3 events (realloc ends it), 2: 4, 3: 6, 4: 4, 5: 3.
  uint64_t total = 0;
  for (auto& b : j["lifetime_ops_histogram"]) total += b["count"].get<uint64_t>();
  CHECK(total == 5);
  CHECK(j["top_callsites"][0]["bytes"] == 400);
}

// ---- the recorder --------------------------------------------------------------

TEST_CASE("recorder round trip: the helper's known allocations, threads and realloc chain", "[trace]") {
  TempDir d;
  const std::string out = d.file("basic.ztr");
  REQUIRE(tt::run({tt::helper(), "basic"}, {"LD_PRELOAD=" + tt::lib("libznstrace.so"), "ZNSTRACE_OUT=" + out}) == 0);
  Trace t;
  TraceError err;
  REQUIRE(read_trace(out, t, err));
  CHECK(t.header.args == std::vector<std::string>{tt::helper(), "basic"});
  std::vector<std::string> got = tt::known_events(t, 1000, 9999);
  const std::vector<std::string> want = {
      "T0 malloc 1001 #a", "T0 calloc 1002 #b", "T0 malloc 1003 #c", "T0 realloc 1004 #d <- #c",
      "T0 realloc 1005 #e <- #d", "T0 posix_memalign 1006 align 64 #f", "T0 aligned_alloc 1024 align 128 #g",
      "T0 memalign 1008 align 256 #h", "T0 valloc 1009 align 4096 #i", "T0 usable_size #a",
      // thread 1: four mallocs, frees in reverse, one object for main
      "T1 malloc 5000 #j", "T1 malloc 5001 #k", "T1 malloc 5002 #l", "T1 malloc 5003 #m", "T1 free #m",
      "T1 free #l", "T1 free #k", "T1 free #j", "T1 malloc 5100 #n",
      "T2 malloc 6000 #o", "T2 malloc 6001 #p", "T2 malloc 6002 #q", "T2 malloc 6003 #r", "T2 free #r",
      "T2 free #q", "T2 free #p", "T2 free #o",
      "T0 free #n", "T0 free #i", "T0 free #h", "T0 free #g", "T0 free #f", "T0 realloc 0 - <- #e",
      "T0 free #b", "T0 free #a"};
  CHECK(got == want);
}

TEST_CASE("recorder across fork: %p gives the child its own file; without it the child stops", "[trace]") {
  TempDir d;
  SECTION("with %p") {
    REQUIRE(tt::run({tt::helper(), "fork"}, {"LD_PRELOAD=" + tt::lib("libznstrace.so"), "ZNSTRACE_OUT=" + d.file("f.%p.ztr")}) == 0);
    std::vector<std::string> files;
    for (auto& e : std::filesystem::directory_iterator(d.path())) files.push_back(e.path());
    REQUIRE(files.size() == 2);
    std::map<uint32_t, Trace> by_pid;
    for (auto& f : files) {
      Trace t;
      TraceError err;
      INFO(f);
      REQUIRE(read_trace(f, t, err));
      by_pid[t.header.pid] = t;
    }
    auto& parent = by_pid.begin()->second;  // the parent's pid is the smaller one here
    auto& child = by_pid.rbegin()->second;
    CHECK(child.header.ppid == parent.header.pid);
    CHECK(tt::known_events(parent, 2000, 2999) == std::vector<std::string>{"T0 malloc 2001 #a", "T0 free #a"});
    CHECK(tt::known_events(child, 2000, 2999) == std::vector<std::string>{"T0 malloc 2002 #a", "T0 free #a"});
  }
  SECTION("without %p") {
    REQUIRE(tt::run({tt::helper(), "fork"}, {"LD_PRELOAD=" + tt::lib("libznstrace.so"), "ZNSTRACE_OUT=" + d.file("f.ztr")}) == 0);
    CHECK_FALSE(std::filesystem::exists(d.file("f.ztr.1")));
    Trace t;
    TraceError err;
    REQUIRE(read_trace(d.file("f.ztr"), t, err));
    CHECK(tt::known_events(t, 2000, 2999) == std::vector<std::string>{"T0 malloc 2001 #a", "T0 free #a"});
  }
}

TEST_CASE("recorder across exec: the first image's file is complete, the new image writes PATH.1", "[trace]") {
  TempDir d;
  const std::string out = d.file("e.ztr");
  REQUIRE(tt::run({tt::helper(), "exec"}, {"LD_PRELOAD=" + tt::lib("libznstrace.so"), "ZNSTRACE_OUT=" + out}) == 0);
  Trace a, b;
  TraceError err;
  REQUIRE(read_trace(out, a, err));
  REQUIRE(read_trace(out + ".1", b, err));
  CHECK(a.header.pid == b.header.pid);
  CHECK(tt::known_events(a, 3000, 3999) == std::vector<std::string>{"T0 malloc 3001 #a", "T0 free #a"});
  CHECK(tt::known_events(b, 3000, 3999) == std::vector<std::string>{"T0 malloc 3002 #a", "T0 free #a"});
}

TEST_CASE("recorder without ZNSTRACE_OUT forwards only and writes nothing", "[trace]") {
  TempDir d;
  REQUIRE(tt::run({tt::helper(), "basic"}, {"LD_PRELOAD=" + tt::lib("libznstrace.so")}) == 0);
  CHECK(std::filesystem::is_empty(d.path()));
}

// ---- replay plans and epoch policies ---------------------------------------------

#include "src/trace/replay_plan.h"

namespace {

// Builds a trace from (ts_ms, op, size, obj, old, tid, callsite) rows.
struct Row {
  uint64_t ts_ms;
  Op op;
  uint64_t size, obj, old;
  uint32_t tid, site;
};
Trace make_trace(const std::vector<Row>& rows) {
  Trace t;
  uint64_t seq = 0;
  for (const Row& r : rows) {
    TraceEvent e{};
    e.seq = seq++;
    e.ts_ns = r.ts_ms * 1'000'000;
    e.op = uint8_t(r.op);
    e.size = r.size;
    e.obj = r.obj;
    e.old_obj = r.old;
    e.tid = r.tid;
    e.callsite = r.site;
    t.events.push_back(e);
  }
  return t;
}

// Constructed lifetimes, 10 ms windows: site 1 makes short objects (freed
// 2 ms later, inside their window), site 2 long ones (freed 35 ms later).
// Windows: objects 1..3 at 1, 3, 5 ms; the long ones at 2 and 12 ms.
Trace lifetimes_trace() {
  std::vector<Row> rows;
  uint64_t id = 0;
  struct A { uint64_t ts, life; uint32_t site; };
  std::vector<A> allocs = {{1, 2, 1}, {2, 35, 2}, {3, 2, 1}, {5, 2, 1}, {11, 2, 1}, {12, 35, 2},
                           {13, 2, 1}, {21, 2, 1}, {22, 35, 2}, {23, 2, 1}, {31, 2, 1}, {32, 35, 2}};
  struct Ev { uint64_t ts; bool alloc; uint64_t id; uint32_t site; };
  std::vector<Ev> evs;
  for (const A& a : allocs) {
    ++id;
    evs.push_back({a.ts * 10, true, id, a.site});  // ts in 0.1 ms units to order ties
    evs.push_back({(a.ts + a.life) * 10 + 1, false, id, a.site});
  }
  std::stable_sort(evs.begin(), evs.end(), [](const Ev& x, const Ev& y) { return x.ts < y.ts; });
  Trace t;
  uint64_t seq = 0;
  for (const Ev& v : evs) {
    TraceEvent e{};
    e.seq = seq++;
    e.ts_ns = v.ts * 100'000;
    e.op = uint8_t(v.alloc ? Op::kMalloc : Op::kFree);
    e.size = v.alloc ? 64 : 0;
    e.obj = v.id;
    e.tid = 1;
    e.callsite = v.alloc ? v.site : 0;
    t.events.push_back(e);
  }
  return t;
}

ReplayPlan plan_for(const Trace& t, EpochPolicy p) {
  PlanOptions o;
  o.policy = p;
  o.epoch_ns = 10'000'000;
  ReplayPlan plan;
  std::string err;
  REQUIRE(make_plan(t, o, plan, err));
  return plan;
}

}  // namespace

TEST_CASE("epoch policies on constructed lifetimes: oracle never mispredicts", "[trace]") {
  const Trace t = lifetimes_trace();
  // 12 objects: 8 short (site 1), 4 long (site 2, each outlives its window).
  ReplayPlan none = plan_for(t, EpochPolicy::kNone);
  CHECK(none.long_objects == 12);
  CHECK(none.window_objects == 0);
  CHECK(none.mispredicted == 0);

  ReplayPlan time = plan_for(t, EpochPolicy::kTime);
  CHECK(time.window_objects == 12);
  CHECK(time.mispredicted == 4);  // every long object is live at its window's close
  CHECK(time.mispredicted_pct() == Approx(100.0 * 4 / 12));

  ReplayPlan oracle = plan_for(t, EpochPolicy::kOracle);
  CHECK(oracle.mispredicted == 0);
  CHECK(oracle.window_objects == 8);
  CHECK(oracle.long_objects == 4);

  // callsite: site 2 is unknown at 2 ms (predicted short: one misprediction,
  // learnt at the close of window 0), then predicted long; site 1 stays short.
  ReplayPlan cs = plan_for(t, EpochPolicy::kCallsite);
  CHECK(cs.mispredicted == 1);
  CHECK(cs.window_objects == 9);
  CHECK(cs.long_objects == 3);
}

TEST_CASE("replay plan keeps per-thread order and counts cross-thread frees and fallbacks", "[trace]") {
  const Trace t = make_trace({{0, Op::kMalloc, 100, 1, 0, 7, 1},
                              {0, Op::kMalloc, 2000, 2, 0, 8, 2},   // above 768 B: fallback
                              {1, Op::kRealloc, 300, 3, 1, 7, 1},
                              {1, Op::kFree, 0, 3, 0, 8, 0},        // cross-thread
                              {2, Op::kFree, 0, 2, 0, 7, 0}});      // cross-thread
  ReplayPlan p = plan_for(t, EpochPolicy::kTime);
  REQUIRE(p.threads.size() == 2);
  CHECK(p.tids == std::vector<uint32_t>{7, 8});
  REQUIRE(p.threads[0].size() == 3);
  CHECK(p.threads[0][1].op == uint8_t(Op::kRealloc));
  CHECK(p.threads[0][1].old_obj == 1u);
  CHECK(p.threads[0][1].obj == 3u);
  CHECK(p.cross_thread_frees == 2);
  CHECK(p.fallback_objects == 1);
  CHECK(p.fallback_bytes == 2000);
  CHECK(p.ops == 5);
}

// ---- replay through the runner -----------------------------------------------------

#include <random>

#include "harness/config.h"
#include "harness/runner.h"
#include "harness/schema.h"

namespace {

// A seeded 4-thread trace: mallocs of 16..2000 B, frees and reallocs of a
// random live object (often another thread's), in one global order.
Trace synthetic_trace(uint64_t seed, int steps) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> live;
  std::vector<Row> rows;
  uint64_t next = 1;
  for (int i = 0; i < steps; ++i) {
    const uint32_t tid = 100 + uint32_t(rng() % 4);
    const unsigned k = unsigned(rng() % 10);
    const uint64_t ts = uint64_t(i) / 50;  // ms: 50 ops per ms
    if (live.empty() || k < 5) {
      const uint64_t id = next++;
      rows.push_back({ts, k == 0 ? Op::kCalloc : Op::kMalloc, 16 + rng() % 1985, id, 0, tid, uint32_t(rng() % 8)});
      live.push_back(id);
    } else {
      const size_t j = rng() % live.size();
      const uint64_t id = live[j];
      if (k < 8) {
        rows.push_back({ts, Op::kFree, 0, id, 0, tid, 0});
        live.erase(live.begin() + long(j));
      } else if (k == 8) {
        const uint64_t nid = next++;
        rows.push_back({ts, Op::kRealloc, 16 + rng() % 1985, nid, id, tid, uint32_t(rng() % 8)});
        live[j] = nid;
      } else {
        rows.push_back({ts, Op::kUsableSize, 64, id, 0, tid, 0});
      }
    }
  }
  return make_trace(rows);
}

ReplayPlan plan_for_ms(const Trace& t, const char* policy) {
  PlanOptions o;
  REQUIRE(parse_epoch_policy(policy, o.policy));
  o.epoch_ns = 2'000'000;
  ReplayPlan plan;
  std::string err;
  REQUIRE(make_plan(t, o, plan, err));
  return plan;
}

void write_trace(const Trace& t, const std::string& path) {
  std::string s = encode_header(t.header);
  for (size_t i = 0; i < t.events.size(); i += 1000)
    s += encode_frame(t.events.data() + i, uint32_t(std::min<size_t>(1000, t.events.size() - i)));
  s += encode_end(t.events.size());
  std::ofstream(path, std::ios::binary) << s;
}

}  // namespace

TEST_CASE("replay fidelity: every op of a synthetic multi-threaded trace, each object freed once", "[trace]") {
  TempDir d;
  const Trace t = synthetic_trace(12, 20000);
  write_trace(t, d.file("syn.ztr"));
  Trace back;
  TraceError err;
  REQUIRE(read_trace(d.file("syn.ztr"), back, err));
  for (const char* policy : {"none", "time", "callsite", "oracle"}) {
    INFO(policy);
    auto wc = znslab::harness::load_workload(
        "trace", {"trace=" + d.file("syn.ztr"), std::string("epoch_policy=") + policy, "epoch_ms=2", "sample_ms=5"});
    nlohmann::json r = znslab::harness::run_workload(wc, "temporal-slab", "", false);
    const auto& s = r["summary"];
    CHECK(s["ops_replayed"] == t.events.size());
    CHECK(s["ops_skipped"] == 0);
    ReplayPlan plan = plan_for_ms(back, policy);
    CHECK(s["fallback_ops"] == plan.fallback_objects);
    CHECK(s["fallback_bytes"] == plan.fallback_bytes);
    CHECK(s["mispredicted_objects"] == plan.mispredicted);
    CHECK(plan.cross_thread_frees > 1000);
    // The slab saw exactly the small objects, each freed once (drain included).
    const auto& g = r["allocator_stats"]["global"];
    CHECK(g["allocs"] == plan.long_objects + plan.window_objects);
    CHECK(g["frees"] == g["allocs"]);
    CHECK(g["live_objects"] == 0);
    CHECK(znslab::harness::result_schema_errors(r).empty());
  }
#ifndef ZNSLAB_SANITIZE
  auto wc = znslab::harness::load_workload("trace", {"trace=" + d.file("syn.ztr"), "timing=recorded"});
  nlohmann::json r = znslab::harness::run_workload(wc, "glibc", "", false);
  CHECK(r["summary"]["ops_replayed"] == t.events.size());
  CHECK(r["summary"]["fallback_ops"] == 0);
  CHECK(r["summary"]["mispredicted_pct"].is_null());
  // recorded timing: 20000 ops at 50 per ms take at least the trace's 400 ms.
  CHECK(r["summary"]["replay_seconds"].get<double>() >= 0.39);
#endif
}

// ---- libznsslab-malloc.so: real programs on the temporal slab ---------------------

namespace {

std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs argv plain and under the slab malloc with `policy`; returns both outputs.
std::pair<std::string, std::string> run_both(const TempDir& d, const std::vector<std::string>& argv,
                                             const std::vector<std::string>& extra_env, const std::string& policy,
                                             const std::string& in_path = "") {
  std::vector<std::string> plain_env = extra_env, slab_env = extra_env;
  slab_env.push_back("LD_PRELOAD=" + tt::lib("libznsslab-malloc.so"));
  slab_env.push_back("ZNSSLAB_EPOCH_POLICY=" + policy);
  slab_env.push_back("ZNSSLAB_EPOCH_MS=5");  // many window changes in a short run
  slab_env.push_back("ZNSSLAB_STATS=" + d.file("stats.json"));
  REQUIRE(tt::run(argv, plain_env, d.file("plain.out"), in_path) == 0);
  REQUIRE(tt::run(argv, slab_env, d.file("slab.out"), in_path) == 0);
  return {slurp(d.file("plain.out")), slurp(d.file("slab.out"))};
}

const char* kPyScript =
    "import json, re, collections, hashlib\n"
    "d = [{'k': i, 'v': str(i) * (i % 7), 'l': list(range(i % 13))} for i in range(30000)]\n"
    "s = json.dumps(d, sort_keys=True)\n"
    "e = json.loads(s)\n"
    "c = collections.Counter(re.findall(r'[0-9]+', s))\n"
    "print(len(s), len(e), c.most_common(3))\n"
    "print(hashlib.sha256(s.encode()).hexdigest())\n"
    "b = bytearray()\n"
    "for i in range(20000): b += str(i).encode()\n"
    "print(len(b), sum(b) % 100003)\n";

}  // namespace

TEST_CASE("slab malloc runs python3 with output identical to glibc's, both policies", "[trace]") {
  if (!std::filesystem::exists("/usr/bin/python3")) ZNSLAB_SKIP("/usr/bin/python3 not installed");
  TempDir d;
  std::ofstream(d.file("s.py")) << kPyScript;
  for (const char* policy : {"time", "callsite"}) {
    INFO(policy);
    // PYTHONMALLOC=malloc: every Python object through malloc (no pymalloc arenas).
    auto [plain, slab] = run_both(d, {"/usr/bin/python3", d.file("s.py")}, {"PYTHONMALLOC=malloc"}, policy);
    CHECK(plain.size() > 100);
    CHECK(slab == plain);
    nlohmann::json st = nlohmann::json::parse(slurp(d.file("stats.json")));
    CHECK(st["epoch_policy"] == policy);
    CHECK(st["slab_ops"].get<uint64_t>() > 100000);  // the slab served the small objects
    CHECK(st["fallback_ops"].get<uint64_t>() > 0);   // and the fallback the large ones
    CHECK(st["windows_closed"].get<uint64_t>() > 0);
    CHECK(st["unaligned_slots"] == 0);
  }
}

TEST_CASE("slab malloc runs sqlite3 with output identical to glibc's", "[trace]") {
  if (!std::filesystem::exists("/usr/bin/sqlite3")) ZNSLAB_SKIP("/usr/bin/sqlite3 not installed (apt-get install sqlite3)");
  TempDir d;
  std::ofstream(d.file("s.sql")) << "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c REAL);\n"
                                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 20000)\n"
                                    "INSERT INTO t SELECT i, printf('row-%d-%s', i, hex(i % 251)), i * 0.5 FROM n;\n"
                                    "CREATE INDEX tb ON t(b);\n"
                                    "UPDATE t SET c = c * 2 WHERE a % 3 = 0;\n"
                                    "DELETE FROM t WHERE a % 5 = 0;\n"
                                    "SELECT count(*), sum(c), min(b), max(b) FROM t;\n"
                                    "SELECT b FROM t WHERE b LIKE 'row-77%' ORDER BY b LIMIT 5;\n";
  for (const char* policy : {"time", "callsite"}) {
    INFO(policy);
    auto [plain, slab] = run_both(d, {"/usr/bin/sqlite3", ":memory:"}, {}, policy, d.file("s.sql"));
    CHECK(plain.find("16000|") != std::string::npos);
    CHECK(slab == plain);
  }
}

TEST_CASE("slab malloc across fork: parent and child allocate and free safely", "[trace]") {
  TempDir d;
  const std::vector<std::string> env = {"LD_PRELOAD=" + tt::lib("libznsslab-malloc.so"), "ZNSSLAB_EPOCH_MS=1"};
  CHECK(tt::run({tt::helper(), "fork"}, env) == 0);
  CHECK(tt::run({tt::helper(), "basic"}, env) == 0);  // threads, realloc chain, aligned family
}

TEST_CASE("znslab exec runs a program under temporal-slab and writes a valid result", "[trace]") {
  if (!std::filesystem::exists("/usr/bin/python3")) ZNSLAB_SKIP("/usr/bin/python3 not installed");
  TempDir d;
  std::ofstream(d.file("s.py")) << kPyScript;
  const std::string bin = tt::build_dir() + "/znslab";
  if (!std::filesystem::exists(bin)) ZNSLAB_SKIP(bin + " not built (make all)");
  REQUIRE(tt::run({bin, "exec", "--quiet", "--allocator", "temporal-slab", "--epoch-policy", "callsite", "--out",
                   d.file("r.json"), "--stdout", d.file("out.txt"), "--env", "PYTHONMALLOC=malloc", "--",
                   "/usr/bin/python3", d.file("s.py")},
                  {}) == 0);
  nlohmann::json r = nlohmann::json::parse(slurp(d.file("r.json")));
  CHECK(znslab::harness::result_schema_errors(r).empty());
  CHECK(r["experiment"] == "exec");
  CHECK(r["summary"]["exit_status"] == 0);
  CHECK(r["summary"]["peak_rss_bytes"].get<uint64_t>() > 1000000);
  CHECK(r["allocator_stats"]["epoch_policy"] == "callsite");
  CHECK(r["allocator_stats"]["slab_ops"].get<uint64_t>() > 100000);
  CHECK(slurp(d.file("out.txt")).size() > 100);
}
