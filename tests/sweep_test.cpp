// [sweep] tests: sweep files (malformed ones refused naming the key), grid
// expansion (crossed and zipped axes, repeats, seeded interleaving), the
// summary against hand-computed medians and intervals, and end to end through
// build/znslab: the local engine, a failing run reported with its error,
// resume after a killed sweep, and the GNU parallel engine.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "harness/registry.h"
#include "harness/report.h"
#include "harness/result.h"
#include "harness/schema.h"
#include "harness/sweep.h"
#include "harness/sweep_exec.h"
#include "tests/skip.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;
using namespace znslab::harness;
using nlohmann::json;
using znslab::testutil::TempDir;

namespace {

std::string config_error(const json& doc, const std::string& file = "s.json") {
  try {
    parse_sweep(doc, file);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string znslab_bin() { return (fs::path(self_exe()).parent_path().parent_path() / "znslab").string(); }

// workloads/sweeps/smoke.json of the source tree holding the test binary ("" if not found).
std::string smoke_sweep() {
  for (fs::path p = fs::path(self_exe()).parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path())
    if (fs::exists(p / "workloads/sweeps/smoke.json")) return (p / "workloads/sweeps/smoke.json").string();
  return "";
}

// A tiny churn sweep (2 points x 2 allocators x 2 repeats, ~0.1 s a run).
json tiny_sweep() {
  return json::parse(R"({
    "workload": "churn",
    "allocators": ["temporal-slab", "glibc"],
    "repeats": 2,
    "grid": {"threads": [1, 2]},
    "set": {"cycles": 3, "objects_per_cycle": 3000, "sample_interval_ms": 10, "idle_ms_before_sample": 0}
  })");
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  REQUIRE(f.good());
}

int run_sweep(const std::string& sweep, const std::string& out, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{znslab_bin(), "sweep", sweep, "--out", out, "--quiet"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return run_process(argv, "", out + ".log");
}

json load(const std::string& path) {
  INFO(path);
  auto d = read_json_file(path);
  INFO((d ? "" : d.status().context()));
  REQUIRE(d.is_ok());
  return *d;
}

// A minimal valid znslab.result/1 document with a given ns_per_object.
json fake_result(double ns, const json& sweep_block) {
  json r = {{"schema", "znslab.result/1"},
            {"experiment", "fake"},
            {"started_at", "2026-12-03T00:00:00Z"},
            {"git_rev", "abc"},
            {"label", "fake"},
            {"provenance", {{"git_rev", "abc"}, {"build", json::object()}, {"cpu_model", "c"},
                            {"argv", json::array()}, {"env", json::object()}}},
            {"host", {{"kernel", "k"}, {"cpus", 2}, {"memory_bytes", 1}, {"thp_mode", "madvise"}, {"page_size", 4096}}},
            {"config", {{"workload", "fake"}}},
            {"allocator", nullptr},
            {"device", nullptr},
            {"samples", json::array()},
            {"latency_ns", {{"op", {{"p50", ns}, {"p90", ns}, {"p99", ns}, {"p999", ns}, {"max", ns}}}}},
            {"summary", {{"ops_per_sec", 1000}, {"ns_per_object", ns}}}};
  r["sweep"] = sweep_block;
  return r;
}

}  // namespace

TEST_CASE("sweep: crossed axes expand with the last axis fastest", "[sweep]") {
  SweepSpec s = parse_sweep(json::parse(R"({"workload": "churn", "grid": {"a": [1, 2], "b": ["x", "y", "z"]}})"), "");
  auto pts = expand_points(s);
  REQUIRE(pts.size() == 6);
  CHECK(pts[0].id == "p000");
  CHECK(pts[0].params == json({{"a", 1}, {"b", "x"}}));
  CHECK(pts[1].params == json({{"a", 1}, {"b", "y"}}));
  CHECK(pts[3].params == json({{"a", 2}, {"b", "x"}}));
  CHECK(pts[5].id == "p005");
  CHECK(pts[5].params == json({{"a", 2}, {"b", "z"}}));
  CHECK(swept_keys(s) == std::vector<std::string>{"a", "b"});

  SweepSpec none = parse_sweep(json::parse(R"({"workload": "churn"})"), "");
  auto one = expand_points(none);
  REQUIRE(one.size() == 1);
  CHECK(one[0].params == json::object());
}

TEST_CASE("sweep: zipped axes vary together and cross with the grid", "[sweep]") {
  SweepSpec s = parse_sweep(
      json::parse(R"({"workload": "churn", "grid": {"threads": [1, 2]},
                      "zip": {"min_size": [16, 64, 256], "max_size": [32, 128, 512]}})"),
      "");
  auto pts = expand_points(s);
  REQUIRE(pts.size() == 6);
  std::set<std::string> seen;
  for (const auto& p : pts) {
    CHECK(p.params["max_size"].get<int>() == 2 * p.params["min_size"].get<int>());  // never crossed
    seen.insert(p.params.dump());
  }
  CHECK(seen.size() == 6);
  CHECK(pts[0].params == json({{"threads", 1}, {"min_size", 16}, {"max_size", 32}}));
  CHECK(pts[5].params == json({{"threads", 2}, {"min_size", 256}, {"max_size", 512}}));

  // Two zip groups are two dimensions.
  SweepSpec two = parse_sweep(json::parse(R"({"workload": "churn",
      "zip": [{"a": [1, 2], "b": [3, 4]}, {"c": [5, 6, 7]}]})"), "");
  CHECK(expand_points(two).size() == 6);
}

TEST_CASE("sweep: runs interleave every (point, allocator) per repeat round, shuffled by the seed", "[sweep]") {
  json doc = json::parse(R"({"workload": "churn", "allocators": ["temporal-slab", "glibc"], "repeats": 3,
                             "grid": {"threads": [1, 2, 3]}, "seed": 7})");
  SweepSpec s = parse_sweep(doc, "");
  auto pts = expand_points(s);
  auto runs = plan_runs(s, pts);
  REQUIRE(runs.size() == 18);
  std::set<std::string> names;
  for (size_t k = 0; k < 3; ++k) {
    std::set<std::pair<size_t, std::string>> round;
    for (size_t i = 0; i < 6; ++i) {
      const SweepRun& r = runs[k * 6 + i];
      CHECK(r.repeat == int(k + 1));
      round.insert({r.point, r.allocator});
      CHECK(r.name == pts[r.point].id + "-" + r.allocator + "-r" + std::to_string(k + 1));
      names.insert(r.name);
    }
    CHECK(round.size() == 6);  // each configuration once per round
  }
  CHECK(names.size() == 18);

  auto order = [](const std::vector<SweepRun>& v) {
    std::vector<std::string> n;
    for (const auto& r : v) n.push_back(r.name);
    return n;
  };
  CHECK(order(plan_runs(s, pts)) == order(runs));  // deterministic for a seed
  std::set<std::vector<std::string>> orders;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    s.seed = seed;
    orders.insert(order(plan_runs(s, pts)));
  }
  CHECK(orders.size() > 1);  // the seed changes the order

  doc["order"] = "grid";
  SweepSpec g = parse_sweep(doc, "");
  auto grid = plan_runs(g, pts);
  CHECK(grid[0].name == "p000-temporal-slab-r1");
  CHECK(grid[1].name == "p000-glibc-r1");
  CHECK(grid[2].name == "p001-temporal-slab-r1");
}

TEST_CASE("sweep: a malformed sweep file is refused with a message naming the key", "[sweep]") {
  CHECK(contains(config_error(json::parse(R"({"grid": {"threads": [1]}})")), "\"workload\""));
  CHECK(contains(config_error(json::parse(R"({"workload": "churn", "gird": {}})")), "key \"gird\": unknown key"));
  CHECK(contains(config_error(json::parse(R"({"workload": "churn", "grid": {"threads": 2}})")),
                 "key \"grid.threads\": expected a non-empty array"));
  CHECK(contains(config_error(json::parse(R"({"workload": "churn", "grid": {"threads": []}})")), "\"grid.threads\""));
  CHECK(contains(config_error(json::parse(R"({"workload": "churn", "repeats": 0})")), "key \"repeats\": must be in"));
  CHECK(contains(config_error(json::parse(R"({"workload": "churn", "repeats": "3"})")), "key \"repeats\": expected an integer"));
  CHECK(contains(config_error(json::parse(R"({"workload": "churn", "zip": {"a": [1, 2], "b": [1]}})")),
                 "key \"zip.b\": zipped axes need equal lengths"));
  CHECK(contains(config_error(json::parse(R"({"workload": "churn", "grid": {"cycles": [1, 2]}, "set": {"cycles": 3}})")),
                 "key \"set.cycles\": is also swept"));
  CHECK(contains(config_error(json::parse(R"({"workload": "churn", "engine": {"name": "pbs"}})")),
                 "key \"engine.name\""));
  CHECK(contains(config_error(json::parse(R"({"workload": "churn", "engine": {"partitoin": "x"}})")),
                 "key \"engine.partitoin\": unknown key"));
  CHECK(contains(config_error(json::parse(R"({"workload": "churn", "allocators": ["glibc", "glibc"]})")),
                 "key \"allocators\""));
  CHECK(contains(config_error(json::parse(R"({"workload": "churn", "grid": {"a": [1, 1]}})")), "appears twice"));
  CHECK(config_error(json::parse(R"({"workload": "churn", "grid": {"threads": [1, 2]}, "set": {"cycles": 3}})")) == "");

  // A key the workload does not have, or a value it refuses, names the point and the key.
  SweepSpec s = parse_sweep(json::parse(R"({"workload": "churn", "grid": {"threds": [1, 2]}})"), "s.json");
  std::string msg;
  try {
    validate_points(s, expand_points(s));
  } catch (const ConfigError& e) {
    msg = e.what();
  }
  CHECK(contains(msg, "point p000"));
  CHECK(contains(msg, "\"threds\""));
  SweepSpec r = parse_sweep(json::parse(R"({"workload": "churn", "grid": {"threads": [1, 0]}})"), "s.json");
  msg.clear();
  try {
    validate_points(r, expand_points(r));
  } catch (const ConfigError& e) {
    msg = e.what();
  }
  CHECK(contains(msg, "point p001"));
  CHECK(contains(msg, "\"threads\""));
}

TEST_CASE("sweep: \"cpu\" pins every run with znslab run --cpu", "[sweep]") {
  SweepSpec s = parse_sweep(json::parse(R"({"workload": "churn", "grid": {"cycles": [1, 2]}, "cpu": 1})"), "s.json");
  CHECK(s.cpu == 1);
  const auto points = expand_points(s);
  for (const auto& r : plan_runs(s, points)) {
    const auto a = run_argv(s, points[r.point], r, "o.json");
    const auto it = std::find(a.begin(), a.end(), "--cpu");
    REQUIRE(it != a.end());
    CHECK(*(it + 1) == "1");
  }
  SweepSpec u = parse_sweep(json::parse(R"({"workload": "churn"})"), "s.json");
  const auto up = expand_points(u);
  const auto a = run_argv(u, up[0], plan_runs(u, up)[0], "o.json");
  CHECK(std::find(a.begin(), a.end(), "--cpu") == a.end());
  CHECK(contains(config_error(json::parse(R"({"workload": "churn", "cpu": -1})")), "key \"cpu\": must be in"));
  CHECK(contains(config_error(json::parse(R"({"workload": "churn", "cpu": "1"})")), "key \"cpu\": expected an integer"));
}

TEST_CASE("sweep: a relative workload is resolved against the sweep file's folder", "[sweep]") {
  CHECK(parse_sweep(json::parse(R"({"workload": "../churn.json"})"), "workloads/sweeps/x.json").workload ==
        "workloads/churn.json");
  CHECK(parse_sweep(json::parse(R"({"workload": "/abs/w.json"})"), "workloads/sweeps/x.json").workload ==
        "/abs/w.json");
  CHECK(parse_sweep(json::parse(R"({"workload": "churn"})"), "workloads/sweeps/x.json").workload == "churn");
}

TEST_CASE("sweep: the summary aggregates each point against hand-computed medians and lists failed runs", "[sweep]") {
  TempDir tmp;
  SweepSpec s = parse_sweep(json::parse(R"({"workload": "churn", "repeats": 6, "grid": {"threads": [1, 2]}})"), "");
  auto pts = expand_points(s);
  auto runs = plan_runs(s, pts);
  json plan = make_plan(s, pts, runs, "/bin/false");
  fs::create_directories(tmp.file("runs"));
  // Point p000: 6 repeats 50,10,40,20,60,30 -> median 35, [10,60] (N=6: coverage 1-2/64).
  // Point p001: repeats 1..5 valid (100,300,200,500,400 -> median 300, [100,500], 0.9375), r6 failed.
  const std::map<std::string, double> ns = {
      {"p000-default-r1", 50},  {"p000-default-r2", 10},  {"p000-default-r3", 40}, {"p000-default-r4", 20},
      {"p000-default-r5", 60},  {"p000-default-r6", 30},  {"p001-default-r1", 100}, {"p001-default-r2", 300},
      {"p001-default-r3", 200}, {"p001-default-r4", 500}, {"p001-default-r5", 400}};
  for (const auto& r : plan["runs"]) {
    const std::string name = r["name"];
    auto it = ns.find(name);
    if (it == ns.end()) {
      write_file(tmp.file("runs/" + name + ".status.json"),
                 json({{"host", "node7"}, {"engine", "slurm"}, {"exit_status", 1},
                       {"error", "exit status 1: znslab run: out of memory"}}).dump());
      continue;
    }
    json sw = {{"point", r["point"]}, {"params", pts[r["point_index"].get<size_t>()].params},
               {"allocator", r["allocator"]}, {"repeat", r["repeat"]}, {"host", "h"}, {"engine", "local"}};
    json doc = fake_result(it->second, sw);
    REQUIRE(result_schema_errors(doc).empty());
    write_file(tmp.file(r["out"].get<std::string>()), doc.dump());
  }
  CHECK(pending_runs(plan, tmp.path()).size() == 1);

  json sum = summarize_sweep(plan, tmp.path());
  CHECK(sum["schema"] == kSweepSummarySchema);
  CHECK(sum["runs_total"] == 12);
  CHECK(sum["runs_ok"] == 11);
  REQUIRE(sum["points"].size() == 2);
  const json& a = sum["points"][0]["allocators"]["default"]["ns_per_object"];
  CHECK(sum["points"][0]["params"] == json({{"threads", 1}}));
  CHECK(a["median"] == 35.0);
  CHECK(a["ci95_low"] == 10.0);
  CHECK(a["ci95_high"] == 60.0);
  CHECK(a["ci_coverage"].get<double>() == Approx(1 - 2.0 / 64));
  CHECK(a["values"] == json({50.0, 10.0, 40.0, 20.0, 60.0, 30.0}));  // repeat order
  const json& b = sum["points"][1]["allocators"]["default"];
  CHECK(b["ns_per_object"]["median"] == 300.0);
  CHECK(b["ns_per_object"]["ci95_low"] == 100.0);
  CHECK(b["ns_per_object"]["ci95_high"] == 500.0);
  CHECK(b["ns_per_object"]["ci_coverage"].get<double>() == Approx(0.9375));
  CHECK(b["latency_ns"]["op"]["p99"]["median"] == 300.0);
  CHECK(b["median_run"]["file"] == "runs/p001-default-r2.json");
  REQUIRE(sum["failed_runs"].size() == 1);
  const json& f = sum["failed_runs"][0];
  CHECK(f["name"] == "p001-default-r6");
  CHECK(f["params"] == json({{"threads", 2}}));
  CHECK(f["repeat"] == 6);
  CHECK(f["host"] == "node7");
  CHECK(f["error"] == "exit status 1: znslab run: out of memory");

  // The report prints the row and the failed run.
  ReportOptions ro;
  const std::string text = render_sweep_summary(sum, ro);
  CHECK(contains(text, "35 [10..60]"));
  CHECK(contains(text, "300 [100..500] ~"));
  CHECK(contains(text, "p001-default-r6"));
  CHECK(contains(text, "out of memory"));

  // A result of another plan (different params) is not taken as this run's.
  json other = load(tmp.file("runs/p000-default-r1.json"));
  other["sweep"]["params"]["threads"] = 9;
  json run_r1;
  for (const auto& r : plan["runs"])
    if (r["name"] == "p000-default-r1") run_r1 = r;
  CHECK(sweep_result_problem(load(tmp.file("runs/p000-default-r1.json")), run_r1, pts[0].params).empty());
  CHECK(contains(sweep_result_problem(other, run_r1, pts[0].params), "another plan"));
}

TEST_CASE("sweep: report groups plain result files by label and differing config keys", "[sweep]") {
  auto doc = [](const std::string& alloc, int threads, double ns) {
    json d = fake_result(ns, nullptr);
    d.erase("sweep");
    d["label"] = alloc;  // as `znslab run` labels a run by default
    d["allocator"] = {{"name", alloc}, {"version", "1"}};
    d["config"]["threads"] = threads;
    return d;
  };
  std::vector<std::pair<std::string, json>> docs = {
      {"a", doc("glibc", 1, 10)}, {"b", doc("glibc", 1, 30)}, {"c", doc("glibc", 1, 20)},
      {"d", doc("glibc", 2, 99)}, {"e", doc("jemalloc", 1, 5)}, {"c2", doc("glibc", 1, 20)}};  // c2 = copy of c
  auto rows = group_results(docs);
  REQUIRE(rows.size() == 3);
  CHECK(rows[0].keys == std::vector<std::pair<std::string, std::string>>{{"label", "glibc"}, {"threads", "1"}});
  CHECK(rows[0].agg["n"] == 3);  // the identical copy counts once
  CHECK(rows[0].agg["ns_per_object"]["median"] == 20.0);
  CHECK(rows[1].agg["ns_per_object"]["median"] == 99.0);
  CHECK(rows[2].keys[0].second == "jemalloc");
}

TEST_CASE("sweep: end to end on the local engine, a failing run reported with its error", "[sweep]") {
  if (!fs::exists(znslab_bin())) ZNSLAB_SKIP("no znslab binary beside the test binary: " + znslab_bin());
  TempDir tmp;
  write_file(tmp.file("s.json"), tiny_sweep().dump());
  const std::string out = tmp.file("out");
  // p001-glibc-r2 cannot write its result: a folder (not empty) sits at its
  // path, which `znslab run` refuses before it runs (usage error, exit 2).
  fs::create_directories(out + "/runs/p001-glibc-r2.json/blocker");
  CHECK(run_sweep(tmp.file("s.json"), out) == 1);
  json sum = load(out + "/summary.json");
  CHECK(sum["runs_total"] == 8);
  CHECK(sum["runs_ok"] == 7);
  REQUIRE(sum["failed_runs"].size() == 1);
  const json& f = sum["failed_runs"][0];
  CHECK(f["name"] == "p001-glibc-r2");
  CHECK(f["allocator"] == "glibc");
  CHECK(f["params"] == json({{"threads", 2}}));
  CHECK(f["engine"] == "local");
  CHECK(f["host"].is_string());
  CHECK(contains(f["error"].get<std::string>(), "exit status 2"));
  CHECK(contains(f["error"].get<std::string>(), "is a folder"));
  // Every other run is a valid result recording its host and engine.
  for (const auto& p : sum["points"])
    for (const auto& a : p["allocators"].items())
      for (const auto& file : a.value()["runs"]) {
        json r = load(out + "/" + file.get<std::string>());
        CHECK(result_schema_errors(r).empty());
        CHECK(r["sweep"]["engine"] == "local");
        CHECK(r["sweep"]["host"].is_string());
        CHECK(r["config"]["threads"] == p["params"]["threads"]);
        CHECK(r["config"]["cycles"] == 3);
      }
  CHECK(sum["points"][1]["allocators"]["glibc"]["ns_per_object"]["values"].size() == 1);
  CHECK(sum["points"][0]["allocators"]["temporal-slab"]["ns_per_object"]["values"].size() == 2);

  // Fixed, a re-run runs only the failed one.
  fs::remove_all(out + "/runs/p001-glibc-r2.json");
  const auto before = fs::last_write_time(out + "/runs/p000-glibc-r1.json");
  CHECK(run_sweep(tmp.file("s.json"), out) == 0);
  CHECK(fs::last_write_time(out + "/runs/p000-glibc-r1.json") == before);
  json sum2 = load(out + "/summary.json");
  CHECK(sum2["runs_ok"] == 8);
  CHECK(sum2["failed_runs"].empty());
}

TEST_CASE("sweep: resume after a killed sweep runs only the missing runs", "[sweep]") {
  if (!fs::exists(znslab_bin())) ZNSLAB_SKIP("no znslab binary beside the test binary: " + znslab_bin());
  TempDir tmp;
  json s = tiny_sweep();
  s["repeats"] = 3;
  s["set"]["cycles"] = 6;
  write_file(tmp.file("s.json"), s.dump());
  const std::string out = tmp.file("out");
  fs::create_directories(out + "/runs");
  const int pid = spawn_process({znslab_bin(), "sweep", tmp.file("s.json"), "--out", out, "--quiet"}, "",
                                tmp.file("first.log"), /*own_group=*/true);
  auto count_status = [&] {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(out + "/runs"))
      n += e.path().string().find(".status.json") != std::string::npos;
    return n;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int wst = 0;
  bool exited = false;
  while (count_status() < 3 && std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &wst, WNOHANG) == pid) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  REQUIRE_FALSE(exited);  // the sweep was still running when killed
  ::kill(-pid, SIGKILL);  // the sweep and the run in flight
  wait_process(pid);
  const json plan = load(out + "/plan.json");
  std::map<std::string, fs::file_time_type> done_before;
  for (const auto& r : plan["runs"]) {
    const std::string path = out + "/" + r["out"].get<std::string>();
    auto d = read_json_file(path);
    if (d && d->contains("sweep")) done_before[path] = fs::last_write_time(path);
  }
  INFO("runs finished before the kill: " << done_before.size());
  REQUIRE(done_before.size() >= 2);
  REQUIRE(done_before.size() < 12);
  REQUIRE(pending_runs(plan, out).size() == 12 - done_before.size());

  CHECK(run_sweep(tmp.file("s.json"), out) == 0);
  for (const auto& [path, t] : done_before) CHECK(fs::last_write_time(path) == t);  // not rerun
  CHECK(pending_runs(plan, out).empty());
  json sum = load(out + "/summary.json");
  CHECK(sum["runs_ok"] == 12);
  CHECK(sum["failed_runs"].empty());
}

TEST_CASE("sweep: end to end through GNU parallel", "[sweep]") {
  if (!fs::exists(znslab_bin())) ZNSLAB_SKIP("no znslab binary beside the test binary: " + znslab_bin());
  if (run_process({"sh", "-c", "command -v parallel >/dev/null"}) != 0)
    ZNSLAB_SKIP("GNU parallel is not installed (Debian package parallel; make deps)");
  const std::string smoke = smoke_sweep();
  REQUIRE_FALSE(smoke.empty());
  TempDir tmp;
  // The sweep make slurm-test runs, here through GNU parallel with the local
  // machine named in an sshloginfile (":" is this host, 2 slots, no ssh).
  write_file(tmp.file("hosts"), "2/:\n");
  const std::string out = tmp.file("out");
  REQUIRE(run_sweep(smoke, out, {"--engine", "parallel", "--sshloginfile", tmp.file("hosts")}) == 0);
  const json plan = load(out + "/plan.json");
  json sum = load(out + "/summary.json");
  CHECK(sum["runs_total"] == plan["runs"].size());
  CHECK(sum["runs_ok"] == plan["runs"].size());
  CHECK(sum["failed_runs"].empty());
  REQUIRE(sum["points"].size() == plan["points"].size());
  for (const auto& p : sum["points"]) {
    CHECK(p["allocators"].size() == plan["allocators"].size());
    for (const auto& a : p["allocators"].items()) {
      CHECK(a.value()["ns_per_object"]["values"].size() == plan["repeats"].get<size_t>());
      for (const auto& file : a.value()["runs"]) {
        json r = load(out + "/" + file.get<std::string>());
        CHECK(r["sweep"]["engine"] == "parallel");
        CHECK(result_schema_errors(r).empty());
      }
    }
  }
}
