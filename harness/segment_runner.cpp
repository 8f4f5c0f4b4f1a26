// The segment runner (harness/segment_runner.h).
#include "harness/segment_runner.h"

#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "harness/counters.h"
#include "harness/result.h"
#include "harness/sampler.h"
#include "harness/timer.h"
#include "src/segment/file_registry.h"
#include "src/segment/mapping_manager.h"
#include "src/segment/segment_allocator.h"

namespace znslab::harness {

using nlohmann::json;
using namespace znslab::segment;

namespace {

size_t count_fds_under(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    std::error_code ec2;
    auto t = std::filesystem::read_symlink(e.path(), ec2);
    if (!ec2 && t.string().rfind(dir, 0) == 0) ++n;
  }
  return n;
}

size_t count_vmas_under(const std::string& dir) {
  std::ifstream in("/proc/self/maps");
  std::string line;
  size_t n = 0;
  while (std::getline(in, line))
    if (line.find(dir) != std::string::npos) ++n;
  return n;
}

}  // namespace

class SegmentExecState {
 public:
  struct Loc {
    uint32_t seg;
    uint32_t off;
  };
  struct Cur {
    Allocation a;
    uint32_t seg = UINT32_MAX;
    uint32_t used = 0;
  };
  const SegmentRunOptions* opt = nullptr;
  RunContext* ctx = nullptr;
  ResultDoc* doc = nullptr;
  SegmentAllocator* alloc = nullptr;
  MappingManager* mm = nullptr;
  Sampler* sampler = nullptr;
  std::string dir;
  std::vector<Loc> index;
  std::vector<SegmentRef> segs;
  std::vector<Cur> cur;
  uint64_t data_bytes = 0, inserted = 0, t0 = 0, t_insert = 0;
  size_t max_fds = 0, max_vmas = 0;
  LatencyHistogram alloc_lat, pin_lat;
  uint64_t pin_errors = 0, verify_errors = 0, verified = 0;

  void observe(uint64_t done, double elapsed_s) {
    size_t fds = count_fds_under(dir), vmas = count_vmas_under(dir);
    max_fds = std::max(max_fds, fds);
    max_vmas = std::max(max_vmas, vmas);
    json s = sampler->sample();
    s["records"] = done;
    s["data_bytes"] = data_bytes;
    s["open_fds"] = fds;
    s["data_mappings"] = vmas;
    s["mappings"] = mm->stats().mappings;
    doc->add_sample(std::move(s));
    if (ctx->progress)
      std::fprintf(stderr, "%s: %" PRIu64 "/%" PRIu64 " records, %.1f s, fds %zu, data VMAs %zu, rss %.1f MiB\n",
                   opt->experiment.c_str(), done, opt->records, elapsed_s, fds, vmas,
                   double(sampler->rss_bytes()) / 1048576.0);
  }
};

void SegmentExec::insert(uint32_t s, uint32_t idx, uint32_t len) {
  SegmentExecState& st = s_;
  SegmentExecState::Cur& k = st.cur[s];
  const uint32_t need = len + 8;
  if (k.seg == UINT32_MAX || k.used + need > k.a.ref.length) {
    uint64_t ta = timer_start();
    auto a = st.alloc->allocate(st.opt->classes[s % st.opt->classes.size()]);
    st.alloc_lat.record(ticks_to_ns(timer_stop() - ta));
    if (!a) throw RunError(st.opt->experiment + ": allocate at record " + std::to_string(idx) + ": " + a.status().to_string());
    k.a = std::move(*a);  // drops the previous segment's pin
    k.seg = uint32_t(st.segs.size());
    k.used = 0;
    st.segs.push_back(k.a.ref);
  }
  uint8_t* p = k.a.ptr() + k.used;
  std::memcpy(p, &len, 4);
  std::memcpy(p + 4, &idx, 4);
  for (uint32_t b = 0; b < len; ++b) p[8 + b] = st.opt->payload_byte(idx, b);
  st.index.push_back(SegmentExecState::Loc{k.seg, k.used});
  k.used += need;
  st.data_bytes += len;
  ++st.inserted;
  if (st.inserted % st.opt->sample_every == 0) st.observe(st.inserted, double(monotonic_ns() - st.t0) / 1e9);
}

void SegmentExec::inserts_done() {
  SegmentExecState& st = s_;
  st.t_insert = monotonic_ns() - st.t0;
  st.observe(st.inserted, double(st.t_insert) / 1e9);
}

void SegmentExec::pin_batch(uint64_t r) {
  SegmentExecState& st = s_;
  const SegmentRef& ref = st.segs[r % st.segs.size()];
  uint64_t t = timer_start();
  for (int j = 0; j < 64; ++j) {
    auto pr = st.alloc->pin(ref);
    if (!pr) {
      ++st.pin_errors;
      continue;
    }
    asm volatile("" : : "r"(pr->data()) : "memory");
  }
  uint64_t ns = ticks_to_ns(timer_stop() - t);
  st.pin_lat.record((ns + 32) / 64);
}

void SegmentExec::verify(uint32_t idx) {
  SegmentExecState& st = s_;
  ++st.verified;
  const SegmentExecState::Loc& l = st.index[idx];
  auto pr = st.alloc->pin(st.segs[l.seg]);
  if (!pr) {
    ++st.verify_errors;
    return;
  }
  const uint8_t* p = pr->data() + l.off;
  uint32_t len, got;
  std::memcpy(&len, p, 4);
  std::memcpy(&got, p + 4, 4);
  bool ok = got == idx && len >= st.opt->min_size && len <= st.opt->max_size;
  for (uint32_t b = 0; ok && b < len; ++b) ok = p[8 + b] == st.opt->payload_byte(idx, b);
  if (!ok) ++st.verify_errors;
}

void run_segment_scale(RunContext& ctx, const SegmentPlan& plan, const SegmentRunOptions& opt) {
  const std::string& X = opt.experiment;
  std::string dir = opt.dir;
  bool made_dir = false;
  if (dir.empty()) {
    const char* t = std::getenv("TMPDIR");
    std::string tmpl = std::string(t && *t ? t : "/tmp") + "/znslab-" + X + "-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data())) throw RunError(X + ": mkdtemp " + tmpl + ": " + std::strerror(errno));
    dir = buf.data();
    made_dir = true;
  } else {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw RunError(X + ": cannot create dir " + dir + ": " + ec.message());
  }
  struct Cleanup {
    std::string dir;
    bool on;
    ~Cleanup() {
      if (on) {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
      }
    }
  } cleanup{dir, made_dir && !opt.keep_files};

  Sampler sampler;
  FileRegistry files(size_t(opt.max_open_files));
  MappingManager mm(files, MappingOptions{opt.window_bytes, size_t(opt.max_mappings)});
  SegmentAllocatorOptions so;
  so.dir = dir;
  so.class_bytes = opt.classes;
  auto alloc_r = SegmentAllocator::create(files, mm, so);
  if (!alloc_r) throw RunError(X + ": creating the segment allocator in " + dir + ": " + alloc_r.status().to_string());
  SegmentAllocator& alloc = **alloc_r;

  ResultDoc& doc = *ctx.result;
  doc.set_allocator({{"name", "segment-windowed"},
                     {"version", 1},
                     {"options",
                      {{"window_bytes", mm.window_bytes()},
                       {"max_mappings", mm.max_mappings()},
                       {"max_open_files", files.limit()},
                       {"classes", so.class_bytes},
                       {"dir", dir}}}});
  doc.doc()["timer"] = timer_json();

  SegmentExecState st;
  st.opt = &opt;
  st.ctx = &ctx;
  st.doc = &doc;
  st.alloc = &alloc;
  st.mm = &mm;
  st.sampler = &sampler;
  st.dir = dir;
  st.index.reserve(opt.records);
  st.cur.resize(opt.structures);
  SegmentExec ex(st);
  st.t0 = monotonic_ns();
  plan.run(ex);

  const uint64_t records = opt.records, t_insert = st.t_insert;
  auto as = alloc.stats();
  auto ms = mm.stats();
  auto fs = files.stats();
  uint64_t meta = as.metadata_bytes + ms.window_objects * sizeof(Window) + sizeof(mm) + sizeof(files) +
                  fs.limit * 0 + 64 * so.class_bytes.size();
  json last = sampler.sample();
  json& sum = doc.summary();
  sum["records"] = records;
  sum["data_bytes"] = st.data_bytes;
  sum["segments"] = st.segs.size();
  sum["max_open_fds"] = st.max_fds;
  sum["peak_open_fds"] = fs.peak_open_fds;
  sum["max_data_mappings"] = st.max_vmas;
  sum["peak_mappings"] = ms.peak_mappings;
  sum["pin_unpin_ns"] = st.pin_lat.to_json();
  sum["pin_errors"] = st.pin_errors;
  sum["ops_per_sec"] = t_insert ? double(records) * 1e9 / double(t_insert) : 0.0;
  sum["insert_seconds"] = double(t_insert) / 1e9;
  sum["rss_bytes"] = last["rss_bytes"];
  sum["anon_rss_bytes"] = last["anon_rss_bytes"];
  sum["metadata_bytes"] = meta;
  sum["index_bytes"] = st.index.capacity() * sizeof(SegmentExecState::Loc) + st.segs.capacity() * sizeof(SegmentRef);
  sum["memory_overhead_fraction"] = st.data_bytes ? double(meta) / double(st.data_bytes) : 0.0;
  sum["verify_records"] = st.verified;
  sum["verify_errors"] = st.verify_errors;
  // Every FileRegistryStats, MappingStats and SegmentAllocatorStats key
  // (declared once in src/segment; harness/counters.h).
  json& counters = sum["counters"] = json::object();
  counters_to_json(fs, counters);
  counters_to_json(ms, counters);
  counters_to_json(as, counters);
  doc.set_latency("pin", st.pin_lat);
  doc.set_latency("alloc", st.alloc_lat);
  if (ctx.progress)
    std::fprintf(stderr,
                 "%s: %" PRIu64 " records (%.2f GiB) in %.1f s = %.0f ops/s; max fds %zu, max data VMAs %zu; "
                 "pin+unpin p50 %" PRIu64 " ns p99 %" PRIu64 " ns; metadata %.4f%% of data; verify errors %" PRIu64 "\n",
                 X.c_str(), records, double(st.data_bytes) / (1u << 30), double(t_insert) / 1e9,
                 sum["ops_per_sec"].get<double>(), st.max_fds, st.max_vmas, st.pin_lat.percentile(0.5),
                 st.pin_lat.percentile(0.99), 100.0 * sum["memory_overhead_fraction"].get<double>(), st.verify_errors);
  // Drop every pin before the manager goes away.
  for (auto& k : st.cur) k.a.pin.reset();
  if (st.verify_errors || st.pin_errors)
    throw RunError(X + ": " + std::to_string(st.verify_errors) + " records read back wrong, " +
                   std::to_string(st.pin_errors) + " pins failed");
}

}  // namespace znslab::harness
