// `znslab check RESULT.json --bounds FILE`: evaluates bounds (harness/bounds.h)
// on one result document; exits 1 naming each violated bound with its figures.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "harness/bounds.h"
#include "harness/cli.h"
#include "harness/registry.h"
#include "harness/schema.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

const char* kCheckIntro =
    "Validates one result document against the schema znslab.result/1 (every\n"
    "violation is listed) and, with --bounds, checks it against the bounds in\n"
    "FILE (schema znslab.bounds/1, e.g. ci/rss_bounds.json). Each bound names a\n"
    "metric (a dotted path such as summary.committed_drift_pct, or a field of every\n"
    "steady-state post_free sample with \"over\": \"steady_post_free\") and a max\n"
    "and/or min, either a number or {\"scale\": a, \"metric\": path, \"plus\": b}.\n"
    "Prints PASS/FAIL/N/A per bound with the figures.";

const char* kCheckFooter =
    "Exit status: 0 valid and all applicable bounds hold, 1 a schema violation\n"
    "or a bound violated, 2 usage error, unreadable/malformed file, or a bound\n"
    "naming a metric the result does not have.";

json read_json(const std::string& path, const char* what) {
  std::ifstream f(path);
  if (!f) throw ConfigError(std::string(what) + " " + path + ": cannot open: " + std::strerror(errno));
  try {
    return json::parse(f);
  } catch (const json::parse_error& e) {
    throw ConfigError(std::string(what) + " " + path + ": invalid JSON: " + e.what());
  }
}

int check_main(int argc, char** argv) {
  std::string result_path, bounds_path;
  bool quiet = false;
  CLI::App app{kCheckIntro, "znslab check"};
  app.add_option("RESULT", result_path, "result document (JSON)")->required();
  app.add_option("--bounds", bounds_path, "bounds file (schema znslab.bounds/1)");
  app.add_flag("-q,--quiet", quiet, "print only violations");
  app.footer(kCheckFooter);
  if (!cli_parse(app, argc, argv)) return 0;
  json result = read_json(result_path, "result");
  json bounds = bounds_path.empty() ? json{{"schema", "znslab.bounds/1"}, {"bounds", json::array()}}
                                    : read_json(bounds_path, "bounds file");
  if (!result.is_object() || result.value("schema", "") != "znslab.result/1")
    throw ConfigError("result " + result_path + ": schema is not znslab.result/1");
  std::vector<BoundOutcome> outs;
  // The document itself must conform before its figures are trusted.
  auto schema_errs = result_schema_errors(result);
  for (const auto& e : schema_errs) {
    BoundOutcome o;
    o.name = "schema znslab.result/1";
    o.state = BoundOutcome::State::kFail;
    o.message = e;
    outs.push_back(o);
  }
  if (schema_errs.empty() && !quiet) {
    BoundOutcome o;
    o.name = "schema znslab.result/1";
    o.message = "valid";
    outs.push_back(o);
  }
  try {
    for (auto& o : evaluate_bounds(result, bounds)) outs.push_back(std::move(o));
  } catch (const ConfigError& e) {
    throw ConfigError(bounds_path + ": " + e.what());
  }
  int failed = 0, passed = 0;
  for (const auto& o : outs) {
    const char* tag = o.state == BoundOutcome::State::kPass   ? "PASS"
                      : o.state == BoundOutcome::State::kFail ? "FAIL"
                                                              : "N/A ";
    if (o.state == BoundOutcome::State::kFail) ++failed;
    if (o.state == BoundOutcome::State::kPass) ++passed;
    if (!quiet || o.state == BoundOutcome::State::kFail)
      std::printf("%s %s: %s\n", tag, o.name.c_str(), o.message.c_str());
  }
  std::string alloc = result.contains("allocator") && result["allocator"].is_object()
                          ? result["allocator"].value("name", "?") : "?";
  std::printf("check %s (%s on %s): %zu schema violation(s); %d bound(s) held, %d violated\n",
              result_path.c_str(), result.value("experiment", "?").c_str(), alloc.c_str(), schema_errs.size(),
              passed - (schema_errs.empty() && !quiet ? 1 : 0), failed - int(schema_errs.size()));
  return failed ? 1 : 0;
}

Registrar reg{Command{"check", "validate a result JSON (schema) and check it against bounds (CI gate); non-zero on violation",
                      check_main}};

}  // namespace
}  // namespace znslab::harness
