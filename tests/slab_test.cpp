// Unit tests of the temporal slab allocator (src/slab), tag [slab].
// Deterministic: seeded randomness, no timing assertions.
#include <algorithm>
#include <atomic>
#include <functional>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "src/pages/pages.h"
#include "src/slab/slab.h"

using namespace znslab;
using namespace znslab::slab;

namespace {

constexpr uint32_t kCap[kNumClasses] = {56, 42, 32, 21, 16, 10, 8, 5};

std::unique_ptr<SlabAllocator> make(ReclaimPolicy p = ReclaimPolicy::kImmediate,
                                    size_t arena = size_t(256) << 20) {
  Options o;
  o.reclaim = p;
  o.arena_bytes = arena;
  auto r = SlabAllocator::create(o);
  REQUIRE(r.is_ok());
  return std::move(*r);
}

Allocation must_alloc(SlabAllocator& a, size_t bytes, uint32_t epoch) {
  auto r = a.allocate(bytes, epoch);
  REQUIRE(r.is_ok());
  return *r;
}

void fill(const Allocation& x, uint8_t v) { std::memset(x.ptr, v, x.usable); }
bool holds(const Allocation& x, uint8_t v) {
  auto* p = static_cast<const uint8_t*>(x.ptr);
  return std::all_of(p, p + x.usable, [v](uint8_t b) { return b == v; });
}

}  // namespace

TEST_CASE("size class lookup maps every size 1..768 to the smallest fitting class", "[slab]") {
  for (size_t b = 1; b <= kMaxObjectBytes; ++b) {
    const uint32_t c = size_class_of(b);
    REQUIRE(c < kNumClasses);
    CHECK(kSizeClasses[c] >= b);
    if (c > 0) CHECK(kSizeClasses[c - 1] < b);
  }
  CHECK(size_class_of(0) == kNumClasses);
  CHECK(size_class_of(769) == kNumClasses);
  CHECK(size_class_of(size_t(1) << 40) == kNumClasses);
  auto a = make();
  CHECK(a->allocate(0, 0).status().code() == Code::kInvalidArgument);
  CHECK(a->allocate(769, 0).status().code() == Code::kInvalidArgument);
  CHECK(a->allocate(64, kEpochCount).status().code() == Code::kInvalidArgument);
}

TEST_CASE("handle v1 packs and unpacks every field", "[slab]") {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 10000; ++i) {
    HandleFields f{uint32_t(rng() & 0x3FFFFF), uint32_t(rng() & 0xFFFFFF), uint32_t(rng() & 0xFF),
                   uint32_t(rng() & 0xFF), uint32_t(rng() & 0x3)};
    const HandleFields g = handle_unpack(handle_pack(f));
    REQUIRE(g.slab_id == f.slab_id);
    REQUIRE(g.generation == f.generation);
    REQUIRE(g.slot == f.slot);
    REQUIRE(g.size_class == f.size_class);
    REQUIRE(g.version == f.version);
  }
  auto a = make();
  for (size_t sz : {1, 64, 65, 100, 200, 300, 500, 768}) {
    Allocation x = must_alloc(*a, sz, 0);
    const HandleFields f = handle_unpack(x.handle.raw);
    CHECK(x.handle.raw != 0);
    CHECK(f.version == kHandleVersion);
    CHECK(f.size_class == size_class_of(sz));
    CHECK(f.slot < kCap[f.size_class]);
    CHECK(x.usable == kSizeClasses[f.size_class]);
    auto p = a->deref(x.handle);
    REQUIRE(p.is_ok());
    CHECK(*p == x.ptr);
    fill(x, 0x5A);
    CHECK(a->free(x.handle).is_ok());
  }
}

TEST_CASE("a stale handle whose slot was reused in the same slab is refused", "[slab]") {
  auto a = make();
  Allocation keep = must_alloc(*a, 128, 2);  // keeps the slab attached
  fill(keep, 0x11);
  Allocation old = must_alloc(*a, 128, 2);
  REQUIRE(a->free(old.handle).is_ok());
  Allocation reuse = must_alloc(*a, 128, 2);
  fill(reuse, 0x22);
  const HandleFields fo = handle_unpack(old.handle.raw), fr = handle_unpack(reuse.handle.raw);
  // Sequential scan hands out the lowest free slot: the very same slot.
  REQUIRE(fo.slab_id == fr.slab_id);
  REQUIRE(fo.slot == fr.slot);
  CHECK(fo.generation != fr.generation);
  const GlobalStats before = a->stats_global();
  CHECK(a->free(old.handle).code() == Code::kStaleHandle);
  CHECK(a->deref(old.handle).status().code() == Code::kStaleHandle);
  const GlobalStats after = a->stats_global();
  CHECK(after.stale_handle_frees == before.stale_handle_frees + 1);
  CHECK(after.stale_derefs == before.stale_derefs + 1);
  CHECK(after.live_objects == before.live_objects);
  // The new owner's object is untouched and still live.
  CHECK(holds(reuse, 0x22));
  CHECK(holds(keep, 0x11));
  CHECK(a->free(reuse.handle).is_ok());
  CHECK(a->free(keep.handle).is_ok());
  CHECK(a->verify().is_ok());
}

TEST_CASE("a stale handle from a previous slab incarnation is refused", "[slab]") {
  auto a = make(ReclaimPolicy::kImmediate);
  std::vector<Allocation> v;
  for (int i = 0; i < 200; ++i) v.push_back(must_alloc(*a, 768, 4));
  const Handle old = v[0].handle;
  for (auto& x : v) REQUIRE(a->free(x.handle).is_ok());
  REQUIRE(a->epoch_close(4).is_ok());  // slabs detached, chunk returned
  REQUIRE(a->epoch_reopen(4).is_ok());
  std::vector<Allocation> w;
  for (int i = 0; i < 200; ++i) {
    w.push_back(must_alloc(*a, 768, 4));
    fill(w.back(), 0x33);
  }
  CHECK(a->free(old).code() == Code::kStaleHandle);
  for (auto& x : w) {
    CHECK(holds(x, 0x33));
    CHECK(a->free(x.handle).is_ok());
  }
}

TEST_CASE("double free is refused, counted, and leaves neighbours intact", "[slab]") {
  auto a = make();
  std::vector<Allocation> v;
  for (int i = 0; i < 16; ++i) {
    v.push_back(must_alloc(*a, 256, 1));
    fill(v.back(), uint8_t(i + 1));
  }
  REQUIRE(a->free(v[5].handle).is_ok());
  const GlobalStats before = a->stats_global();
  CHECK(a->free(v[5].handle).code() == Code::kDoubleFree);
  CHECK(a->free(v[5].handle).code() == Code::kDoubleFree);
  CHECK(a->deref(v[5].handle).status().code() == Code::kStaleHandle);
  const GlobalStats after = a->stats_global();
  CHECK(after.double_frees == before.double_frees + 2);
  CHECK(after.live_objects == before.live_objects);
  CHECK(after.frees == before.frees);
  for (int i = 0; i < 16; ++i)
    if (i != 5) CHECK(holds(v[i], uint8_t(i + 1)));
  for (int i = 0; i < 16; ++i)
    if (i != 5) CHECK(a->free(v[i].handle).is_ok());
  CHECK(a->verify().is_ok());
}

TEST_CASE("forged handles are refused with kInvalidHandle and counted", "[slab]") {
  auto a = make(ReclaimPolicy::kImmediate, size_t(64) << 20);  // 16384 slab ids
  Allocation x = must_alloc(*a, 200, 0);  // class 256
  fill(x, 0x77);
  const HandleFields good = handle_unpack(x.handle.raw);
  auto forged = [&](auto mutate) {
    HandleFields f = good;
    mutate(f);
    return Handle{handle_pack(f)};
  };
  const GlobalStats before = a->stats_global();
  CHECK(a->free(Handle{0}).code() == Code::kInvalidHandle);
  for (uint32_t v : {0u, 2u, 3u})
    CHECK(a->free(forged([&](HandleFields& f) { f.version = v; })).code() == Code::kInvalidHandle);
  CHECK(a->free(forged([](HandleFields& f) { f.slab_id = 0x3FFFFF; })).code() == Code::kInvalidHandle);
  CHECK(a->free(forged([](HandleFields& f) { f.slab_id = 16383; })).code() == Code::kInvalidHandle);
  CHECK(a->free(forged([](HandleFields& f) { f.size_class = 1; })).code() == Code::kInvalidHandle);
  CHECK(a->free(forged([](HandleFields& f) { f.size_class = 9; })).code() == Code::kInvalidHandle);
  CHECK(a->free(forged([](HandleFields& f) { f.slot = kCap[4]; })).code() == Code::kInvalidHandle);
  CHECK(a->free(forged([](HandleFields& f) { f.slot = 255; })).code() == Code::kInvalidHandle);
  CHECK(a->deref(forged([](HandleFields& f) { f.version = 0; })).status().code() == Code::kInvalidHandle);
  const GlobalStats after = a->stats_global();
  CHECK(after.invalid_handle_frees == before.invalid_handle_frees + 10);
  CHECK(after.live_objects == 1);
  CHECK(holds(x, 0x77));
  CHECK(a->free(x.handle).is_ok());
}

TEST_CASE("epoch ring wraps: epoch_current stays a ring index after >16 advances", "[slab]") {
  auto a = make();
  CHECK(a->epoch_current() == 0);
  uint64_t last_era = a->stats_epoch(0).era;
  for (uint32_t i = 1; i <= 40; ++i) {
    const uint32_t e = a->epoch_advance();
    REQUIRE(e == i % kEpochCount);
    REQUIRE(a->epoch_current() == e);
    const EpochStats s = a->stats_epoch(e);
    CHECK(s.state == EpochState::kActive);
    CHECK(s.era > last_era);
    last_era = s.era;
    CHECK(a->stats_epoch((e + kEpochCount - 1) % kEpochCount).state == EpochState::kClosing);
    auto x = a->allocate(100, e);  // seed 002 bug 1: allocation after wrap works
    REQUIRE(x.is_ok());
    CHECK(a->free(x->handle).is_ok());
  }
  CHECK(a->stats_global().epoch_advances == 40);
}

TEST_CASE("allocation into a CLOSING epoch is refused and counted", "[slab]") {
  auto a = make();
  Allocation live = must_alloc(*a, 64, 3);
  REQUIRE(a->epoch_set_label(3, "batch_42").is_ok());
  CHECK(a->epoch_set_label(3, std::string(32, 'x')).code() == Code::kInvalidArgument);
  REQUIRE(a->epoch_close(3).is_ok());
  const EpochStats s = a->stats_epoch(3);
  CHECK(s.state == EpochState::kClosing);
  CHECK(s.label == "batch_42");
  CHECK(s.rss_before_close > 0);
  CHECK(s.rss_after_close > 0);
  CHECK(a->allocate(64, 3).status().code() == Code::kEpochClosed);
  CHECK(a->allocate(700, 3).status().code() == Code::kEpochClosed);
  CHECK(a->stats_global().slow_path_epoch_closed == 2);
  // Objects of a closing epoch can still be used and freed.
  CHECK(a->deref(live.handle).is_ok());
  CHECK(a->free(live.handle).is_ok());
  const uint64_t era = a->stats_epoch(3).era;
  REQUIRE(a->epoch_reopen(3).is_ok());
  CHECK(a->stats_epoch(3).era > era);
  CHECK(a->stats_epoch(3).label.empty());
  auto x = a->allocate(64, 3);
  REQUIRE(x.is_ok());
  CHECK(a->free(x->handle).is_ok());
  CHECK(a->epoch_close(16).code() == Code::kInvalidArgument);
}

TEST_CASE("epoch domains nest to 32, enforce LIFO and their owner thread", "[slab]") {
  auto a = make();
  SECTION("nesting limit and refcount wiring") {
    std::vector<std::unique_ptr<EpochDomain>> ds;
    for (uint32_t i = 0; i < kMaxDomainDepth; ++i) {
      ds.push_back(std::make_unique<EpochDomain>(*a, 5));
      REQUIRE(ds.back()->status().is_ok());
      CHECK(EpochDomain::current() == ds.back().get());
    }
    CHECK(EpochDomain::depth() == kMaxDomainDepth);
    CHECK(a->stats_epoch(5).domain_refcount == kMaxDomainDepth);
    EpochDomain extra(*a, 5);
    CHECK(extra.status().code() == Code::kDomainViolation);
    CHECK(extra.allocate(64).status().code() == Code::kDomainViolation);
    CHECK(EpochDomain::depth() == kMaxDomainDepth);
    auto x = ds.back()->allocate(64);
    REQUIRE(x.is_ok());
    CHECK(handle_unpack(x->handle.raw).size_class == 0);
    CHECK(a->free(x->handle).is_ok());
    while (!ds.empty()) ds.pop_back();  // LIFO
    CHECK(EpochDomain::depth() == 0);
    CHECK(a->stats_epoch(5).domain_refcount == 0);
    CHECK(a->stats_global().domain_violations == 1);
  }
  SECTION("out-of-order exit is refused and counted; the stack stays consistent") {
    auto outer = std::make_unique<EpochDomain>(*a, 6);
    auto inner = std::make_unique<EpochDomain>(*a, 7);
    outer.reset();  // not LIFO
    CHECK(a->stats_global().domain_violations == 1);
    CHECK(EpochDomain::current() == inner.get());
    CHECK(EpochDomain::depth() == 1);
    inner.reset();
    CHECK(EpochDomain::depth() == 0);
    CHECK(a->stats_epoch(6).domain_refcount == 0);
  }
  SECTION("another thread may not allocate through or destroy a domain") {
    auto d = std::make_unique<EpochDomain>(*a, 8);
    Code from_other = Code::kOk;
    std::thread([&] { from_other = d->allocate(64).status().code(); }).join();
    CHECK(from_other == Code::kDomainViolation);
    std::thread([&] { d.reset(); }).join();  // refused: counted, owner stack cleaned
    CHECK(a->stats_global().domain_violations == 2);
    CHECK(EpochDomain::depth() == 0);
    CHECK(a->stats_epoch(8).domain_refcount == 0);
  }
  SECTION("auto_close closes its epoch only if the era is unchanged") {
    {
      EpochDomain d(*a, 9, /*auto_close=*/true);
      auto x = d.allocate(64);
      REQUIRE(x.is_ok());
      CHECK(a->free(x->handle).is_ok());
    }
    CHECK(a->stats_epoch(9).state == EpochState::kClosing);
    REQUIRE(a->epoch_reopen(9).is_ok());
    {
      EpochDomain d(*a, 9, /*auto_close=*/true);
      // The ring slot gets a new incarnation while the domain is open.
      REQUIRE(a->epoch_close(9).is_ok());
      REQUIRE(a->epoch_reopen(9).is_ok());
    }
    CHECK(a->stats_epoch(9).state == EpochState::kActive);  // not closed: era changed
  }
}

namespace {
// Allocates `n` objects of `bytes` in `epoch`, writing every byte.
std::vector<Allocation> fill_epoch(SlabAllocator& a, uint32_t epoch, size_t n, size_t bytes) {
  std::vector<Allocation> v;
  v.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    v.push_back(must_alloc(a, bytes, epoch));
    fill(v.back(), 0xC3);
  }
  return v;
}
constexpr size_t kObjs = 16384;  // x 512 B = 8 MiB of slabs (2048 slabs, 4 chunks)
constexpr uint64_t kBytes = uint64_t(kObjs) * 512;
}  // namespace

TEST_CASE("reclaim policy immediate returns memory as slabs empty, before close", "[slab]") {
  auto a = make(ReclaimPolicy::kImmediate);
  auto v = fill_epoch(*a, 1, kObjs, 512);
  const uint64_t rss_full = pages::rss_bytes();
  CHECK(a->stats_global().committed_bytes == kBytes);
  for (auto& x : v) REQUIRE(a->free(x.handle).is_ok());
  // Epoch 1 stays ACTIVE: what remains committed is bounded by the batching
  // (< 64 events since the last pass), the warm reserve (64 slabs), the two
  // empty slabs a bin keeps and its current slab.
  const GlobalStats g = a->stats_global();
  CHECK(a->stats_epoch(1).state == EpochState::kActive);
  CHECK(g.committed_bytes <= (2 * 64 + 3) * kSlabBytes);
  CHECK(g.madvise_bytes >= kBytes - (2 * 64 + 3) * kSlabBytes);
  CHECK(pages::rss_bytes() + kBytes / 2 <= rss_full);
  REQUIRE(a->epoch_close(1).is_ok());
  CHECK(a->stats_global().committed_bytes == 0);
  CHECK(a->stats_global().live_bytes == 0);
  CHECK(a->verify().is_ok());
}

TEST_CASE("reclaim policy on_close keeps memory until epoch_close, then returns it", "[slab]") {
  auto a = make(ReclaimPolicy::kOnClose);
  auto v = fill_epoch(*a, 2, kObjs, 512);
  for (auto& x : v) REQUIRE(a->free(x.handle).is_ok());
  const uint64_t rss_freed = pages::rss_bytes();
  CHECK(a->stats_global().committed_bytes == kBytes);  // the seed's old ratchet
  CHECK(a->stats_global().madvise_calls == 0);
  CHECK(a->stats_global().empty_slabs == kBytes / kSlabBytes);
  REQUIRE(a->epoch_close(2).is_ok());
  const EpochStats s = a->stats_epoch(2);
  CHECK(a->stats_global().committed_bytes == 0);
  CHECK(pages::rss_bytes() + kBytes / 2 <= rss_freed);
  CHECK(s.rss_after_close + kBytes / 2 <= s.rss_before_close);
  CHECK(a->verify().is_ok());
}

TEST_CASE("reclaim policy off never returns memory; empty slabs are reused", "[slab]") {
  auto a = make(ReclaimPolicy::kOff);
  auto v = fill_epoch(*a, 3, kObjs, 512);
  for (auto& x : v) REQUIRE(a->free(x.handle).is_ok());
  const uint64_t rss_freed = pages::rss_bytes();
  REQUIRE(a->epoch_close(3).is_ok());
  CHECK(a->reclaim() == 0);
  CHECK(a->stats_global().committed_bytes == kBytes);
  CHECK(a->stats_global().madvise_calls == 0);
  CHECK(pages::rss_bytes() + kBytes / 4 > rss_freed);
  REQUIRE(a->epoch_reopen(3).is_ok());
  auto w = fill_epoch(*a, 3, kObjs, 512);
  CHECK(a->stats_global().committed_bytes == kBytes);  // reused, not grown
  for (auto& x : w) REQUIRE(a->free(x.handle).is_ok());
  CHECK(a->verify().is_ok());
}

TEST_CASE("reclamation coalesces contiguous empty slabs into few madvise calls", "[slab]") {
  Options o;
  o.arena_bytes = size_t(256) << 20;
  o.reclaim_batch_slabs = 0;  // only epoch_close/reclaim decommit
  auto r = SlabAllocator::create(o);
  REQUIRE(r.is_ok());
  auto& a = **r;
  // Two epochs interleaved: each keeps its slabs in its own chunks.
  std::vector<Allocation> v5, v6;
  for (size_t i = 0; i < 4000; ++i) {
    v5.push_back(must_alloc(a, 300, 5));
    v6.push_back(must_alloc(a, 300, 6));
  }
  for (auto& x : v5) REQUIRE(a.free(x.handle).is_ok());
  const uint64_t slabs = a.stats_global().pending_slabs + a.stats_class(5).empty_slabs;
  CHECK(slabs >= 399);
  REQUIRE(a.epoch_close(5).is_ok());
  const GlobalStats g = a.stats_global();
  CHECK(g.madvise_calls * 50 < slabs);  // one whole chunk + its metadata here
  CHECK(g.committed_bytes == a.stats_epoch(6).committed_bytes);
  CHECK(a.stats_epoch(5).committed_bytes == 0);
  CHECK(g.chunks_returned >= 1);
  // Partially emptied chunk: runs of empty slabs coalesce.
  for (size_t i = 0; i < v6.size(); ++i)
    if ((i / 400) % 2 == 0) REQUIRE(a.free(v6[i].handle).is_ok());
  const uint64_t calls = a.stats_global().madvise_calls;
  const uint64_t bytes = a.stats_global().madvise_bytes;
  a.reclaim();
  const uint64_t freed_slabs = (a.stats_global().madvise_bytes - bytes) / kSlabBytes;
  CHECK(freed_slabs >= 150);
  CHECK((a.stats_global().madvise_calls - calls) * 10 <= freed_slabs);
  CHECK(a.verify().is_ok());
  for (size_t i = 0; i < v6.size(); ++i)
    if ((i / 400) % 2 == 1) REQUIRE(a.free(v6[i].handle).is_ok());
}

TEST_CASE("counter invariants: live + free == capacity; globals equal class sums", "[slab]") {
  auto a = make(ReclaimPolicy::kImmediate);
  std::mt19937 rng(7);
  std::vector<Allocation> live;
  uint64_t requested = 0;
  for (int step = 0; step < 60000; ++step) {
    if (live.empty() || rng() % 100 < 55) {
      const size_t sz = 1 + rng() % kMaxObjectBytes;
      const uint32_t e = rng() % 4;
      auto x = a->allocate(sz, e);
      REQUIRE(x.is_ok());
      requested += sz;
      live.push_back(*x);
    } else {
      const size_t i = rng() % live.size();
      const uint32_t c = handle_unpack(live[i].handle.raw).size_class;
      (void)c;
      REQUIRE(a->free(live[i].handle).is_ok());
      live[i] = live.back();
      live.pop_back();
    }
  }
  REQUIRE(a->verify().is_ok());
  const GlobalStats g = a->stats_global();
  uint64_t live_bytes = 0, live_objects = 0, committed = 0, empty = 0, class_live_bytes = 0;
  for (auto& x : live) live_bytes += x.usable;
  for (uint32_t c = 0; c < kNumClasses; ++c) {
    const ClassStats s = a->stats_class(c);
    class_live_bytes += s.live_bytes;
    live_objects += s.live_objects;
    committed += s.committed_bytes;
    empty += s.empty_slabs;
  }
  uint64_t epoch_live = 0, epoch_committed = 0;
  for (uint32_t e = 0; e < kEpochCount; ++e) {
    epoch_live += a->stats_epoch(e).live_objects;
    epoch_committed += a->stats_epoch(e).committed_bytes;
  }
  CHECK(g.live_bytes == live_bytes);
  CHECK(class_live_bytes == live_bytes);
  CHECK(live_objects == live.size());
  CHECK(g.live_objects == live.size());
  CHECK(epoch_live == live.size());
  CHECK(committed + g.pending_slabs * kSlabBytes == g.committed_bytes);
  CHECK(epoch_committed == g.committed_bytes);
  CHECK(empty + g.pending_slabs == g.empty_slabs);
  CHECK(g.allocs - g.frees == live.size());
  CHECK(g.requested_bytes <= g.live_bytes);
  for (auto& x : live) REQUIRE(a->free(x.handle).is_ok());
  const GlobalStats z = a->stats_global();
  CHECK(z.live_bytes == 0);
  CHECK(z.requested_bytes == 0);
  CHECK(z.live_objects == 0);
  CHECK(a->verify().is_ok());
}

TEST_CASE("requested bytes track what callers asked for", "[slab]") {
  auto a = make();
  Allocation x = must_alloc(*a, 513, 0), y = must_alloc(*a, 1, 0), z = must_alloc(*a, 768, 0);
  GlobalStats g = a->stats_global();
  CHECK(g.requested_bytes == 513 + 1 + 768);
  CHECK(g.live_bytes == 768 + 64 + 768);
  REQUIRE(a->free(x.handle).is_ok());
  CHECK(a->stats_global().requested_bytes == 1 + 768);
  REQUIRE(a->free(y.handle).is_ok());
  REQUIRE(a->free(z.handle).is_ok());
  CHECK(a->stats_global().requested_bytes == 0);
}

TEST_CASE("stats_json exports the versioned schema", "[slab]") {
  auto a = make();
  Allocation x = must_alloc(*a, 100, 2);
  REQUIRE(a->epoch_set_label(2, "frame:1234").is_ok());
  auto j = nlohmann::json::parse(a->stats_json());
  CHECK(j["schema"] == "znslab.slab-stats/1");
  CHECK(j["global"]["live_objects"] == 1);
  CHECK(j["global"]["committed_bytes"] == kSlabBytes);
  REQUIRE(j["classes"].size() == kNumClasses);
  CHECK(j["classes"][2]["object_bytes"] == 128);
  CHECK(j["classes"][2]["scan_mode"] == "sequential");
  REQUIRE(j["epochs"].size() == kEpochCount);
  CHECK(j["epochs"][2]["label"] == "frame:1234");
  CHECK(j["epochs"][2]["state"] == "ACTIVE");
  CHECK(j["options"]["reclaim"] == "immediate");
  CHECK(a->free(x.handle).is_ok());
}

TEST_CASE("options are validated and reclaim policies parse", "[slab]") {
  Options o;
  o.chunk_bytes = 3000;
  CHECK(SlabAllocator::create(o).status().code() == Code::kInvalidArgument);
  o = Options{};
  o.arena_bytes = size_t(32) << 30;
  CHECK(SlabAllocator::create(o).status().code() == Code::kInvalidArgument);
  CHECK(*parse_reclaim_policy("on_close") == ReclaimPolicy::kOnClose);
  CHECK(*parse_reclaim_policy("immediate") == ReclaimPolicy::kImmediate);
  CHECK(*parse_reclaim_policy("off") == ReclaimPolicy::kOff);
  CHECK(parse_reclaim_policy("sometimes").status().code() == Code::kInvalidArgument);
  CHECK(std::string(reclaim_policy_name(ReclaimPolicy::kOnClose)) == "on_close");
}

TEST_CASE("arena exhaustion returns kOutOfMemory, not a crash", "[slab]") {
  Options o;
  o.arena_bytes = size_t(1) << 20;
  o.chunk_bytes = size_t(1) << 20;  // 256 slabs
  auto r = SlabAllocator::create(o);
  REQUIRE(r.is_ok());
  auto& a = **r;
  size_t n = 0;
  for (;; ++n) {
    auto x = a.allocate(768, 0);
    if (!x) {
      CHECK(x.status().code() == Code::kOutOfMemory);
      break;
    }
    REQUIRE(n < 10000);
  }
  CHECK(n == 256 * kCap[7]);
}

// ---- thread caches (Options::thread_cache) ------------------------------------------

namespace {
// Slots held in thread caches of threads other than a fresh helper thread
// (the helper has no cache of its own to return first).
uint64_t cached_elsewhere(SlabAllocator& a) {
  uint64_t n = 0;
  std::thread t([&] { n = a.stats_global().thread_cached_slots; });
  t.join();
  return n;
}

std::unique_ptr<SlabAllocator> make_tc(bool thread_cache) {
  Options o;
  o.arena_bytes = size_t(256) << 20;
  o.thread_cache = thread_cache;
  auto r = SlabAllocator::create(o);
  REQUIRE(r.is_ok());
  return std::move(*r);
}
}  // namespace

TEST_CASE("stale and double frees of a slot sitting in a thread cache are refused", "[slab]") {
  for (bool tc : {true, false}) {
    INFO("thread_cache " << tc);
    auto a = make_tc(tc);
    Allocation keep = must_alloc(*a, 200, 2);
    fill(keep, 0x11);
    Allocation x = must_alloc(*a, 200, 2);
    const GlobalStats before = a->stats_global();
    REQUIRE(a->free(x.handle).is_ok());
    // With a cache the freed slot is held (claimed, free) by this thread.
    CHECK(cached_elsewhere(*a) >= (tc ? 1u : 0u));
    if (!tc) CHECK(cached_elsewhere(*a) == 0);
    CHECK(a->free(x.handle).code() == Code::kDoubleFree);
    CHECK(a->deref(x.handle).status().code() == Code::kStaleHandle);
    Allocation y = must_alloc(*a, 250, 2);  // same class (256 B): the cached slot comes back
    fill(y, 0x22);
    const HandleFields fx = handle_unpack(x.handle.raw), fy = handle_unpack(y.handle.raw);
    CHECK(fx.slab_id == fy.slab_id);
    CHECK(fx.slot == fy.slot);
    CHECK(fx.generation != fy.generation);
    CHECK(a->free(x.handle).code() == Code::kStaleHandle);
    CHECK(a->free(Handle{x.handle.raw ^ (uint64_t(1) << 2)}).code() != Code::kOk);  // forged class
    const GlobalStats after = a->stats_global();
    CHECK(after.double_frees == before.double_frees + 1);
    CHECK(after.stale_handle_frees >= before.stale_handle_frees + 1);
    CHECK(after.stale_derefs == before.stale_derefs + 1);
    CHECK(after.live_objects == 2);
    CHECK(after.requested_bytes == 200 + 250);
    CHECK(holds(y, 0x22));
    CHECK(holds(keep, 0x11));
    CHECK(a->verify().is_ok());
    CHECK(a->free(y.handle).is_ok());
    CHECK(a->free(keep.handle).is_ok());
    CHECK(a->stats_global().live_bytes == 0);
    REQUIRE(a->epoch_close(2).is_ok());
    CHECK(a->stats_global().committed_bytes == 0);
    CHECK(a->verify().is_ok());
  }
}

namespace {
// A helper thread that runs steps on request (no Catch2 calls off the main thread).
struct Helper {
  std::atomic<int> want{0}, done{0};
  std::atomic<bool> quit{false};
  std::function<void(int)> step;
  std::thread t;
  explicit Helper(std::function<void(int)> f) : step(std::move(f)) {
    t = std::thread([this] {
      for (int i = 1;; ++i) {
        while (want.load() < i && !quit.load()) std::this_thread::yield();
        if (quit.load()) return;
        step(i);
        done.store(i);
      }
    });
  }
  void run(int i) {
    want.store(i);
    while (done.load() < i) std::this_thread::yield();
  }
  void stop() {
    quit.store(true);
    t.join();
  }
};
}  // namespace

TEST_CASE("thread exit returns the thread's cached slots", "[slab]") {
  auto a = make(ReclaimPolicy::kImmediate);
  std::atomic<int> bad{0};
  Helper h([&](int) {
    std::vector<Allocation> v;
    for (int i = 0; i < 300; ++i) {
      auto r = a->allocate(100, 3);
      if (!r) { bad++; continue; }
      std::memset(r->ptr, 0x44, r->usable);
      v.push_back(*r);
    }
    for (auto& x : v)
      if (!a->free(x.handle)) bad++;
  });
  h.run(1);
  GlobalStats g = a->stats_global();
  CHECK(bad.load() == 0);
  CHECK(g.live_objects == 0);
  CHECK(g.live_bytes == 0);
  CHECK(g.thread_cached_slots > 0);  // held by the live helper
  CHECK(g.thread_cached_slots <= 2 * 32);
  CHECK(a->verify().is_ok());
  h.stop();
  g = a->stats_global();
  CHECK(g.thread_cached_slots == 0);
  CHECK(g.empty_slabs * kSlabBytes == g.committed_bytes);
  CHECK(a->verify().is_ok());
  REQUIRE(a->epoch_close(3).is_ok());
  CHECK(a->stats_global().committed_bytes == 0);
}

TEST_CASE("closing an epoch another thread caches: no cached slot is handed out, memory returns",
          "[slab]") {
  auto a = make(ReclaimPolicy::kImmediate);
  std::atomic<int> bad{0}, refused{0};
  Handle other{};
  Helper h([&](int step) {
    if (step == 1) {  // fill this thread's magazine of epoch 3
      std::vector<Allocation> v;
      for (int i = 0; i < 40; ++i) {
        auto r = a->allocate(300, 3);
        if (!r) { bad++; continue; }
        v.push_back(*r);
      }
      for (auto& x : v)
        if (!a->free(x.handle)) bad++;
    } else if (step == 2) {  // after the close
      auto r = a->allocate(300, 3);
      if (r) bad++;
      else if (r.status().code() == Code::kEpochClosed) refused++;
      auto o = a->allocate(300, 4);  // any operation revalidates the caches
      if (!o) bad++;
      else other = o->handle;
    } else if (step == 3) {
      if (!a->free(other)) bad++;
    }
  });
  h.run(1);
  CHECK(a->stats_global().thread_cached_slots > 0);
  REQUIRE(a->epoch_close(3).is_ok());
  CHECK(a->stats_epoch(3).state == EpochState::kClosing);
  // The close took the helper's cached slots back (membarrier handshake):
  // nothing of epoch 3 stays committed although the helper is idle.
  CHECK(a->stats_global().thread_cached_slots == 0);
  CHECK(a->stats_epoch(3).committed_bytes == 0);
  CHECK(a->verify().is_ok());
  h.run(2);
  CHECK(refused.load() == 1);
  CHECK(a->stats_global().slow_path_epoch_closed == 1);
  a->reclaim();
  CHECK(a->stats_epoch(3).committed_bytes == 0);
  CHECK(a->stats_global().live_objects == 1);
  h.run(3);
  h.stop();
  CHECK(bad.load() == 0);
  CHECK(a->stats_global().live_objects == 0);
  CHECK(a->verify().is_ok());
  REQUIRE(a->epoch_close(4).is_ok());
  CHECK(a->stats_global().committed_bytes == 0);
}

// ---- issue 9: forged and stale handles (M4, M2) ------------------------------------

namespace {
std::unique_ptr<SlabAllocator> make_keyed(uint64_t key, bool thread_cache = true) {
  Options o;
  o.arena_bytes = size_t(256) << 20;
  o.thread_cache = thread_cache;
  o.handle_key = key;
  auto r = SlabAllocator::create(o);
  REQUIRE(r.is_ok());
  return std::move(*r);
}
}  // namespace

// M4 (issue 9): a live handle with only its slot bits changed freed and
// dereferenced a neighbouring live object (every slot's sequence started at
// 1); a flipped slab-id bit did too. Here every slab is full of live
// objects, so each forged slot or slab id names a live object. The mask key
// is fixed so that the run is reproducible (the design's acceptance
// probability is ~2^-23 per forgery; bench/slab_forgery_bench measures it
// with random keys).
TEST_CASE("M4: a live handle with its slot or slab-id bits changed never reaches another live object",
          "[slab]") {
  for (uint64_t key : {0x5DEECE66Dull, 0x2545F4914F6CDD1Dull}) {
    for (bool tc : {true, false}) {
      INFO("key " << key << " thread_cache " << tc);
      auto a = make_keyed(key, tc);
      std::vector<Allocation> live;
      for (uint32_t c = 0; c < kNumClasses; ++c)
        for (uint32_t i = 0; i < 3 * kCap[c]; ++i) {  // three full slabs per class
          live.push_back(must_alloc(*a, kSizeClasses[c], 1));
          fill(live.back(), uint8_t(live.size()));
        }
      const GlobalStats before = a->stats_global();
      uint64_t forgeries = 0, accepted = 0;
      auto try_forged = [&](uint64_t raw, uint64_t good) {
        if (raw == good) return;
        ++forgeries;
        if (a->deref(Handle{raw}).is_ok()) ++accepted;
        if (a->free(Handle{raw}).is_ok()) ++accepted;
      };
      for (const Allocation& x : live) {
        const HandleFields f = handle_unpack(x.handle.raw);
        for (uint32_t s = 0; s < kCap[f.size_class]; ++s) {  // the probe: slot bits
          HandleFields g = f;
          g.slot = s;
          try_forged(handle_pack(g), x.handle.raw);
        }
        for (uint32_t b = 0; b < 22; ++b) {  // each slab-id bit
          HandleFields g = f;
          g.slab_id ^= 1u << b;
          try_forged(handle_pack(g), x.handle.raw);
        }
        for (uint32_t b = 0; b < 64; ++b)  // every single-bit change
          try_forged(x.handle.raw ^ (uint64_t(1) << b), x.handle.raw);
      }
      CHECK(forgeries > 20000);
      CHECK(accepted == 0);
      const GlobalStats after = a->stats_global();
      CHECK(after.live_objects == before.live_objects);
      CHECK(after.frees == before.frees);
      CHECK(after.stale_handle_frees + after.invalid_handle_frees + after.double_frees ==
            before.stale_handle_frees + before.invalid_handle_frees + before.double_frees + forgeries);
      for (size_t i = 0; i < live.size(); ++i) REQUIRE(holds(live[i], uint8_t(i + 1)));
      for (const Allocation& x : live) REQUIRE(a->free(x.handle).is_ok());
      CHECK(a->verify().is_ok());
    }
  }
}

// M2 (issue 9): the 8-bit chunk incarnation wrapped after 256 returns of a
// chunk and the slot sequences restarted, so a stale handle was accepted
// again. The probe: allocate in epoch E, keep the handle, free it;
// then 256 (here 600) times reopen E, allocate and free in it, close E;
// deref/free of the kept handle must be refused each time.
TEST_CASE("M2: a stale handle stays refused after 600 returns of its chunk", "[slab]") {
  for (bool tc : {true, false}) {
    INFO("thread_cache " << tc);
    auto a = make_tc(tc);
    constexpr uint32_t E = 5;
    Allocation kept = must_alloc(*a, 100, E);
    REQUIRE(a->free(kept.handle).is_ok());
    REQUIRE(a->epoch_close(E).is_ok());
    const uint64_t returned0 = a->stats_global().chunks_returned;
    const HandleFields kf = handle_unpack(kept.handle.raw);
    uint32_t same_slot = 0, bad = 0;
    for (int i = 0; i < 600; ++i) {
      REQUIRE(a->epoch_reopen(E).is_ok());
      Allocation x = must_alloc(*a, 100, E);
      fill(x, 0x6B);
      const HandleFields xf = handle_unpack(x.handle.raw);
      same_slot += xf.slab_id == kf.slab_id && xf.slot == kf.slot;
      if (a->deref(kept.handle).is_ok()) ++bad;
      if (a->free(kept.handle).is_ok()) ++bad;
      if (!holds(x, 0x6B)) ++bad;
      REQUIRE(a->free(x.handle).is_ok());
      REQUIRE(a->epoch_close(E).is_ok());
      if (a->deref(kept.handle).is_ok()) ++bad;
      if (a->free(kept.handle).is_ok()) ++bad;
    }
    CHECK(bad == 0);
    CHECK(same_slot == 600);  // the probe really reused the kept handle's slot
    CHECK(a->stats_global().chunks_returned - returned0 >= 600);
    CHECK(a->stats_global().live_objects == 0);
    CHECK(a->verify().is_ok());
  }
}

// The promise behind M2: a stale handle is refused until its slot has been
// reused 2^22 times, inside one chunk incarnation and across chunk returns
// (a slab id whose counters advanced 2^23 is retired).
TEST_CASE("a stale handle stays refused through 2^22 - 1 reuses of its slot", "[slab]") {
  auto a = make_keyed(0x9E3779B97F4A7C15ull);
  constexpr uint32_t E = 2;
  Allocation kept = must_alloc(*a, 64, E);
  const HandleFields kf = handle_unpack(kept.handle.raw);
  REQUIRE(a->free(kept.handle).is_ok());
  uint32_t moved = 0, bad = 0;
  for (uint32_t i = 0; i < (1u << 22) - 1; ++i) {
    auto r = a->allocate(64, E);
    REQUIRE(r.is_ok());
    const HandleFields f = handle_unpack(r->handle.raw);
    moved += f.slab_id != kf.slab_id || f.slot != kf.slot;
    if ((i & 0xFFFF) == 0 && a->deref(kept.handle).is_ok()) ++bad;
    REQUIRE(a->free(r->handle).is_ok());
  }
  CHECK(moved == 0);  // LIFO reuse: always the kept handle's slot
  CHECK(bad == 0);
  CHECK(a->deref(kept.handle).status().code() == Code::kStaleHandle);
  CHECK(a->free(kept.handle).code() != Code::kOk);
}

TEST_CASE("a slab id whose generations advanced 2^23 over chunk returns is retired", "[slab]") {
  auto a = make_keyed(0x9E3779B97F4A7C15ull);
  constexpr uint32_t E = 6;
  Allocation kept = must_alloc(*a, 64, E);  // slot 0 of the chunk's first slab
  const HandleFields kf = handle_unpack(kept.handle.raw);
  REQUIRE(a->free(kept.handle).is_ok());
  uint32_t bad = 0;
  // Two incarnations in which a neighbouring slot moves 2^22 steps each
  // (2^21 reuses) while the kept handle's slot moves 2.
  for (int round = 0; round < 2; ++round) {
    if (round) REQUIRE(a->epoch_reopen(E).is_ok());
    Allocation x = must_alloc(*a, 64, E);  // the kept slot again
    Allocation y = must_alloc(*a, 64, E);
    REQUIRE(handle_unpack(x.handle.raw).slot == kf.slot);
    REQUIRE(handle_unpack(y.handle.raw).slab_id == kf.slab_id);
    for (uint32_t i = 0; i < (1u << 21) - 1; ++i) {
      REQUIRE(a->free(y.handle).is_ok());
      y = must_alloc(*a, 64, E);
    }
    if (a->deref(kept.handle).is_ok() || a->free(kept.handle).is_ok()) ++bad;
    REQUIRE(a->free(x.handle).is_ok());
    REQUIRE(a->free(y.handle).is_ok());
    REQUIRE(a->epoch_close(E).is_ok());
  }
  CHECK(a->stats_global().retired_slab_ids == 1);
  // The retired slab id is never handed out again; its chunk still serves.
  REQUIRE(a->epoch_reopen(E).is_ok());
  std::vector<Allocation> v;
  for (int i = 0; i < 2000; ++i) {
    v.push_back(must_alloc(*a, 64, E));
    REQUIRE(handle_unpack(v.back().handle.raw).slab_id != kf.slab_id);
  }
  if (a->deref(kept.handle).is_ok() || a->free(kept.handle).is_ok()) ++bad;
  CHECK(bad == 0);
  CHECK(a->verify().is_ok());
  for (auto& x : v) REQUIRE(a->free(x.handle).is_ok());
  REQUIRE(a->epoch_close(E).is_ok());
  CHECK(a->stats_global().committed_bytes == 0);
  CHECK(a->verify().is_ok());
}

TEST_CASE("populate_slabs backs a growing epoch's slabs in batches; accounting and close stay exact",
          "[slab]") {
  for (uint32_t pop : {0u, 16u}) {
    INFO("populate_slabs " << pop);
    Options o;
    o.arena_bytes = size_t(256) << 20;
    o.populate_slabs = pop;
    auto r = SlabAllocator::create(o);
    REQUIRE(r.is_ok());
    auto& a = **r;
    std::vector<Allocation> v;
    for (int i = 0; i < 3000; ++i) {  // ~54 slabs of class 64
      v.push_back(must_alloc(a, 64, 7));
      fill(v.back(), uint8_t(i));
    }
    GlobalStats g = a.stats_global();
    if (pop) {
      CHECK(g.populated_slabs > 0);
      // Populated-ahead slabs are committed, empty and pending until taken.
      CHECK(g.committed_bytes <= (g.live_objects / 56 + 1 + pop) * kSlabBytes);
    } else {
      CHECK(g.populated_slabs == 0);
    }
    CHECK(g.madvise_calls == 0);  // populating is not a return to the OS
    CHECK(a.verify().is_ok());
    for (size_t i = 0; i < v.size(); ++i) REQUIRE(holds(v[i], uint8_t(i)));
    for (auto& x : v) REQUIRE(a.free(x.handle).is_ok());
    REQUIRE(a.epoch_close(7).is_ok());
    CHECK(a.stats_global().committed_bytes == 0);
    CHECK(a.verify().is_ok());
  }
}
