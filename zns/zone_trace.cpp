// Differential zone-command trace; see zone_trace.h.
#include "zns/zone_trace.h"

#include <cstring>
#include <sstream>

#include "zns/io/uring_engine.h"

namespace znslab::zns::trace {

const char* op_kind_name(OpKind k) noexcept {
  switch (k) {
    case OpKind::kOpen: return "open";
    case OpKind::kClose: return "close";
    case OpKind::kFinish: return "finish";
    case OpKind::kReset: return "reset";
    case OpKind::kWrite: return "write";
    case OpKind::kFill: return "fill";
    case OpKind::kAppend: return "append";
    case OpKind::kRead: return "read";
  }
  return "?";
}

std::string format_op(const TraceOp& op) {
  std::ostringstream o;
  o << op_kind_name(op.kind) << " zone " << op.zone;
  if (op.kind == OpKind::kWrite || op.kind == OpKind::kRead || op.kind == OpKind::kFill) o << " offset " << op.offset;
  if (op.kind != OpKind::kOpen && op.kind != OpKind::kClose && op.kind != OpKind::kFinish && op.kind != OpKind::kReset)
    o << " len " << op.len;
  if (!op.note.empty()) o << " (" << op.note << ")";
  return o.str();
}

namespace {

uint64_t splitmix(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void fill_pattern(uint8_t* buf, size_t len, uint64_t seed) {
  uint64_t s = seed;
  for (size_t i = 0; i < len; i += 8) {
    const uint64_t v = splitmix(s);
    std::memcpy(buf + i, &v, std::min<size_t>(8, len - i));
  }
}

uint64_t fnv1a(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

std::string describe_zone(const Zone& z) {
  std::ostringstream o;
  o << "zone " << z.index << " " << zone_state_name(z.state) << " wp +" << (z.write_pointer - z.start);
  return o.str();
}

std::string describe_outcome(const OpOutcome& oc, const TraceOp& op) {
  std::string s = oc.status.is_ok() ? "OK" : oc.status.to_string();
  if (oc.status.is_ok() && op.kind == OpKind::kAppend) s += " landed at +" + std::to_string(oc.landed);
  if (oc.status.is_ok() && op.kind == OpKind::kRead) {
    char b[32];
    std::snprintf(b, sizeof b, " data fnv1a %016llx", static_cast<unsigned long long>(oc.data_hash));
    s += b;
  }
  return s;
}

}  // namespace

TraceGenerator::TraceGenerator(uint64_t seed, const DeviceInfo& g) : state_(seed), g_(g) {
  const uint32_t lim = g.max_active ? g.max_active : (g.max_open ? g.max_open : 8);
  hot_ = std::min<uint32_t>(g.zone_count, lim + 3);
}

uint64_t TraceGenerator::rnd() { return splitmix(state_); }

TraceOp TraceGenerator::next(const std::vector<Zone>& ref) {
  TraceOp op;
  ++counter_;
  op.zone = uint32_t(below(10) < 8 ? below(hot_) : below(g_.zone_count));
  op.data_seed = rnd();
  const uint64_t lba = g_.lba_bytes;
  const Zone* z = op.zone < ref.size() ? &ref[op.zone] : nullptr;
  const uint64_t wp = z ? z->write_pointer - z->start : 0;
  const uint64_t cap = z ? z->capacity : g_.zone_capacity;
  // Now and then fill the zone from the write pointer to 0-4 blocks short
  // of its capacity, so later writes and appends cross the capacity (Zone
  // Boundary Error) or fill it exactly (Full by writing).
  if (below(250) == 0) {
    const uint64_t spare = below(5) * lba;
    if (cap > wp + spare + lba) {
      op.kind = OpKind::kFill;
      op.offset = wp;
      op.len = uint32_t(cap - spare - wp);
      op.note = spare ? std::to_string(spare) + " bytes short of capacity" : "to capacity";
      return op;
    }
  }
  uint64_t blocks = 1 + below(8);
  if (below(50) == 0) blocks = 32 + below(33);  // a larger write now and then
  op.len = uint32_t(blocks * lba);
  const uint64_t r = below(100);
  if (r < 14) {
    op.kind = OpKind::kOpen;
  } else if (r < 24) {
    op.kind = OpKind::kClose;
  } else if (r < 30) {
    op.kind = OpKind::kFinish;
  } else if (r < 37) {
    op.kind = OpKind::kReset;
  } else if (r < 65) {
    op.kind = OpKind::kWrite;
    op.offset = wp;
    op.note = "at wp";
  } else if (r < 73) {
    op.kind = OpKind::kWrite;
    const uint64_t delta = (1 + below(4)) * lba;
    if (below(2) == 0 && wp >= delta) {
      op.offset = wp - delta;
      op.note = "off wp -" + std::to_string(delta);
    } else {
      op.offset = wp + delta;
      op.note = "off wp +" + std::to_string(delta);
    }
  } else if (r < 87) {
    op.kind = OpKind::kAppend;
  } else {
    op.kind = OpKind::kRead;
    const uint64_t span = cap / lba >= blocks ? cap / lba - blocks + 1 : 1;
    // Half the reads start at or below the write pointer, half anywhere
    // in the capacity (reads beyond the write pointer return zeros).
    uint64_t b = below(span);
    if (below(2) == 0 && wp / lba < span) b = below(wp / lba + 1);
    op.offset = b * lba;
  }
  return op;
}

Quirks quirks_for(const DeviceInfo& d) noexcept {
  Quirks q;
  if (d.model == "null_blk") {
    q.null_blk_zone_rules = true;
  }
  return q;
}

CompareMode mode_for(const DeviceInfo& a, const DeviceInfo& b) noexcept {
  return (a.backend == "zbd" || b.backend == "zbd") ? CompareMode::kOutcome : CompareMode::kExact;
}

std::string geometry_difference(const DeviceInfo& a, const DeviceInfo& b) {
  std::ostringstream o;
  auto cmp = [&](const char* name, uint64_t x, uint64_t y) {
    if (x != y && o.tellp() == 0) o << name << " differs: " << x << " vs " << y;
  };
  cmp("zone count", a.zone_count, b.zone_count);
  cmp("zone size (bytes)", a.zone_size, b.zone_size);
  cmp("zone capacity (bytes)", a.zone_capacity, b.zone_capacity);
  cmp("logical block size (bytes)", a.lba_bytes, b.lba_bytes);
  cmp("max open zones", a.max_open, b.max_open);
  cmp("max active zones", a.max_active, b.max_active);
  return o.str();
}

OpOutcome apply(ZonedDevice& dev, const TraceOp& op, uint8_t* buf) {
  OpOutcome oc;
  switch (op.kind) {
    case OpKind::kFill:
      for (uint64_t done = 0, k = 0; done < op.len && oc.status.is_ok(); ++k) {
        const size_t n = size_t(std::min<uint64_t>(kTraceBufferBytes, op.len - done));
        fill_pattern(buf, n, op.data_seed + k);
        oc.status = dev.write(op.zone, op.offset + done, buf, n);
        done += n;
      }
      break;
    case OpKind::kOpen: oc.status = dev.open(op.zone); break;
    case OpKind::kClose: oc.status = dev.close(op.zone); break;
    case OpKind::kFinish: oc.status = dev.finish(op.zone); break;
    case OpKind::kReset: oc.status = dev.reset(op.zone); break;
    case OpKind::kWrite:
      fill_pattern(buf, op.len, op.data_seed);
      oc.status = dev.write(op.zone, op.offset, buf, op.len);
      break;
    case OpKind::kAppend: {
      fill_pattern(buf, op.len, op.data_seed);
      auto r = dev.append(op.zone, buf, op.len);
      oc.status = r.status();
      if (r) oc.landed = *r;
      break;
    }
    case OpKind::kRead:
      std::memset(buf, 0xa5, op.len);
      oc.status = dev.read(op.zone, op.offset, buf, op.len);
      if (oc.status.is_ok()) oc.data_hash = fnv1a(buf, op.len);
      break;
  }
  return oc;
}

Status reset_all(ZonedDevice& dev) {
  auto zones = dev.report_zones(0, UINT32_MAX);
  if (!zones) return zones.status();
  for (const Zone& z : *zones) {
    if (z.state == ZoneState::kReadOnly || z.state == ZoneState::kOffline || z.state == ZoneState::kEmpty) continue;
    Status s = dev.reset(z.index);
    if (!s) return s;
  }
  return Status::ok();
}

namespace {

// How to re-align the two devices after a documented difference: reset
// (action kEmpty) or close (action kClosed) `zone` on device A or B.
struct Fix {
  bool on_a = false;
  uint32_t zone = UINT32_MAX;
  ZoneState action = ZoneState::kEmpty;
};

// Returns the name of the documented-difference rule that explains the
// difference after `op`, or nullptr. Each rule needs the quirk on the
// device that behaves differently and matches exactly one pattern.
const char* documented_rule(const TraceOp& op, const OpOutcome& oa, const OpOutcome& ob,
                            const std::vector<Zone>& za, const std::vector<Zone>& zb,
                            const std::vector<uint32_t>& zdiff, const Quirks& qa, const Quirks& qb, Fix* fix) {
  const bool ok_a = oa.status.is_ok(), ok_b = ob.status.is_ok();
  if (zdiff.size() != 1) return nullptr;
  const uint32_t z = zdiff[0];
  const Zone& x = za[z];
  const Zone& y = zb[z];
  const bool same_wp = x.write_pointer - x.start == y.write_pointer - y.start;
  // R1: ZBC close: a zone closed with its WP at the zone start becomes EMPTY.
  if (op.kind == OpKind::kClose && op.zone == z && ok_a && ok_b && same_wp && x.write_pointer == x.start) {
    if ((qa.null_blk_zone_rules && x.state == ZoneState::kEmpty && y.state == ZoneState::kClosed) ||
        (qb.null_blk_zone_rules && y.state == ZoneState::kEmpty && x.state == ZoneState::kClosed)) {
      *fix = Fix{x.state == ZoneState::kClosed, z, ZoneState::kEmpty};
      return "null_blk: close with the write pointer at the zone start leaves the zone EMPTY (ZBC)";
    }
  }
  // R2: a command failing with Too Many Active Zones: NVMe (QEMU) has
  // already closed an implicitly opened zone to make room; null_blk checks
  // the active limit first and leaves it open.
  if (!ok_a && !ok_b && same_wp) {
    const bool a_quirk = qa.null_blk_zone_rules && oa.status.code() == Code::kTooManyActiveZones &&
                         x.state == ZoneState::kImplicitOpen && y.state == ZoneState::kClosed;
    const bool b_quirk = qb.null_blk_zone_rules && ob.status.code() == Code::kTooManyActiveZones &&
                         y.state == ZoneState::kImplicitOpen && x.state == ZoneState::kClosed;
    if (a_quirk || b_quirk) {
      *fix = Fix{a_quirk, z, ZoneState::kClosed};
      return "null_blk: a command refused for the active limit does not close an implicitly open zone first";
    }
  }
  // R3: Finish of an EMPTY zone: NVMe (QEMU) needs no resource; null_blk
  // refuses it when the active/open limit is reached.
  if (op.kind == OpKind::kFinish && op.zone == z && ok_a != ok_b) {
    auto limit = [](Code c) { return c == Code::kTooManyActiveZones || c == Code::kTooManyOpenZones; };
    const bool a_quirk = qa.null_blk_zone_rules && !ok_a && limit(oa.status.code()) &&
                         x.state == ZoneState::kEmpty && y.state == ZoneState::kFull;
    const bool b_quirk = qb.null_blk_zone_rules && !ok_b && limit(ob.status.code()) &&
                         y.state == ZoneState::kEmpty && x.state == ZoneState::kFull;
    if (a_quirk || b_quirk) {
      *fix = Fix{!a_quirk, z, ZoneState::kEmpty};
      return "null_blk: finishing an EMPTY zone needs a free active resource";
    }
  }
  return nullptr;
}

}  // namespace

DiffResult run_diff(ZonedDevice& a, ZonedDevice& b, const DiffOptions& opts) {
  DiffResult res;
  res.mode = mode_for(a.info(), b.info());
  if (std::string g = geometry_difference(a.info(), b.info()); !g.empty()) {
    res.setup_error = "geometry: " + g;
    return res;
  }
  auto resync = [&]() -> bool {
    Status sa = reset_all(a), sb = reset_all(b);
    if (!sa || !sb) {
      res.setup_error = "resetting all zones failed: " + (sa ? sb : sa).to_string();
      return false;
    }
    return true;
  };
  if (!resync()) return res;
  auto buf_a = io::AlignedBuffer::allocate(kTraceBufferBytes, a.info().lba_bytes);
  auto buf_b = io::AlignedBuffer::allocate(kTraceBufferBytes, a.info().lba_bytes);
  if (!buf_a || !buf_b) {
    res.setup_error = "cannot allocate I/O buffers";
    return res;
  }
  auto rep_a = a.report_zones(0, UINT32_MAX);
  if (!rep_a) {
    res.setup_error = "report_zones on A: " + rep_a.status().to_string();
    return res;
  }
  TraceGenerator gen(opts.seed, a.info());
  const Quirks qa = quirks_for(a.info()), qb = quirks_for(b.info());
  std::vector<TraceOp> since;  // ops since the last resync
  for (size_t i = 0; i < opts.ops; ++i) {
    TraceOp op = gen.next(*rep_a);
    since.push_back(op);
    const OpOutcome oa = apply(a, op, buf_a->data());
    const OpOutcome ob = apply(b, op, buf_b->data());
    auto za = a.report_zones(0, UINT32_MAX);
    auto zb = b.report_zones(0, UINT32_MAX);
    ++res.ops_run;
    if (!za || !zb) {
      res.setup_error = "report_zones failed after op " + std::to_string(i) + ": " +
                        (za ? zb.status() : za.status()).to_string();
      return res;
    }
    if (!oa.status.is_ok()) ++res.failures_expected;
    std::string expected, got;
    const bool ok_a = oa.status.is_ok(), ok_b = ob.status.is_ok();
    const bool status_differs =
        ok_a != ok_b || (res.mode == CompareMode::kExact && oa.status.code() != ob.status.code());
    const bool landed_differs = ok_a && ok_b && oa.landed != ob.landed;
    const bool data_differs = ok_a && ok_b && oa.data_hash != ob.data_hash;
    std::vector<uint32_t> zdiff;
    for (size_t z = 0; z < za->size() && z < zb->size(); ++z) {
      const Zone& x = (*za)[z];
      const Zone& y = (*zb)[z];
      if (x.state != y.state || x.write_pointer - x.start != y.write_pointer - y.start) zdiff.push_back(uint32_t(z));
    }
    if (status_differs || landed_differs || data_differs || !zdiff.empty()) {
      Fix fix;
      const char* rule = documented_rule(op, oa, ob, *za, *zb, zdiff, qa, qb, &fix);
      if (rule) {
        ++res.documented_differences;
        ++res.documented_by_rule[rule];
        if (fix.zone != UINT32_MAX) {
          ZonedDevice& d = fix.on_a ? a : b;
          Status fs = fix.action == ZoneState::kEmpty ? d.reset(fix.zone) : d.close(fix.zone);
          if (!fs) {
            res.setup_error = std::string("re-aligning zone after documented difference '") + rule +
                              "' failed: " + fs.to_string();
            return res;
          }
          za = a.report_zones(0, UINT32_MAX);
          if (!za) {
            res.setup_error = "report_zones on A: " + za.status().to_string();
            return res;
          }
        }
      } else if (status_differs || landed_differs || data_differs) {
        expected = describe_outcome(oa, op);
        got = describe_outcome(ob, op);
      } else {
        const Zone& x = (*za)[zdiff[0]];
        const Zone& y = (*zb)[zdiff[0]];
        expected = "after the op: " + describe_zone(x) + " (command: " + describe_outcome(oa, op) + ")";
        got = "after the op: " + describe_zone(y) + " (command: " + describe_outcome(ob, op) + ")";
      }
    } else if (!ok_a && oa.status.code() != ob.status.code()) {
      // kOutcome: both failed, the block layer reports a coarser class.
      ++res.documented_differences;
      ++res.documented_by_rule["error class through the block layer"];
    }
    if (!expected.empty()) {
      ++res.mismatches;
      if (res.recorded.size() < opts.max_recorded) res.recorded.push_back(Mismatch{i, since, expected, got});
      since.clear();
      if (!resync()) return res;
      za = a.report_zones(0, UINT32_MAX);
      if (!za) {
        res.setup_error = "report_zones on A: " + za.status().to_string();
        return res;
      }
    }
    rep_a = std::move(za);
    if (opts.progress && opts.progress_every && (i + 1) % opts.progress_every == 0) opts.progress(i + 1, opts.ops);
  }
  return res;
}

}  // namespace znslab::zns::trace
