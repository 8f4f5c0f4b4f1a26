// The sub-page allocator (seed 004, "SubPageAllocator"): divides pages of a
// Pager (the parents) into fixed-size sub-pages, one u64 bitmask per parent
// (bit i = sub-page i allocated), so parent/sub is between 2 and 64. A
// parent page is taken from the pager when no partially used parent has a
// free sub-page and returned to it when its last sub-page is freed.
//
// Beyond the seed (whose sub-page state is in memory only): the parent
// table lives in the pager's aux area and is committed with the pager's
// allocation bitmap (Pager::commit), so a reopen (after a clean close or a
// kill -9) finds exactly the committed sub-allocations, and the parent
// pages they live in are allocated in the same committed state.
//
// Aux layout (docs/pages.md): a 64-byte header {magic "ZNSSUBPG", sub_size,
// parent_size, slots} then `slots` entries of 16 bytes {u64 mask, u32
// parent page, u32 reserved}; an entry is in use iff mask != 0. A
// SubPageId is (entry index << 6) | sub index: stable across reopen.
//
// Fast paths (alloc/free) do no syscall and no heap allocation unless a
// parent page is taken from (or given back to) the pager, which may grow
// the file. Thread-safety: none; one owner, as the Pager.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "src/common/status.h"
#include "src/pages/pager.h"

namespace znslab::pages {

using SubPageId = uint64_t;

class SubPageAllocator {
 public:
  // Bytes of pager aux area needed for `parents` parent slots.
  static constexpr uint64_t aux_bytes_for(uint64_t parents) { return 64 + 16 * parents; }

  // Attaches to `pager` (which must outlive it) with sub-pages of `sub_size`
  // bytes: a power of two with pager.page_size() / sub_size in [2, 64].
  // A pager whose aux area already holds a table resumes it (sub_size must
  // match). Errors: kInvalidArgument (sizes; aux area smaller than one
  // slot), kCorrupt (the table names a parent the bitmap says is free, or a
  // bad header).
  static Result<std::unique_ptr<SubPageAllocator>> attach(Pager& pager, uint32_t sub_size);

  // Errors: kOutOfSpace (no parent slot left in the aux table, or the pager
  // is full), kIoError (pager growth).
  Result<SubPageId> alloc() noexcept;
  // Errors: kOutOfBounds (no such slot/sub index), kDoubleFree.
  Status free(SubPageId id) noexcept;
  // All or nothing, as Pager::alloc_bulk / free_bulk.
  Result<std::vector<SubPageId>> alloc_bulk(size_t n);
  Status free_bulk(const std::vector<SubPageId>& ids);

  bool is_allocated(SubPageId id) const noexcept;
  // sub_size bytes, or nullptr for an id that is not allocated.
  uint8_t* get(SubPageId id) const noexcept;
  // Every allocated id, ascending.
  std::vector<SubPageId> live_ids() const;

  uint32_t sub_size() const noexcept { return sub_size_; }
  uint32_t per_parent() const noexcept { return per_; }
  uint64_t live() const noexcept { return live_; }
  uint64_t parents() const noexcept { return parents_; }
  uint64_t slot_capacity() const noexcept { return capacity_; }
  Pager& pager() noexcept { return *pager_; }

 private:
  struct Entry {
    uint64_t mask;
    uint32_t parent;
    uint32_t reserved;
  };
  static_assert(sizeof(Entry) == 16);
  SubPageAllocator() = default;
  Entry* entry(uint64_t slot) const noexcept {
    return reinterpret_cast<Entry*>(const_cast<uint8_t*>(pager_->aux()) + 64 + 16 * slot);
  }
  void dirty(uint64_t slot) noexcept { pager_->mark_aux_dirty(64 + 16 * slot, 16); }
  void partial_push(uint32_t slot) noexcept;
  void partial_remove(uint32_t slot) noexcept;
  Status after_op() noexcept;

  Pager* pager_ = nullptr;
  uint32_t sub_size_ = 0, per_ = 0;
  uint64_t full_ = 0, capacity_ = 0, next_slot_ = 0, live_ = 0, parents_ = 0;
  std::vector<uint32_t> partial_;    // slots with a free sub-page (LIFO)
  std::vector<uint32_t> pos_;        // slot -> index in partial_, or UINT32_MAX
  std::vector<uint32_t> free_slots_;  // unused entries below next_slot_
};

}  // namespace znslab::pages
