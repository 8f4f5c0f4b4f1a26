// The page provider (seed 004, "mappedpages"): a file of fixed-size pages,
// memory-mapped, with crash-consistent allocation state, plus a read-only
// opener for other processes. The sub-page allocator on top of it is in
// src/pages/subpage.h. docs/pages.md has the on-disk format.
//
// File layout (offsets in bytes; every area starts on a 4 KiB boundary):
//   0      superblock copy A   (magic, version, page size, geometry,
//                               active-meta selector, generation, CRC32C)
//   4096   superblock copy B   (the same record; written after A)
//   8192   meta area 0         header + per-4-KiB-chunk CRC table + body
//   ...    meta area 1         (same size)
//   data_off  data pages: page id i at data_off + i * page_size
// A meta body is the page bitmap (1 bit per page of max_pages, 1 =
// allocated) followed by `aux_bytes` of client state (the sub-page table).
//
// Commit (LMDB's twin meta pages, as the seed does; fixes the seed's single
// meta page that capped it at ~32 K pages): copy the chunks changed since
// the inactive copy was last written into it, recompute their CRCs and the
// header CRC, msync it, then write and msync superblock A, then B. A crash
// (kill -9 or power loss) at any point leaves the last committed state:
// either the selector still names the old copy, or copy A is torn and copy
// B names the old copy.
//
// Scaling: the in-memory allocation map is the bitmap plus summary levels
// (one bit per 64-bit word of the level below: "this word has a free
// page"), so alloc finds the lowest free page in O(levels) = O(log64 n)
// and free is O(1) amortized; 2^24 pages take 2 MiB of bitmap per copy
// (metadata ~0.01 % of the file at 4 KiB pages).
//
// Pointers: the whole max_pages extent is reserved as address space at
// open (PROT_NONE) and the file is mapped over it with MAP_FIXED as it
// grows, so a pointer from get() stays valid until the Pager is destroyed.
//
// Thread-safety: a Pager is single-writer: callers serialise every
// non-const call (and const calls concurrent with them). get() pointers
// may be used from any thread. ReadOnlyPager is a separate object per
// reader (any process), same rule.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "src/common/counters.h"
#include "src/common/status.h"

namespace znslab::pages {

// A data page index, 0 .. max_pages-1. Stable for the life of the file.
using PageId = uint32_t;

// When the allocation state reaches the disk.
//   kNone:   commit() writes and flips the meta copies but never msyncs:
//            survives kill -9 of the process (page cache), not power loss.
//   kCommit: commit() msyncs the meta copy and both superblocks (default).
//   kEach:   every alloc/free/bulk call ends with a commit().
enum class SyncMode : uint8_t { kNone, kCommit, kEach };
// "none" | "commit" | "each"; false if unknown.
bool parse_sync_mode(const std::string& s, SyncMode* out) noexcept;
const char* sync_mode_name(SyncMode m) noexcept;

// The system-call boundaries of commit(), in order; a test hook is called
// after each (crash-injection tests kill the process there).
enum class CommitStep : uint8_t {
  kBegin,           // nothing written yet
  kMetaWritten,     // inactive meta copy written (not yet synced)
  kMetaSynced,      // ... msync'd
  kSuperAWritten,   // superblock A names the new copy
  kSuperASynced,
  kSuperBWritten,   // superblock B names it too
  kSuperBSynced,    // commit complete
};
inline constexpr int kCommitSteps = 7;

struct PagerOptions {
  uint32_t page_size = 4096;        // bytes; a power of two >= 1024 (new files)
  uint32_t max_pages = 1u << 20;    // ceiling on data pages (new files); address space reserved for it
  uint32_t initial_pages = 256;     // data pages created with a new file
  uint32_t grow_pages = 0;          // growth step in pages; 0 = double, at least 256, at most 2^18
  uint64_t aux_bytes = 0;           // client state persisted with each commit (new files)
  SyncMode sync = SyncMode::kCommit;
  // fallocate every range the file grows by (and the initial file), so a
  // write to a page can never fault with SIGBUS on a full filesystem; off by
  // default: a 2^24-page pager is meant to stay sparse.
  bool preallocate = false;
  bool create = true;               // create the file if absent
  // Test hook: called after each CommitStep (nullptr = none).
  void (*commit_hook)(CommitStep step, void* arg) = nullptr;
  void* commit_hook_arg = nullptr;
};

// Counters of one Pager (values; cheap to read).
// A Pager's counters (values; cheap to read), declared once (src/common/counters.h): the struct, the JSON
// keys, schema entries and docs table. X(type, field, json key, unit, meaning).
#define ZNSLAB_PAGER_STATS(X) \
  X(uint64_t, page_count, "page_count", "pages", "current: data pages in the file") \
  X(uint64_t, allocated, "allocated", "pages", "current: data pages allocated") \
  X(uint64_t, peak_allocated, "peak_allocated", "pages", "maximum of allocated") \
  X(uint64_t, generation, "generation", "", "last committed generation") \
  X(uint64_t, commits, "commits", "count", "commits") \
  X(uint64_t, grows, "grows", "count", "file growths") \
  X(uint64_t, meta_chunks_written, "meta_chunks_written", "chunks", "4 KiB metadata chunks copied by commits") \
  X(uint64_t, file_bytes, "file_bytes", "bytes", "current: st_size = data_off + page_count x page_size") \
  X(uint64_t, metadata_file_bytes, "metadata_file_bytes", "bytes", "current: superblocks + both meta areas (data_off)") \
  X(uint64_t, metadata_mem_bytes, "metadata_mem_bytes", "bytes", "current: working bitmap, summaries, dirty sets, aux in memory")

struct PagerStats {
  ZNSLAB_PAGER_STATS(ZNSLAB_COUNTER_FIELD)
};
ZNSLAB_COUNTER_FUNCTIONS(PagerStats, ZNSLAB_PAGER_STATS)

class Pager {
 public:
  ~Pager();
  Pager(const Pager&) = delete;
  Pager& operator=(const Pager&) = delete;

  // Opens `path`, creating it (opts.create) with opts' geometry when it is
  // absent or empty. An existing file keeps its own geometry; opts.page_size
  // must match it. Recovery: a superblock copy failing its CRC falls back to
  // the other; the selected meta copy failing its CRC falls back to the
  // other (the previous commit). Errors: kInvalidArgument (bad options),
  // kCorrupt (both superblocks or both meta copies invalid; the context says
  // which), kNotFound, kIoError, kOutOfMemory (address space).
  static Result<std::unique_ptr<Pager>> open(const std::string& path, const PagerOptions& opts);

  // Allocates the lowest free page, growing the file (ftruncate + MAP_FIXED
  // mapping) when none is free. Errors: kOutOfSpace (max_pages allocated),
  // kIoError (growth failed; nothing changed).
  Result<PageId> alloc() noexcept;
  // Errors: kOutOfBounds (id >= page_count), kDoubleFree (not allocated).
  Status free(PageId id) noexcept;
  // All or nothing: n pages, or an error and no allocation change (the file
  // may have grown). Errors: kOutOfSpace, kIoError.
  Result<std::vector<PageId>> alloc_bulk(size_t n);
  // All or nothing: every id is checked (range, allocated, no duplicates)
  // before any is freed. Errors: kOutOfBounds, kDoubleFree.
  Status free_bulk(const std::vector<PageId>& ids);

  // The page's memory (page_size bytes), or nullptr when id >= page_count.
  // Valid until the Pager is destroyed (growth never moves it).
  uint8_t* get(PageId id) const noexcept {
    return id < page_count_ ? base_ + data_off_ + uint64_t(id) * page_size_ : nullptr;
  }
  bool is_allocated(PageId id) const noexcept {
    return id < page_count_ && ((bitmap()[id >> 6] >> (id & 63)) & 1);
  }

  // Writes the current allocation state (bitmap + aux) as the new committed
  // state (see the file comment). Errors: kIoError (msync); on error the
  // previous committed state stays selected.
  Status commit() noexcept;

  // Client state persisted with each commit (aux_bytes bytes, zero in a new
  // file). Call mark_aux_dirty for every byte range changed before the next
  // commit, or the change is not persisted.
  uint8_t* aux() noexcept { return reinterpret_cast<uint8_t*>(body_.data()) + bitmap_bytes_; }
  const uint8_t* aux() const noexcept { return reinterpret_cast<const uint8_t*>(body_.data()) + bitmap_bytes_; }
  uint64_t aux_bytes() const noexcept { return aux_bytes_; }
  void mark_aux_dirty(uint64_t offset, uint64_t len) noexcept { mark_dirty(bitmap_bytes_ + offset, len); }

  uint32_t page_size() const noexcept { return page_size_; }
  uint32_t page_count() const noexcept { return page_count_; }
  uint32_t max_pages() const noexcept { return max_pages_; }
  uint64_t allocated() const noexcept { return allocated_; }
  SyncMode sync_mode() const noexcept { return sync_; }
  void set_sync_mode(SyncMode m) noexcept { sync_ = m; }
  PagerStats stats() const noexcept;

 private:
  Pager() = default;
  const uint64_t* bitmap() const noexcept { return body_.data(); }
  uint64_t* bitmap() noexcept { return body_.data(); }
  void mark_dirty(uint64_t body_off, uint64_t len) noexcept;
  bool word_has_free(uint64_t w) const noexcept;
  void summary_update(uint64_t w) noexcept;
  void rebuild_summary() noexcept;
  int64_t find_free() const noexcept;
  Status grow(uint64_t min_new_pages) noexcept;
  Status maybe_sync_each() noexcept;
  void hook(CommitStep s) noexcept {
    if (hook_) hook_(s, hook_arg_);
  }

  int fd_ = -1;
  uint8_t* base_ = nullptr;       // reservation start (file offset 0)
  uint64_t reserved_bytes_ = 0;
  uint64_t mapped_bytes_ = 0;     // file bytes mapped (== file size)
  uint32_t page_size_ = 0, max_pages_ = 0, page_count_ = 0, grow_pages_ = 0;
  bool preallocate_ = false;
  uint64_t data_off_ = 0, meta_off_[2] = {0, 0}, meta_bytes_ = 0, meta_hdr_bytes_ = 0;
  uint64_t bitmap_bytes_ = 0, aux_bytes_ = 0, body_bytes_ = 0, nchunks_ = 0;
  uint64_t allocated_ = 0, peak_allocated_ = 0;
  uint32_t active_ = 0;           // committed meta copy
  uint64_t generation_ = 0;       // committed generation
  SyncMode sync_ = SyncMode::kCommit;
  void (*hook_)(CommitStep, void*) = nullptr;
  void* hook_arg_ = nullptr;
  std::vector<uint64_t> body_;                // bitmap words, then aux
  std::vector<std::vector<uint64_t>> levels_;  // summaries: levels_[0] over bitmap words
  std::vector<uint64_t> dirty_[2];            // chunk bitsets: changed since copy k was written
  uint64_t commits_ = 0, grows_ = 0, chunks_written_ = 0;
};

// A read-only view of a pager file, for another process (or thread): maps
// the file PROT_READ over its own address-space reservation and reads the
// committed allocation state. refresh() picks up growth (file size) and new
// commits; between refreshes the view is a fixed snapshot of the state.
// Errors of open: as Pager::open (kCorrupt, kNotFound, kIoError).
class ReadOnlyPager {
 public:
  ~ReadOnlyPager();
  ReadOnlyPager(const ReadOnlyPager&) = delete;
  ReadOnlyPager& operator=(const ReadOnlyPager&) = delete;

  static Result<std::unique_ptr<ReadOnlyPager>> open(const std::string& path);
  // Maps any growth and loads the committed state the superblocks name now.
  // A meta copy being rewritten concurrently fails its CRC: retried, then
  // kBusy. Errors: kBusy, kCorrupt, kIoError.
  Status refresh() noexcept;

  uint64_t generation() const noexcept { return generation_; }
  uint32_t page_count() const noexcept { return page_count_; }  // committed
  uint64_t allocated() const noexcept { return allocated_; }
  uint32_t page_size() const noexcept { return page_size_; }
  bool is_allocated(PageId id) const noexcept {
    return id < page_count_ && ((bitmap_[id >> 6] >> (id & 63)) & 1);
  }
  // The page's memory, or nullptr when id is beyond what is mapped.
  const uint8_t* get(PageId id) const noexcept {
    uint64_t off = data_off_ + uint64_t(id) * page_size_;
    return off + page_size_ <= mapped_bytes_ ? base_ + off : nullptr;
  }
  // The aux area of the committed state (aux_bytes bytes).
  const uint8_t* aux() const noexcept { return aux_.data(); }
  uint64_t aux_bytes() const noexcept { return aux_.size(); }
  uint64_t mapped_bytes() const noexcept { return mapped_bytes_; }

 private:
  ReadOnlyPager() = default;
  int fd_ = -1;
  uint8_t* base_ = nullptr;
  uint64_t reserved_bytes_ = 0, mapped_bytes_ = 0;
  uint32_t page_size_ = 0, page_count_ = 0;
  uint64_t data_off_ = 0, generation_ = 0, allocated_ = 0;
  std::vector<uint64_t> bitmap_;
  std::vector<uint8_t> aux_;
  std::vector<uint8_t> scratch_;
};

}  // namespace znslab::pages
