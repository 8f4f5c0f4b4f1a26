// Spill of cold slabs to zoned storage (issue 11; docs/spill.md): names,
// pins, prefetch and the spill counters. (First cut: the API; the spill
// engine follows.)
#include <cstring>

#include "src/slab/slab_internal.h"

namespace znslab::slab {

using namespace detail;

const char* spill_target_name(SpillTarget t) noexcept {
  switch (t) {
    case SpillTarget::kNone: return "none";
    case SpillTarget::kZns: return "zns";
    case SpillTarget::kOverflow: return "overflow";
  }
  return "?";
}

Result<SpillTarget> parse_spill_target(std::string_view s) noexcept {
  if (s == "none") return SpillTarget::kNone;
  if (s == "zns") return SpillTarget::kZns;
  if (s == "overflow") return SpillTarget::kOverflow;
  return Status(Code::kInvalidArgument, "spill target must be one of none, zns, overflow");
}

const char* spill_unit_name(SpillUnit u) noexcept {
  return u == SpillUnit::kEpoch ? "epoch" : "page";
}

Result<SpillUnit> parse_spill_unit(std::string_view s) noexcept {
  if (s == "epoch") return SpillUnit::kEpoch;
  if (s == "page") return SpillUnit::kPage;
  return Status(Code::kInvalidArgument, "spill unit must be one of epoch, page");
}

// ---- pins -------------------------------------------------------------------------

void SlabAllocator::PinGuard::reset() noexcept {
  if (!im_) return;
  im_->slabs[slab_].pins.fetch_sub(1, std::memory_order_release);
  im_ = nullptr;
  ptr_ = nullptr;
}

SlabAllocator::PinGuard& SlabAllocator::PinGuard::operator=(PinGuard&& o) noexcept {
  if (this != &o) {
    reset();
    im_ = o.im_;
    slab_ = o.slab_;
    ptr_ = o.ptr_;
    o.im_ = nullptr;
  }
  return *this;
}

Result<SlabAllocator::PinGuard> SlabAllocator::pin(Handle h) noexcept {
  Impl& im = *impl_;
  const HandleFields f = handle_unpack(h.raw);
  for (;;) {
    Result<void*> p = deref(h);
    if (!p) return p.status();
    SlabMeta& m = im.slabs[f.slab_id];
    m.pins.fetch_add(1, std::memory_order_seq_cst);
    // Still resident and still this handle's (re-check after the pin).
    Result<void*> q = deref(h);
    if (q && *q == *p) {
      PinGuard g;
      g.im_ = &im;
      g.slab_ = f.slab_id;
      g.ptr_ = *q;
      return g;
    }
    m.pins.fetch_sub(1, std::memory_order_release);
    if (!q) return q.status();
  }
}

Status SlabAllocator::prefetch(uint32_t epoch) noexcept {
  if (epoch >= kEpochCount)
    return Status(Code::kInvalidArgument, "slab prefetch: epoch must be a ring index < 16");
  return Status::ok();
}

SpillStats SlabAllocator::stats_spill() const noexcept {
  const Impl& im = *impl_;
  SpillStats s;
  s.dram_budget_bytes = im.opts.dram_budget_bytes;
  s.dram_committed_bytes = im.committed_slabs.load(std::memory_order_relaxed) * kSlabBytes;
  return s;
}

}  // namespace znslab::slab
