// src/varslot: variable-size slot pools in a shared-memory segment that grow
// by extents across processes (seed 000, "Phase 007: Extent-Based Slot Pool
// Growth"; layout in layout.h).
//
// One process is the host: it creates the segment (Pool::create) and is the
// only one that grows it. Guests attach (Pool::attach) by path, from any
// process (forked or not). Every process, host or guest, allocates and
// frees. Allocation tries the size class's extents in order; when all are
// full a guest rings the host's doorbell (a futex on the header) and waits
// for the extent count to change; when the host refuses (extent limit or
// size cap) the allocation falls back to the next larger class (counted).
//
// Addresses: a pointer returned by ptr() stays valid until its slot is freed
// or this Pool closes, in every growth mode. In `remap` mode each process
// reserves max_bytes of address space once (PROT_NONE-like, no memory) and
// extends its view of the one file inside it (mmap MAP_FIXED of the new
// tail: the munmap/mmap variant of the seed's "remap"), so the view never
// moves: mremap(MREMAP_MAYMOVE) would invalidate pointers other threads of
// the process hold (the seed's first implementation's use-after-remap bug),
// and keeping old views alive would leak mappings (its other bug).
// No process ever maps or touches bytes beyond the file size it has read
// from the header after an acquire of extent_count (no SIGBUS).
//
// Thread-safety: a Pool may be used by many threads of its process at once
// (alloc/free/ptr/transfer are lock-free; mapping a new extent takes a
// process-local mutex). Handles are plain values; any process may free a
// handle another one allocated (pass it, or transfer() it first so the
// recorded owner follows it).
//
// Errors: kOutOfMemory (no slot in the class or any larger one, growth
// refused or the host did not answer within grow_wait_ms), kInvalidArgument
// (size 0 or larger than the largest class), kInvalidHandle (class, extent
// or slot out of range), kStaleHandle (generation mismatch: the slot was
// freed and maybe reused), kDoubleFree (slot already free with the next
// generation), kCorrupt (attach/verify: bad magic, version, extent),
// kIoError (errno of the OS call), kBusy (a live host already owns the
// segment).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "src/common/counters.h"
#include "src/common/status.h"
#include "src/pages/pages.h"
#include "src/varslot/layout.h"

namespace znslab::varslot {

// A slot handle: class (bits 0-3), extent (4-7), slot (8-31), generation
// (32-63; only the low generation_bits are used). raw == 0 is never valid
// (generations start at 1).
struct Handle {
  uint64_t raw = 0;
  uint32_t class_idx() const noexcept { return uint32_t(raw & 0xf); }
  uint32_t extent() const noexcept { return uint32_t(raw >> 4) & 0xf; }
  uint32_t slot() const noexcept { return uint32_t(raw >> 8) & 0xffffff; }
  uint32_t generation() const noexcept { return uint32_t(raw >> 32); }
  static Handle make(uint32_t c, uint32_t e, uint32_t s, uint32_t gen) noexcept {
    return Handle{uint64_t(c) | (uint64_t(e) << 4) | (uint64_t(s) << 8) | (uint64_t(gen) << 32)};
  }
  bool operator==(const Handle&) const = default;
};

// Test-only fault injection: the host process kills itself (SIGKILL) at this
// step of its next growth (host crash during growth, issue 13 tests).
enum class CrashPoint : uint32_t {
  kNone = 0,
  kAfterTruncate,     // file grown, extent not initialised
  kAfterInit,         // extent initialised, offset not published
  kAfterOffset,       // offset published, current_size not bumped
  kAfterSize,         // current_size bumped, extent_count not incremented
};

struct PoolOptions {
  std::string path;  // segment file, e.g. /dev/shm/znslab-varslot-1234 (created, truncated)
  // true: the segment is a memfd (pages::create_memfd; `path` is only its
  // name, may be empty) that guests reach through its descriptor
  // (segment_fd(): inherited across fork, or across exec after clearing
  // FD_CLOEXEC with the number passed on the command line; attach_fd).
  // remap and fixed modes only: extent_files would need one new descriptor
  // per growth handed to every running guest (kNotSupported).
  bool memfd = false;
  GrowthMode mode = GrowthMode::kRemap;
  // Slot sizes, bytes, ascending, each a multiple of 64 (seed's motivating
  // case scaled: 1 KiB, 16 KiB, 256 KiB, 4 MiB).
  std::vector<uint32_t> class_sizes{1024, 16384, 262144, 4194304};
  uint64_t extent_bytes = 16ull << 20;  // slot bytes per extent (>= the largest class)
  uint32_t max_extents = kMaxExtents;   // per class, 1..16
  // Extents created at create(), bytes of slot data: whole extents, handed
  // to classes round robin from the smallest (fixed mode: ignored, see
  // fixed_extents). 0 = none: every class grows on first use.
  uint64_t initial_bytes = 32ull << 20;
  // fixed mode: extents per class created at create() (1..max_extents).
  uint32_t fixed_extents = kMaxExtents;
  // Cap on current_size, bytes; also the address space each process
  // reserves in remap/fixed mode.
  uint64_t max_bytes = 4ull << 30;
  uint32_t generation_bits = 32;        // 1..32 (narrow values for wrap tests)
  uint32_t grow_wait_ms = 2000;         // how long a guest waits for the host
  CrashPoint crash_at = CrashPoint::kNone;  // tests only
  // remap mode: after each growth the host extends the file by one more
  // (largest) extent and faults in that extent's header page
  // (MADV_POPULATE_WRITE), off the growth's critical section, so the next
  // growth is a header write + publication (no ftruncate, no page fault).
  // The staged tail lies beyond current_size: no process maps or touches
  // it before it is published; it is sparse (one page) and a take_over
  // truncates it. The file is then up to one extent longer than
  // current_size. Process-local (also for take_over).
  bool stage_growth = true;
  // 1..99: a growth runs under SCHED_FIFO at this priority (the growing
  // thread is raised at its start and restored after the waiters are
  // woken), so CFS tasks -- the machine's other load, or the guests it
  // wakes -- cannot preempt it mid-growth. 0 = off. Needs CAP_SYS_NICE;
  // when refused the growth runs at normal priority (grow_rt_refused()).
  // Process-local (also for take_over).
  int grow_rt_priority = 0;
};

// Per-process counters of this Pool object plus the segment's shared ones,
// declared once (src/common/counters.h): the struct, the JSON keys, schema
// entries and docs table. X(type, field, json key, unit, meaning).
#define ZNSLAB_VARSLOT_POOL_STATS(X) \
  X(uint64_t, growth_events, "growth_events", "count", "shared: extent growths by the host") \
  X(uint64_t, growth_refused, "growth_refused", "count", "shared: growths refused (max_extents or max_bytes)") \
  X(uint64_t, fallback_allocs, "fallback_allocs", "count", "shared: allocations served by a larger class") \
  X(uint64_t, double_frees, "double_frees", "count", "shared: frees refused, slot already free") \
  X(uint64_t, stale_handles, "stale_handles", "count", "shared: handles refused, generation mismatch") \
  X(uint64_t, invalid_handles, "invalid_handles", "count", "shared: handles refused, not a slot of this pool") \
  X(uint64_t, recovered_slots, "recovered_slots", "count", "shared: slots of dead peers returned to the pool") \
  X(uint64_t, dead_peers, "dead_peers", "count", "shared: peers found dead and reclaimed") \
  X(uint64_t, host_recoveries, "host_recoveries", "count", "shared: new hosts that took over a segment") \
  X(uint64_t, grow_ns_total, "grow_ns_total", "ns", "shared: wall time spent growing") \
  X(uint64_t, segment_bytes, "segment_bytes", "bytes", "shared, current: segment size (current_size)") \
  X(uint32_t, map_generation, "map_generation", "", "shared, current: +1 per growth (futex word)") \
  X(uint64_t, remaps, "remaps", "count", "this process: mappings grown or extent files mapped") \
  X(uint64_t, mapped_bytes, "mapped_bytes", "bytes", "this process, current: bytes mapped") \
  X(uint64_t, doorbells, "doorbells", "count", "this process: growth requests sent")

struct PoolStats {
  ZNSLAB_VARSLOT_POOL_STATS(ZNSLAB_COUNTER_FIELD)
  uint32_t extents[kMaxClasses] = {};  // shared, current: extents per class
};
ZNSLAB_COUNTER_FUNCTIONS(PoolStats, ZNSLAB_VARSLOT_POOL_STATS)

// Where one growth's wall time went (Pool::grow_phases), ns per phase in
// order: ns[0] ftruncate (extent_files: create + ftruncate the file),
// ns[1] mapping (extent_files: mmap; remap: nothing unless the host's view
// must grow), ns[2] extent initialisation (the 128-byte header: one page
// fault of the new extent), ns[3] publication (offset, current_size,
// map_generation, extent_count), ns[4] waking the waiting guests (futex).
// preemptions: involuntary context switches of the growing thread during
// the growth (getrusage RUSAGE_THREAD).
inline constexpr uint32_t kGrowPhases = 5;
struct GrowPhases {
  uint64_t ns[kGrowPhases] = {};
  uint64_t preemptions = 0;
};

class Pool {
 public:
  // Host: creates (truncates) the segment at opts.path and its initial
  // extents. Errors: kInvalidArgument (options), kIoError.
  static Result<std::unique_ptr<Pool>> create(const PoolOptions& opts);
  // Guest: attaches to an existing segment and registers a peer id.
  // Errors: kNotFound, kCorrupt, kOutOfMemory (all peer ids taken), kIoError.
  static Result<std::unique_ptr<Pool>> attach(const std::string& path);
  // Guest: attaches through a descriptor of the segment (a memfd made with
  // PoolOptions::memfd, or an open segment file), inherited or received
  // over SCM_RIGHTS. The Pool keeps its own duplicate (F_DUPFD_CLOEXEC):
  // the caller may close `fd`. Errors: as attach; kNotSupported for an
  // extent_files segment (its extents are found by path).
  static Result<std::unique_ptr<Pool>> attach_fd(int fd);
  // New host for a segment whose host died (even mid-growth): checks the
  // old host is gone (kBusy if alive), repairs what a crash can leave
  // (a growth in progress, a free list locked by a recovery walk, a file
  // longer than current_size), and becomes the host. `opts` supplies only
  // process-local settings (grow_wait_ms, crash_at); geometry comes from
  // the header.
  static Result<std::unique_ptr<Pool>> take_over(const std::string& path,
                                                 const PoolOptions& opts = {});
  // take_over through a descriptor (a memfd segment survives its host only
  // while some process still holds a descriptor of it). Errors: as
  // take_over; kNotSupported for extent_files.
  static Result<std::unique_ptr<Pool>> take_over_fd(int fd, const PoolOptions& opts = {});
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // A slot of at least `bytes` (the smallest class that fits, falling back
  // to larger ones), owned by this peer. Lock-free unless the pool must
  // grow or this process must map a new extent.
  Result<Handle> alloc(uint32_t bytes) noexcept;
  // Frees a slot (any process). Refusals (kStaleHandle, kDoubleFree,
  // kInvalidHandle) are counted in the segment and change nothing.
  Status free(Handle h) noexcept;
  // Records `to_peer` as the slot's owner before handing the handle to that
  // process (so a crash of either side reclaims it exactly once).
  // Errors: kStaleHandle, kInvalidHandle, kInvalidArgument (bad peer).
  Status transfer(Handle h, uint32_t to_peer) noexcept;
  // The slot's first byte, nullptr when the handle is not currently
  // allocated (stale/invalid). Maps the extent on first use in this process.
  uint8_t* ptr(Handle h) noexcept;
  // Slot size of the handle's class, bytes (0 for a bad class).
  uint32_t slot_size(Handle h) const noexcept;
  // The owner peer id recorded in the slot, or -1 if not allocated.
  int owner(Handle h) const noexcept;

  uint32_t peer_id() const noexcept { return peer_; }
  bool is_host() const noexcept { return peer_ == 0; }
  GrowthMode mode() const noexcept { return GrowthMode(hdr_->mode); }
  uint32_t class_count() const noexcept { return hdr_->class_count; }
  uint32_t class_size(uint32_t c) const noexcept { return hdr_->classes[c].slot_size; }
  const SegmentHeader& header() const noexcept { return *hdr_; }
  // The segment's descriptor (remap/fixed: the whole segment; extent_files:
  // the header file), owned by this Pool and closed with it; FD_CLOEXEC
  // set. Hand it to guests (attach_fd) for a memfd segment.
  int segment_fd() const noexcept { return fd_; }
  // True when the segment was created as a memfd or attached by descriptor
  // (it has no path; unlink_files() does nothing).
  bool by_fd() const noexcept { return by_fd_; }
  // Bytes this process has mapped of the single-file segment (remap and
  // fixed modes; the host maps its whole reservation at once).
  uint64_t mapped_size() const noexcept { return view_size_.load(std::memory_order_acquire); }

  // ---- host only (kInvalidArgument from a guest) -------------------------
  // Adds one extent to class c. kOutOfMemory when refused (max_extents or
  // max_bytes; the class is then marked refused), kIoError.
  Status grow(uint32_t c) noexcept;
  // One round of host duties: answers growth requests (classes whose
  // extents are all full), detects dead guests (pidfd, or kill(pid, 0) when
  // pidfd_open is unavailable) and reclaims their slots. Waits up to
  // timeout_ms on the doorbell first. Returns the number of actions.
  uint32_t serve(int timeout_ms) noexcept;
  // serve() in a background thread until stop_service() / destruction.
  // nice_value != 0 sets that thread's nice value (negative needs
  // CAP_SYS_NICE): growth is ~50 us of CPU, but on an overloaded machine its
  // wall time is preemption (docs/varslot.md). service_nice_ok() says
  // whether it was applied.
  // rt_priority 1..99 runs the thread under SCHED_FIFO (needs
  // CAP_SYS_NICE; service_rt_ok() says whether it was applied): its
  // growths cannot be preempted by CFS tasks. While the service runs, the
  // host's own allocations that find a class full ring the doorbell like a
  // guest, so every growth runs on the service thread.
  void start_service(int poll_ms = 2, int nice_value = 0, int rt_priority = 0);
  bool service_nice_ok() const noexcept { return service_nice_ok_.load(std::memory_order_acquire); }
  bool service_rt_ok() const noexcept { return service_rt_ok_.load(std::memory_order_acquire); }
  void stop_service();
  // Duration of each growth this host performed since create/take_over
  // (ftruncate or file creation, mapping, extent initialisation,
  // publication), ns, oldest first; at most the last 1024.
  std::vector<uint64_t> grow_durations_ns();
  // The same growths' CPU time on the growing thread
  // (CLOCK_THREAD_CPUTIME_ID), ns: wall minus this is time spent preempted
  // or blocked.
  std::vector<uint64_t> grow_cpu_ns();
  // The same growths split by phase (GrowPhases), oldest first.
  std::vector<GrowPhases> grow_phases();
  // Growths that asked for grow_rt_priority and were refused it.
  uint64_t grow_rt_refused() const noexcept { return grow_rt_refused_.load(std::memory_order_relaxed); }
  // Reclaims the slots of one dead peer now (serve() calls it).
  uint64_t reclaim_peer(uint32_t peer) noexcept;

  // Checks the invariants of layout.h over every published extent:
  // kCorrupt naming the first violation. Not concurrent with growth.
  Status verify() noexcept;
  // Counts FREE and ALLOC slots of class c over its published extents
  // (walks the metadata; a snapshot under concurrency).
  void count_slots(uint32_t c, uint64_t* free_slots, uint64_t* alloc_slots) noexcept;
  PoolStats stats() const noexcept;
  // Removes the segment file(s) (host, at the end).
  Status unlink_files() noexcept;

 private:
  Pool() {
    for (uint32_t i = 0; i < kMaxPeers; ++i) pidfds_[i] = -1, pidfd_pid_[i] = 0;
  }
  struct View { uint8_t* base; size_t bytes; };

  Status open_file(const std::string& path, bool create);
  Status open_existing(const std::string& path, bool host_view);
  Status open_existing_fd(int fd, bool host_view);
  Status open_common(bool host_view);  // fd_ open: validate and map the header
  static Result<std::unique_ptr<Pool>> register_guest(std::unique_ptr<Pool> p);
  static Result<std::unique_ptr<Pool>> finish_take_over(std::unique_ptr<Pool> p, const PoolOptions& opts);
  Status map_header(bool host_view);
  Status register_peer(uint32_t want);
  uint8_t* extent_base(uint32_t c, uint32_t e) noexcept;  // maps on demand
  uint8_t* map_extent_slow(uint32_t c, uint32_t e) noexcept;
  Status ensure_view(uint64_t need) noexcept;  // remap/fixed, mu_ held
  Status init_extent(uint8_t* base, uint32_t c, uint32_t e) noexcept;
  Status grow_locked(uint32_t c) noexcept;
  bool class_full(uint32_t c) noexcept;
  bool request_growth(uint32_t c) noexcept;  // guest: doorbell + wait
  Result<Handle> alloc_in_class(uint32_t c) noexcept;
  bool pop(uint32_t c, uint32_t e, uint8_t* base, Handle* out) noexcept;
  void push(uint32_t c, uint32_t e, uint8_t* base, uint32_t slot) noexcept;
  bool in_free_list_locked(uint8_t* base, uint32_t slot) noexcept;
  void repair_lost_slot(uint32_t c, uint32_t e, uint32_t slot) noexcept;
  uint32_t next_gen(uint32_t g) const noexcept;
  std::string extent_path(uint32_t c, uint32_t e) const;
  uint64_t extent_total_bytes(uint32_t c) const noexcept;

  std::string path_;
  int fd_ = -1;
  bool by_fd_ = false;  // memfd or attached by descriptor: no path
  GrowthMode hdr_mode_hint_ = GrowthMode::kRemap;  // before the header is mapped
  uint64_t reserve_bytes_ = 0;
  uint32_t peer_ = 0;
  SegmentHeader* hdr_ = nullptr;
  uint32_t gen_mask_ = 0xffffffffu;
  // Geometry copied from the header at open (immutable afterwards).
  uint32_t nclasses_ = 0;
  uint32_t csize_[kMaxClasses] = {}, cslots_[kMaxClasses] = {};
  uint64_t cdata_[kMaxClasses] = {}, ctotal_[kMaxClasses] = {};
  void load_geometry() noexcept;
  uint32_t grow_wait_ms_ = 2000;
  CrashPoint crash_at_ = CrashPoint::kNone;
  bool stage_growth_ = true;
  int grow_rt_priority_ = 0;
  uint64_t staged_bytes_ = 0;  // host, remap: the file is ftruncated to this (>= current_size)
  std::atomic<uint64_t> grow_rt_refused_{0};
  void stage_next() noexcept;  // host, grow_mu_ held

  // remap/fixed: one reservation holding the view of the file [0,
  // view_size_); extent_files: the header mapping then one per extent.
  std::mutex mu_;
  pages::Reservation res_;
  std::vector<View> maps_;
  std::atomic<uint64_t> view_size_{0};
  std::atomic<uint8_t*> ext_[kMaxClasses][kMaxExtents] = {};
  std::mutex grow_mu_;  // host: one growth at a time in this process
  static constexpr uint32_t kGrowLog = 1024;
  uint64_t grow_log_[kGrowLog] = {};  // guarded by grow_mu_ (create: single-threaded)
  uint64_t grow_cpu_log_[kGrowLog] = {};
  GrowPhases grow_phase_log_[kGrowLog] = {};
  uint64_t grow_log_n_ = 0;

  std::atomic<uint64_t> remaps_{0}, doorbells_{0}, mapped_bytes_{0};
  uint32_t last_doorbell_ = 0;

  // host service
  std::thread service_;
  std::atomic<bool> service_stop_{false};
  std::atomic<bool> service_nice_ok_{true};
  std::atomic<bool> service_rt_ok_{true};
  std::atomic<bool> service_on_{false};  // alloc: grow through the service
  int pidfds_[kMaxPeers];
  int32_t pidfd_pid_[kMaxPeers];
};

// Bytes of one extent of `slots` slots of `slot_size` bytes: a 128-byte
// header and 16 bytes of metadata per slot, page-rounded, then the slot
// data, page-rounded. *data_offset (if not null) receives where slot 0
// starts, from the extent start.
uint64_t extent_layout_bytes(uint32_t slot_size, uint32_t slots, uint64_t* data_offset) noexcept;

// "remap", "extent_files", "fixed"; nullptr for an unknown value.
const char* growth_mode_name(GrowthMode m) noexcept;
// Parses a growth mode name; false when unknown.
bool parse_growth_mode(const std::string& s, GrowthMode* out) noexcept;

}  // namespace znslab::varslot
