// Workload "pager-churn" (issue 10; seed 004): allocates and frees pages and
// sub-pages of a file-backed Pager (src/pages/pager.h, subpage.h) with a
// lifetime mix, grows the file to `pages` allocated pages, commits every
// `commit_every` operations, then times alloc+free pairs and frees
// `final_free_fraction` of what is live. Its keys and their checks; the
// operation stream is PagerChurnGenerator (workloads/pager_churn_gen.h:
// phases fill, churn, timing, drain), executed and measured by the phase
// runner (harness/phase_runner.h, run_pager_phases: the pager, commits,
// timing batches of 64 pairs, samples, summary). Only 1 page in
// `touch_every` is written, so a 2^24-page file stays sparse. Summary and
// samples: docs/pages.md "Workload pager-churn".
#include <algorithm>
#include <string>
#include <vector>

#include "harness/config.h"
#include "harness/phase_runner.h"
#include "harness/registry.h"
#include "src/pages/subpage.h"
#include "workloads/pager_churn_gen.h"

namespace znslab::harness {
namespace {

using nlohmann::json;
using namespace znslab::pages;

class PagerChurn : public Workload {
 public:
  json defaults() const override {
    return json{{"workload", "pager-churn"},
                {"pages", 1048576},
                {"page_size", 4096},
                {"sub_page_size", 512},
                {"sub_pages", 262144},
                {"commit_every", 100000},
                {"sync", "commit"},
                {"initial_pages", 4096},
                {"grow_pages", 0},
                {"short_lived_fraction", 0.2},
                {"short_lifetime", 64},
                {"churn_ops", 1000000},
                {"timing_batches", 100000},
                {"final_free_fraction", 0.5},
                {"touch_every", 1024},
                {"sample_every", 250000},
                {"dir", ""},
                {"keep_files", false},
                {"seed", 1}};
  }

  void validate(const json& c) const override {
    check_int_range(c, "pages", 1, 1ll << 30);
    check_int_range(c, "page_size", 1024, 1 << 24);
    const int64_t ps = cfg_int(c, "page_size"), sps = cfg_int(c, "sub_page_size");
    if (ps & (ps - 1)) throw_key_error("page_size", "must be a power of two >= 1024");
    check_int_range(c, "sub_page_size", 1, ps / 2);
    if ((sps & (sps - 1)) || ps / sps > 64) throw_key_error("sub_page_size", "must be a power of two with page_size/sub_page_size in [2, 64]");
    check_int_range(c, "sub_pages", 0, 1ll << 32);
    check_int_range(c, "commit_every", 1, 1ll << 40);
    check_one_of(c, "sync", {"none", "commit", "each"});
    check_int_range(c, "initial_pages", 1, 1ll << 31);
    check_int_range(c, "grow_pages", 0, 1ll << 31);
    check_number_range(c, "short_lived_fraction", 0.0, 0.9);
    check_int_range(c, "short_lifetime", 1, 1 << 20);
    check_int_range(c, "churn_ops", 0, 1ll << 40);
    check_int_range(c, "timing_batches", 1, 1ll << 32);
    check_number_range(c, "final_free_fraction", 0.0, 1.0);
    check_int_range(c, "touch_every", 1, 1 << 30);
    check_int_range(c, "sample_every", 1, 1ll << 40);
    const uint64_t parents = (cfg_u64(c, "sub_pages") + uint64_t(ps / sps) - 1) / uint64_t(ps / sps);
    if (cfg_u64(c, "pages") + 2 * parents + 1024 > 0xffffffffull) throw_key_error("pages", "pages plus sub-page parents must stay below 2^32");
  }

  std::vector<KeyDoc> key_docs() const override {
    return {{"pages", "integer", "pages", "long-lived pages at the peak"},
            {"page_size", "integer", "bytes", "page size (power of two >= 1024)"},
            {"sub_page_size", "integer", "bytes", "sub-page size (power of two; 2..64 per page)"},
            {"sub_pages", "integer", "count", "long-lived sub-pages at the peak"},
            {"commit_every", "integer", "count", "fill/churn operations between commits"},
            {"sync", "string", "", "none, commit or each (src/pages/pager.h SyncMode)"},
            {"initial_pages", "integer", "pages", "data pages of the new file"},
            {"grow_pages", "integer", "pages", "growth step (0 = double)"},
            {"short_lived_fraction", "number", "ratio", "share of allocations freed again short_lifetime ops later"},
            {"short_lifetime", "integer", "count", "ops a short-lived allocation lives"},
            {"churn_ops", "integer", "count", "random free+alloc pairs at the peak"},
            {"timing_batches", "integer", "count", "timed batches of 64 alloc+free pairs, of pages and of sub-pages"},
            {"final_free_fraction", "number", "ratio", "share of the live pages and sub-pages freed at the end"},
            {"touch_every", "integer", "count", "write 8 bytes into 1 allocation in N (the file stays sparse)"},
            {"sample_every", "integer", "count", "ops between samples"},
            {"dir", "string", "", "folder of the pager file (\"\" = a new temp folder)"},
            {"keep_files", "boolean", "", "keep the temp folder"},
            {"seed", "integer", "", "seed of kinds, lifetimes and victims"}};
  }

  void run(RunContext& ctx) override {
    const json& c = ctx.config;
    workloads::PagerChurnParams p;
    p.pages = cfg_u64(c, "pages");
    p.sub_pages = cfg_u64(c, "sub_pages");
    p.short_lived_fraction = cfg_double(c, "short_lived_fraction");
    p.short_lifetime = uint32_t(cfg_u64(c, "short_lifetime"));
    p.touch_every = uint32_t(cfg_u64(c, "touch_every"));
    p.churn_ops = cfg_u64(c, "churn_ops");
    p.timing_batches = cfg_u64(c, "timing_batches");
    p.final_free_fraction = cfg_double(c, "final_free_fraction");
    p.seed = cfg_u64(c, "seed");

    PagerRunOptions o;
    o.experiment = "pager-churn";
    const uint32_t ps = uint32_t(cfg_u64(c, "page_size"));
    o.sub_page_size = uint32_t(cfg_u64(c, "sub_page_size"));
    const uint64_t per = ps / o.sub_page_size, parents_max = (p.sub_pages + per - 1) / per;
    PagerOptions& po = o.pager;
    po.page_size = ps;
    // Room for the peak, the parents (fragmented up to 2x) and the short-lived queue.
    po.max_pages = uint32_t(p.pages + 2 * parents_max + uint64_t(p.short_lifetime) * 2 + 1024);
    po.initial_pages = uint32_t(std::min<uint64_t>(cfg_u64(c, "initial_pages"), po.max_pages));
    po.grow_pages = uint32_t(cfg_u64(c, "grow_pages"));
    po.aux_bytes = SubPageAllocator::aux_bytes_for(2 * parents_max + p.short_lifetime + 64);
    if (!parse_sync_mode(cfg_str(c, "sync"), &po.sync)) throw ConfigError("pager-churn: bad sync");
    o.commit_every = cfg_u64(c, "commit_every");
    o.sample_every = cfg_u64(c, "sample_every");
    o.dir = cfg_str(c, "dir");
    o.keep_files = cfg_bool(c, "keep_files");
    const workloads::PagerChurnGenerator gen(p);
    run_pager_phases(ctx, PagerPlanOf<workloads::PagerChurnGenerator>(gen), o);
  }
};

Registrar reg{WorkloadInfo{"pager-churn", "pages and sub-pages of a file-backed pager: alloc/free, growth, commits",
                           [] { return std::make_unique<PagerChurn>(); }}};

}  // namespace
}  // namespace znslab::harness
