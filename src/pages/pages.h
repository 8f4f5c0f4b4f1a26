// src/pages: the OS memory boundary. The only code in znslab that calls mmap,
// munmap, madvise or ftruncate for allocator memory (DESIGN.md, "Layering
// rules"; mimalloc's prim.h is the model). Everything above asks it. The
// file-backed layers live here too: src/pages/pager.h (the page provider and
// its sub-page allocator, seed 004); src/overflow asks the calls below for
// mremap, msync, ftruncate and fallocate.
//
// Preconditions are stated per call; a violated precondition returns
// kInvalidArgument, never aborts. Every call returns errno through Status.
// Thread-safety: all functions are safe to call concurrently (they are thin
// wrappers over thread-safe syscalls plus relaxed atomic counters).
// None of these calls belongs on an allocate/free fast path: callers batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "src/common/status.h"

namespace znslab::pages {

// The base page size (sysconf(_SC_PAGESIZE)), bytes. 4096 on x86-64.
size_t page_size() noexcept;
// The transparent huge page size, bytes (2 MiB on x86-64; read from
// /sys/kernel/mm/transparent_hugepage/hpage_pmd_size, 2 MiB if unreadable).
size_t huge_page_size() noexcept;
// THP mode from /sys/kernel/mm/transparent_hugepage/enabled: "always",
// "madvise", "never", or "unknown".
const char* thp_mode() noexcept;

// A reserved range of anonymous virtual memory: PROT_READ|PROT_WRITE,
// MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE. No physical page is committed
// until first touched (first-touch fault, ~1.6 us per 4 KiB here).
// Move-only; the destructor unmaps.
class Reservation {
 public:
  Reservation() = default;
  Reservation(Reservation&&) noexcept;
  Reservation& operator=(Reservation&&) noexcept;
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;
  ~Reservation();

  // Reserves `bytes` (rounded up to the page size) at an address aligned to
  // `alignment` (a power of two >= page size; 2 MiB lets THP back it).
  // Errors: kInvalidArgument (bytes == 0, bad alignment), kOutOfMemory
  // (ENOMEM from mmap).
  static Result<Reservation> reserve(size_t bytes, size_t alignment) noexcept;

  uint8_t* base() const noexcept { return base_; }
  size_t size() const noexcept { return size_; }
  bool contains(const void* p) const noexcept {
    auto* b = static_cast<const uint8_t*>(p);
    return b >= base_ && b < base_ + size_;
  }

 private:
  uint8_t* base_ = nullptr;
  size_t size_ = 0;
};

// Returns the physical pages of [addr, addr+bytes) to the OS with
// madvise(MADV_DONTNEED); the range stays mapped and reads back as zeros.
// Cost here: ~1.7 us for one 4 KiB page, ~0.22 us/page over a 2 MiB range,
// 6.5 us for a whole huge page (brief, "This machine").
// Preconditions: addr page-aligned, bytes > 0 and a multiple of the page size.
// Errors: kInvalidArgument, kIoError (errno from madvise).
Status decommit(void* addr, size_t bytes) noexcept;

// One page-aligned range of decommit_ranges.
struct Range {
  void* addr;
  size_t bytes;
};

// decommit() of n ranges with one process_madvise(2) per up to 64 ranges
// (MADV_DONTNEED on the calling process; the kernel flushes the TLB once
// per call, not once per range: 64 scattered 4 KiB pages took 0.8 us/page
// here against 2.4 us/page with one madvise each, with a second thread of
// the process alive). Kernels that refuse it (no process_madvise, or no
// MADV_DONTNEED through it: EINVAL, ENOSYS, EPERM) get one madvise per
// range from then on. `syscalls` (optional) gets the number of madvise and
// process_madvise calls made. The pidfd of the process is opened once and again
// after a fork (checked by pid; the parent's stays open in the child).
// Preconditions: as decommit for every range. Errors: kInvalidArgument (a
// range unaligned; nothing done), kIoError (errno from madvise; the other
// ranges are still decommitted). Thread-safe.
Status decommit_ranges(const Range* ranges, size_t n, uint64_t* syscalls = nullptr) noexcept;

// Backs [addr, addr+bytes) with zeroed writable pages now, in one call
// (madvise(MADV_POPULATE_WRITE), Linux >= 5.14): batches the first-touch
// faults an allocator would otherwise take one page at a time. Preconditions
// as decommit. Errors: kInvalidArgument, kNotSupported (kernel without
// MADV_POPULATE_WRITE), kOutOfMemory, kIoError.
Status populate_write(void* addr, size_t bytes) noexcept;

// MADV_HUGEPAGE (on) or MADV_NOHUGEPAGE (off) over a range. With THP in
// `madvise` mode (this machine) huge pages back only ranges advised `on`.
// Preconditions as decommit. Errors: kInvalidArgument, kNotSupported, kIoError.
Status advise_hugepage(void* addr, size_t bytes, bool on) noexcept;

// madvise(MADV_COLD) over a range (Linux >= 5.4): its pages move to the
// inactive LRU. Used on one still-mapped 4 KiB page of a transparent huge
// page whose other part was decommitted: the kernel then splits the huge
// page at once and frees the decommitted part (without it the 2 MiB stay
// allocated, outside RSS, until the deferred-split shrinker runs under
// memory pressure; measured on kernel 6.18, docs/slab.md "issue 14").
// Preconditions as decommit. Errors: kInvalidArgument, kNotSupported
// (EINVAL: kernel without MADV_COLD), kIoError.
Status advise_cold(void* addr, size_t bytes) noexcept;

// Shared file mapping of [offset, offset+bytes) of `fd`; writable selects
// PROT_READ|PROT_WRITE, else PROT_READ. Preconditions: fd >= 0, offset
// page-aligned, bytes > 0. Errors: kInvalidArgument, kOutOfMemory (ENOMEM,
// e.g. vm.max_map_count reached), kIoError.
Result<void*> map_file(int fd, uint64_t offset, size_t bytes, bool writable) noexcept;

// munmap of a mapping made by map_file. Errors: kInvalidArgument, kIoError.
Status unmap(void* addr, size_t bytes) noexcept;

// Maps [offset, offset+bytes) of `fd` shared, read/write, at exactly `addr`
// (MAP_FIXED), replacing what was there. For growing a file mapping inside a
// Reservation the caller owns without ever moving it (src/varslot's remap
// mode): the Reservation's destructor unmaps the file pages too.
// Preconditions: fd >= 0, addr and offset page-aligned, bytes > 0 and the
// whole range inside the caller's Reservation (not checked: MAP_FIXED over
// someone else's mapping would destroy it). Errors: kInvalidArgument,
// kOutOfMemory, kIoError.
Status map_file_at(void* addr, int fd, uint64_t offset, size_t bytes) noexcept;

// A shared anonymous mapping (MAP_SHARED|MAP_ANONYMOUS, read/write, zero
// filled) that children created by fork() afterwards share with the caller:
// control blocks of multi-process workloads and tests. Release with unmap().
// Errors: kInvalidArgument (bytes == 0), kOutOfMemory.
Result<void*> map_shared_anonymous(size_t bytes) noexcept;

// memfd_create(name, MFD_CLOEXEC): an anonymous shared-memory file of size
// 0 (grow it with truncate_file, map it with map_file/map_file_at) that
// has no path: other processes reach it only through the descriptor, by
// inheritance across fork (and across exec once the caller clears
// FD_CLOEXEC) or SCM_RIGHTS. `name` shows in /proc/PID/fd only. The caller
// owns (closes) the returned fd. Errors: kNotSupported (ENOSYS), kIoError
// (errno: EMFILE, ENOMEM, ...).
Result<int> create_memfd(const char* name) noexcept;

// ftruncate(fd, bytes): grows (sparse) or shrinks a data file.
// Errors: kInvalidArgument (fd < 0), kIoError (errno: ENOSPC, EFBIG, ...).
Status truncate_file(int fd, uint64_t bytes) noexcept;

// ---- file-backed memory (the pager and the overflow region, seeds 003/004) --

// Reserves `bytes` (rounded up to the page size) of address space with
// PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE: nothing is committed
// and any access faults until a file is mapped over part of it with
// map_file_fixed. Release with unmap. Errors: kInvalidArgument (bytes == 0),
// kOutOfMemory.
Result<void*> reserve_address_space(size_t bytes) noexcept;

// Shared file mapping of [offset, offset+bytes) of `fd` at exactly `addr`
// (MAP_FIXED), replacing what is there (normally a PROT_NONE reservation).
// The pager grows this way so that page pointers never move.
// Preconditions: addr and offset page-aligned, fd >= 0, bytes > 0.
// Errors: kInvalidArgument, kOutOfMemory, kIoError.
Status map_file_fixed(void* addr, int fd, uint64_t offset, size_t bytes, bool writable) noexcept;

// mremap(addr, old_bytes, new_bytes, may_move ? MREMAP_MAYMOVE : 0): the
// overflow region's growth (seed 003). Returns the (possibly new) address;
// every pointer into the old range is invalid when it moved.
// Preconditions: addr page-aligned, old_bytes and new_bytes > 0.
// Errors: kInvalidArgument, kOutOfMemory (ENOMEM: cannot grow in place
// without may_move, or no address space), kIoError.
Result<void*> remap(void* addr, size_t old_bytes, size_t new_bytes, bool may_move) noexcept;

// msync(MS_SYNC) of the OS pages covering [addr, addr+bytes): writes dirty
// pages of a shared file mapping back and waits. addr need not be aligned
// (it is rounded down to the page). Errors: kInvalidArgument, kIoError.
Status sync_range(const void* addr, size_t bytes) noexcept;

// fallocate(fd, 0, offset, bytes): allocates blocks so later page faults
// cannot hit ENOSPC (SIGBUS). Errors: kInvalidArgument, kNotSupported
// (the filesystem refuses), kIoError (ENOSPC, ...).
Status allocate_file(int fd, uint64_t offset, uint64_t bytes) noexcept;

// Access-pattern advice for a range (madvise). kRandom turns read-ahead
// off (VmFlags "rr" in /proc/self/smaps), kSequential raises it ("sr").
// kPopulateWrite (MADV_POPULATE_WRITE, Linux 5.14) faults the range in
// writable now, so later first writes take no page fault (~1.6 us/4 KiB
// here); it is an action, not a VmFlag.
enum class Advice : uint8_t { kNormal, kRandom, kSequential, kWillNeed, kPopulateWrite };
// Preconditions as decommit. Errors: kInvalidArgument, kIoError.
Status advise(void* addr, size_t bytes, Advice advice) noexcept;

// The VmFlags line of /proc/self/smaps for the mapping containing `addr`
// ("rd wr sh mr mw me ms rr sd"), or "" when not found. Not a fast path
// (reads all of smaps): for tests and the overflow region's advice check.
std::string vm_flags(const void* addr);

// Size of the file behind `fd` (fstat st_size), bytes.
// Errors: kInvalidArgument (fd < 0), kIoError.
Result<uint64_t> file_size(int fd) noexcept;

// Process-wide counts of the calls above since start (relaxed atomics).
struct OsCounters {
  uint64_t mmap_calls = 0;
  uint64_t munmap_calls = 0;
  uint64_t madvise_calls = 0;
  uint64_t madvise_bytes = 0;
  uint64_t madvise_failures = 0;
  uint64_t ftruncate_calls = 0;
  uint64_t mremap_calls = 0;
  uint64_t msync_calls = 0;
  uint64_t fallocate_calls = 0;
};
OsCounters os_counters() noexcept;

// Resident set size of this process from /proc/self/statm (resident pages
// x page size), bytes; 0 if unreadable. One open/read/close: not fast path.
uint64_t rss_bytes() noexcept;

}  // namespace znslab::pages
