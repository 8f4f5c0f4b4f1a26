#include "harness/bounds.h"

#include <cstdio>

#include "harness/registry.h"
#include "harness/table.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

std::string fmt(double v, const std::string& unit) {
  char b[96];
  if (unit == "bytes")
    std::snprintf(b, sizeof b, "%.0f bytes (%.2f MiB)", v, v / 1048576.0);
  else if (unit.empty())
    std::snprintf(b, sizeof b, "%.4g", v);
  else
    std::snprintf(b, sizeof b, "%.2f %s", v, unit.c_str());
  return b;
}

bool in_list(const json& bound, const char* key, const std::string& value) {
  if (!bound.contains(key)) return true;
  const json& l = bound[key];
  if (!l.is_array()) throw ConfigError(std::string("bound key \"") + key + "\": expected an array");
  for (const auto& x : l)
    if (x.is_string() && x.get<std::string>() == value) return true;
  return false;
}

// Resolves a limit (number or {"scale","metric","plus"}) in context `ctx`.
// Returns false when the referenced metric is missing/null; `why` says so.
bool limit_value(const json& lim, const json& ctx, const std::string& bname, const char* which,
                 double& out, std::string& desc, std::string& why) {
  if (lim.is_number()) {
    out = lim.get<double>();
    desc.clear();
    return true;
  }
  if (!lim.is_object() || !lim.contains("metric") || !lim["metric"].is_string())
    throw ConfigError("bound \"" + bname + "\": key \"" + which +
                      "\" must be a number or {\"scale\": a, \"metric\": path, \"plus\": b}");
  const std::string path = lim["metric"].get<std::string>();
  double scale = lim.value("scale", 1.0), plus = lim.value("plus", 0.0);
  const json* v = json_at_path(ctx, path);
  if (!v || !v->is_number()) {
    why = path + (v ? " is null" : " is missing");
    return false;
  }
  out = scale * v->get<double>() + plus;
  char b[160];
  std::snprintf(b, sizeof b, " (= %.4g x %s %.0f + %.0f)", scale, path.c_str(), v->get<double>(), plus);
  desc = b;
  return true;
}

// Checks one value against the bound's min/max. Returns "" when it holds,
// else the figures of the violation.
std::string check_value(const json& bound, const std::string& bname, const json& ctx,
                        const std::string& label, double value, const std::string& unit,
                        std::string& pass_text) {
  std::string fails;
  pass_text = label + " = " + fmt(value, unit);
  for (const char* which : {"max", "min"}) {
    if (!bound.contains(which)) continue;
    double lim = 0;
    std::string desc, why;
    if (!limit_value(bound[which], ctx, bname, which, lim, desc, why)) {
      fails += (fails.empty() ? "" : "; ") + std::string(which) + " limit unavailable: " + why;
      continue;
    }
    const bool ok = std::string(which) == "max" ? value <= lim : value >= lim;
    const char* op = std::string(which) == "max" ? (ok ? "<=" : ">") : (ok ? ">=" : "<");
    std::string t = label + " = " + fmt(value, unit) + " " + op + " " + fmt(lim, unit) + desc;
    if (ok) pass_text = t;
    else fails += (fails.empty() ? "" : "; ") + t;
  }
  return fails;
}

}  // namespace

std::vector<BoundOutcome> evaluate_bounds(const json& result, const json& bounds) {
  if (!bounds.is_object() || !bounds.contains("bounds") || !bounds["bounds"].is_array())
    throw ConfigError("bounds file: expected an object with a \"bounds\" array");
  const std::string experiment = result.value("experiment", "");
  std::string allocator;
  if (result.contains("allocator") && result["allocator"].is_object())
    allocator = result["allocator"].value("name", "");
  std::vector<BoundOutcome> out;
  size_t idx = 0;
  for (const auto& b : bounds["bounds"]) {
    ++idx;
    if (!b.is_object()) throw ConfigError("bound #" + std::to_string(idx) + ": expected an object");
    const std::string name = b.value("name", "bound #" + std::to_string(idx));
    if (!b.contains("metric") || !b["metric"].is_string())
      throw ConfigError("bound \"" + name + "\": key \"metric\" (a dotted path) is missing");
    if (!b.contains("max") && !b.contains("min"))
      throw ConfigError("bound \"" + name + "\": needs \"max\" and/or \"min\"");
    const std::string metric = b["metric"].get<std::string>();
    const std::string unit = b.value("unit", "");
    const bool allow_null = b.value("allow_null", false);
    BoundOutcome o;
    o.name = name;
    if (!in_list(b, "experiments", experiment) || !in_list(b, "allocators", allocator)) {
      o.state = BoundOutcome::State::kNotApplicable;
      o.message = "not applicable to experiment " + experiment + " on " + allocator;
      out.push_back(o);
      continue;
    }
    const std::string over = b.value("over", "");
    if (over.empty()) {
      const json* v = json_at_path(result, metric);
      if (!v) {
        // A typo in a bounds file must not pass as a failed (or skipped) run.
        std::string known;
        if (result.contains("summary") && result["summary"].is_object())
          for (auto& [k, _] : result["summary"].items()) known += (known.empty() ? "" : ", ") + k;
        throw ConfigError("bound \"" + name + "\": metric \"" + metric + "\" does not exist in results of " +
                          experiment + " (summary metrics: " + known + ")");
      }
      if (!v->is_number()) {
        if (v && v->is_null() && allow_null) {
          o.state = BoundOutcome::State::kNotApplicable;
          o.message = metric + " is null (allowed)";
        } else {
          o.state = BoundOutcome::State::kFail;
          o.message = metric + (v ? (v->is_null() ? " is null" : " is not a number") : " is missing");
        }
        out.push_back(o);
        continue;
      }
      std::string pass;
      std::string f = check_value(b, name, result, metric, v->get<double>(), unit, pass);
      o.state = f.empty() ? BoundOutcome::State::kPass : BoundOutcome::State::kFail;
      o.message = f.empty() ? pass : f;
      out.push_back(o);
      continue;
    }
    if (over != "steady_post_free")
      throw ConfigError("bound \"" + name + "\": key \"over\": must be \"steady_post_free\", got \"" + over + "\"");
    const json* first = json_at_path(result, "summary.steady_state_first_cycle");
    if (!first || !first->is_number_integer()) {
      o.state = BoundOutcome::State::kFail;
      o.message = "summary.steady_state_first_cycle is missing (not a cycle-based result?)";
      out.push_back(o);
      continue;
    }
    const int64_t s0 = first->get<int64_t>();
    size_t checked = 0, violated = 0;
    std::string first_fail, worst_pass;
    double worst_margin = -1e300;
    for (const auto& s : result.value("samples", json::array())) {
      if (s.value("phase", "") != "post_free") continue;
      if (!s.contains("cycle") || !s["cycle"].is_number_integer() || s["cycle"].get<int64_t>() < s0) continue;
      ++checked;
      const std::string label = metric + "[cycle " + std::to_string(s["cycle"].get<int64_t>()) + "]";
      const json* v = json_at_path(s, metric);
      if (!v || !v->is_number()) {
        ++violated;
        if (first_fail.empty()) first_fail = label + (v ? " is null" : " is missing");
        continue;
      }
      std::string pass;
      std::string f = check_value(b, name, s, label, v->get<double>(), unit, pass);
      if (!f.empty()) {
        ++violated;
        if (first_fail.empty()) first_fail = f;
      } else if (b.contains("max") && v->get<double>() > worst_margin) {
        worst_margin = v->get<double>();
        worst_pass = pass;
      }
    }
    if (checked == 0) {
      o.state = BoundOutcome::State::kFail;
      o.message = "no steady-state post_free samples in the result";
    } else if (violated) {
      o.state = BoundOutcome::State::kFail;
      o.message = std::to_string(violated) + " of " + std::to_string(checked) +
                  " steady-state cycles violate it; first: " + first_fail;
    } else {
      o.state = BoundOutcome::State::kPass;
      o.message = "all " + std::to_string(checked) + " steady-state cycles" +
                  (worst_pass.empty() ? "" : "; largest: " + worst_pass);
    }
    out.push_back(o);
  }
  return out;
}

}  // namespace znslab::harness
