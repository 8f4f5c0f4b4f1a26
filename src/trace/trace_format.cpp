// znstrace v1 encoding and the validating reader (format: trace_format.h,
// docs/trace.md).
#include "src/trace/trace_format.h"

#include <zstd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

namespace znslab::trace {
namespace {

void put32(std::string& s, uint32_t v) { s.append(reinterpret_cast<const char*>(&v), 4); }
void put64(std::string& s, uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }
void put_str(std::string& s, const std::string& v) {
  put32(s, uint32_t(v.size()));
  s += v;
}

// Bounded little-endian cursor over the header payload.
struct Cursor {
  const std::string& b;
  size_t pos, end;
  bool get32(uint32_t& v) {
    if (end - pos < 4) return false;
    std::memcpy(&v, b.data() + pos, 4);
    pos += 4;
    return true;
  }
  bool get64(uint64_t& v) {
    if (end - pos < 8) return false;
    std::memcpy(&v, b.data() + pos, 8);
    pos += 8;
    return true;
  }
  bool get_str(std::string& v) {
    uint32_t n;
    if (!get32(n) || end - pos < n) return false;
    v.assign(b.data() + pos, n);
    pos += n;
    return true;
  }
};

bool fail(TraceError& err, uint64_t off, std::string msg) {
  err.offset = off;
  err.message = std::move(msg);
  return false;
}

constexpr size_t kFrameHeaderBytes = 20;
constexpr uint32_t kMaxHeaderBytes = 1u << 24;

}  // namespace

const char* op_name(uint8_t op) noexcept {
  switch (op) {
    case 1: return "malloc";
    case 2: return "calloc";
    case 3: return "realloc";
    case 4: return "free";
    case 5: return "posix_memalign";
    case 6: return "aligned_alloc";
    case 7: return "memalign";
    case 8: return "valloc";
    case 9: return "usable_size";
    default: return "?";
  }
}

std::string TraceError::to_string(const std::string& path) const {
  return path + ": offset " + std::to_string(offset) + ": " + message;
}

std::string encode_header(const TraceHeader& h) {
  std::string p;
  put32(p, h.pid);
  put32(p, h.ppid);
  put64(p, h.start_unix_ns);
  put64(p, h.start_mono_ns);
  put_str(p, h.program);
  put32(p, uint32_t(h.args.size()));
  for (const auto& a : h.args) put_str(p, a);
  std::string out(kMagic, 8);
  put32(out, kVersion);
  put32(out, uint32_t(p.size()));
  return out + p;
}

std::string encode_frame(const TraceEvent* ev, uint32_t n, int level) {
  const size_t raw = size_t(n) * sizeof(TraceEvent);
  std::string out;
  out.resize(kFrameHeaderBytes + ZSTD_compressBound(raw));
  ZSTD_CCtx* cc = ZSTD_createCCtx();
  if (!cc) return "";
  ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
  size_t z = ZSTD_compress2(cc, out.data() + kFrameHeaderBytes, out.size() - kFrameHeaderBytes, ev, raw);
  ZSTD_freeCCtx(cc);
  if (ZSTD_isError(z)) return "";
  const uint32_t hdr[5] = {kFrameMagic, kEventFrame, n, uint32_t(raw), uint32_t(z)};
  std::memcpy(out.data(), hdr, sizeof hdr);
  out.resize(kFrameHeaderBytes + z);
  return out;
}

std::string encode_end(uint64_t total_events) {
  std::string out;
  put32(out, kFrameMagic);
  put32(out, kEndFrame);
  put32(out, uint32_t(total_events));  // low 32 bits
  put32(out, uint32_t(total_events >> 32));
  put32(out, 0);
  return out;
}

bool read_trace(const std::string& path, Trace& out, TraceError& err, bool check_objects) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return fail(err, 0, std::string("cannot open: ") + std::strerror(errno));
  std::ostringstream ss;
  ss << f.rdbuf();
  return parse_trace(ss.str(), out, err, check_objects);
}

bool parse_trace(const std::string& b, Trace& out, TraceError& err, bool check_objects) {
  out = Trace{};
  if (b.size() < 16) return fail(err, b.size(), "truncated header (" + std::to_string(b.size()) + " bytes)");
  if (std::memcmp(b.data(), kMagic, 8) != 0) return fail(err, 0, "not a znstrace file (bad magic)");
  uint32_t ver, plen;
  std::memcpy(&ver, b.data() + 8, 4);
  std::memcpy(&plen, b.data() + 12, 4);
  if (ver != kVersion) return fail(err, 8, "unsupported version " + std::to_string(ver));
  if (plen > kMaxHeaderBytes) return fail(err, 12, "header length " + std::to_string(plen) + " too large");
  if (b.size() - 16 < plen) return fail(err, b.size(), "truncated header payload");
  Cursor c{b, 16, 16 + size_t(plen)};
  TraceHeader& h = out.header;
  uint32_t nargs = 0;
  if (!c.get32(h.pid) || !c.get32(h.ppid) || !c.get64(h.start_unix_ns) || !c.get64(h.start_mono_ns) ||
      !c.get_str(h.program) || !c.get32(nargs))
    return fail(err, c.pos, "malformed header payload");
  for (uint32_t i = 0; i < nargs; ++i) {
    std::string a;
    if (!c.get_str(a)) return fail(err, c.pos, "malformed header argument " + std::to_string(i));
    h.args.push_back(std::move(a));
  }
  if (c.pos != c.end) return fail(err, c.pos, "header payload has trailing bytes");

  size_t pos = 16 + plen;
  bool ended = false;
  ZSTD_DCtx* dc = ZSTD_createDCtx();
  if (!dc) return fail(err, pos, "zstd: out of memory");
  struct Free { ZSTD_DCtx* d; ~Free() { ZSTD_freeDCtx(d); } } guard{dc};
  std::vector<uint64_t> frame_of;  // frame offset per event (for messages)
  while (pos < b.size()) {
    if (ended) return fail(err, pos, "bytes after the end frame");
    if (b.size() - pos < kFrameHeaderBytes)
      return fail(err, pos, "truncated frame header (" + std::to_string(b.size() - pos) + " of 20 bytes)");
    uint32_t fh[5];
    std::memcpy(fh, b.data() + pos, sizeof fh);
    if (fh[0] != kFrameMagic) return fail(err, pos, "bad frame magic");
    if (fh[1] == kEndFrame) {
      const uint64_t total = uint64_t(fh[2]) | (uint64_t(fh[3]) << 32);
      if (total != out.events.size())
        return fail(err, pos, "end frame counts " + std::to_string(total) + " events, file holds " +
                                  std::to_string(out.events.size()));
      ended = true;
      pos += kFrameHeaderBytes;
      continue;
    }
    if (fh[1] != kEventFrame) return fail(err, pos, "unknown frame kind " + std::to_string(fh[1]));
    const uint32_t n = fh[2], raw = fh[3], z = fh[4];
    if (n == 0 || n > kMaxFrameEvents || raw != n * sizeof(TraceEvent))
      return fail(err, pos, "malformed frame header (events " + std::to_string(n) + ", raw bytes " +
                                std::to_string(raw) + ")");
    if (b.size() - pos - kFrameHeaderBytes < z)
      return fail(err, pos, "truncated frame: " + std::to_string(z) + " compressed bytes announced, " +
                                std::to_string(b.size() - pos - kFrameHeaderBytes) + " present");
    const size_t first = out.events.size();
    out.events.resize(first + n);
    size_t got = ZSTD_decompressDCtx(dc, out.events.data() + first, raw, b.data() + pos + kFrameHeaderBytes, z);
    if (ZSTD_isError(got))
      return fail(err, pos, std::string("corrupt frame payload: zstd: ") + ZSTD_getErrorName(got));
    if (got != raw) return fail(err, pos, "frame decodes to " + std::to_string(got) + " bytes, header says " +
                                              std::to_string(raw));
    for (size_t i = first; i < first + n; ++i) {
      const TraceEvent& e = out.events[i];
      if (e.op < 1 || e.op > kOpMax || e.reserved[0] || e.reserved[1] || e.reserved[2])
        return fail(err, pos, "event seq " + std::to_string(e.seq) + ": invalid op " + std::to_string(e.op));
    }
    frame_of.resize(out.events.size(), pos);
    ++out.frames;
    pos += kFrameHeaderBytes + z;
  }
  if (!ended) return fail(err, b.size(), "truncated: no end frame (file ends after " +
                                             std::to_string(out.frames) + " frames)");
  // Order by seq, keeping each event's frame offset for messages.
  std::vector<uint32_t> idx(out.events.size());
  for (uint32_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::sort(idx.begin(), idx.end(), [&](uint32_t x, uint32_t y) { return out.events[x].seq < out.events[y].seq; });
  std::vector<TraceEvent> sorted(out.events.size());
  std::vector<uint64_t> off(out.events.size());
  for (size_t i = 0; i < idx.size(); ++i) {
    sorted[i] = out.events[idx[i]];
    off[i] = frame_of[idx[i]];
  }
  out.events.swap(sorted);
  for (size_t i = 1; i < out.events.size(); ++i)
    if (out.events[i].seq == out.events[i - 1].seq)
      return fail(err, off[i], "event seq " + std::to_string(out.events[i].seq) + " repeats");
  if (!check_objects) return true;
  // Object lifecycle: each id allocated once, used only while live.
  std::unordered_map<uint64_t, bool> live;  // id -> live
  live.reserve(out.events.size() / 2 + 1);
  for (size_t i = 0; i < out.events.size(); ++i) {
    const TraceEvent& e = out.events[i];
    auto bad = [&](const std::string& m) {
      return fail(err, off[i], "event seq " + std::to_string(e.seq) + " (" + op_name(e.op) + "): " + m);
    };
    if (e.op == uint8_t(Op::kFree) || e.op == uint8_t(Op::kUsableSize)) {
      auto it = live.find(e.obj);
      if (it == live.end() || !it->second) return bad("object " + std::to_string(e.obj) + " is not live");
      if (e.op == uint8_t(Op::kFree)) it->second = false;
      continue;
    }
    if (e.op == uint8_t(Op::kRealloc) && e.old_obj) {
      auto it = live.find(e.old_obj);
      if (it == live.end() || !it->second) return bad("old object " + std::to_string(e.old_obj) + " is not live");
      it->second = false;
    }
    if (e.obj) {
      if (!live.emplace(e.obj, true).second) return bad("object " + std::to_string(e.obj) + " allocated twice");
    }
  }
  return true;
}

}  // namespace znslab::trace
