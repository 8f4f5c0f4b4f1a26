// The overflow spill target (issue 11, `Options::spill = kOverflow`;
// docs/spill.md "Overflow target"): cold slabs are written as 4 KiB blobs
// into an overflow region (src/overflow, seed 003) instead of zones.
//
// - Spill::loc[id] = kLocOverflow | SlotId (spill_internal.h), so the zone
//   code never mistakes a blob for a zone slot.
// - Blobs are written and read with pwrite/pread through the region's file
//   descriptor (OverflowRegion::write_fd/read_fd): no page of the region's
//   mapping is touched, so spilled bytes never count in the process RSS
//   (the budget is about RSS). The bytes stay in the page cache.
// - Spill::crc[id] is the blob's CRC32C, recorded when it is written and
//   checked when it is read back: a damaged blob makes deref return
//   kCorrupt, never garbage. After a read-back the copy stays (clean copy):
//   if the page's CRC is unchanged when the slab is chosen again, it is
//   decommitted with no write (spill.cpp spill_group, as for zones).
// - No garbage collection: a dead slab or a stale copy frees its blob and
//   the region reuses freed extents (best fit), so device bytes written =
//   spilled bytes (write amplification 1.0).
// - Thread-safety: the region has one owner; every region call is made
//   under OvflState::mu, a leaf lock (Spill::mu -> OvflState::mu).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "src/common/crc32c.h"
#include "src/slab/spill_internal.h"

#ifndef ZNSLAB_SLAB_WITHOUT_ZNS
#include "src/overflow/overflow.h"
#endif

namespace znslab::slab::detail {

#ifndef ZNSLAB_SLAB_WITHOUT_ZNS

struct OvflState {
  std::unique_ptr<overflow::OverflowRegion> region;
  std::string path;
  std::mutex mu;            // leaf: every region call
  uint64_t counted = 0;     // region table bytes last added to Spill::slot_map_bytes
};

void OvflDeleter::operator()(OvflState* o) const noexcept { delete o; }

namespace {

// "123", "4K", "64M", "1G" -> bytes; false if malformed.
bool parse_bytes(const std::string& v, uint64_t* out) {
  if (v.empty()) return false;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (end == v.c_str()) return false;
  uint64_t mul = 1;
  const std::string suf(end);
  if (suf == "K" || suf == "k" || suf == "KiB") mul = 1ull << 10;
  else if (suf == "M" || suf == "m" || suf == "MiB") mul = 1ull << 20;
  else if (suf == "G" || suf == "g" || suf == "GiB") mul = 1ull << 30;
  else if (!suf.empty()) return false;
  *out = uint64_t(n) * mul;
  return true;
}

// Accounts the region's DRAM tables in the budget (Spill::slot_map_bytes:
// for the overflow target it holds the region's tables). OvflState::mu held.
void account_tables(Spill& s, OvflState& ov) {
  const uint64_t now = ov.region->table_bytes();
  if (now >= ov.counted) s.slot_map_bytes.fetch_add(now - ov.counted, std::memory_order_relaxed);
  else s.slot_map_bytes.fetch_sub(ov.counted - now, std::memory_order_relaxed);
  ov.counted = now;
}

void free_blob(Spill& s, uint64_t l) {
  OvflState& ov = *s.ov;
  std::lock_guard<std::mutex> g(ov.mu);
  if (Status st = ov.region->free(l & ~kLocOverflow); !st) set_error(s, "spill overflow free", st);
  account_tables(s, ov);
}

}  // namespace

Status ovfl_init(SlabAllocator::Impl& im) noexcept {
  Spill& s = *im.sp;
  const std::string& spec = im.opts.spill_device;
  if (spec.empty())
    return Status(Code::kInvalidArgument, "slab spill = overflow needs spill_device (the region file path)");
  try {
    auto ov = std::unique_ptr<OvflState, OvflDeleter>(new OvflState());
    overflow::OverflowOptions oo;  // scratch region: reset at open, no msync
    const size_t q = spec.find('?');
    ov->path = spec.substr(0, q);
    if (ov->path.empty())
      return Status::with_message(Code::kInvalidArgument, "slab spill overflow: spill_device '" + spec + "' has no file path");
    if (q != std::string::npos) {
      std::string rest = spec.substr(q + 1);
      while (!rest.empty()) {
        const size_t amp = rest.find('&');
        const std::string kv = rest.substr(0, amp);
        rest = amp == std::string::npos ? "" : rest.substr(amp + 1);
        const size_t eq = kv.find('=');
        const std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
        uint64_t bytes = 0;
        if ((k != "initial_bytes" && k != "max_bytes") || !parse_bytes(v, &bytes))
          return Status::with_message(Code::kInvalidArgument, "slab spill overflow: spill_device '" + spec + "': '" + kv +
                                                                  "' is not initial_bytes=N or max_bytes=N (bytes, K/M/G)");
        (k == "initial_bytes" ? oo.initial_bytes : oo.max_bytes) = bytes;
      }
      if (oo.initial_bytes > oo.max_bytes) oo.initial_bytes = oo.max_bytes;
    }
    auto r = overflow::OverflowRegion::open(ov->path, oo);
    if (!r)
      return Status::with_message(r.status().code(),
                                  "slab spill overflow: region '" + ov->path + "': " + r.status().to_string(),
                                  r.status().sys_errno());
    ov->region = std::move(*r);
    // Batches as for zones: budget / 32, 4..64 slabs (the buffer counts in the budget).
    s.stage_slabs = std::clamp<size_t>(im.opts.dram_budget_bytes / 32 / kSlabBytes, 4, 64);
    auto buf = pages::Reservation::reserve(s.stage_slabs * kSlabBytes, pages::page_size());
    if (!buf) return buf.status();
    s.stage = std::move(*buf);
    if (Status st = reserve_side_tables(s, im.n_slabs); !st) return st;
    s.table_bytes = s.stage.size();
    s.ov = std::move(ov);
    std::lock_guard<std::mutex> g(s.ov->mu);
    account_tables(s, *s.ov);
  } catch (...) {
    return Status(Code::kOutOfMemory, "slab spill overflow state");
  }
  return Status::ok();
}

bool ovfl_flush_batch(SlabAllocator::Impl& im, const SpillMark* b, uint32_t n) noexcept {
  Spill& s = *im.sp;
  OvflState& ov = *s.ov;
  overflow::SlotId slot[64];
  uint32_t sum[64];
  uint32_t written = 0;
  Status st;
  for (uint32_t j = 0; j < n; ++j) sum[j] = crc32c(s.stage.base() + size_t(j) * kSlabBytes, kSlabBytes);
  for (; written < n; ++written) {
    // The mutex per blob, not per batch: a fault-back waits for one 4 KiB
    // pwrite at most, not for a whole batch.
    std::lock_guard<std::mutex> g(ov.mu);
    auto r = ov.region->write_fd(s.stage.base() + size_t(written) * kSlabBytes, kSlabBytes);
    s.spill_ios.fetch_add(1, std::memory_order_relaxed);
    account_tables(s, ov);
    if (!r) {
      st = r.status();
      break;
    }
    slot[written] = *r;
  }
  if (written < n) {
    // The rest stays in DRAM, unmarked (a full region: max_bytes reached).
    s.spill_write_errors.fetch_add(1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> g(s.mu);
      try {
        set_error(s, ("spill write to overflow region '" + ov.path + "'").c_str(), st);
      } catch (...) {
      }
      for (uint32_t j = written; j < n; ++j) im.tags[b[j].id].fetch_and(~kTagSpillBits, std::memory_order_seq_cst);
    }
    s.cv.notify_all();
  }
  bool alive[64];
  std::vector<uint64_t> orphans;  // blobs of slabs that changed meanwhile: freed below
  {
    std::lock_guard<std::mutex> ag(im.arena_mu);
    decommit_written(im, b, written, alive);
    std::lock_guard<std::mutex> g(s.mu);
    for (uint32_t j = 0; j < written; ++j) {
      const uint32_t id = b[j].id;
      if (alive[j]) {
        s.loc[id] = kLocOverflow | slot[j];
        s.crc[id] = sum[j];
        s.spilled_now_bytes.fetch_add(kSlabBytes, std::memory_order_relaxed);
        im.tags[id].fetch_and(~kTagMoving, std::memory_order_seq_cst);
      } else {
        try {
          orphans.push_back(kLocOverflow | slot[j]);
        } catch (...) {
        }
        if (im.tags[id].load(std::memory_order_relaxed) == b[j].tag)
          im.tags[id].fetch_and(~kTagSpillBits, std::memory_order_seq_cst);
      }
    }
    s.spilled_bytes.fetch_add(uint64_t(written) * kSlabBytes, std::memory_order_relaxed);
    s.device_bytes_written.fetch_add(uint64_t(written) * kSlabBytes, std::memory_order_relaxed);
    for (uint64_t l : orphans) free_blob(s, l);
  }
  s.cv.notify_all();
  return written == n;
}

void drop_loc(Spill& s, uint64_t l, bool spilled) {
  if (!loc_is_overflow(l)) {
    drop_copy(s, uint32_t(l >> 32) - 1, uint32_t(l), spilled);
    return;
  }
  if (spilled) s.spilled_now_bytes.fetch_sub(kSlabBytes, std::memory_order_relaxed);
  free_blob(s, l);
}

Status ovfl_read(Spill& s, uint64_t l, void* dst, uint32_t want) noexcept {
  OvflState& ov = *s.ov;
  {
    // Held across the pread: the blob cannot be freed and its extent
    // reused while it is being read.
    std::lock_guard<std::mutex> g(ov.mu);
    size_t len = 0;
    if (Status st = ov.region->read_fd(l & ~kLocOverflow, dst, kSlabBytes, &len); !st) return st;
    if (len != kSlabBytes) return Status(Code::kCorrupt, "slab spill overflow: blob is not 4 KiB");
  }
  if (crc32c(dst, kSlabBytes) != want)
    return Status(Code::kCorrupt, "slab spill overflow: blob CRC32C mismatch (region file damaged)");
  return Status::ok();
}

void ovfl_spilled_ids(SlabAllocator::Impl& im, uint32_t mask, std::vector<uint32_t>& out) {
  Spill& s = *im.sp;
  const uint32_t hwm = std::min(im.hwm_slabs.load(std::memory_order_acquire), im.n_slabs);
  for (uint32_t id = 0; id < hwm; ++id) {
    if (!loc_is_overflow(s.loc[id])) continue;
    const uint32_t t = im.tags[id].load(std::memory_order_relaxed);
    if ((t & kTagSpilled) && ((mask >> tag_epoch(t)) & 1)) out.push_back(id);
  }
}

#else  // ZNSLAB_SLAB_WITHOUT_ZNS: the fuzz build links neither zns/ nor src/overflow.

struct OvflState {};
void OvflDeleter::operator()(OvflState* o) const noexcept { delete o; }
Status ovfl_init(SlabAllocator::Impl&) noexcept {
  return Status(Code::kNotSupported, "slab spill: built without zns (ZNSLAB_SLAB_WITHOUT_ZNS)");
}
bool ovfl_flush_batch(SlabAllocator::Impl&, const SpillMark*, uint32_t) noexcept { return false; }
void drop_loc(Spill& s, uint64_t l, bool spilled) { drop_copy(s, uint32_t(l >> 32) - 1, uint32_t(l), spilled); }
Status ovfl_read(Spill&, uint64_t, void*, uint32_t) noexcept {
  return Status(Code::kNotSupported, "slab spill: built without zns");
}
void ovfl_spilled_ids(SlabAllocator::Impl&, uint32_t, std::vector<uint32_t>&) {}

#endif

}  // namespace znslab::slab::detail
