// The allocator registry and the malloc adapter (glibc, jemalloc, mimalloc,
// tcmalloc). The temporal-slab adapter is in harness/alloc_slab.cpp.
#include "harness/allocators.h"

#include <malloc.h>

#include <cstdlib>
#include <map>

#include "harness/peers.h"
#include "harness/registry.h"

namespace znslab::harness {
namespace {

std::map<std::string, AllocatorInfo, std::less<>>& registry() {
  static std::map<std::string, AllocatorInfo, std::less<>> m;
  return m;
}

// One adapter for every malloc: which library answers is decided by the
// process (LD_PRELOAD), checked by describe() through /proc/self/maps.
class MallocAdapter final : public AllocatorAdapter {
 public:
  explicit MallocAdapter(std::string name) : name_(std::move(name)) {}
  const char* name() const noexcept override { return name_.c_str(); }
  bool has_epochs() const noexcept override { return false; }
  bool allocate(size_t bytes, uint32_t, Obj& out) noexcept override {
    void* p = std::malloc(bytes);
    if (!p) return false;
    out.ptr = p;
    out.handle = 0;
    out.usable = 0;  // malloc_usable_size is asked off the timed path (usable_size)
    out.requested = uint32_t(bytes);
    return true;
  }
  bool release(const Obj& o) noexcept override {
    std::free(o.ptr);
    return true;
  }
  size_t usable_size(const Obj& o) const noexcept override { return malloc_usable_size(o.ptr); }
  nlohmann::json describe() const override {
    nlohmann::json d = malloc_identity(name_);
    d["name"] = name_;
    d["kind"] = "malloc";
    d["options"] = nlohmann::json::object();
    d["counters"] = false;
    return d;
  }

 private:
  std::string name_;
};

AllocatorRegistrar reg_glibc{AllocatorInfo{
    "glibc", "glibc malloc (no preload)", true,
    [](const nlohmann::json&) { return std::make_unique<MallocAdapter>("glibc"); }}};
AllocatorRegistrar reg_jemalloc{AllocatorInfo{
    "jemalloc", "jemalloc via LD_PRELOAD of libjemalloc.so.2", true,
    [](const nlohmann::json&) { return std::make_unique<MallocAdapter>("jemalloc"); }}};
AllocatorRegistrar reg_mimalloc{AllocatorInfo{
    "mimalloc", "mimalloc via LD_PRELOAD of libmimalloc.so.2", true,
    [](const nlohmann::json&) { return std::make_unique<MallocAdapter>("mimalloc"); }}};
AllocatorRegistrar reg_tcmalloc{AllocatorInfo{
    "tcmalloc", "tcmalloc (gperftools, minimal) via LD_PRELOAD of libtcmalloc_minimal.so.4", true,
    [](const nlohmann::json&) { return std::make_unique<MallocAdapter>("tcmalloc"); }}};

}  // namespace

void register_allocator(AllocatorInfo a) {
  std::string n = a.name;
  registry()[n] = std::move(a);
}

const AllocatorInfo* find_allocator(std::string_view name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}

std::vector<const AllocatorInfo*> all_allocators() {
  std::vector<const AllocatorInfo*> v;
  for (const char* n : kAllocatorOrder)
    if (auto* a = find_allocator(n)) v.push_back(a);
  for (auto& [n, a] : registry()) {
    bool listed = false;
    for (const char* k : kAllocatorOrder) listed |= (n == k);
    if (!listed) v.push_back(&a);
  }
  return v;
}

std::string allocator_names() {
  std::string s;
  for (auto* a : all_allocators()) s += (s.empty() ? "" : ", ") + a->name;
  return s;
}

std::unique_ptr<AllocatorAdapter> make_allocator(const std::string& name,
                                                 const nlohmann::json& config) {
  const std::string n = name.empty() ? kDefaultAllocator : name;
  const AllocatorInfo* a = find_allocator(n);
  if (!a)
    throw UsageError("unknown allocator \"" + n + "\" (available: " + allocator_names() + ")");
  return a->make(config);
}

}  // namespace znslab::harness
