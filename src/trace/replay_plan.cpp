// Replay planning and epoch policies (replay_plan.h).
#include "src/trace/replay_plan.h"

#include <algorithm>
#include <bit>
#include <unordered_map>

#include "src/trace/trace_stats.h"

namespace znslab::trace {

const char* epoch_policy_name(EpochPolicy p) noexcept {
  switch (p) {
    case EpochPolicy::kNone: return "none";
    case EpochPolicy::kTime: return "time";
    case EpochPolicy::kCallsite: return "callsite";
    case EpochPolicy::kOracle: return "oracle";
  }
  return "?";
}

bool parse_epoch_policy(std::string_view s, EpochPolicy& out) noexcept {
  for (EpochPolicy p : {EpochPolicy::kNone, EpochPolicy::kTime, EpochPolicy::kCallsite, EpochPolicy::kOracle})
    if (s == epoch_policy_name(p)) {
      out = p;
      return true;
    }
  return false;
}

bool make_plan(const Trace& t, const PlanOptions& o, ReplayPlan& out, std::string& error) {
  out = ReplayPlan{};
  const std::vector<ObjectLife> lives = object_lives(t);
  if (lives.size() > UINT32_MAX) {
    error = "trace has " + std::to_string(lives.size() - 1) + " objects; replay supports 2^32-1";
    return false;
  }
  out.max_obj = lives.empty() ? 0 : lives.size() - 1;
  const bool windows = o.policy != EpochPolicy::kNone;
  const uint64_t ens = o.epoch_ns ? o.epoch_ns : 1;
  auto window_of = [&](uint64_t ts) { return windows ? ts / ens : 0; };

  std::unordered_map<uint32_t, size_t> thread_index;
  std::vector<uint32_t> creator_thread(lives.size(), UINT32_MAX);
  std::vector<uint8_t> live(lives.size(), 0);
  std::vector<uint64_t> alloc_ts(lives.size(), 0);
  std::vector<std::vector<uint32_t>> window_members;  // objects placed in window w
  uint64_t closed_upto = 0;                           // windows < this are closed
  struct Site { uint64_t predicted_ns = 0; };
  std::unordered_map<uint32_t, Site> sites;

  auto close_windows_before = [&](uint64_t w) {
    for (; closed_upto < w; ++closed_upto) {
      if (closed_upto >= window_members.size()) continue;
      for (uint32_t id : window_members[closed_upto]) {
        if (!live[id]) continue;
        ++out.mispredicted;
        if (o.policy == EpochPolicy::kCallsite) {
          Site& s = sites[lives[id].callsite];
          s.predicted_ns = std::max(s.predicted_ns, ens);
        }
      }
      std::vector<uint32_t>().swap(window_members[closed_upto]);
    }
  };
  auto end_object = [&](uint32_t id, uint64_t ts) {
    live[id] = 0;
    if (o.policy == EpochPolicy::kCallsite) {
      Site& s = sites[lives[id].callsite];
      const uint64_t life = ts - alloc_ts[id];
      s.predicted_ns = std::max(life, s.predicted_ns - s.predicted_ns / 8);
    }
  };

  for (size_t i = 0; i < t.events.size(); ++i) {
    const TraceEvent& e = t.events[i];
    const uint64_t w = window_of(e.ts_ns);
    if (windows) close_windows_before(w);
    auto [it, fresh] = thread_index.emplace(e.tid, out.threads.size());
    if (fresh) {
      out.threads.emplace_back();
      out.tids.push_back(e.tid);
    }
    const uint32_t ti = uint32_t(it->second);
    ReplayOp r{};
    r.ts_ns = e.ts_ns;
    r.size = e.size;
    r.obj = uint32_t(e.obj);
    r.old_obj = uint32_t(e.old_obj);
    r.window = uint32_t(w);
    r.op = e.op;
    r.placement = Placement::kFallback;
    r.align_log2 = e.align > 1 ? uint8_t(std::bit_width(uint64_t(e.align) - 1)) : 0;
    r.pad = 0;
    if (e.op == uint8_t(Op::kFree) || (e.op == uint8_t(Op::kRealloc) && e.old_obj)) {
      const uint32_t id = uint32_t(e.op == uint8_t(Op::kFree) ? e.obj : e.old_obj);
      if (creator_thread[id] != ti) ++out.cross_thread_frees;
      end_object(id, e.ts_ns);
    }
    if (op_allocates(e.op) && e.obj) {
      const uint32_t id = uint32_t(e.obj);
      creator_thread[id] = ti;
      live[id] = 1;
      alloc_ts[id] = e.ts_ns;
      const bool fallback = e.size > o.max_object_bytes || e.align > o.max_slab_align;
      bool in_window = false;
      if (!fallback) {
        switch (o.policy) {
          case EpochPolicy::kNone: break;
          case EpochPolicy::kTime: in_window = true; break;
          case EpochPolicy::kCallsite: {
            auto s = sites.find(e.callsite);
            const uint64_t pred = s == sites.end() ? 0 : s->second.predicted_ns;
            in_window = e.ts_ns + pred < (w + 1) * ens;
            break;
          }
          case EpochPolicy::kOracle: {
            const ObjectLife& l = lives[id];
            in_window = l.free_index != UINT64_MAX && window_of(t.events[l.free_index].ts_ns) == w;
            break;
          }
        }
      }
      if (fallback) {
        r.placement = Placement::kFallback;
        ++out.fallback_objects;
        out.fallback_bytes += e.size;
      } else if (in_window) {
        r.placement = Placement::kWindowEpoch;
        ++out.window_objects;
        if (window_members.size() <= w) window_members.resize(w + 1);
        window_members[w].push_back(id);
      } else {
        r.placement = Placement::kLongEpoch;
        ++out.long_objects;
      }
    }
    out.threads[ti].push_back(r);
    ++out.ops;
  }
  out.duration_ns = t.events.empty() ? 0 : t.events.back().ts_ns;
  out.windows = windows ? window_of(out.duration_ns) + 1 : 1;
  if (windows) close_windows_before(out.windows);  // the end of the trace closes the rest
  return true;
}

}  // namespace znslab::trace
