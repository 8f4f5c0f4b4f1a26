// `znslab report DIR|FILE... [--format text|md|csv|json] [--metrics a,b|all]`:
// tabulates existing results (harness/report.h): a sweep folder through its
// summary.json, a compare folder through its summary.json, any other folder
// or list of result files by grouping and aggregating the documents.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "harness/cli.h"
#include "harness/registry.h"
#include "harness/report.h"
#include "harness/result.h"
#include "harness/sweep.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace znslab::harness {
namespace {

const char* kReportIntro =
    "Tabulates existing results: one row per configuration, each cell the median\n"
    "and the 95 % interval of the median over the repeats ([low..high], ~ = noisy).\n"
    "  DIR with summary.json   a sweep (a row per point and allocator, then the\n"
    "                          failed runs) or a compare folder (a row per allocator)\n"
    "  other DIR or FILEs      every znslab.result/1 document found (recursively),\n"
    "                          grouped by label/allocator and differing config keys";

void collect(const fs::path& p, std::vector<std::pair<std::string, json>>* docs) {
  if (fs::is_directory(p)) {
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(p))
      if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) collect(f, docs);
    return;
  }
  auto r = read_json_file(p.string());
  if (!r) {
    std::fprintf(stderr, "report: skipping %s\n", r.status().context());
    return;
  }
  json& d = *r;
  if (d.is_object() && d.value("schema", "") == kResultSchema) docs->emplace_back(p.string(), std::move(d));
}

int report_main(int argc, char** argv) {
  ReportOptions opt;
  std::vector<std::string> inputs;
  CLI::App app{kReportIntro, "znslab report"};
  app.add_option("INPUT", inputs, "result folders or files")->required();
  app.add_option("--format", opt.format, "text, md, csv or json")
      ->check(CLI::IsMember({"text", "md", "csv", "json"}));
  app.add_option("--metrics", opt.metrics,
                 "summary metrics or latency_ns.<op>.<pct>, comma-separated; default the "
                 "headline metrics present; all = every metric")
      ->delimiter(',');
  app.footer("Exit status: 0 ok, 1 nothing to report, 2 usage error.");
  if (!cli_parse(app, argc, argv)) return 0;
  if (inputs.empty()) throw UsageError("missing DIR or FILE");
  for (const auto& in : inputs)
    if (!fs::exists(in)) throw UsageError(in + ": no such file or folder");

  if (inputs.size() == 1 && fs::is_directory(inputs[0]) && fs::exists(inputs[0] + "/summary.json")) {
    auto r = read_json_file(inputs[0] + "/summary.json");
    if (!r) throw RunError(r.status().context());
    const json& s = *r;
    if (s.contains("points") || s.contains("allocators")) {
      std::fputs(render_sweep_summary(s, opt).c_str(), stdout);
      return 0;
    }
  }
  std::vector<std::pair<std::string, json>> docs;
  for (const auto& in : inputs) collect(in, &docs);
  if (docs.empty()) {
    std::fprintf(stderr, "report: no %s documents in %s\n", kResultSchema, inputs[0].c_str());
    return 1;
  }
  std::fputs(render_rows(group_results(docs), opt).c_str(), stdout);
  return 0;
}

Registrar reg{Command{"report", "tabulate existing results (sweeps, compare folders, result files)", report_main}};

}  // namespace
}  // namespace znslab::harness
