// libFuzzer target: slab handle operations. A SlabAllocator holds live
// objects with known contents; the input is a sequence of operations on
// arbitrary 64-bit handles (raw, or a live handle with bits changed):
// free and deref. None may crash, succeed on a handle that is not live,
// or change a live object. Uses the public API only (slab::SlabAllocator,
// handle_pack/handle_unpack), whatever the handle bits mean.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "src/slab/slab.h"

using namespace znslab;
using namespace znslab::slab;

namespace {

struct Live {
  Handle h;
  void* p;
  uint32_t size;
  uint8_t fill;
};

struct World {
  std::unique_ptr<SlabAllocator> a;
  std::vector<Live> live;
  std::vector<Handle> freed;  // handles of objects freed before the run: stale
};

World& world() {
  static World* w = [] {
    auto* x = new World;
    Options o;
    o.arena_bytes = size_t(64) << 20;
    o.thread_cache = false;
    auto r = SlabAllocator::create(o);
    if (!r) __builtin_trap();
    x->a = std::move(*r);
    // Live objects in two epochs and several size classes, plus stale handles.
    for (uint32_t i = 0; i < 600; ++i) {
      uint32_t size = 8 + (i * 37) % 700;
      auto al = x->a->allocate(size, i % 2);
      if (!al) __builtin_trap();
      if (i % 3 == 2) {
        if (!x->a->free(al->handle)) __builtin_trap();
        x->freed.push_back(al->handle);
        continue;
      }
      uint8_t fill = uint8_t(i * 131 + 7);
      std::memset(al->ptr, fill, size);
      x->live.push_back(Live{al->handle, al->ptr, size, fill});
    }
    return x;
  }();
  return *w;
}

bool is_live(const World& w, uint64_t raw) {
  for (const Live& l : w.live) {
    if (l.h.raw == raw) return true;
  }
  return false;
}

// Checks a rotating window of live objects per input (all of them every
// few inputs): still resolvable to the same address, contents unchanged.
void check_live(const World& w) {
  static size_t next = 0;
  for (size_t k = 0; k < 48; ++k) {
    const Live& l = w.live[next++ % w.live.size()];
    auto d = w.a->deref(l.h);
    if (!d || *d != l.p) __builtin_trap();
    const auto* b = static_cast<const uint8_t*>(l.p);
    for (uint32_t i = 0; i < l.size; ++i) {
      if (b[i] != l.fill) __builtin_trap();
    }
  }
}

uint64_t take64(const uint8_t*& p, const uint8_t* end) {
  uint64_t v = 0;
  size_t n = std::min<size_t>(8, size_t(end - p));
  std::memcpy(&v, p, n);
  p += n;
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = world();
  const uint8_t* p = data;
  const uint8_t* end = data + size;
  while (p < end) {
    const uint8_t op = *p++;
    uint64_t raw = take64(p, end);
    switch (op % 6) {
      case 0:  // a raw handle
        break;
      case 1:  // a live handle with one bit changed
        raw = w.live[raw % w.live.size()].h.raw ^ (uint64_t(1) << ((raw >> 32) % 64));
        break;
      case 2: {  // a live handle with one field replaced (the fields of today's format)
        HandleFields f = handle_unpack(w.live[raw % w.live.size()].h.raw);
        const uint32_t v = uint32_t(raw >> 32);
        switch ((raw >> 24) % 5) {
          case 0: f.slab_id = v; break;
          case 1: f.generation = v; break;
          case 2: f.slot = v; break;
          case 3: f.size_class = v; break;
          default: f.version = v; break;
        }
        raw = handle_pack(f);
        break;
      }
      case 3:  // a stale handle (its object was freed), possibly changed
        raw = w.freed[raw % w.freed.size()].raw ^ ((raw >> 40) & 0xFF);
        break;
      case 4:  // a live handle xor an arbitrary mask
        raw = w.live[raw % w.live.size()].h.raw ^ (raw >> 16);
        break;
      default:
        break;
    }
    if (raw == 0 || is_live(w, raw)) continue;  // a live handle is no forgery
    const bool do_free = op & 0x80;
    if (do_free) {
      if (w.a->free(Handle{raw})) __builtin_trap();  // freed something not ours to free
    } else {
      if (w.a->deref(Handle{raw})) __builtin_trap();  // resolved a forged or stale handle
    }
  }
  check_live(w);
  return 0;
}
