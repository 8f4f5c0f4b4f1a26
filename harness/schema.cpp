#include "harness/schema.h"

#include "harness/counters.h"
#include "harness/result.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

enum class T { kString, kUint, kNumber, kBool, kObject, kArray, kNumberOrNull, kObjectOrNull, kUintOrNull, kAny };

const char* tname(T t) {
  switch (t) {
    case T::kString: return "a string";
    case T::kUint: return "an unsigned integer";
    case T::kNumber: return "a number";
    case T::kBool: return "a boolean";
    case T::kObject: return "an object";
    case T::kArray: return "an array";
    case T::kNumberOrNull: return "a number or null";
    case T::kObjectOrNull: return "an object or null";
    case T::kUintOrNull: return "an unsigned integer or null";
    case T::kAny: return "a value";
  }
  return "?";
}

bool is(const json& v, T t) {
  switch (t) {
    case T::kString: return v.is_string();
    case T::kUint: return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
    case T::kNumber: return v.is_number();
    case T::kBool: return v.is_boolean();
    case T::kObject: return v.is_object();
    case T::kArray: return v.is_array();
    case T::kNumberOrNull: return v.is_number() || v.is_null();
    case T::kObjectOrNull: return v.is_object() || v.is_null();
    case T::kUintOrNull: return v.is_null() || is(v, T::kUint);
    case T::kAny: return true;
  }
  return false;
}

struct Checker {
  std::vector<std::string> errs;
  const json* need(const json& obj, const std::string& path, const std::string& key, T t) {
    if (!obj.is_object() || !obj.contains(key)) {
      errs.push_back(path + key + ": missing (expected " + tname(t) + ")");
      return nullptr;
    }
    const json& v = obj[key];
    if (!is(v, t)) {
      std::string got = v.dump();
      if (got.size() > 40) got = got.substr(0, 37) + "...";
      errs.push_back(path + key + ": expected " + tname(t) + ", got " + got);
      return nullptr;
    }
    return &v;
  }
};

}  // namespace

// The summary metrics each experiment promises, with their types (every
// key a workload documents in docs/ and that tables, plots and bounds read).
// kNumberOrNull entries are optional: checked only when present.
struct SummaryRequirement {
  std::string experiment;  // "*" = every experiment
  std::string key;
  T type;
};
const std::vector<SummaryRequirement>& summary_requirements() {
  static const std::vector<SummaryRequirement> r = {
      {"churn", "ops_per_sec", T::kNumber},
      {"churn", "peak_rss_bytes", T::kUint},
      {"churn", "post_free_rss_bytes", T::kUint},
      {"churn", "live_bytes_post_free", T::kUint},
      {"churn", "requested_bytes_post_free", T::kUint},
      {"churn", "steady_state_first_cycle", T::kUint},
      {"churn", "cycles", T::kUint},
      {"churn", "rss_stability_pct", T::kNumber},
      {"churn", "retention_pct", T::kNumber},
      {"churn", "ns_per_object", T::kNumber},
      {"alternating", "ops_per_sec", T::kNumber},
      {"zone-write", "throughput_mib_s", T::kNumber},
      {"zone-write", "iops", T::kNumber},
      {"zone-write", "bytes_written", T::kUint},
      {"zone-write", "fio_ratio", T::kNumberOrNull},
      {"zone-churn", "write_amplification", T::kNumber},  // its counters: harness/counters.cpp
      {"zone-churn", "throughput_mib_s", T::kNumber},
      {"segment-scale", "ops_per_sec", T::kNumber},
      {"segment-scale", "max_open_fds", T::kUint},
      {"segment-scale", "max_data_mappings", T::kUint},
      {"segment-scale", "pin_unpin_ns", T::kObject},
      {"segment-scale", "metadata_bytes", T::kUint},
      // tiered-churn (issue 11; docs/tiered.md): DRAM budget and spill to zones.
      {"tiered-churn", "dram_budget_bytes", T::kUint},
      {"tiered-churn", "peak_rss_bytes", T::kUint},
      {"tiered-churn", "baseline_rss_bytes", T::kUint},
      {"tiered-churn", "rss_over_budget_pct", T::kNumber},
      {"tiered-churn", "spilled_bytes", T::kUint},
      {"tiered-churn", "faultbacks", T::kUint},
      {"tiered-churn", "faultback_ns", T::kObject},
      {"tiered-churn", "write_amplification", T::kNumber},
      {"tiered-churn", "zone_resets", T::kUint},
      {"tiered-churn", "gc_copied_bytes", T::kUint},
      {"tiered-churn", "ops_per_sec", T::kNumber},
      {"tiered-churn", "ops_ns", T::kUint},
      {"tiered-churn", "sampling_ns", T::kUint},
      {"tiered-churn", "corrupt_objects", T::kUint},
      {"tiered-churn", "io_worker_cpus", T::kArray},
  };
  return r;
}

std::vector<std::string> result_schema_errors(const json& doc) {
  Checker c;
  if (!doc.is_object()) return {"document: expected an object"};
  if (auto* s = c.need(doc, "", "schema", T::kString); s && *s != kResultSchema)
    c.errs.push_back("schema: expected \"" + std::string(kResultSchema) + "\", got " + s->dump());
  const json* exp = c.need(doc, "", "experiment", T::kString);
  c.need(doc, "", "started_at", T::kString);
  c.need(doc, "", "git_rev", T::kString);
  if (auto* h = c.need(doc, "", "host", T::kObject)) {
    c.need(*h, "host.", "kernel", T::kString);
    c.need(*h, "host.", "cpus", T::kUint);
    c.need(*h, "host.", "memory_bytes", T::kUint);
    c.need(*h, "host.", "thp_mode", T::kString);
    c.need(*h, "host.", "page_size", T::kUint);
  }
  c.need(doc, "", "label", T::kString);
  if (auto* pv = c.need(doc, "", "provenance", T::kObject)) {
    c.need(*pv, "provenance.", "git_rev", T::kString);
    c.need(*pv, "provenance.", "build", T::kObject);
    c.need(*pv, "provenance.", "cpu_model", T::kString);
    c.need(*pv, "provenance.", "argv", T::kArray);
    c.need(*pv, "provenance.", "env", T::kObject);
  }
  if (auto* cfg = c.need(doc, "", "config", T::kObject)) c.need(*cfg, "config.", "workload", T::kString);
  const json* alloc = c.need(doc, "", "allocator", T::kObjectOrNull);
  if (alloc && alloc->is_object()) {
    c.need(*alloc, "allocator.", "name", T::kString);
    // A library version string ("5.3.0") or a format revision number (1).
    if (auto* v = c.need(*alloc, "allocator.", "version", T::kAny); v && !v->is_string() && !v->is_number())
      c.errs.push_back("allocator.version: expected a string or a number, got " + v->dump());
  }
  c.need(doc, "", "device", T::kObjectOrNull);
  const std::string experiment = exp ? exp->get<std::string>() : "";
  const bool phased = experiment == "churn" || experiment == "alternating";
  if (auto* samples = c.need(doc, "", "samples", T::kArray)) {
    size_t i = 0;
    uint64_t last_t = 0;
    for (const auto& s : *samples) {
      std::string p = "samples[" + std::to_string(i++) + "].";
      if (!s.is_object()) {
        c.errs.push_back(p + ": expected an object");
        continue;
      }
      if (auto* t = c.need(s, p, "t_ns", T::kUint)) {
        if (t->get<uint64_t>() < last_t) c.errs.push_back(p + "t_ns: samples are not in time order");
        last_t = t->get<uint64_t>();
      }
      // Cycle-based experiments mark their samples (start, peak, post_free,
      // periodic, end); others may leave phase out.
      if (phased || s.contains("phase")) c.need(s, p, "phase", T::kString);
      if (s.contains("rss_bytes")) c.need(s, p, "rss_bytes", T::kUint);
      for (const char* k : {"committed_bytes", "live_bytes", "requested_bytes", "anon_rss_bytes",
                            "perf_minor_faults", "perf_major_faults"})
        if (s.contains(k)) c.need(s, p, k, T::kUintOrNull);
    }
  }
  if (auto* lat = c.need(doc, "", "latency_ns", T::kObject)) {
    for (auto& [op, h] : lat->items()) {
      std::string p = "latency_ns." + op + ".";
      if (!h.is_object()) {
        c.errs.push_back("latency_ns." + op + ": expected an object");
        continue;
      }
      double prev = -1;
      for (const char* k : {"p50", "p90", "p99", "p999", "max"}) {
        if (auto* v = c.need(h, p, k, T::kNumber)) {
          if (v->get<double>() < prev) c.errs.push_back(p + k + ": smaller than the previous percentile");
          prev = v->get<double>();
        }
      }
    }
    const std::string e = exp ? exp->get<std::string>() : "";
    if (e == "churn" || e == "alternating") {
      c.need(*lat, "latency_ns.", "alloc", T::kObject);
      c.need(*lat, "latency_ns.", "free", T::kObject);
    }
  }
  if (auto* sum = c.need(doc, "", "summary", T::kObject)) {
    for (const auto& r : summary_requirements())
      if (r.experiment == experiment || r.experiment == "*") {
        if (r.type == T::kNumberOrNull && !sum->contains(r.key)) continue;  // optional
        c.need(*sum, "summary.", r.key, r.type);
      }
    if (experiment == "churn") {
      // Null without a committed-bytes counter, and also with one when the
      // drift is undefined (growth from 0 committed bytes: harness/metrics.h).
      c.need(*sum, "summary.", "committed_drift_pct", T::kNumberOrNull);
    }
    // File-backed pages and overflow region (issue 10): the fields the issue lists.
    auto need_lat = [&](const char* k) {
      if (auto* h = c.need(*sum, "summary.", k, T::kObject))
        for (const char* q : {"p50", "p99"}) c.need(*h, std::string("summary.") + k + ".", q, T::kNumber);
    };
    if (exp && *exp == "pager-churn") {
      for (const char* k : {"pages_max", "metadata_bytes", "file_bytes", "rss_bytes", "ops_ns", "sampling_ns"})
        c.need(*sum, "summary.", k, T::kUint);
      c.need(*sum, "summary.", "space_amplification", T::kNumber);
      for (const char* k : {"alloc_free_ns", "subpage_alloc_free_ns", "commit_ns"}) need_lat(k);
    }
    if (exp && *exp == "overflow-spill") {
      for (const char* k : {"grow_count", "reader_remaps", "stale_reads", "peak_file_bytes", "live_bytes_peak"})
        c.need(*sum, "summary.", k, T::kUint);
      c.need(*sum, "summary.", "fragmentation_pct", T::kNumber);
      for (const char* k : {"write_ns", "read_ns", "write_4k_ns"}) need_lat(k);
    }
    // varslot-growth (issue 13; docs/varslot.md).
    if (exp && *exp == "varslot-growth") {
      for (const char* k : {"growth_events", "remaps", "segment_bytes_final", "live_bytes_peak",
                            "fallback_allocs", "corruptions", "recovered_slots", "leaked_slots"})
        c.need(*sum, "summary.", k, T::kUint);
      for (const char* k : {"grow_ns", "alloc_free_ns"})
        if (auto* h = c.need(*sum, "summary.", k, T::kObject)) {
          c.need(*h, std::string("summary.") + k + ".", "p50", T::kUint);
          c.need(*h, std::string("summary.") + k + ".", "p99", T::kUint);
        }
    }
    if (exp && *exp == "tiered-churn") {  // issue 11: fault-back latency percentiles, ns
      if (auto h = sum->find("faultback_ns"); h != sum->end() && h->is_object())
        for (const char* q : {"p50", "p99"}) c.need(*h, "summary.faultback_ns.", q, T::kUint);
    }
    if (exp && *exp == "trace") {  // trace replay (issue 12, docs/trace.md)
      c.need(*sum, "summary.", "ops_per_sec", T::kNumber);
      for (const char* k : {"ops_replayed", "ops_skipped", "trace_events", "peak_rss_bytes",
                            "post_drain_rss_bytes", "fallback_ops", "fallback_bytes"})
        c.need(*sum, "summary.", k, T::kUint);
      c.need(*sum, "summary.", "ns_per_op", T::kNumber);
      c.need(*sum, "summary.", "mispredicted_pct", T::kNumberOrNull);
      auto r = sum->find("ops_replayed");
      auto n = sum->find("trace_events");
      if (r != sum->end() && n != sum->end() && r->is_number_unsigned() && n->is_number_unsigned() && *r != *n)
        c.errs.push_back("summary.ops_replayed: " + r->dump() + " of " + n->dump() + " trace events");
    }
  }
  // Counter sets (harness/counters.h): generated from their declarations.
  for (auto& e : counter_schema_errors(doc)) c.errs.push_back(std::move(e));
  return c.errs;
}

}  // namespace znslab::harness
