// The counter sets of every allocator/device, as declared once in src/
// (src/common/counters.h X-macro lists), and what the harness derives from
// them: the JSON object of a snapshot, the result-schema entries
// (harness/schema.cpp), and the documentation tables that
// `znslab counters --update-docs` writes into marked sections of docs/*.md:
//
//   <!-- counters:NAME -->
//   | key | type | unit | meaning |      (generated; do not edit by hand)
//   <!-- /counters:NAME -->
//
// Thread-safety: pure functions over static tables.
#pragma once

#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "src/common/counters.h"

namespace znslab::harness {

struct CounterSet {
  std::string name;       // "slab.global", "segment.zoned_store", ...
  std::string source;     // the declaring struct and header
  std::string doc_file;   // docs file holding its marked table, from the repo root
  // Where results carry the set: experiments (empty = none) and the dotted
  // path of the object holding the keys ("summary", "summary.counters",
  // "allocator_stats.global"). required: the object must exist in every
  // result of those experiments; otherwise it is checked only when present.
  std::vector<std::string> experiments;
  std::string json_path;
  bool required = false;
  std::span<const CounterDecl> rows;
};

// Every set, in documentation order.
const std::vector<CounterSet>& counter_sets();
const CounterSet* find_counter_set(const std::string& name);

// {key: value} of one snapshot, in declaration keys (S declared with
// ZNSLAB_COUNTER_FUNCTIONS). Merged into `out` when given.
template <class S>
void counters_to_json(const S& s, nlohmann::json& out) {
  for_each_counter(s, [&](const char* key, const auto& v) { out[key] = v; });
}
template <class S>
nlohmann::json counters_json(const S& s) {
  nlohmann::json j = nlohmann::json::object();
  counters_to_json(s, j);
  return j;
}

// The Markdown table of one set (header, separator, one row per counter;
// ends with a newline).
std::string counters_markdown(const CounterSet& set);

// Schema violations ("summary.zone_resets: missing (...)") of `doc` against
// every set its experiment carries. Empty when valid.
std::vector<std::string> counter_schema_errors(const nlohmann::json& doc);

// Rewrites the marked section of every set in `text` (a docs file's
// contents, `file` its path from the repo root). Returns the new text;
// `missing` gets the names of sets that belong to `file` but have no
// marked section.
std::string update_counter_sections(const std::string& file, const std::string& text,
                                    std::vector<std::string>* missing);

}  // namespace znslab::harness
