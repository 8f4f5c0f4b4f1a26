// Workload "segment-scale" (issue 5; seed 001 "Phase 4: Performance
// Validation"): inserts `records` records into `structures` append-only
// structures whose storage comes from the windowed-mmap segment allocator
// (src/segment) over data files in a scratch folder, then re-reads a sample.
//
// Each structure appends into its current segment (one size class per
// structure: classes[s % n]); a full segment's pin is dropped (its SegmentRef
// kept, so windows may be evicted) and a new segment allocated. Records are
// [u32 length][u32 record index][payload bytes derived from the index].
//
// Summary (units in the names): records, data_bytes, segments,
// max_open_fds (data-file fds in /proc/self/fd, sampled), peak_open_fds
// (registry), max_data_mappings (VMAs of data files in /proc/self/maps,
// sampled), peak_mappings (manager), pin_unpin_ns {p50,p99,...} (one pin +
// unpin of a live segment whose window is mapped, averaged over batches of
// 64 pairs timed together), ops_per_sec (inserts), rss_bytes, anon_rss_bytes,
// metadata_bytes (allocator + window + registry bookkeeping),
// memory_overhead_fraction (metadata_bytes / data_bytes), verify_errors, and
// the segment counters (fds, mappings, pins, evictions, bytes).
#include <dirent.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "harness/config.h"
#include "harness/counters.h"
#include "harness/registry.h"
#include "harness/result.h"
#include "harness/sampler.h"
#include "harness/timer.h"
#include "src/segment/file_registry.h"
#include "src/segment/mapping_manager.h"
#include "src/segment/segment_allocator.h"

namespace znslab::harness {
namespace {

using nlohmann::json;
using namespace znslab::segment;

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

inline uint8_t payload_byte(uint32_t idx, uint32_t i) { return uint8_t((idx * 2654435761u + i * 40503u) >> 13); }

class SegmentScale : public Workload {
 public:
  json defaults() const override {
    return json{{"workload", "segment-scale"},
                {"records", 1000000},
                {"record_size", {{"distribution", "uniform"}, {"min", 64}, {"max", 512}}},
                {"structures", 16},
                {"classes", json::array({65536, 262144, 1048576, 4194304, 16777216})},
                {"window_bytes", 1073741824},
                {"max_open_files", 0},
                {"max_mappings", 0},
                {"pin_batches", 200000},
                {"verify_records", 100000},
                {"sample_every", 250000},
                {"dir", ""},
                {"keep_files", false},
                {"seed", 1}};
  }

  void validate(const json& c) const override {
    check_int_range(c, "records", 1, 2000000000);
    check_int_range(c, "structures", 1, 100000);
    check_int_range(c, "window_bytes", 1 << 20, int64_t(1) << 40);
    check_int_range(c, "max_open_files", 0, 1 << 20);
    check_int_range(c, "max_mappings", 0, 1 << 20);
    check_int_range(c, "pin_batches", 0, int64_t(1) << 32);
    check_int_range(c, "verify_records", 0, int64_t(1) << 32);
    check_int_range(c, "sample_every", 1, int64_t(1) << 40);
    const json& rs = c.at("record_size");
    if (!rs.is_object() || !rs.contains("distribution") || !rs["distribution"].is_string())
      throw_key_error("record_size", "expected {\"distribution\": \"uniform\"|\"fixed\", \"min\": N, \"max\": N} or {\"distribution\": \"fixed\", \"size\": N}");
    std::string d = rs["distribution"];
    if (d == "uniform") {
      if (!rs.contains("min") || !rs.contains("max") || !rs["min"].is_number_integer() ||
          !rs["max"].is_number_integer() || rs["min"].get<int64_t>() < 1 || rs["max"] < rs["min"])
        throw_key_error("record_size", "uniform needs integer 1 <= min <= max");
    } else if (d == "fixed") {
      if (!rs.contains("size") || !rs["size"].is_number_integer() || rs["size"].get<int64_t>() < 1)
        throw_key_error("record_size", "fixed needs an integer size >= 1");
    } else {
      throw_key_error("record_size", "distribution must be \"uniform\" or \"fixed\", got \"" + d + "\"");
    }
    const json& cl = c.at("classes");
    if (!cl.is_array() || cl.empty()) throw_key_error("classes", "expected a non-empty array of segment sizes (bytes)");
    uint64_t maxrec = d == "uniform" ? rs["max"].get<uint64_t>() : rs["size"].get<uint64_t>();
    for (auto& v : cl) {
      if (!v.is_number_integer() || v.get<int64_t>() < 4096)
        throw_key_error("classes", "every class must be an integer >= 4096 bytes");
      if (v.get<uint64_t>() < maxrec + 8)
        throw_key_error("classes", "every class must hold the largest record plus its 8-byte header");
      if (c["window_bytes"].get<uint64_t>() % v.get<uint64_t>())
        throw_key_error("classes", "window_bytes must be a multiple of every class size");
    }
  }

  void run(RunContext& ctx) override {
    const json& c = ctx.config;
    const uint64_t records = cfg_u64(c, "records");
    const uint32_t structures = uint32_t(cfg_u64(c, "structures"));
    const json& rs = c["record_size"];
    const bool fixed = rs["distribution"] == "fixed";
    const uint32_t rmin = fixed ? rs["size"].get<uint32_t>() : rs["min"].get<uint32_t>();
    const uint32_t rmax = fixed ? rmin : rs["max"].get<uint32_t>();
    std::mt19937_64 rng(cfg_u64(c, "seed"));

    std::string dir = cfg_str(c, "dir");
    bool made_dir = false;
    if (dir.empty()) {
      const char* t = std::getenv("TMPDIR");
      std::string tmpl = std::string(t && *t ? t : "/tmp") + "/znslab-segment-scale-XXXXXX";
      std::vector<char> buf(tmpl.begin(), tmpl.end());
      buf.push_back('\0');
      if (!::mkdtemp(buf.data())) throw RunError("segment-scale: mkdtemp " + tmpl + ": " + std::strerror(errno));
      dir = buf.data();
      made_dir = true;
    } else {
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      if (ec) throw RunError("segment-scale: cannot create dir " + dir + ": " + ec.message());
    }
    struct Cleanup {
      std::string dir;
      bool on;
      ~Cleanup() { if (on) { std::error_code ec; std::filesystem::remove_all(dir, ec); } }
    } cleanup{dir, made_dir && !cfg_bool(c, "keep_files")};

    Sampler sampler;
    FileRegistry files(size_t(cfg_u64(c, "max_open_files")));
    MappingManager mm(files, MappingOptions{cfg_u64(c, "window_bytes"), size_t(cfg_u64(c, "max_mappings"))});
    SegmentAllocatorOptions so;
    so.dir = dir;
    so.class_bytes = c["classes"].get<std::vector<uint64_t>>();
    auto alloc_r = SegmentAllocator::create(files, mm, so);
    if (!alloc_r) throw RunError("segment-scale: creating the segment allocator in " + dir + ": " + alloc_r.status().to_string());
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

    struct Loc { uint32_t seg; uint32_t off; };
    std::vector<Loc> index;
    index.reserve(records);
    std::vector<SegmentRef> segs;
    struct Cur { Allocation a; uint32_t seg = UINT32_MAX; uint32_t used = 0; };
    std::vector<Cur> cur(structures);
    uint64_t data_bytes = 0;
    size_t max_fds = 0, max_vmas = 0;
    LatencyHistogram alloc_lat;
    const uint64_t sample_every = cfg_u64(c, "sample_every");
    std::uniform_int_distribution<uint32_t> size_dist(rmin, rmax);

    auto observe = [&](uint64_t done, double elapsed_s) {
      size_t fds = count_fds_under(dir), vmas = count_vmas_under(dir);
      max_fds = std::max(max_fds, fds);
      max_vmas = std::max(max_vmas, vmas);
      json s = sampler.sample();
      s["records"] = done;
      s["data_bytes"] = data_bytes;
      s["open_fds"] = fds;
      s["data_mappings"] = vmas;
      s["mappings"] = mm.stats().mappings;
      doc.add_sample(std::move(s));
      if (ctx.progress)
        std::fprintf(stderr, "segment-scale: %" PRIu64 "/%" PRIu64 " records, %.1f s, fds %zu, data VMAs %zu, rss %.1f MiB\n",
                     done, records, elapsed_s, fds, vmas, double(sampler.rss_bytes()) / 1048576.0);
    };

    const uint64_t t0 = monotonic_ns();
    for (uint64_t i = 0; i < records; ++i) {
      uint32_t s = uint32_t(rng() % structures);
      uint32_t len = size_dist(rng);
      Cur& k = cur[s];
      uint32_t need = len + 8;
      if (k.seg == UINT32_MAX || k.used + need > k.a.ref.length) {
        uint64_t ta = timer_start();
        auto a = alloc.allocate(so.class_bytes[s % so.class_bytes.size()]);
        alloc_lat.record(ticks_to_ns(timer_stop() - ta));
        if (!a) throw RunError("segment-scale: allocate at record " + std::to_string(i) + ": " + a.status().to_string());
        k.a = std::move(*a);  // drops the previous segment's pin
        k.seg = uint32_t(segs.size());
        k.used = 0;
        segs.push_back(k.a.ref);
      }
      uint8_t* p = k.a.ptr() + k.used;
      uint32_t idx = uint32_t(i);
      std::memcpy(p, &len, 4);
      std::memcpy(p + 4, &idx, 4);
      for (uint32_t b = 0; b < len; ++b) p[8 + b] = payload_byte(idx, b);
      index.push_back(Loc{k.seg, k.used});
      k.used += need;
      data_bytes += len;
      if ((i + 1) % sample_every == 0) observe(i + 1, double(monotonic_ns() - t0) / 1e9);
    }
    const uint64_t t_insert = monotonic_ns() - t0;
    observe(records, double(t_insert) / 1e9);

    // pin + unpin of live segments (windows mapped): batches of 64 pairs.
    LatencyHistogram pin_lat;
    const uint64_t batches = cfg_u64(c, "pin_batches");
    uint64_t pin_errors = 0;
    for (uint64_t b = 0; b < batches; ++b) {
      const SegmentRef& r = segs[rng() % segs.size()];
      uint64_t t = timer_start();
      for (int j = 0; j < 64; ++j) {
        auto pr = alloc.pin(r);
        if (!pr) { ++pin_errors; continue; }
        asm volatile("" : : "r"(pr->data()) : "memory");
      }
      uint64_t ns = ticks_to_ns(timer_stop() - t);
      pin_lat.record((ns + 32) / 64);
    }

    // Verify a sample of records through fresh pins.
    uint64_t verify_errors = 0;
    const uint64_t nverify = std::min<uint64_t>(cfg_u64(c, "verify_records"), records);
    for (uint64_t v = 0; v < nverify; ++v) {
      uint32_t idx = uint32_t(rng() % records);
      const Loc& l = index[idx];
      auto pr = alloc.pin(segs[l.seg]);
      if (!pr) { ++verify_errors; continue; }
      const uint8_t* p = pr->data() + l.off;
      uint32_t len, got;
      std::memcpy(&len, p, 4);
      std::memcpy(&got, p + 4, 4);
      bool ok = got == idx && len >= rmin && len <= rmax;
      for (uint32_t b = 0; ok && b < len; ++b) ok = p[8 + b] == payload_byte(idx, b);
      if (!ok) ++verify_errors;
    }

    auto as = alloc.stats();
    auto ms = mm.stats();
    auto fs = files.stats();
    uint64_t meta = as.metadata_bytes + ms.window_objects * sizeof(Window) + sizeof(mm) + sizeof(files) +
                    fs.limit * 0 + 64 * so.class_bytes.size();
    json last = sampler.sample();
    json& sum = doc.summary();
    sum["records"] = records;
    sum["data_bytes"] = data_bytes;
    sum["segments"] = segs.size();
    sum["max_open_fds"] = max_fds;
    sum["peak_open_fds"] = fs.peak_open_fds;
    sum["max_data_mappings"] = max_vmas;
    sum["peak_mappings"] = ms.peak_mappings;
    sum["pin_unpin_ns"] = pin_lat.to_json();
    sum["pin_errors"] = pin_errors;
    sum["ops_per_sec"] = t_insert ? double(records) * 1e9 / double(t_insert) : 0.0;
    sum["insert_seconds"] = double(t_insert) / 1e9;
    sum["rss_bytes"] = last["rss_bytes"];
    sum["anon_rss_bytes"] = last["anon_rss_bytes"];
    sum["metadata_bytes"] = meta;
    sum["index_bytes"] = index.capacity() * sizeof(Loc) + segs.capacity() * sizeof(SegmentRef);
    sum["memory_overhead_fraction"] = data_bytes ? double(meta) / double(data_bytes) : 0.0;
    sum["verify_records"] = nverify;
    sum["verify_errors"] = verify_errors;
    // Every FileRegistryStats, MappingStats and SegmentAllocatorStats key
    // (declared once in src/segment; harness/counters.h).
    json& counters = sum["counters"] = json::object();
    counters_to_json(fs, counters);
    counters_to_json(ms, counters);
    counters_to_json(as, counters);
    doc.set_latency("pin", pin_lat);
    doc.set_latency("alloc", alloc_lat);
    if (ctx.progress)
      std::fprintf(stderr,
                   "segment-scale: %" PRIu64 " records (%.2f GiB) in %.1f s = %.0f ops/s; max fds %zu, max data VMAs %zu; "
                   "pin+unpin p50 %" PRIu64 " ns p99 %" PRIu64 " ns; metadata %.4f%% of data; verify errors %" PRIu64 "\n",
                   records, double(data_bytes) / (1u << 30), double(t_insert) / 1e9, sum["ops_per_sec"].get<double>(),
                   max_fds, max_vmas, pin_lat.percentile(0.5), pin_lat.percentile(0.99),
                   100.0 * sum["memory_overhead_fraction"].get<double>(), verify_errors);
    // Drop every pin before the manager goes away.
    for (auto& k : cur) k.a.pin.reset();
    if (verify_errors || pin_errors)
      throw RunError("segment-scale: " + std::to_string(verify_errors) + " records read back wrong, " +
                     std::to_string(pin_errors) + " pins failed");
  }
};

Registrar reg{WorkloadInfo{"segment-scale", "records into windowed-mmap segments: fds, VMAs, pin cost",
                           [] { return std::make_unique<SegmentScale>(); }, /*uses_allocator=*/false}};

}  // namespace
}  // namespace znslab::harness
