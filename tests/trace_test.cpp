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
