// slab_forgery_bench: measures how often a forged slab handle is accepted
// (issue 9: "a forged handle, any bit of a live handle changed, is refused
// with probability >= 1 - 2^-16"). Not a test: a measurement with JSON output.
//
//   build/bench/slab_forgery_bench [--forgeries N] [--live N] [--seed S] [--key K]
//
// Fills slabs of every class in 4 epochs with --live (200000) live objects
// (whole slabs, so a forged slot or slab id almost always names another
// live object), then, for each kind of forgery below, derives --forgeries
// (10^7) forged handles from random live handles and offers each to deref()
// and to free():
//   single_bit  one uniformly random bit of the 64 flipped;
//   any_bits    XOR with a uniformly random non-zero 64-bit mask;
//   slot        the slot field replaced by another valid slot of the class
//               (issue 9 M4: the neighbour's object);
//   slab_id     the slab id replaced by another live slab id of the class;
//   slot_slab   both.
// An accepted forged free frees a live object: the bench then drops that
// object from its live set and allocates a replacement. The mask key is
// random per allocator (the default) unless --key is given.
// Output: one JSON line on stdout; a summary on stderr.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "src/slab/slab.h"

using namespace znslab;
using namespace znslab::slab;

namespace {

constexpr uint32_t kSlotsPerSlab[kNumClasses] = {56, 42, 32, 21, 16, 10, 8, 5};

struct Args {
  uint64_t forgeries = 10000000, live = 200000, seed = 1, key = 0;
};

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr,
               "slab_forgery_bench: %s\nusage: slab_forgery_bench [--forgeries N] [--live N] "
               "[--seed S] [--key K]\n",
               msg);
  std::exit(2);
}

struct Counts {
  uint64_t tried = 0, accepted = 0;
};

struct World {
  std::unique_ptr<SlabAllocator> a;
  std::vector<uint64_t> live;                          // raw handles
  std::unordered_map<uint64_t, size_t> index;          // raw -> position in live
  std::vector<std::vector<uint32_t>> slabs_of_class;   // live slab ids per class
  std::vector<uint64_t> size_of;                       // request size per position

  void add(size_t bytes, uint32_t epoch) {
    auto r = a->allocate(bytes, epoch);
    if (!r) {
      std::fprintf(stderr, "allocate failed: %s\n", r.status().to_string().c_str());
      std::exit(1);
    }
    index[r->handle.raw] = live.size();
    live.push_back(r->handle.raw);
    size_of.push_back(bytes);
  }
};

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) usage(("missing value for " + k).c_str());
    const uint64_t v = std::strtoull(argv[++i], nullptr, 0);
    if (k == "--forgeries") args.forgeries = v;
    else if (k == "--live") args.live = v;
    else if (k == "--seed") args.seed = v;
    else if (k == "--key") args.key = v;
    else usage(("unknown option " + k).c_str());
  }
  if (args.live < 1000 || args.forgeries == 0) usage("--live must be >= 1000, --forgeries > 0");

  Options o;
  o.handle_key = args.key;
  auto ar = SlabAllocator::create(o);
  if (!ar) {
    std::fprintf(stderr, "create: %s\n", ar.status().to_string().c_str());
    return 1;
  }
  World w;
  w.a = std::move(*ar);
  // Whole slabs of every class in epochs 0..3, round-robin until --live.
  const uint64_t per_bin = args.live / (4 * kNumClasses);
  for (uint32_t e = 0; e < 4; ++e)
    for (uint32_t c = 0; c < kNumClasses; ++c) {
      const uint64_t n = (per_bin + kSlotsPerSlab[c] - 1) / kSlotsPerSlab[c] * kSlotsPerSlab[c];
      for (uint64_t i = 0; i < n; ++i) w.add(kSizeClasses[c], e);
    }
  w.slabs_of_class.assign(kNumClasses, {});
  {
    std::vector<std::unordered_map<uint32_t, bool>> seen(kNumClasses);
    for (uint64_t raw : w.live) {
      const HandleFields f = handle_unpack(raw);
      if (!seen[f.size_class].count(f.slab_id)) {
        seen[f.size_class][f.slab_id] = true;
        w.slabs_of_class[f.size_class].push_back(f.slab_id);
      }
    }
  }
  std::mt19937_64 rng(args.seed);
  const char* kinds[] = {"single_bit", "any_bits", "slot", "slab_id", "slot_slab"};
  constexpr int kKinds = 5;
  auto forge = [&](int kind, uint64_t raw) -> uint64_t {
    for (;;) {
      HandleFields f = handle_unpack(raw);
      const uint32_t cap = kSlotsPerSlab[f.size_class];
      const auto& ids = w.slabs_of_class[f.size_class];
      uint64_t out = raw;
      switch (kind) {
        case 0: out = raw ^ (uint64_t(1) << (rng() & 63)); break;
        case 1: out = raw ^ rng(); break;
        case 2: f.slot = uint32_t(rng() % cap); out = handle_pack(f); break;
        case 3: f.slab_id = ids[rng() % ids.size()]; out = handle_pack(f); break;
        case 4:
          f.slot = uint32_t(rng() % cap);
          f.slab_id = ids[rng() % ids.size()];
          out = handle_pack(f);
          break;
      }
      if (out != raw) return out;
    }
  };
  auto victim_freed = [&](uint64_t forged) {
    // An accepted forged free names a live object exactly (same slab, slot,
    // class, masked generation): replace it.
    auto it = w.index.find(forged);
    if (it == w.index.end()) return;  // accepted but not ours: cannot happen
    const size_t pos = it->second;
    const HandleFields f = handle_unpack(forged);
    w.index.erase(it);
    auto r = w.a->allocate(w.size_of[pos], 0);
    if (!r) std::exit(1);
    w.live[pos] = r->handle.raw;
    w.index[r->handle.raw] = pos;
    (void)f;
  };
  Counts deref[kKinds], freec[kKinds];
  uint64_t unknown_victims = 0;
  for (int k = 0; k < kKinds; ++k) {
    for (uint64_t i = 0; i < args.forgeries; ++i) {
      const uint64_t raw = w.live[rng() % w.live.size()];
      const uint64_t h = forge(k, raw);
      deref[k].tried++;
      if (w.a->deref(Handle{h}).is_ok()) deref[k].accepted++;
      const uint64_t h2 = forge(k, w.live[rng() % w.live.size()]);
      freec[k].tried++;
      if (w.a->free(Handle{h2}).is_ok()) {
        freec[k].accepted++;
        if (!w.index.count(h2)) ++unknown_victims;
        victim_freed(h2);
      }
    }
  }
  const GlobalStats g = w.a->stats_global();
  const double bound = std::ldexp(1.0, -16);
  double max_rate = 0, max_upper = 0;
  std::string js = "{\"bench\":\"slab_forgery\",\"forgeries_per_kind\":" +
                   std::to_string(args.forgeries) + ",\"live_objects\":" +
                   std::to_string(g.live_objects) + ",\"seed\":" + std::to_string(args.seed) +
                   ",\"key\":\"" + (args.key ? std::to_string(args.key) : "random") +
                   "\",\"kinds\":{";
  for (int k = 0; k < kKinds; ++k) {
    auto one = [&](const Counts& c) {
      const double rate = double(c.accepted) / double(c.tried);
      // One-sided 95 % upper bound (Poisson; 3/n when none accepted).
      const double upper = (double(c.accepted) + 1.96 * std::sqrt(double(c.accepted) + 1) + 2) /
                           double(c.tried);
      max_rate = std::max(max_rate, rate);
      max_upper = std::max(max_upper, upper);
      char b[200];
      std::snprintf(b, sizeof b, "{\"tried\":%llu,\"accepted\":%llu,\"rate\":%.3g,\"upper95\":%.3g}",
                    (unsigned long long)c.tried, (unsigned long long)c.accepted, rate, upper);
      std::fprintf(stderr, "  %-10s %-5s tried %llu accepted %llu rate %.3g (95%% upper %.3g)\n",
                   kinds[k], &c == &deref[k] ? "deref" : "free", (unsigned long long)c.tried,
                   (unsigned long long)c.accepted, rate, upper);
      return std::string(b);
    };
    js += std::string(k ? "," : "") + "\"" + kinds[k] + "\":{\"deref\":" + one(deref[k]) +
          ",\"free\":" + one(freec[k]) + "}";
  }
  char tail[300];
  std::snprintf(tail, sizeof tail,
                "},\"max_rate\":%.3g,\"max_upper95\":%.3g,\"bound\":%.3g,\"met\":%s,"
                "\"unknown_victims\":%llu}",
                max_rate, max_upper, bound, max_upper <= bound ? "true" : "false",
                (unsigned long long)unknown_victims);
  js += tail;
  std::printf("%s\n", js.c_str());
  std::fprintf(stderr, "max acceptance rate %.3g (95%% upper %.3g) vs bound 2^-16 = %.3g: %s\n",
               max_rate, max_upper, bound, max_upper <= bound ? "met" : "MISSED");
  return 0;
}
