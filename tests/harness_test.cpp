// [harness] tests: the workload-config loader, the result schema on real
// short runs, bound evaluation (`znslab check`), peer library detection and
// LD_PRELOAD re-exec, and LatencyHistogram percentiles.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "harness/allocators.h"
#include "harness/bounds.h"
#include "harness/config.h"
#include "harness/peers.h"
#include "harness/registry.h"
#include "harness/result.h"
#include "harness/runner.h"
#include "harness/schema.h"
#include "harness/table.h"
#include "tests/skip.h"

using namespace znslab::harness;
using nlohmann::json;

namespace {

// The ConfigError message of `f`, or "" when it did not throw one.
template <typename F>
std::string config_error_of(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The allocator in-process runs use: temporal-slab when linked, else glibc.
std::string in_process_allocator() { return find_allocator("temporal-slab") ? "temporal-slab" : "glibc"; }

[[maybe_unused]] std::string self_dir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  buf[n] = 0;
  return std::filesystem::path(buf).parent_path().string();
}

}  // namespace

TEST_CASE("config: a workload file resolves defaults, file keys and --set in order", "[harness]") {
  WorkloadConfig wc = load_workload_text(R"({"workload": "churn", "cycles": 7, "threads": 2})",
                                         "w.json", {"cycles=9", "size_distribution=log_uniform",
                                                    "pinned_fraction=0.5", "objects_per_cycle=1e3"});
  CHECK(wc.workload == "churn");
  CHECK(wc.config["workload"] == "churn");
  CHECK(wc.config["cycles"] == 9);                       // --set wins over the file
  CHECK(wc.config["threads"] == 2);                      // from the file
  CHECK(wc.config["size_distribution"] == "log_uniform"); // plain string fallback
  CHECK(wc.config["pinned_fraction"].get<double>() == 0.5);
  CHECK(wc.config["objects_per_cycle"].is_number_integer());  // 1e3 -> integer 1000
  CHECK(wc.config["objects_per_cycle"] == 1000);
  CHECK(wc.config["fill"] == true);                      // default
  CHECK(wc.origin["cycles"] == "--set cycles=9");
  CHECK(wc.origin["threads"] == "w.json");
  CHECK(wc.origin["seed"] == "default");
}

TEST_CASE("config: --set values parse as JSON, else as a string", "[harness]") {
  CHECK(parse_set_value("2000") == json(2000));
  CHECK(parse_set_value("true") == json(true));
  CHECK(parse_set_value("\"x y\"") == json("x y"));
  CHECK(parse_set_value("[1,2]") == json::array({1, 2}));
  CHECK(parse_set_value("uniform") == json("uniform"));
  CHECK(parse_set("a=b=c").second == json("b=c"));
  CHECK_THROWS_AS(parse_set("novalue"), UsageError);
  CHECK_THROWS_AS(parse_set("=3"), UsageError);
}

TEST_CASE("config: malformed workload JSON is rejected naming the key and the file", "[harness]") {
  SECTION("unknown key") {
    auto m = config_error_of([] { load_workload_text(R"({"workload":"churn","cyclez":5})", "bad.json", {}); });
    CHECK(contains(m, "bad.json"));
    CHECK(contains(m, "unknown key \"cyclez\""));
    CHECK(contains(m, "cycles"));  // lists what is accepted
  }
  SECTION("unknown key through --set") {
    auto m = config_error_of([] { load_workload_text(R"({"workload":"churn"})", "w.json", {"thread=2"}); });
    CHECK(contains(m, "--set thread=2"));
    CHECK(contains(m, "unknown key \"thread\""));
  }
  SECTION("wrong type") {
    auto m = config_error_of([] { load_workload_text(R"({"workload":"churn","cycles":"many"})", "bad.json", {}); });
    CHECK(contains(m, "bad.json"));
    CHECK(contains(m, "key \"cycles\""));
    CHECK(contains(m, "expected an integer"));
    m = config_error_of([] { load_workload_text(R"({"workload":"churn","fill":1})", "bad.json", {}); });
    CHECK(contains(m, "key \"fill\": expected a boolean"));
    m = config_error_of([] { load_workload_text(R"({"workload":"churn","cycles":2.5})", "bad.json", {}); });
    CHECK(contains(m, "key \"cycles\": expected an integer, got 2.5"));
  }
  SECTION("out-of-range value, from the file and from --set") {
    auto m = config_error_of([] { load_workload_text(R"({"workload":"churn","threads":0})", "bad.json", {}); });
    CHECK(contains(m, "bad.json"));
    CHECK(contains(m, "key \"threads\": must be in [1, 64], got 0"));
    m = config_error_of([] { load_workload_text(R"({"workload":"churn"})", "w.json", {"pinned_fraction=1.5"}); });
    CHECK(contains(m, "--set pinned_fraction=1.5"));
    CHECK(contains(m, "key \"pinned_fraction\""));
    m = config_error_of([] { load_workload_text(R"({"workload":"churn","size_distribution":"zipf"})", "bad.json", {}); });
    CHECK(contains(m, "key \"size_distribution\": must be one of"));
    m = config_error_of([] { load_workload_text(R"({"workload":"churn","min_size":500,"max_size":100})", "bad.json", {}); });
    CHECK(contains(m, "key \"max_size\""));
    m = config_error_of([] { load_workload_text(R"({"workload":"alternating","max_size":4096})", "alt.json", {}); });
    CHECK(contains(m, "key \"max_size\": must be in [1, 768], got 4096"));
  }
  SECTION("bad JSON syntax names the line") {
    auto m = config_error_of([] {
      load_workload_text("{\n  \"workload\": \"churn\",\n  \"cycles\": 10,,\n}\n", "syntax.json", {});
    });
    CHECK(contains(m, "syntax.json"));
    CHECK(contains(m, "invalid JSON at line 3"));
  }
  SECTION("missing or unknown workload, not an object") {
    CHECK(contains(config_error_of([] { load_workload_text(R"({"cycles":1})", "x.json", {}); }),
                   "key \"workload\" is missing"));
    CHECK(contains(config_error_of([] { load_workload_text(R"({"workload":"nope"})", "x.json", {}); }),
                   "unknown workload \"nope\""));
    CHECK(contains(config_error_of([] { load_workload_text("[1,2]", "x.json", {}); }), "must be a JSON object"));
    CHECK(contains(config_error_of([] { load_workload("/nonexistent/w.json", {}); }), "/nonexistent/w.json"));
  }
}

TEST_CASE("config: the shipped workload files load", "[harness]") {
  for (const char* f : {"workloads/churn.json", "workloads/alternating.json"}) {
    if (!std::filesystem::exists(f)) ZNSLAB_SKIP(std::string(f) + " not found (run from the repository root)");
    WorkloadConfig wc = load_workload(f, {});
    CHECK(!wc.workload.empty());
  }
  WorkloadConfig churn = load_workload("workloads/churn.json", {});
  for (const char* k : {"cycles", "objects_per_cycle", "min_size", "max_size", "size_distribution",
                        "pinned_fraction", "threads", "fill", "seed", "idle_ms_before_sample"})
    CHECK(churn.origin[k] == "workloads/churn.json");
  CHECK(load_workload("workloads/alternating.json", {}).config["live_slots"] == 4096);
}

TEST_CASE("result schema: real short churn and alternating runs conform", "[harness]") {
  const std::string alloc = in_process_allocator();
  SECTION("churn, 2 threads") {
    WorkloadConfig wc = load_workload("churn", {"cycles=12", "objects_per_cycle=3000", "threads=2",
                                               "idle_ms_before_sample=0", "sample_interval_ms=5"});
    json doc = run_workload(wc, alloc, "", false);
    auto errs = result_schema_errors(doc);
    INFO((errs.empty() ? std::string() : errs[0]));
    CHECK(errs.empty());
    CHECK(doc["allocator"]["name"] == alloc);
    CHECK(doc["config"]["cycles"] == 12);
    const json& s = doc["summary"];
    CHECK(s["steady_state_first_cycle"] == 1);  // 10 % of 12
    CHECK(s["objects_allocated"] == 36000);
    CHECK(s["pinned_objects"] == 600);  // 20 % of cycle 0
    CHECK(s["peak_rss_bytes"].get<uint64_t>() >= s["post_free_rss_bytes"].get<uint64_t>());
    CHECK(s["live_bytes_post_free"].get<uint64_t>() >= s["requested_bytes_post_free"].get<uint64_t>());
    CHECK(s["requested_bytes_post_free"].get<uint64_t>() >= 600 * 64);
    size_t peaks = 0, post = 0;
    for (const auto& smp : doc["samples"]) {
      if (smp["phase"] == "peak") ++peaks;
      if (smp["phase"] == "post_free") {
        ++post;
        CHECK(smp["objects_live"] == 600);  // only the pinned objects survive a cycle
      }
    }
    CHECK(peaks == 12);
    CHECK(post == 12);
    CHECK(doc["latency_ns"]["alloc"]["count"].get<uint64_t>() > 0);
    CHECK(doc["latency_ns"]["free"]["count"].get<uint64_t>() > 0);
  }
  SECTION("alternating") {
    WorkloadConfig wc = load_workload("alternating", {"steps=20000", "warmup_steps=1000", "live_slots=512"});
    json doc = run_workload(wc, alloc, "", false);
    auto errs = result_schema_errors(doc);
    INFO((errs.empty() ? std::string() : errs[0]));
    CHECK(errs.empty());
    CHECK(doc["latency_ns"]["alloc"]["count"] == 20000);
    CHECK(doc["latency_ns"]["free"]["count"] == 20000);
    CHECK(doc["summary"]["ops"] == 40000);
    CHECK(doc["timer"]["subtracted"] == false);
    CHECK(doc["timer"]["overhead_ns_p50"].get<double>() > 0);
  }
}

TEST_CASE("result schema: the checker reports what a broken document lacks", "[harness]") {
  WorkloadConfig wc = load_workload("alternating", {"steps=1000", "warmup_steps=0", "live_slots=64"});
  json doc = run_workload(wc, in_process_allocator(), "", false);
  REQUIRE(result_schema_errors(doc).empty());
  json bad = doc;
  bad["summary"].erase("ops_per_sec");
  bad["latency_ns"]["alloc"]["p99"] = "fast";
  bad["schema"] = "znslab.result/0";
  auto errs = result_schema_errors(bad);
  REQUIRE(errs.size() == 3);
  CHECK(contains(errs[0] + errs[1] + errs[2], "summary.ops_per_sec: missing"));
  CHECK(contains(errs[0] + errs[1] + errs[2], "latency_ns.alloc.p99"));
  CHECK(contains(errs[0] + errs[1] + errs[2], "schema"));
  json churn_like = doc;
  churn_like["experiment"] = "churn";
  CHECK(!result_schema_errors(churn_like).empty());  // churn metrics required
}

namespace {
json fake_churn(std::vector<std::pair<uint64_t, uint64_t>> post_free /* rss, live */, double drift,
                const char* allocator = "temporal-slab") {
  json doc{{"schema", "znslab.result/1"}, {"experiment", "churn"},
           {"allocator", {{"name", allocator}}}, {"samples", json::array()}};
  doc["summary"] = {{"committed_drift_pct", drift}, {"rss_stability_pct", 3.5}, {"steady_state_first_cycle", 1}};
  for (size_t c = 0; c < post_free.size(); ++c)
    doc["samples"].push_back({{"phase", "post_free"}, {"cycle", c}, {"rss_bytes", post_free[c].first},
                              {"objects_live_bytes", post_free[c].second}});
  return doc;
}
const json kBounds = json::parse(R"({
  "schema": "znslab.bounds/1",
  "bounds": [
    {"name": "drift", "metric": "summary.committed_drift_pct", "max": 1.0, "unit": "%", "allocators": ["temporal-slab"]},
    {"name": "stability", "metric": "summary.rss_stability_pct", "max": 10.0, "min": 0.0, "unit": "%"},
    {"name": "rss_vs_live", "over": "steady_post_free", "metric": "rss_bytes",
     "max": {"scale": 1.10, "metric": "objects_live_bytes", "plus": 1000}, "unit": "bytes"}
  ]})");
}  // namespace

TEST_CASE("check: bounds pass and fail with figures", "[harness]") {
  using S = BoundOutcome::State;
  SECTION("all hold") {
    // cycle 0 is warm-up (steady state starts at 1): its excess is ignored.
    auto outs = evaluate_bounds(fake_churn({{999999, 10}, {2000, 1000}, {2100, 1000}}, 0.0), kBounds);
    REQUIRE(outs.size() == 3);
    for (const auto& o : outs) CHECK(o.state == S::kPass);
    CHECK(contains(outs[2].message, "all 2 steady-state cycles"));
  }
  SECTION("drift and one cycle violate") {
    auto outs = evaluate_bounds(fake_churn({{0, 0}, {2000, 1000}, {2101, 1000}, {2200, 1000}}, 1.5), kBounds);
    CHECK(outs[0].state == S::kFail);
    CHECK(contains(outs[0].message, "summary.committed_drift_pct = 1.50 % > 1.00 %"));
    CHECK(outs[1].state == S::kPass);
    CHECK(outs[2].state == S::kFail);
    CHECK(contains(outs[2].message, "2 of 3 steady-state cycles"));
    CHECK(contains(outs[2].message, "rss_bytes[cycle 2] = 2101 bytes"));
  }
  SECTION("a bound filtered by allocator is not applicable; null metric fails") {
    json peer = fake_churn({{0, 0}, {2000, 1000}}, 0.0, "mimalloc");
    peer["summary"]["committed_drift_pct"] = nullptr;
    CHECK(evaluate_bounds(peer, kBounds)[0].state == S::kNotApplicable);
    json slab = fake_churn({{0, 0}, {2000, 1000}}, 0.0);
    slab["summary"]["committed_drift_pct"] = nullptr;
    auto o = evaluate_bounds(slab, kBounds)[0];
    CHECK(o.state == S::kFail);
    CHECK(contains(o.message, "is null"));
  }
  SECTION("malformed bounds are a ConfigError naming the bound") {
    json b = json::parse(R"({"bounds": [{"name": "x", "metric": "summary.a"}]})");
    CHECK(contains(config_error_of([&] { evaluate_bounds(fake_churn({}, 0), b); }), "bound \"x\""));
    CHECK_THROWS_AS(evaluate_bounds(fake_churn({}, 0), json::object()), ConfigError);
  }
  SECTION("the shipped ci/rss_bounds.json is well-formed and consistent with its runs") {
    if (!std::filesystem::exists("ci/rss_bounds.json")) ZNSLAB_SKIP("ci/rss_bounds.json not found (run from the repository root)");
    std::ifstream f("ci/rss_bounds.json");
    json b = json::parse(f);
    auto outs = evaluate_bounds(fake_churn({{0, 0}, {20 << 20, 10 << 20}, {20 << 20, 10 << 20}}, 0.0), b);
    CHECK(outs.size() == 3);
    for (const auto& o : outs) CHECK(o.state == S::kPass);
    REQUIRE(b["runs"].size() >= 2);
    for (const auto& r : b["runs"]) {
      std::vector<std::string> sets;
      for (auto& [k, v] : r["set"].items()) sets.push_back(k + "=" + v.dump());
      CHECK_NOTHROW(load_workload(r["workload"].get<std::string>(), sets));
      CHECK(find_allocator(r["allocator"].get<std::string>()) != nullptr);
    }
  }
}

TEST_CASE("peers: malloc library detection from /proc/<pid>/maps", "[harness]") {
  const std::string maps =
      "55d0c0a00000-55d0c0a10000 r--p 00000000 08:01 123 /work/main/build/znslab\n"
      "7f1d2c000000-7f1d2c021000 rw-p 00000000 00:00 0 \n"
      "7f1d2c400000-7f1d2c428000 r--p 00000000 08:01 456 /usr/lib/x86_64-linux-gnu/libmimalloc.so.2.0\n"
      "7f1d2c428000-7f1d2c440000 r-xp 00028000 08:01 456 /usr/lib/x86_64-linux-gnu/libmimalloc.so.2.0\n"
      "7f1d2c600000-7f1d2c628000 r--p 00000000 08:01 789 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
      "7ffd1e000000-7ffd1e021000 rw-p 00000000 00:00 0 [stack]\n";
  auto files = mapped_files(maps);
  CHECK(files.size() == 3);  // unique paths only
  CHECK(loaded_peer_allocators(maps) == std::vector<std::string>{"mimalloc"});
  CHECK(loaded_peer_allocators("7f-7f r--p 0 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n").empty());
  CHECK(loaded_peer_allocators("7f-7f r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4.5.10\n"
                               "7f-7f r-xp 0 08:01 1 /opt/libjemalloc.so.2\n") ==
        std::vector<std::string>{"jemalloc", "tcmalloc"});
  // LD_PRELOAD composition: the wanted peer first, other malloc libraries dropped.
  CHECK(preload_for("mimalloc", "") == "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2");
  CHECK(preload_for("jemalloc", "/x/libfoo.so /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4") ==
        "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2:/x/libfoo.so");
  CHECK(preload_for("glibc", "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2").empty());
  // This test process runs no peer: reporting one must be refused.
  REQUIRE(loaded_peer_allocators(read_self_maps()).empty());
  CHECK_THROWS_AS(malloc_identity("mimalloc"), RunError);
  json g = malloc_identity("glibc");
  CHECK(contains(g["library"].get<std::string>(), "libc.so"));
  CHECK(!g["version"].get<std::string>().empty());
}

TEST_CASE("peers: `znslab run --allocator` preloads and reports the library loaded", "[harness]") {
#ifdef ZNSLAB_SANITIZE
  ZNSLAB_SKIP("SANITIZE build: a preloaded malloc cannot replace the sanitizer's");
#else
  const std::string bin = std::filesystem::path(self_dir()).parent_path().string() + "/znslab";
  if (access(bin.c_str(), X_OK) != 0) ZNSLAB_SKIP(bin + " not built");
  const std::string out = "/tmp/znslab-harness-test-" + std::to_string(getpid()) + ".json";
  struct Case { const char* allocator; const char* lib; const char* env; };
  for (const Case& c : {Case{"mimalloc", "libmimalloc", ""}, Case{"jemalloc", "libjemalloc", ""},
                        Case{"tcmalloc", "libtcmalloc", ""},
                        // A foreign preload is stripped for glibc (and replaced for a peer).
                        Case{"glibc", "libc.so", "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 "},
                        Case{"mimalloc", "libmimalloc", "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 "}}) {
    INFO(c.allocator << " " << c.env);
    if (const PeerLibrary* l = peer_library(c.allocator))
      if (access((std::string(kPeerLibDir) + "/" + l->soname).c_str(), R_OK) != 0) {
        WARN(std::string("not installed: ") + l->soname);
        continue;
      }
    std::string cmd = std::string(c.env) + bin + " run alternating --allocator " + c.allocator +
                      " --set steps=2000 --set warmup_steps=0 --set live_slots=128 --quiet --out " + out;
    REQUIRE(std::system(cmd.c_str()) == 0);
    std::ifstream f(out);
    json doc = json::parse(f);
    CHECK(doc["allocator"]["name"] == c.allocator);
    CHECK(contains(doc["allocator"]["library"].get<std::string>(), c.lib));
    CHECK(!doc["allocator"]["version"].get<std::string>().empty());
    if (std::string(c.allocator) == "glibc") CHECK(doc["allocator"]["loaded_malloc_libraries"].empty());
    else CHECK(doc["allocator"]["loaded_malloc_libraries"] == json::array({c.allocator}));
    std::remove(out.c_str());
  }
#endif
}

TEST_CASE("LatencyHistogram percentiles match a sorted-array reference", "[harness]") {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> d(5.0, 1.5);  // ~150 ns median, long tail
  for (size_t n : {1ul, 10ul, 1000ul, 200000ul}) {
    LatencyHistogram h;
    std::vector<uint64_t> v(n);
    for (auto& x : v) {
      x = uint64_t(d(rng));
      h.record(x);
    }
    std::sort(v.begin(), v.end());
    CHECK(h.count() == n);
    CHECK(h.min() == v.front());
    CHECK(h.max() == v.back());
    for (double q : {0.5, 0.9, 0.99, 0.999}) {
      // Nearest-rank reference: the value with rank floor(q * n).
      const uint64_t ref = v[std::min<size_t>(n - 1, size_t(q * double(n)))];
      const uint64_t got = h.percentile(q);
      INFO("n=" << n << " q=" << q << " ref=" << ref << " got=" << got);
      if (ref < 128) CHECK(got == ref);  // exact below 128 ns
      // Log-linear buckets: relative error <= 1/64 of the bucket's low end.
      CHECK(double(got) >= double(ref) * (1 - 1.0 / 64) - 1);
      CHECK(double(got) <= double(ref) * (1 + 1.0 / 64) + 1);
    }
  }
  LatencyHistogram a, b, ab;
  for (uint64_t x = 1; x < 5000; x += 7) (x % 2 ? a : b).record(x), ab.record(x);
  a.merge(b);
  CHECK(a.count() == ab.count());
  CHECK(a.percentile(0.99) == ab.percentile(0.99));
  CHECK(LatencyHistogram().percentile(0.5) == 0);
}

TEST_CASE("table: columns follow the fields present; failed runs and nulls are visible", "[harness]") {
  json a{{"allocator", {{"version", "5.3.0-0-gabcdef"}}},
         {"summary", {{"peak_rss_bytes", 2097152}, {"committed_drift_pct", nullptr}}}};
  TableData t = comparison_table({{"jemalloc", a}, {"mimalloc", nullptr}});
  CHECK(t.headers == std::vector<std::string>{"allocator", "version", "peak RSS MiB", "commit drift %"});
  CHECK(t.rows[0] == std::vector<std::string>{"jemalloc", "5.3.0", "2.0", "-"});
  CHECK(t.rows[1][1] == "FAILED");
  std::string text = render_table(t.headers, t.rows);
  CHECK(contains(text, "peak RSS MiB"));
  CHECK(json_at_path(a, "summary.peak_rss_bytes")->get<int>() == 2097152);
  CHECK(json_at_path(a, "summary.nope") == nullptr);
}
