// Workload "segment-scale" (issue 5; seed 001 "Phase 4: Performance
// Validation"): inserts `records` records into `structures` append-only
// structures whose storage comes from the windowed-mmap segment allocator
// (src/segment) over data files in a scratch folder, then times pins and
// re-reads a sample. Its keys and their checks; the operation stream is
// SegmentScaleGenerator (workloads/segment_scale_gen.h), executed and
// measured by the segment runner (harness/segment_runner.h). Summary:
// docs/segment.md.
#include <string>
#include <vector>

#include "harness/config.h"
#include "harness/registry.h"
#include "harness/segment_runner.h"
#include "workloads/segment_scale_gen.h"

namespace znslab::harness {
namespace {

using nlohmann::json;

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
    const json& rs = c["record_size"];
    const bool fixed = rs["distribution"] == "fixed";
    workloads::SegmentScaleParams p;
    p.records = cfg_u64(c, "records");
    p.structures = uint32_t(cfg_u64(c, "structures"));
    p.min_size = fixed ? rs["size"].get<uint32_t>() : rs["min"].get<uint32_t>();
    p.max_size = fixed ? p.min_size : rs["max"].get<uint32_t>();
    p.pin_batches = cfg_u64(c, "pin_batches");
    p.verify_records = cfg_u64(c, "verify_records");
    p.seed = cfg_u64(c, "seed");
    SegmentRunOptions o;
    o.experiment = "segment-scale";
    o.records = p.records;
    o.structures = p.structures;
    o.min_size = p.min_size;
    o.max_size = p.max_size;
    o.classes = c["classes"].get<std::vector<uint64_t>>();
    o.window_bytes = cfg_u64(c, "window_bytes");
    o.max_open_files = cfg_u64(c, "max_open_files");
    o.max_mappings = cfg_u64(c, "max_mappings");
    o.sample_every = cfg_u64(c, "sample_every");
    o.dir = cfg_str(c, "dir");
    o.keep_files = cfg_bool(c, "keep_files");
    o.payload_byte = &workloads::SegmentScaleGenerator::payload_byte;
    const workloads::SegmentScaleGenerator gen(p);
    run_segment_scale(ctx, SegmentPlanOf<workloads::SegmentScaleGenerator>(gen), o);
  }
};

Registrar reg{WorkloadInfo{"segment-scale", "records into windowed-mmap segments: fds, VMAs, pin cost",
                           [] { return std::make_unique<SegmentScale>(); }, /*uses_allocator=*/false}};

}  // namespace
}  // namespace znslab::harness
