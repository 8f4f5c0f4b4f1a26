#include "src/pages/subpage.h"

#include <algorithm>
#include <cstring>

namespace znslab::pages {
namespace {

constexpr uint64_t kSubMagic = 0x47504255534e535aull;  // "ZNSSUBPG"

struct SubHeader {
  uint64_t magic;
  uint32_t sub_size;
  uint32_t parent_size;
  uint64_t slots;
  uint8_t reserved[40];
};
static_assert(sizeof(SubHeader) == 64);

constexpr uint32_t kNone = UINT32_MAX;

// With the pager in kEach mode, one sub-page operation must be one commit
// (parent page and table entry together): the pager's own per-call commit
// is suspended for its duration.
struct SuspendEach {
  Pager& p;
  SyncMode saved;
  explicit SuspendEach(Pager& pg) : p(pg), saved(pg.sync_mode()) {
    if (saved == SyncMode::kEach) p.set_sync_mode(SyncMode::kCommit);
  }
  ~SuspendEach() { p.set_sync_mode(saved); }
};

}  // namespace

Result<std::unique_ptr<SubPageAllocator>> SubPageAllocator::attach(Pager& pager, uint32_t sub_size) {
  const uint32_t ps = pager.page_size();
  if (sub_size == 0 || (sub_size & (sub_size - 1)) || sub_size > ps / 2 || ps / sub_size > 64)
    return Status(Code::kInvalidArgument, "subpage: sub_size must be a power of two with page_size/sub_size in [2, 64]");
  if (pager.aux_bytes() < aux_bytes_for(1))
    return Status(Code::kInvalidArgument, "subpage: the pager's aux area is too small (PagerOptions::aux_bytes)");
  std::unique_ptr<SubPageAllocator> a(new SubPageAllocator());
  a->pager_ = &pager;
  a->sub_size_ = sub_size;
  a->per_ = ps / sub_size;
  a->full_ = a->per_ == 64 ? ~0ull : (1ull << a->per_) - 1;
  a->capacity_ = std::min<uint64_t>((pager.aux_bytes() - 64) / 16, kNone - 1);
  a->pos_.assign(a->capacity_, kNone);

  SubHeader h;
  std::memcpy(&h, pager.aux(), sizeof h);
  if (h.magic == 0) {
    std::memset(&h, 0, sizeof h);
    h.magic = kSubMagic;
    h.sub_size = sub_size;
    h.parent_size = ps;
    h.slots = a->capacity_;
    std::memcpy(pager.aux(), &h, sizeof h);
    pager.mark_aux_dirty(0, sizeof h);
    return a;
  }
  if (h.magic != kSubMagic || h.parent_size != ps || h.slots != a->capacity_)
    return Status(Code::kCorrupt, "subpage: the pager's aux area holds no sub-page table of this geometry");
  if (h.sub_size != sub_size) return Status(Code::kInvalidArgument, "subpage: sub_size differs from the persisted table's");
  uint64_t high = 0;
  for (uint64_t s = 0; s < a->capacity_; ++s) {
    const Entry* e = a->entry(s);
    if (e->mask == 0) continue;
    if ((e->mask & ~a->full_) || !pager.is_allocated(e->parent))
      return Status(Code::kCorrupt, "subpage: a table entry names a free parent page or bad bits");
    high = s + 1;
    ++a->parents_;
    a->live_ += uint64_t(__builtin_popcountll(e->mask));
    if (e->mask != a->full_) a->partial_push(uint32_t(s));
  }
  a->next_slot_ = high;
  for (uint64_t s = high; s-- > 0;)
    if (a->entry(s)->mask == 0) a->free_slots_.push_back(uint32_t(s));
  return a;
}

void SubPageAllocator::partial_push(uint32_t slot) noexcept {
  pos_[slot] = uint32_t(partial_.size());
  partial_.push_back(slot);
}

void SubPageAllocator::partial_remove(uint32_t slot) noexcept {
  uint32_t i = pos_[slot];
  uint32_t last = partial_.back();
  partial_[i] = last;
  pos_[last] = i;
  partial_.pop_back();
  pos_[slot] = kNone;
}

Status SubPageAllocator::after_op() noexcept {
  return pager_->sync_mode() == SyncMode::kEach ? pager_->commit() : Status::ok();
}

Result<SubPageId> SubPageAllocator::alloc() noexcept {
  if (partial_.empty()) {
    uint32_t slot;
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
    } else if (next_slot_ < capacity_) {
      slot = uint32_t(next_slot_);
    } else {
      return Status(Code::kOutOfSpace, "subpage::alloc: parent table full (raise the pager's aux_bytes)");
    }
    Result<PageId> parent = [&] {
      SuspendEach se(*pager_);
      return pager_->alloc();
    }();
    if (!parent) return parent.status();
    if (!free_slots_.empty() && free_slots_.back() == slot) free_slots_.pop_back();
    else ++next_slot_;
    Entry* e = entry(slot);
    e->parent = *parent;
    e->mask = 0;
    e->reserved = 0;
    ++parents_;
    partial_push(slot);
  }
  const uint32_t slot = partial_.back();
  Entry* e = entry(slot);
  const unsigned bit = unsigned(__builtin_ctzll(~e->mask));
  e->mask |= 1ull << bit;
  dirty(slot);
  if (e->mask == full_) partial_remove(slot);
  ++live_;
  if (Status s = after_op(); !s) return s;
  return (SubPageId(slot) << 6) | bit;
}

Status SubPageAllocator::free(SubPageId id) noexcept {
  const uint64_t slot = id >> 6, sub = id & 63;
  if (slot >= next_slot_ || sub >= per_) return Status(Code::kOutOfBounds, "subpage::free: no such sub-page id");
  Entry* e = entry(slot);
  const uint64_t bit = 1ull << sub;
  if (!(e->mask & bit)) return Status(Code::kDoubleFree, "subpage::free: sub-page not allocated");
  const bool was_full = e->mask == full_;
  e->mask &= ~bit;
  dirty(slot);
  --live_;
  if (e->mask == 0) {
    if (!was_full) partial_remove(uint32_t(slot));
    {
      SuspendEach se(*pager_);
      (void)pager_->free(e->parent);  // allocated: checked at attach and alloc
    }
    e->parent = 0;
    --parents_;
    free_slots_.push_back(uint32_t(slot));
  } else if (was_full) {
    partial_push(uint32_t(slot));
  }
  return after_op();
}

bool SubPageAllocator::is_allocated(SubPageId id) const noexcept {
  const uint64_t slot = id >> 6, sub = id & 63;
  return slot < next_slot_ && sub < per_ && ((entry(slot)->mask >> sub) & 1);
}

uint8_t* SubPageAllocator::get(SubPageId id) const noexcept {
  if (!is_allocated(id)) return nullptr;
  return pager_->get(entry(id >> 6)->parent) + (id & 63) * sub_size_;
}

std::vector<SubPageId> SubPageAllocator::live_ids() const {
  std::vector<SubPageId> v;
  for (uint64_t s = 0; s < next_slot_; ++s) {
    uint64_t m = entry(s)->mask;
    while (m) {
      v.push_back((s << 6) | uint64_t(__builtin_ctzll(m)));
      m &= m - 1;
    }
  }
  return v;
}

Result<std::vector<SubPageId>> SubPageAllocator::alloc_bulk(size_t n) {
  std::vector<SubPageId> ids;
  ids.reserve(n);
  const SyncMode saved = pager_->sync_mode();
  if (saved == SyncMode::kEach) pager_->set_sync_mode(SyncMode::kCommit);
  for (size_t i = 0; i < n; ++i) {
    auto r = alloc();
    if (!r) {
      for (SubPageId id : ids) (void)free(id);
      pager_->set_sync_mode(saved);
      return r.status();
    }
    ids.push_back(*r);
  }
  pager_->set_sync_mode(saved);
  if (Status s = after_op(); !s) return s;
  return ids;
}

Status SubPageAllocator::free_bulk(const std::vector<SubPageId>& ids) {
  std::vector<SubPageId> sorted(ids);
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    const uint64_t slot = sorted[i] >> 6, sub = sorted[i] & 63;
    if (slot >= next_slot_ || sub >= per_) return Status(Code::kOutOfBounds, "subpage::free_bulk: no such sub-page id");
    if (i > 0 && sorted[i] == sorted[i - 1]) return Status(Code::kDoubleFree, "subpage::free_bulk: duplicate id");
    if (!is_allocated(sorted[i])) return Status(Code::kDoubleFree, "subpage::free_bulk: sub-page not allocated");
  }
  const SyncMode saved = pager_->sync_mode();
  if (saved == SyncMode::kEach) pager_->set_sync_mode(SyncMode::kCommit);
  for (SubPageId id : sorted) (void)free(id);
  pager_->set_sync_mode(saved);
  return after_op();
}

}  // namespace znslab::pages
