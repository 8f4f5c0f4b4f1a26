#include "harness/slab_options.h"

#include <functional>

#include "harness/config.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

struct Row {
  KeyDoc doc;
  std::function<json(const slab::Options&)> get;
  std::function<void(const json& cfg, const std::string& key)> check;
  std::function<void(slab::Options&, const json& v)> set;
};

const std::vector<Row>& rows() {
  static const std::vector<Row> r = {
      {{"slab_reclaim", "string", "", "when an empty slab is returned to the OS: immediate, on_close, off"},
       [](const slab::Options& o) { return json(slab::reclaim_policy_name(o.reclaim)); },
       [](const json& c, const std::string& k) { check_one_of(c, k, {"immediate", "on_close", "off"}); },
       [](slab::Options& o, const json& v) { o.reclaim = *slab::parse_reclaim_policy(v.get<std::string>()); }},
      {{"slab_arena_bytes", "integer", "bytes", "virtual address space reserved for slabs (MAP_NORESERVE), <= 16 GiB"},
       [](const slab::Options& o) { return json(o.arena_bytes); },
       [](const json& c, const std::string& k) { check_int_range(c, k, int64_t(2) << 20, int64_t(16) << 30); },
       [](slab::Options& o, const json& v) { o.arena_bytes = v.get<size_t>(); }},
      {{"slab_chunk_bytes", "integer", "bytes", "per-epoch chunk slabs are carved from: a power of two >= 4 KiB"},
       [](const slab::Options& o) { return json(o.chunk_bytes); },
       [](const json& c, const std::string& k) {
         check_int_range(c, k, int64_t(slab::kSlabBytes), int64_t(1) << 30);
         const uint64_t v = cfg_u64(c, k);
         if (v & (v - 1)) throw_key_error(k, "must be a power of two, got " + std::to_string(v));
       },
       [](slab::Options& o, const json& v) { o.chunk_bytes = v.get<size_t>(); }},
      {{"slab_use_thp", "boolean", "", "madvise(MADV_HUGEPAGE) on chunks (THP must be in madvise or always mode)"},
       [](const slab::Options& o) { return json(o.use_thp); }, nullptr,
       [](slab::Options& o, const json& v) { o.use_thp = v.get<bool>(); }},
      {{"slab_populate_slabs", "integer", "slabs", "slabs pre-faulted at once (MADV_POPULATE_WRITE) when an epoch grows (0 = fault on first touch)"},
       [](const slab::Options& o) { return json(o.populate_slabs); },
       [](const json& c, const std::string& k) { check_int_range(c, k, 0, 512); },
       [](slab::Options& o, const json& v) { o.populate_slabs = v.get<uint32_t>(); }},
      {{"slab_reclaim_batch_slabs", "integer", "slabs", "pending empty slabs that trigger a batched decommit (0 = only at epoch close)"},
       [](const slab::Options& o) { return json(o.reclaim_batch_slabs); },
       [](const json& c, const std::string& k) { check_int_range(c, k, 0, 1 << 20); },
       [](slab::Options& o, const json& v) { o.reclaim_batch_slabs = v.get<uint32_t>(); }},
      {{"slab_reclaim_batch_pct", "integer", "%", "a batched decommit also waits for this % of the committed slabs to be queued empty (0 = reclaim_batch_slabs alone)"},
       [](const slab::Options& o) { return json(o.reclaim_batch_pct); },
       [](const json& c, const std::string& k) { check_int_range(c, k, 0, 100); },
       [](slab::Options& o, const json& v) { o.reclaim_batch_pct = v.get<uint32_t>(); }},
      {{"slab_scan_retry_threshold", "number", "ratio", "CAS retry rate above which bitmap scanning turns randomized (seed 002)"},
       [](const slab::Options& o) { return json(o.scan_retry_threshold); },
       [](const json& c, const std::string& k) { check_number_range(c, k, 0.0, 1.0); },
       [](slab::Options& o, const json& v) { o.scan_retry_threshold = v.get<double>(); }},
      {{"slab_scan_dwell_checks", "integer", "checks", "adaptive-scan checks a mode is kept before switching back"},
       [](const slab::Options& o) { return json(o.scan_dwell_checks); },
       [](const json& c, const std::string& k) { check_int_range(c, k, 1, 1000000); },
       [](slab::Options& o, const json& v) { o.scan_dwell_checks = v.get<uint32_t>(); }},
      {{"slab_thread_cache", "boolean", "", "per-thread magazines on the fast path (false: every operation on the shared slab word)"},
       [](const slab::Options& o) { return json(o.thread_cache); }, nullptr,
       [](slab::Options& o, const json& v) { o.thread_cache = v.get<bool>(); }},
      {{"slab_solo_free", "boolean", "", "solo free mode: while one thread is the only freer, free takes the slot with a plain store instead of the CAS (docs/slab.md)"},
       [](const slab::Options& o) { return json(o.solo_free); }, nullptr,
       [](slab::Options& o, const json& v) { o.solo_free = v.get<bool>(); }},
      {{"slab_handle_key", "integer", "", "key of the handle generation hash (0 = a random key per allocator)"},
       [](const slab::Options& o) { return json(int64_t(o.handle_key & uint64_t(INT64_MAX))); },
       [](const json& c, const std::string& k) { check_int_range(c, k, 0, INT64_MAX); },
       [](slab::Options& o, const json& v) { o.handle_key = uint64_t(v.get<int64_t>()); }},
      {{"slab_dram_budget_bytes", "integer", "bytes", "DRAM budget: committed slabs + slab metadata; cold slabs spill beyond it (0 = unlimited, no spill)"},
       [](const slab::Options& o) { return json(o.dram_budget_bytes); },
       [](const json& c, const std::string& k) { check_int_range(c, k, 0, int64_t(1) << 40); },
       [](slab::Options& o, const json& v) { o.dram_budget_bytes = v.get<size_t>(); }},
      {{"slab_spill", "string", "", "spill target beyond the budget: none, zns (slab_spill_device is a device URI), overflow"},
       [](const slab::Options& o) { return json(slab::spill_target_name(o.spill)); },
       [](const json& c, const std::string& k) { check_one_of(c, k, {"none", "zns", "overflow"}); },
       [](slab::Options& o, const json& v) { o.spill = *slab::parse_spill_target(v.get<std::string>()); }},
      {{"slab_spill_device", "string", "", "spill device: emu:PATH?zones=N&..., zbd:/dev/nvmeXnY, nvme:/dev/ngXnY (or a file for overflow)"},
       [](const slab::Options& o) { return json(o.spill_device); }, nullptr,
       [](slab::Options& o, const json& v) { o.spill_device = v.get<std::string>(); }},
      {{"slab_spill_unit", "string", "", "unit moved to the spill target: epoch (whole cold epochs) or page (single slabs, LRU; the baseline)"},
       [](const slab::Options& o) { return json(slab::spill_unit_name(o.spill_unit)); },
       [](const json& c, const std::string& k) { check_one_of(c, k, {"epoch", "page"}); },
       [](slab::Options& o, const json& v) { o.spill_unit = *slab::parse_spill_unit(v.get<std::string>()); }},
      {{"slab_spill_append", "boolean", "", "spill with zone append instead of writes at the write pointer"},
       [](const slab::Options& o) { return json(o.spill_append); }, nullptr,
       [](slab::Options& o, const json& v) { o.spill_append = v.get<bool>(); }},
      {{"slab_spill_mesh", "boolean", "", "GC packs sparse spilled slabs of one class with disjoint allocated slots into one shared 4 KiB block (Mesh)"},
       [](const slab::Options& o) { return json(o.spill_mesh); }, nullptr,
       [](slab::Options& o, const json& v) { o.spill_mesh = v.get<bool>(); }},
  };
  return r;
}

}  // namespace

nlohmann::json slab_option_defaults() {
  const slab::Options d{};
  json j = json::object();
  for (const auto& r : rows()) j[r.doc.key] = r.get(d);
  return j;
}

void validate_slab_options(const nlohmann::json& cfg) {
  for (const auto& r : rows())
    if (r.check && cfg.contains(r.doc.key)) r.check(cfg, r.doc.key);
}

slab::Options slab_options_from(const nlohmann::json& cfg) {
  slab::Options o{};
  for (const auto& r : rows())
    if (cfg.contains(r.doc.key)) r.set(o, cfg[r.doc.key]);
  return o;
}

nlohmann::json slab_options_json(const slab::Options& o) {
  json j = json::object();
  for (const auto& r : rows()) j[r.doc.key.substr(5)] = r.get(o);
  return j;
}

const std::vector<KeyDoc>& slab_option_docs() {
  static const std::vector<KeyDoc> d = [] {
    std::vector<KeyDoc> v;
    for (const auto& r : rows()) v.push_back(r.doc);
    return v;
  }();
  return d;
}

}  // namespace znslab::harness
