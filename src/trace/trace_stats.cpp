// Trace statistics (trace_stats.h).
#include "src/trace/trace_stats.h"

#include <algorithm>
#include <map>
#include <unordered_map>

namespace znslab::trace {
namespace {

using nlohmann::json;

unsigned log2_bucket(uint64_t v) { return v <= 1 ? 0 : 64u - unsigned(__builtin_clzll(v - 1)); }

json pow2_histogram(const std::vector<uint64_t>& counts, const std::vector<uint64_t>* bytes,
                    const char* le_key) {
  json h = json::array();
  for (size_t i = 0; i < counts.size(); ++i) {
    if (!counts[i]) continue;
    json b{{le_key, uint64_t(1) << i}, {"count", counts[i]}};
    if (bytes) b["bytes"] = (*bytes)[i];
    h.push_back(b);
  }
  return h;
}

}  // namespace

std::vector<ObjectLife> object_lives(const Trace& t) {
  uint64_t max_id = 0;
  for (const auto& e : t.events) max_id = std::max(max_id, e.obj);
  std::vector<ObjectLife> lives(max_id + 1);
  for (size_t i = 0; i < t.events.size(); ++i) {
    const TraceEvent& e = t.events[i];
    if (e.op == uint8_t(Op::kFree)) {
      if (e.obj <= max_id) lives[e.obj].free_index = i;
      continue;
    }
    if (e.op == uint8_t(Op::kUsableSize)) continue;
    if (e.op == uint8_t(Op::kRealloc) && e.old_obj && e.old_obj <= max_id) lives[e.old_obj].free_index = i;
    if (e.obj) {
      lives[e.obj].alloc_index = i;
      lives[e.obj].size = e.size;
      lives[e.obj].callsite = e.callsite;
    }
  }
  return lives;
}

json trace_info(const Trace& t, size_t top_n) {
  json j;
  j["program"] = t.header.program;
  j["args"] = t.header.args;
  j["pid"] = t.header.pid;
  j["start_unix_ns"] = t.header.start_unix_ns;
  j["events"] = t.events.size();
  j["frames"] = t.frames;
  j["duration_ns"] = t.events.empty() ? 0 : t.events.back().ts_ns;
  std::map<std::string, uint64_t> ops;
  std::map<uint32_t, uint64_t> threads;
  for (const auto& e : t.events) {
    ++ops[op_name(e.op)];
    ++threads[e.tid];
  }
  j["ops"] = ops;
  j["threads"] = json::array();
  for (auto& [tid, n] : threads) j["threads"].push_back({{"tid", tid}, {"events", n}});

  const std::vector<ObjectLife> lives = object_lives(t);
  // Peak live bytes/objects, in seq order.
  uint64_t live_b = 0, live_o = 0, peak_b = 0, peak_o = 0;
  std::vector<uint64_t> size_n(65), size_b(65);
  uint64_t allocs = 0, small = 0;
  for (const auto& e : t.events) {
    if (e.op == uint8_t(Op::kUsableSize)) continue;
    if (e.op == uint8_t(Op::kFree) || (e.op == uint8_t(Op::kRealloc) && e.old_obj)) {
      uint64_t id = e.op == uint8_t(Op::kFree) ? e.obj : e.old_obj;
      live_b -= lives[id].size;
      --live_o;
    }
    if (e.op != uint8_t(Op::kFree) && e.obj) {
      live_b += e.size;
      ++live_o;
      ++allocs;
      small += e.size <= 768;
      unsigned b = log2_bucket(e.size);
      ++size_n[b];
      size_b[b] += e.size;
    }
    peak_b = std::max(peak_b, live_b);
    peak_o = std::max(peak_o, live_o);
  }
  j["peak_live_bytes"] = peak_b;
  j["peak_live_objects"] = peak_o;
  j["end_live_bytes"] = live_b;
  j["end_live_objects"] = live_o;
  j["size_histogram"] = pow2_histogram(size_n, &size_b, "le_bytes");
  j["small_allocs_pct"] = allocs ? 100.0 * double(small) / double(allocs) : 0.0;

  std::vector<uint64_t> life_ops(65), life_ns(65);
  uint64_t never = 0;
  struct Site { uint64_t allocs = 0, bytes = 0, life_sum = 0, freed = 0; };
  std::unordered_map<uint32_t, Site> sites;
  for (size_t id = 1; id < lives.size(); ++id) {
    const ObjectLife& l = lives[id];
    if (l.alloc_index == UINT64_MAX) continue;
    Site& s = sites[l.callsite];
    ++s.allocs;
    s.bytes += l.size;
    if (l.free_index == UINT64_MAX) {
      ++never;
      continue;
    }
    ++life_ops[log2_bucket(l.free_index - l.alloc_index)];
    uint64_t ns = t.events[l.free_index].ts_ns - t.events[l.alloc_index].ts_ns;
    ++life_ns[log2_bucket(ns)];
    s.life_sum += ns;
    ++s.freed;
  }
  j["lifetime_ops_histogram"] = pow2_histogram(life_ops, nullptr, "le");
  j["lifetime_ns_histogram"] = pow2_histogram(life_ns, nullptr, "le");
  j["never_freed"] = never;
  std::vector<std::pair<uint32_t, Site>> v(sites.begin(), sites.end());
  std::sort(v.begin(), v.end(), [](auto& a, auto& b) {
    return a.second.bytes != b.second.bytes ? a.second.bytes > b.second.bytes : a.first < b.first;
  });
  j["callsites"] = v.size();
  j["top_callsites"] = json::array();
  for (size_t i = 0; i < v.size() && i < top_n; ++i) {
    const Site& s = v[i].second;
    j["top_callsites"].push_back({{"callsite", v[i].first},
                                  {"allocs", s.allocs},
                                  {"bytes", s.bytes},
                                  {"freed", s.freed},
                                  {"mean_lifetime_ns", s.freed ? double(s.life_sum) / double(s.freed) : 0.0}});
  }
  return j;
}

}  // namespace znslab::trace
