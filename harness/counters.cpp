// Counter sets (harness/counters.h) and `znslab counters`.
#include "harness/counters.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <CLI/CLI.hpp>

#include "harness/allocators.h"
#include "harness/registry.h"
#include "harness/table.h"
#include "src/overflow/overflow.h"
#include "src/pages/pager.h"
#include "src/segment/file_registry.h"
#include "src/segment/mapping_manager.h"
#include "src/segment/segment_allocator.h"
#include "src/segment/zoned_store.h"
#include "src/slab/slab.h"
#include "src/varslot/pool.h"

namespace znslab::harness {

using nlohmann::json;

namespace {
template <class S>
std::span<const CounterDecl> rows_of() {
  return counter_decls(static_cast<const S*>(nullptr));
}
bool type_ok(CounterType t, const json& v) {
  switch (t) {
    case CounterType::kUnsigned: return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
    case CounterType::kSigned: return v.is_number_integer();
    case CounterType::kReal: return v.is_number();
  }
  return false;
}
const char* type_text(CounterType t) {
  return t == CounterType::kReal ? "a number" : t == CounterType::kSigned ? "an integer" : "an unsigned integer";
}
}  // namespace

const std::vector<CounterSet>& counter_sets() {
  static const std::vector<CounterSet> sets = {
      {"allocator.samples", "harness::AllocatorCounters (harness/allocators.h)", "docs/harness.md",
       {"churn"}, "samples[]", false, rows_of<AllocatorCounters>()},
      {"slab.global", "slab::GlobalStats (src/slab/slab.h)", "docs/slab.md",
       {"churn", "alternating"}, "allocator_stats.global", false, rows_of<slab::GlobalStats>()},
      {"segment.zoned_store", "segment::ZonedStoreCounters (src/segment/zoned_store.h)", "docs/segment.md",
       {"zone-churn"}, "summary", true, rows_of<segment::ZonedStoreCounters>()},
      {"segment.file_registry", "segment::FileRegistryStats (src/segment/file_registry.h)", "docs/segment.md",
       {"segment-scale"}, "summary.counters", true, rows_of<segment::FileRegistryStats>()},
      {"segment.mappings", "segment::MappingStats (src/segment/mapping_manager.h)", "docs/segment.md",
       {"segment-scale"}, "summary.counters", true, rows_of<segment::MappingStats>()},
      {"segment.allocator", "segment::SegmentAllocatorStats (src/segment/segment_allocator.h)", "docs/segment.md",
       {"segment-scale"}, "summary.counters", true, rows_of<segment::SegmentAllocatorStats>()},
      {"pages.pager", "pages::PagerStats (src/pages/pager.h)", "docs/pages.md",
       {"pager-churn"}, "summary.pager_stats", true, rows_of<pages::PagerStats>()},
      {"overflow.region", "overflow::OverflowStats (src/overflow/overflow.h)", "docs/overflow.md",
       {"overflow-spill"}, "summary.overflow_stats", true, rows_of<overflow::OverflowStats>()},
      {"varslot.pool", "varslot::PoolStats (src/varslot/pool.h; extents[] kept apart)", "docs/varslot.md",
       {"varslot-growth"}, "summary.pool_stats", true, rows_of<varslot::PoolStats>()},
  };
  return sets;
}

const CounterSet* find_counter_set(const std::string& name) {
  for (const auto& s : counter_sets())
    if (s.name == name) return &s;
  return nullptr;
}

std::string counters_markdown(const CounterSet& set) {
  std::string out = "| key | type | unit | meaning |\n|---|---|---|---|\n";
  for (const CounterDecl& d : set.rows) {
    out += "| `";
    out += d.key;
    out += "` | ";
    out += counter_type_name(d.type);
    out += " | ";
    out += d.unit;
    out += " | ";
    out += d.meaning;
    out += " |\n";
  }
  return out;
}

std::vector<std::string> counter_schema_errors(const json& doc) {
  std::vector<std::string> errs;
  if (!doc.is_object() || !doc.contains("experiment") || !doc["experiment"].is_string()) return errs;
  const std::string exp = doc["experiment"].get<std::string>();
  for (const CounterSet& set : counter_sets()) {
    bool carried = false;
    for (const auto& e : set.experiments) carried |= e == exp;
    if (!carried) continue;
    if (set.json_path.size() > 2 && set.json_path.compare(set.json_path.size() - 2, 2, "[]") == 0) {
      // Every element of an array (samples): keys checked when present; null
      // allowed (an allocator without counters).
      const std::string base = set.json_path.substr(0, set.json_path.size() - 2);
      const json* arr = json_at_path(doc, base);
      if (!arr || !arr->is_array()) continue;
      for (size_t i = 0; i < arr->size(); ++i) {
        const json& el = (*arr)[i];
        if (!el.is_object()) continue;
        for (const CounterDecl& d : set.rows) {
          auto it = el.find(d.key);
          if (it == el.end() || it->is_null() || type_ok(d.type, *it)) continue;
          errs.push_back(base + "[" + std::to_string(i) + "]." + d.key + ": expected " + type_text(d.type) +
                         ", got " + it->dump());
        }
      }
      continue;
    }
    const json* obj = json_at_path(doc, set.json_path);
    if (!obj || obj->is_null()) {
      if (set.required) errs.push_back(set.json_path + ": missing (expected the counters of " + set.name + ")");
      continue;
    }
    if (!obj->is_object()) {
      errs.push_back(set.json_path + ": expected an object (the counters of " + set.name + ")");
      continue;
    }
    for (const CounterDecl& d : set.rows) {
      const std::string p = set.json_path + "." + d.key;
      auto it = obj->find(d.key);
      if (it == obj->end()) {
        errs.push_back(p + ": missing (counter of " + set.name + ")");
        continue;
      }
      if (!type_ok(d.type, *it)) errs.push_back(p + ": expected " + type_text(d.type) + ", got " + it->dump());
    }
  }
  return errs;
}

std::string update_counter_sections(const std::string& file, const std::string& text,
                                    std::vector<std::string>* missing) {
  std::string out = text;
  for (const CounterSet& set : counter_sets()) {
    if (set.doc_file != file) continue;
    const std::string open = "<!-- counters:" + set.name + " -->\n";
    const std::string close = "<!-- /counters:" + set.name + " -->";
    const size_t a = out.find(open);
    const size_t b = a == std::string::npos ? a : out.find(close, a);
    if (a == std::string::npos || b == std::string::npos) {
      if (missing) missing->push_back(set.name);
      continue;
    }
    out.replace(a + open.size(), b - a - open.size(), counters_markdown(set));
  }
  return out;
}

namespace {

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw ConfigError(path + ": cannot read");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

int counters_main(int argc, char** argv) {
  std::string format = "md", root = ".";
  bool update = false, check = false;
  CLI::App app{"Lists the counters every allocator/device declares (src/common/counters.h): key, type,\n"
               "unit, meaning, and where results carry them. --update-docs rewrites the marked\n"
               "sections of docs/*.md; --check-docs exits 1 when one is out of date.",
               "znslab counters"};
  app.add_option("--format", format, "md, text, csv or json")->check(CLI::IsMember({"md", "text", "csv", "json"}));
  app.add_flag("--update-docs", update, "rewrite the generated tables in ROOT/docs/*.md");
  app.add_flag("--check-docs", check, "exit 1 when a generated table in ROOT/docs/*.md is out of date");
  app.add_option("--root", root, "the source tree (default: .)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::ParseError& e) {
    throw UsageError(e.what());
  }
  if (update || check) {
    std::vector<std::string> files;
    for (const auto& s : counter_sets())
      if (std::find(files.begin(), files.end(), s.doc_file) == files.end()) files.push_back(s.doc_file);
    int rc = 0;
    for (const auto& f : files) {
      const std::string path = root + "/" + f;
      const std::string text = read_text(path);
      std::vector<std::string> missing;
      const std::string next = update_counter_sections(f, text, &missing);
      for (const auto& m : missing) {
        std::fprintf(stderr, "%s: no marked section for counters %s (<!-- counters:%s --> ... <!-- /counters:%s -->)\n",
                     path.c_str(), m.c_str(), m.c_str(), m.c_str());
        rc = 1;
      }
      if (next == text) continue;
      if (check) {
        std::fprintf(stderr, "%s: counter tables out of date (run: make docs-counters)\n", path.c_str());
        rc = 1;
      } else {
        std::ofstream o(path, std::ios::binary | std::ios::trunc);
        o << next;
        if (!o) throw RunError(path + ": write failed");
        std::printf("updated %s\n", path.c_str());
      }
    }
    return rc;
  }
  if (format == "json") {
    json out = json::object();
    for (const auto& s : counter_sets()) {
      json rows = json::array();
      for (const CounterDecl& d : s.rows)
        rows.push_back({{"key", d.key}, {"type", counter_type_name(d.type)}, {"unit", d.unit}, {"meaning", d.meaning}});
      out[s.name] = {{"source", s.source}, {"experiments", s.experiments}, {"json_path", s.json_path}, {"counters", rows}};
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  for (const auto& s : counter_sets()) {
    std::printf("%s%s: %s; results: %s\n\n", format == "md" ? "### " : "", s.name.c_str(), s.source.c_str(),
                s.experiments.empty() ? "none" : (s.json_path + " of " + [&] {
                  std::string e;
                  for (const auto& x : s.experiments) e += (e.empty() ? "" : ", ") + x;
                  return e;
                }()).c_str());
    if (format == "md") {
      std::fputs(counters_markdown(s).c_str(), stdout);
    } else {
      TableData t;
      t.headers = {"key", "type", "unit", "meaning"};
      for (const CounterDecl& d : s.rows) t.rows.push_back({d.key, counter_type_name(d.type), d.unit, d.meaning});
      std::fputs(render_table_as(format, t).c_str(), stdout);
    }
    std::printf("\n");
  }
  return 0;
}

Registrar reg{Command{"counters", "list every allocator/device counter; regenerate the docs tables", counters_main}};

}  // namespace
}  // namespace znslab::harness
