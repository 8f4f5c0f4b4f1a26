// Workload "overflow-spill" (issue 10; seed 003): writes, reads and frees
// variable-size blobs in an OverflowRegion (src/overflow) while 1-3 reader
// threads, each with its own read-only mapping (OverflowReader), read
// blobs the owner hands them and check every byte. Its keys and their
// checks; the operation stream is OverflowSpillGenerator
// (workloads/overflow_spill_gen.h: phases fill, free, refill; sizes,
// lifetimes, owner reads, which blob a reader gets), executed and measured
// by the phase runner (harness/phase_runner.h, run_overflow_phases: the
// region, blob contents and checks, reader threads, timing, samples,
// summary). The default fills 96 MiB into a 64 MiB region: it grows at
// least once while the readers remap. Summary and samples:
// docs/overflow.md "Workload overflow-spill".
#include <string>
#include <vector>

#include "harness/config.h"
#include "harness/phase_runner.h"
#include "harness/registry.h"
#include "workloads/overflow_spill_gen.h"

namespace znslab::harness {
namespace {

using nlohmann::json;
using namespace znslab::overflow;

class OverflowSpill : public Workload {
 public:
  json defaults() const override {
    return json{{"workload", "overflow-spill"},
                {"initial_bytes", 64ll << 20},
                {"max_bytes", 1ll << 30},
                {"fill_bytes", 96ll << 20},
                {"blob_size", {{"min", 64}, {"max", 16384}}},
                {"fraction_4k", 0.25},
                {"short_lived_fraction", 0.2},
                {"short_lifetime", 256},
                {"free_fraction", 0.5},
                {"readers", 2},
                {"read_every", 4},
                {"reader_post_every", 16},
                {"warmup_writes", 2000},
                {"persistent", false},
                {"populate", true},
                {"advice", "normal"},
                {"dir", ""},
                {"keep_files", false},
                {"seed", 1}};
  }

  void validate(const json& c) const override {
    check_int_range(c, "initial_bytes", 1 << 16, 1ll << 40);
    check_int_range(c, "max_bytes", 1 << 16, 1ll << 40);
    if (cfg_u64(c, "initial_bytes") % 4096 || cfg_u64(c, "max_bytes") % 4096)
      throw_key_error("initial_bytes", "initial_bytes and max_bytes must be multiples of 4096");
    if (cfg_u64(c, "initial_bytes") > cfg_u64(c, "max_bytes")) throw_key_error("max_bytes", "must be >= initial_bytes");
    check_int_range(c, "fill_bytes", 1, 1ll << 40);
    const json& bs = c.at("blob_size");
    if (!bs.is_object() || !bs.contains("min") || !bs.contains("max") || !bs["min"].is_number_integer() ||
        !bs["max"].is_number_integer() || bs["min"].get<int64_t>() < 1 || bs["max"] < bs["min"] ||
        bs["max"].get<int64_t>() > (1 << 26))
      throw_key_error("blob_size", "expected {\"min\": N, \"max\": N} with 1 <= min <= max <= 64 MiB (bytes)");
    check_number_range(c, "fraction_4k", 0.0, 1.0);
    check_number_range(c, "short_lived_fraction", 0.0, 0.9);
    check_int_range(c, "short_lifetime", 1, 1 << 24);
    check_number_range(c, "free_fraction", 0.0, 1.0);
    check_int_range(c, "readers", 0, 3);
    check_int_range(c, "read_every", 1, 1 << 20);
    check_int_range(c, "reader_post_every", 1, 1 << 20);
    check_int_range(c, "warmup_writes", 0, 1ll << 40);
    check_one_of(c, "advice", {"normal", "random", "sequential"});
  }

  std::vector<KeyDoc> key_docs() const override {
    return {{"initial_bytes", "integer", "bytes", "file size of the new region (multiple of 4096)"},
            {"max_bytes", "integer", "bytes", "growth limit (multiple of 4096)"},
            {"fill_bytes", "integer", "bytes", "live bytes at the end of the fill"},
            {"blob_size", "object", "bytes", "{min, max}: blob sizes, uniform"},
            {"fraction_4k", "number", "ratio", "share of writes of exactly 4096 B"},
            {"short_lived_fraction", "number", "ratio", "share of fill blobs freed short_lifetime writes later"},
            {"short_lifetime", "integer", "count", "writes a short-lived blob lives"},
            {"free_fraction", "number", "ratio", "share of the live blobs freed after the fill"},
            {"readers", "integer", "count", "reader threads (0-3), each with its own mapping"},
            {"read_every", "integer", "count", "writes per owner read"},
            {"reader_post_every", "integer", "count", "writes (frees) between hand-offs to idle readers"},
            {"warmup_writes", "integer", "count", "writes before write_4k_ns records"},
            {"persistent", "boolean", "", "keep a slot index in the file"},
            {"populate", "boolean", "", "fault the mapping in at open and after growth"},
            {"advice", "string", "", "normal, random or sequential (madvise)"},
            {"dir", "string", "", "folder of the region file (\"\" = a new temp folder)"},
            {"keep_files", "boolean", "", "keep the temp folder"},
            {"seed", "integer", "", "seed of sizes, lifetimes, frees and reads"}};
  }

  void run(RunContext& ctx) override {
    const json& c = ctx.config;
    workloads::OverflowSpillParams p;
    p.fill_bytes = cfg_u64(c, "fill_bytes");
    p.min_size = uint32_t(c["blob_size"]["min"].get<uint64_t>());
    p.max_size = uint32_t(c["blob_size"]["max"].get<uint64_t>());
    p.fraction_4k = cfg_double(c, "fraction_4k");
    p.short_lived_fraction = cfg_double(c, "short_lived_fraction");
    p.short_lifetime = uint32_t(cfg_u64(c, "short_lifetime"));
    p.free_fraction = cfg_double(c, "free_fraction");
    p.read_every = cfg_u64(c, "read_every");
    p.reader_post_every = cfg_u64(c, "reader_post_every");
    p.seed = cfg_u64(c, "seed");

    OverflowRunOptions o;
    o.experiment = "overflow-spill";
    OverflowOptions& r = o.region;
    r.initial_bytes = cfg_u64(c, "initial_bytes");
    r.max_bytes = cfg_u64(c, "max_bytes");
    r.persistent = cfg_bool(c, "persistent");
    r.populate = cfg_bool(c, "populate");
    o.advice = cfg_str(c, "advice");
    r.advice = o.advice == "random"       ? pages::Advice::kRandom
               : o.advice == "sequential" ? pages::Advice::kSequential
                                          : pages::Advice::kNormal;
    o.readers = int(cfg_int(c, "readers"));
    o.warmup_writes = cfg_u64(c, "warmup_writes");
    o.max_blob_bytes = p.max_size;
    o.dir = cfg_str(c, "dir");
    o.keep_files = cfg_bool(c, "keep_files");
    const workloads::OverflowSpillGenerator gen(p);
    run_overflow_phases(ctx, OverflowPlanOf<workloads::OverflowSpillGenerator>(gen), o);
  }
};

Registrar reg{WorkloadInfo{"overflow-spill", "blobs in an mmap overflow region: best fit, growth, readers remapping",
                           [] { return std::make_unique<OverflowSpill>(); }}};

}  // namespace
}  // namespace znslab::harness
