// Sweep files, grid expansion, run plans, resume checks and the summary.
#include "harness/sweep.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "harness/aggregate.h"
#include "harness/config.h"
#include "harness/registry.h"
#include "harness/result.h"
#include "harness/schema.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace znslab::harness {

namespace {

std::string type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return v.dump();
  if (v.is_string()) return "\"" + v.get<std::string>() + "\"";
  if (v.is_number()) return v.dump();
  if (v.is_array()) return "an array";
  return "an object";
}

struct SpecReader {
  std::string origin;
  [[noreturn]] void fail(const std::string& key, const std::string& msg) const {
    throw ConfigError(origin + ": key \"" + key + "\": " + msg);
  }
  std::string str(const json& o, const std::string& key, const std::string& path) const {
    const json& v = o.at(key);
    if (!v.is_string()) fail(path, "expected a string, got " + type_name(v));
    return v.get<std::string>();
  }
  int64_t integer(const json& o, const std::string& key, const std::string& path, int64_t lo, int64_t hi) const {
    const json& v = o.at(key);
    if (!v.is_number_integer() && !(v.is_number_float() && v.get<double>() == double(int64_t(v.get<double>()))))
      fail(path, "expected an integer, got " + type_name(v));
    const int64_t x = v.is_number_integer() ? v.get<int64_t>() : int64_t(v.get<double>());
    if (x < lo || x > hi)
      fail(path, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(x));
    return x;
  }
  bool boolean(const json& o, const std::string& key, const std::string& path) const {
    const json& v = o.at(key);
    if (!v.is_boolean()) fail(path, "expected true or false, got " + type_name(v));
    return v.get<bool>();
  }
  std::vector<SweepAxis> axes(const json& v, const std::string& path) const {
    if (!v.is_object() || v.empty()) fail(path, "expected a non-empty object {KEY: [values...]}");
    std::vector<SweepAxis> out;
    for (const auto& kv : v.items()) {
      const std::string p = path + "." + kv.key();
      if (!kv.value().is_array() || kv.value().empty()) fail(p, "expected a non-empty array of values");
      std::vector<json> vals(kv.value().begin(), kv.value().end());
      std::set<std::string> seen;
      for (const auto& x : vals)
        if (!seen.insert(x.dump()).second) fail(p, "value " + x.dump() + " appears twice");
      out.emplace_back(kv.key(), std::move(vals));
    }
    return out;
  }
};

void check_unknown(const SpecReader& r, const json& o, const std::string& prefix,
                   std::initializer_list<const char*> known) {
  for (const auto& kv : o.items()) {
    bool ok = false;
    for (const char* k : known) ok = ok || kv.key() == k;
    if (!ok) {
      std::string list;
      for (const char* k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      r.fail(prefix + kv.key(), "unknown key (accepted: " + list + ")");
    }
  }
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  if (!f) return {};
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

SweepSpec parse_sweep(const json& doc, const std::string& file) {
  SpecReader r{file.empty() ? std::string("sweep") : file};
  if (!doc.is_object()) throw ConfigError(r.origin + ": expected a JSON object");
  check_unknown(r, doc, "",
                {"workload", "allocators", "repeats", "grid", "zip", "set", "seed", "order", "metric",
                 "cpu", "engine", "comment"});
  SweepSpec s;
  s.file = file;
  if (!doc.contains("workload")) r.fail("workload", "missing (the workload file to sweep)");
  std::string wl = r.str(doc, "workload", "workload");
  if (wl.empty()) r.fail("workload", "must not be empty");
  // A bare registered name ("churn") is kept; a path is resolved against the sweep's folder.
  const bool is_name = wl.find('/') == std::string::npos && wl.find(".json") == std::string::npos;
  if (!is_name && fs::path(wl).is_relative() && !file.empty())
    wl = (fs::path(file).parent_path() / wl).lexically_normal().string();
  s.workload = wl;

  if (doc.contains("allocators")) {
    const json& a = doc["allocators"];
    if (!a.is_array()) r.fail("allocators", "expected an array of allocator names, got " + type_name(a));
    std::set<std::string> seen;
    for (const auto& x : a) {
      if (!x.is_string() || x.get<std::string>().empty())
        r.fail("allocators", "expected allocator names (strings), got " + type_name(x));
      if (!seen.insert(x.get<std::string>()).second)
        r.fail("allocators", "\"" + x.get<std::string>() + "\" appears twice");
      s.allocators.push_back(x.get<std::string>());
    }
  }
  if (doc.contains("repeats")) s.repeats = int(r.integer(doc, "repeats", "repeats", 1, 1000));
  if (doc.contains("grid")) s.grid = r.axes(doc["grid"], "grid");
  if (doc.contains("zip")) {
    const json& z = doc["zip"];
    std::vector<json> groups;
    if (z.is_object()) groups.push_back(z);
    else if (z.is_array()) groups.assign(z.begin(), z.end());
    else r.fail("zip", "expected an object {KEY: [...], ...} or a list of them, got " + type_name(z));
    for (size_t g = 0; g < groups.size(); ++g) {
      const std::string path = z.is_array() ? "zip[" + std::to_string(g) + "]" : "zip";
      auto axes = r.axes(groups[g], path);
      for (const auto& ax : axes)
        if (ax.second.size() != axes.front().second.size())
          r.fail(path + "." + ax.first, "zipped axes need equal lengths (" + std::to_string(ax.second.size()) +
                                            " values, " + axes.front().first + " has " +
                                            std::to_string(axes.front().second.size()) + ")");
      s.zips.push_back(std::move(axes));
    }
  }
  if (doc.contains("set")) {
    if (!doc["set"].is_object()) r.fail("set", "expected an object {KEY: value}, got " + type_name(doc["set"]));
    s.set = doc["set"];
  }
  // A key may be swept once and is then not also fixed.
  std::set<std::string> swept;
  for (const auto& k : swept_keys(s)) {
    if (!swept.insert(k).second) r.fail(k, "swept twice (grid and zip, or two zip groups)");
    if (s.set.contains(k)) r.fail("set." + k, "is also swept; remove it from \"set\"");
    if (k == "workload") r.fail("grid.workload", "the workload itself cannot be swept");
  }
  if (s.set.contains("workload")) r.fail("set.workload", "the workload is named by the top-level \"workload\"");
  if (doc.contains("seed")) s.seed = uint64_t(r.integer(doc, "seed", "seed", 0, INT64_MAX));
  if (doc.contains("order")) {
    const std::string o = r.str(doc, "order", "order");
    if (o != "interleaved" && o != "grid") r.fail("order", "expected \"interleaved\" or \"grid\", got \"" + o + "\"");
    s.interleaved = o == "interleaved";
  }
  if (doc.contains("metric")) s.metric = r.str(doc, "metric", "metric");
  if (doc.contains("cpu")) s.cpu = int(r.integer(doc, "cpu", "cpu", 0, 4095));
  if (doc.contains("engine")) {
    const json& e = doc["engine"];
    if (!e.is_object()) r.fail("engine", "expected an object, got " + type_name(e));
    check_unknown(r, e, "engine.",
                  {"name", "jobs", "sshloginfile", "shared_dir", "partition", "account", "time",
                   "cpus_per_task", "mem", "max_parallel", "resubmit", "sbatch_args"});
    SweepEngine& g = s.engine;
    if (e.contains("name")) {
      g.name = r.str(e, "name", "engine.name");
      if (g.name != "local" && g.name != "parallel" && g.name != "slurm")
        r.fail("engine.name", "expected \"local\", \"parallel\" or \"slurm\", got \"" + g.name + "\"");
    }
    if (e.contains("jobs")) g.jobs = int(r.integer(e, "jobs", "engine.jobs", 1, 4096));
    if (e.contains("sshloginfile")) g.sshloginfile = r.str(e, "sshloginfile", "engine.sshloginfile");
    if (!g.sshloginfile.empty() && fs::path(g.sshloginfile).is_relative() && !file.empty())
      g.sshloginfile = (fs::path(file).parent_path() / g.sshloginfile).lexically_normal().string();
    if (e.contains("shared_dir")) g.shared_dir = r.boolean(e, "shared_dir", "engine.shared_dir");
    if (e.contains("partition")) g.partition = r.str(e, "partition", "engine.partition");
    if (e.contains("account")) g.account = r.str(e, "account", "engine.account");
    if (e.contains("time")) g.time = r.str(e, "time", "engine.time");
    if (e.contains("cpus_per_task")) g.cpus_per_task = int(r.integer(e, "cpus_per_task", "engine.cpus_per_task", 1, 4096));
    if (e.contains("mem")) g.mem = r.str(e, "mem", "engine.mem");
    if (e.contains("max_parallel")) g.max_parallel = int(r.integer(e, "max_parallel", "engine.max_parallel", 0, 100000));
    if (e.contains("resubmit")) g.resubmit = int(r.integer(e, "resubmit", "engine.resubmit", 0, 10));
    if (e.contains("sbatch_args")) {
      const json& a = e["sbatch_args"];
      if (!a.is_array()) r.fail("engine.sbatch_args", "expected an array of strings");
      for (const auto& x : a) {
        if (!x.is_string()) r.fail("engine.sbatch_args", "expected an array of strings, got " + type_name(x));
        g.sbatch_args.push_back(x.get<std::string>());
      }
    }
  }
  return s;
}

SweepSpec load_sweep(const std::string& path) {
  if (!fs::exists(path)) throw ConfigError(path + ": no such sweep file");
  const std::string text = slurp(path);
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    throw ConfigError(path + ": invalid JSON: " + e.what());
  }
  return parse_sweep(doc, path);
}

std::vector<std::string> swept_keys(const SweepSpec& s) {
  std::vector<std::string> k;
  for (const auto& ax : s.grid) k.push_back(ax.first);
  for (const auto& g : s.zips)
    for (const auto& ax : g) k.push_back(ax.first);
  return k;
}

std::vector<SweepPoint> expand_points(const SweepSpec& s) {
  // Dimensions: each grid axis, then each zip group (one dimension per group).
  struct Dim {
    std::vector<const SweepAxis*> axes;
    size_t n;
  };
  std::vector<Dim> dims;
  for (const auto& ax : s.grid) dims.push_back({{&ax}, ax.second.size()});
  for (const auto& g : s.zips) {
    Dim d{{}, g.front().second.size()};
    for (const auto& ax : g) d.axes.push_back(&ax);
    dims.push_back(d);
  }
  size_t total = 1;
  for (const auto& d : dims) total *= d.n;
  std::vector<SweepPoint> out;
  out.reserve(total);
  std::vector<size_t> idx(dims.size(), 0);
  const int width = total > 1000 ? int(std::to_string(total - 1).size()) : 3;
  for (size_t p = 0; p < total; ++p) {
    SweepPoint pt;
    char id[32];
    std::snprintf(id, sizeof id, "p%0*zu", width, p);
    pt.id = id;
    pt.params = json::object();
    for (size_t d = 0; d < dims.size(); ++d)
      for (const SweepAxis* ax : dims[d].axes) pt.params[ax->first] = ax->second[idx[d]];
    out.push_back(std::move(pt));
    for (size_t d = dims.size(); d-- > 0;) {  // last dimension fastest
      if (++idx[d] < dims[d].n) break;
      idx[d] = 0;
    }
  }
  return out;
}

std::string allocator_label(const std::string& allocator) {
  return allocator.empty() ? std::string(kDefaultAllocatorName) : allocator;
}

std::vector<SweepRun> plan_runs(const SweepSpec& s, const std::vector<SweepPoint>& points) {
  std::vector<std::string> allocs = s.allocators;
  if (allocs.empty()) allocs.push_back("");
  std::vector<SweepRun> out;
  for (int k = 1; k <= s.repeats; ++k) {
    std::vector<SweepRun> round;
    for (size_t p = 0; p < points.size(); ++p)
      for (const auto& a : allocs)
        round.push_back({points[p].id + "-" + allocator_label(a) + "-r" + std::to_string(k), p, a, k});
    if (s.interleaved) {
      std::mt19937_64 rng(s.seed + uint64_t(k));
      // Fisher-Yates with our own index draw: std::shuffle's use of the
      // engine is implementation-defined, this order is reproducible anywhere.
      for (size_t i = round.size(); i > 1; --i) std::swap(round[i - 1], round[rng() % i]);
    }
    out.insert(out.end(), round.begin(), round.end());
  }
  return out;
}

std::vector<std::string> run_argv(const SweepSpec& s, const SweepPoint& p, const SweepRun& r,
                                  const std::string& out) {
  std::vector<std::string> a{"run", s.workload};
  if (!r.allocator.empty()) {
    a.push_back("--allocator");
    a.push_back(r.allocator);
  }
  auto add = [&](const std::string& k, const json& v) {
    a.push_back("--set");
    a.push_back(k + "=" + v.dump());  // JSON text: parse_set_value reads it back exactly
  };
  for (const auto& kv : s.set.items()) add(kv.key(), kv.value());
  for (const auto& kv : p.params.items()) add(kv.key(), kv.value());
  if (s.cpu >= 0) {
    a.push_back("--cpu");
    a.push_back(std::to_string(s.cpu));
  }
  a.push_back("--out");
  a.push_back(out);
  a.push_back("--quiet");
  return a;
}

void validate_points(const SweepSpec& s, const std::vector<SweepPoint>& points) {
  for (const auto& p : points) {
    std::vector<std::string> sets;
    for (const auto& kv : s.set.items()) sets.push_back(kv.key() + "=" + kv.value().dump());
    for (const auto& kv : p.params.items()) sets.push_back(kv.key() + "=" + kv.value().dump());
    try {
      load_workload(s.workload, sets);
    } catch (const ConfigError& e) {
      throw ConfigError((s.file.empty() ? std::string("sweep") : s.file) + ": point " + p.id + " " +
                        p.params.dump() + ": " + e.what());
    }
  }
}

json make_plan(const SweepSpec& s, const std::vector<SweepPoint>& points, const std::vector<SweepRun>& runs,
               const std::string& znslab_binary) {
  json plan;
  plan["schema"] = kSweepPlanSchema;
  plan["sweep_file"] = s.file.empty() ? json(nullptr)
                                      : json(fs::absolute(s.file).lexically_normal().string());
  plan["workload"] = s.workload;
  plan["znslab"] = znslab_binary;
  plan["repeats"] = s.repeats;
  json allocs = json::array();
  if (s.allocators.empty()) allocs.push_back(kDefaultAllocatorName);
  for (const auto& a : s.allocators) allocs.push_back(a);
  plan["allocators"] = allocs;
  json axes = json::object();
  for (const auto& ax : s.grid) axes[ax.first] = ax.second;
  for (const auto& g : s.zips)
    for (const auto& ax : g) axes[ax.first] = ax.second;
  plan["axes"] = axes;
  plan["set"] = s.set;
  plan["seed"] = s.seed;
  plan["order"] = s.interleaved ? "interleaved" : "grid";
  plan["metric"] = s.metric;
  json pts = json::array();
  for (const auto& p : points) pts.push_back({{"id", p.id}, {"params", p.params}});
  plan["points"] = pts;
  json rs = json::array();
  for (const auto& r : runs) {
    const std::string out = "runs/" + r.name + ".json";
    rs.push_back({{"name", r.name},
                  {"point", points[r.point].id},
                  {"point_index", r.point},
                  {"allocator", allocator_label(r.allocator)},
                  {"repeat", r.repeat},
                  {"out", out},
                  {"argv", run_argv(s, points[r.point], r, out)}});
  }
  plan["runs"] = rs;
  return plan;
}

std::string sweep_result_problem(const json& result, const json& plan_run, const json& point_params) {
  if (!result.is_object() || result.value("schema", "") != kResultSchema)
    return std::string("not a ") + kResultSchema + " document";
  auto errs = result_schema_errors(result);
  if (!errs.empty())
    return "result violates schema " + std::string(kResultSchema) + ": " + std::to_string(errs.size()) +
           " violation(s), first: " + errs.front();
  auto sw = result.find("sweep");
  if (sw == result.end() || !sw->is_object()) return "result has no \"sweep\" block (run not finished)";
  if (sw->value("allocator", "") != plan_run.value("allocator", "") ||
      sw->value("repeat", -1) != plan_run.value("repeat", -2) ||
      sw->value("params", json(nullptr)) != point_params)
    return "result belongs to another plan (sweep block " + sw->dump() + ")";
  return "";
}

Result<json> read_json_file(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    return Status::with_message(Code::kNotFound,
                                path + (fs::exists(path, ec) ? ": not a regular file" : ": no such file"));
  std::ifstream f(path);
  if (!f) return Status::from_errno_message(errno ? errno : EIO, path + ": cannot open");
  try {
    return json::parse(f);
  } catch (const std::exception& e) {  // parse errors, and read errors of the stream
    return Status::with_message(Code::kCorrupt, path + ": invalid JSON: " + e.what());
  }
}

void write_json_file_atomic(const std::string& path, const json& doc) {
  const fs::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp);
    if (!f) throw RunError("cannot write " + tmp);
    f << doc.dump(2) << "\n";
    if (!f) throw RunError("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw RunError("cannot rename " + tmp + " to " + path);
}

namespace {

const json& point_params_of(const json& plan, const json& run) {
  static const json kEmpty = json::object();
  const size_t i = run.value("point_index", size_t(0));
  if (i < plan["points"].size()) return plan["points"][i]["params"];
  return kEmpty;
}

}  // namespace

std::vector<size_t> pending_runs(const json& plan, const std::string& dir) {
  std::vector<size_t> out;
  const json& runs = plan.at("runs");
  for (size_t i = 0; i < runs.size(); ++i) {
    auto r = read_json_file(dir + "/" + runs[i].at("out").get<std::string>());
    if (!r || !sweep_result_problem(*r, runs[i], point_params_of(plan, runs[i])).empty())
      out.push_back(i);
  }
  return out;
}

json summarize_sweep(const json& plan, const std::string& dir) {
  const json& runs = plan.at("runs");
  const json& points = plan.at("points");
  // point index -> allocator -> (results, files), repeat order.
  std::vector<std::map<std::string, std::vector<std::pair<int, std::pair<json, std::string>>>>> ok(points.size());
  json failed = json::array();
  size_t n_ok = 0;
  for (size_t i = 0; i < runs.size(); ++i) {
    const json& run = runs[i];
    const std::string out = run.at("out").get<std::string>();
    auto rr = read_json_file(dir + "/" + out);
    const bool have = rr.is_ok();
    const std::string err = have ? "" : rr.status().context();
    json r = have ? std::move(*rr) : json(nullptr);
    std::string problem = have ? sweep_result_problem(r, run, point_params_of(plan, run)) : "";
    const std::string status_path = dir + "/runs/" + run.at("name").get<std::string>() + ".status.json";
    auto sr = read_json_file(status_path);
    const bool have_status = sr.is_ok();
    const json status = have_status ? std::move(*sr) : json(nullptr);
    const size_t pi = run.value("point_index", size_t(0));
    if (have && problem.empty()) {
      ok[pi][run.at("allocator").get<std::string>()].push_back({run.value("repeat", 0), {std::move(r), out}});
      ++n_ok;
      continue;
    }
    std::string error;
    if (have_status && status.value("error", "") != "") error = status["error"].get<std::string>();
    else if (!have) error = have_status ? "no result (" + err + ")" : "not run (no result, no status)";
    else error = problem;
    json f = {{"name", run.at("name")},
              {"point", run.at("point")},
              {"params", point_params_of(plan, run)},
              {"allocator", run.at("allocator")},
              {"repeat", run.at("repeat")},
              {"host", have_status ? status.value("host", json(nullptr)) : json(nullptr)},
              {"engine", have_status ? status.value("engine", json(nullptr)) : json(nullptr)},
              {"exit_status", have_status ? status.value("exit_status", json(nullptr)) : json(nullptr)},
              {"error", error},
              {"log", "runs/" + run.at("name").get<std::string>() + ".log"}};
    failed.push_back(std::move(f));
  }
  json pts = json::array();
  const std::string metric_pref = plan.value("metric", "");
  for (size_t p = 0; p < points.size(); ++p) {
    json allocs = json::object();
    for (auto& [alloc, list] : ok[p]) {
      std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      std::vector<json> docs;
      json files = json::array(), hosts = json::array();
      for (auto& e : list) {
        docs.push_back(e.second.first);
        files.push_back(e.second.second);
        hosts.push_back(e.second.first["sweep"].value("host", json(nullptr)));
      }
      json a = aggregate_results(docs);
      a["runs"] = files;
      a["hosts"] = hosts;
      std::vector<std::string> candidates;
      if (!metric_pref.empty()) candidates.push_back(metric_pref);
      for (const char* m : {"ns_per_object", "write_amplification", "ops_per_sec"}) candidates.push_back(m);
      for (const auto& m : candidates) {
        const int i = nearest_to_median(docs, m);
        if (i >= 0) {
          a["median_run"] = {{"metric", m}, {"file", files[size_t(i)]}};
          break;
        }
      }
      allocs[alloc] = std::move(a);
    }
    pts.push_back({{"id", points[p]["id"]}, {"params", points[p]["params"]}, {"allocators", allocs}});
  }
  json s;
  s["schema"] = kSweepSummarySchema;
  for (const char* k : {"sweep_file", "workload", "repeats", "allocators", "axes", "set", "seed", "order"})
    if (plan.contains(k)) s[k] = plan[k];
  s["runs_total"] = runs.size();
  s["runs_ok"] = n_ok;
  s["points"] = pts;
  s["failed_runs"] = failed;
  s["written_at"] = utc_now_iso8601();
  return s;
}

}  // namespace znslab::harness
