// `znslab keys WORKLOAD.json|NAME [--set K=V]...`: every key a workload
// accepts, with its type, default, the value the file (and --set) give it,
// its unit and meaning. Exit 0, or 2 on a bad file (naming the key).
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "harness/config.h"
#include "harness/registry.h"
#include "harness/slab_options.h"
#include "harness/table.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

std::string type_of(const json& v) {
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  if (v.is_object()) return "object";
  return "any";
}

std::string shown(const json& v) {
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  return s.size() > 40 ? s.substr(0, 37) + "..." : s;
}

int keys_main(int argc, char** argv) {
  std::string workload;
  std::vector<std::string> sets;
  std::string format = "text";
  CLI::App app{"Lists every key WORKLOAD accepts: type, default, the value it resolves to (file, then\n"
               "--set), unit and meaning. Byte keys also take 64M-style values.",
               "znslab keys"};
  app.add_option("WORKLOAD", workload, "workload file or bare workload name")->required();
  app.add_option("--set", sets, "apply KEY=VALUE before listing (repeatable)")->allow_extra_args(false);
  app.add_option("--format", format, "text, md or csv")->check(CLI::IsMember({"text", "md", "csv"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    throw UsageError(e.what());
  }
  WorkloadConfig wc = load_workload(workload, sets);
  auto wl = wc.info->make();
  const json defaults = wl->defaults();
  std::map<std::string, KeyDoc> docs;
  for (const auto& d : wl->key_docs()) docs[d.key] = d;
  for (const auto& d : slab_option_docs()) docs[d.key] = d;
  TableData t;
  t.headers = {"key", "type", "default", "value", "from", "unit", "meaning"};
  for (auto& [k, def] : defaults.items()) {
    auto it = docs.find(k);
    const json& v = wc.config[k];
    const std::string from = wc.origin.count(k) ? wc.origin.at(k) : "default";
    t.rows.push_back({k, it != docs.end() && !it->second.type.empty() ? it->second.type : type_of(def), shown(def),
                      v == def ? "" : shown(v), from == "default" ? "" : from,
                      it != docs.end() ? it->second.unit : "", it != docs.end() ? it->second.meaning : ""});
  }
  std::printf("workload %s (%s): %zu keys\n\n", wc.workload.c_str(), wc.info->summary.c_str(), t.rows.size());
  std::fputs(render_table_as(format, t).c_str(), stdout);
  if (wc.info->uses_device) std::printf("\nthis workload takes a zoned device: --device URI\n");
  return 0;
}

Registrar reg{Command{"keys", "list every key of a workload: type, default, value, unit, meaning", keys_main}};

}  // namespace
}  // namespace znslab::harness
