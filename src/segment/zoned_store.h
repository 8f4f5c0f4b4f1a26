// segment::ZonedSegmentStore: variable-size, immutable segments written into
// the zones of any zns::ZonedDevice, with per-zone live bytes and garbage
// collection (issue 5, "Zoned segment store").
//
// Writes: put() copies the segment into an aligned staging buffer, pads it
// to the logical block size, and writes it at the write pointer of the open
// zone of its stream (device write(), or zone append() with use_append;
// io_uring-backed in every backend).
// Streams: placement `single` = one host stream; `epoch` = one open zone per
// lifetime class (class % streams), the temporal-slab idea applied to zones:
// data that dies together is written together. Garbage collection copies
// into its own stream (one more open zone). A zone that cannot take the next
// segment is finished (counted); a zone whose live bytes drop to 0 while not
// open is reset at once (no copy).
//
// Garbage collection runs when a stream needs a fresh zone and fewer than
// `gc_free_zones` empty zones remain: it picks a victim among full zones
// (greedy: fewest live bytes; cost-benefit: max (1-u)*age/(1+u), LFS), copies
// its live segments forward and resets it, until the reserve is restored.
// Open streams never exceed the device's max open / max active resources:
// host streams are clamped to (limit - 1) and the clamp is reported.
//
// Reads: on the emulator (device has backing_file()), through a read-only
// mapping of its backing file held by MappingManager windows (window size a
// multiple of the zone size, so a segment never spans one); segments are
// immutable once their write completed, and put() returns after completion.
// On real devices: device read() (io_uring) into a bounded LRU buffer cache.
//
// Durability: NOT claimed. The segment index lives in memory; open() formats
// the device (resets every non-empty zone). Reopening a device yields an
// empty store. Tests check only what is claimed.
//
// Errors: put: kInvalidArgument (empty, larger than a zone's capacity),
// kOutOfMemory (no free zone and nothing to collect: device full of live
// data), device errors (the segment is then NOT stored; every segment
// acknowledged earlier stays readable). remove/read: kInvalidHandle,
// kStaleHandle (removed). read: device errors.
//
// Thread-safety: not thread-safe; one owner thread (external locking).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "src/common/counters.h"
#include "src/common/status.h"
#include "src/segment/file_registry.h"
#include "src/segment/mapping_manager.h"
#include "zns/zoned_device.h"

namespace znslab::segment {

enum class Placement : uint8_t { kSingle, kEpoch };
enum class GcPolicy : uint8_t { kGreedy, kCostBenefit };
enum class ReadPath : uint8_t { kAuto, kMmap, kDevice };

const char* placement_name(Placement p) noexcept;   // "single" | "epoch"
const char* gc_policy_name(GcPolicy g) noexcept;    // "greedy" | "cost-benefit"

struct ZonedStoreOptions {
  Placement placement = Placement::kSingle;
  GcPolicy gc = GcPolicy::kGreedy;
  uint32_t streams = 4;           // host streams for kEpoch (lifetime classes); kSingle uses 1
  uint32_t gc_free_zones = 2;     // GC keeps at least this many empty zones (>= 1)
  ReadPath read_path = ReadPath::kAuto;  // kAuto: mmap when the device has a backing file
  uint64_t window_bytes = 1ull << 30;    // mmap windows, rounded down to a zone-size multiple
  uint64_t cache_bytes = 64ull << 20;    // device-read buffer cache bound, bytes
  uint32_t max_segment_bytes = 0;        // staging buffer; 0 = zone capacity
  // Zone append (the device picks the offset and returns it) instead of a
  // write at the write pointer, for segments within the device's zone
  // append size limit; larger ones (or zasl 0) use write.
  bool use_append = false;
};

// Opaque key of a stored segment: slot index (low 32 bits) + generation.
using SegmentKey = uint64_t;

// The zoned store's counters, declared once (src/common/counters.h): the
// struct, zone-churn's summary keys, their schema entries and the table in
// docs/segment.md. X(type, field, json key, unit, meaning).
#define ZNSLAB_ZONED_STORE_COUNTERS(X)                                                                  \
  X(uint64_t, host_bytes_written, "host_bytes_written", "bytes", "put(): padded bytes written")         \
  X(uint64_t, payload_bytes, "payload_bytes_written", "bytes", "put(): bytes the caller gave")          \
  X(uint64_t, device_bytes_written, "device_bytes_written", "bytes", "host + GC copies, padded")         \
  X(uint64_t, gc_copied_bytes, "gc_copied_bytes", "bytes", "bytes copied by GC, padded")                \
  X(uint64_t, gc_copies, "gc_copies", "segments", "segments copied by GC")                              \
  X(uint64_t, gc_runs, "gc_runs", "zones", "victim zones collected")                                    \
  X(uint64_t, zone_resets, "zone_resets", "count", "zone resets")                                       \
  X(uint64_t, zone_finishes, "zone_finishes", "count", "zone finishes")                                 \
  X(uint64_t, zone_opens, "zone_opens", "count", "empty zones taken into a stream")                     \
  X(uint64_t, reset_live_bytes, "reset_live_bytes", "bytes", "sum over resets of the victim's live bytes at pick") \
  X(uint64_t, reset_capacity_bytes, "reset_capacity_bytes", "bytes", "sum over resets of zone capacity") \
  X(uint64_t, segments_live, "segments_live", "segments", "current: live segments")                     \
  X(uint64_t, live_bytes, "live_bytes", "bytes", "current: live bytes, padded")                         \
  X(uint64_t, puts, "puts", "count", "put() calls that stored a segment")                               \
  X(uint64_t, removes, "removes", "count", "remove() calls that freed a segment")                       \
  X(uint64_t, reads, "store_reads", "count", "read() calls with a live key and a large enough buffer")                         \
  X(uint64_t, appends, "zone_appends", "count", "data writes issued as zone append")                    \
  X(uint64_t, cache_hits, "cache_hits", "count", "device-read buffer cache hits (real devices)")        \
  X(uint64_t, cache_misses, "cache_misses", "count", "device-read buffer cache misses (real devices)")  \
  X(uint64_t, device_errors, "device_errors", "count", "device calls that returned an error")           \
  X(uint32_t, unusable_zones, "unusable_zones", "zones", "offline/read-only/failed zones taken out of use") \
  X(uint32_t, host_streams, "host_streams", "streams", "effective host streams (after the resource clamp)")

struct ZonedStoreCounters {
  ZNSLAB_ZONED_STORE_COUNTERS(ZNSLAB_COUNTER_FIELD)
  double write_amplification() const noexcept {
    return host_bytes_written ? double(device_bytes_written) / double(host_bytes_written) : 1.0;
  }
  // Mean fraction of a victim zone still live when it was reset (0..1).
  double utilisation_at_reset() const noexcept {
    return reset_capacity_bytes ? double(reset_live_bytes) / double(reset_capacity_bytes) : 0.0;
  }
};
ZNSLAB_COUNTER_FUNCTIONS(ZonedStoreCounters, ZNSLAB_ZONED_STORE_COUNTERS)

class ZonedSegmentStore {
 public:
  // Takes over `dev` (which must outlive the store): formats it (resets every
  // non-empty zone; offline/read-only zones are skipped and counted).
  // Errors: kInvalidArgument (options), kNotSupported (kMmap without a
  // backing file), device errors.
  static Result<std::unique_ptr<ZonedSegmentStore>> open(zns::ZonedDevice& dev, ZonedStoreOptions opt);
  ~ZonedSegmentStore();

  // Stores `len` bytes with lifetime class `lifetime` (stream selection).
  Result<SegmentKey> put(const void* data, size_t len, uint32_t lifetime = 0);
  // Deletes a segment; its zone is reset when it holds no live data.
  Status remove(SegmentKey key);
  // Copies the segment into buf (cap >= its length); returns its length.
  Result<size_t> read(SegmentKey key, void* buf, size_t cap);
  // Length of a live segment, bytes.
  Result<size_t> length(SegmentKey key) const;
  // Runs GC until `free_zones` empty zones exist or nothing can be collected.
  Status collect(uint32_t free_zones);

  const ZonedStoreCounters& counters() const noexcept { return c_; }
  uint32_t free_zones() const noexcept { return uint32_t(free_.size()); }
  bool reads_via_mmap() const noexcept { return mm_ != nullptr; }
  const zns::DeviceInfo& device_info() const noexcept { return dev_.info(); }
  // Mapping counters of the read path (zeros on the device-read path).
  MappingStats mapping_stats() const { return mm_ ? mm_->stats() : MappingStats{}; }

 private:
  enum class ZState : uint8_t { kFree, kOpen, kFull, kUnusable };
  struct ZoneInfo {
    ZState state = ZState::kFree;
    int32_t stream = -1;        // when kOpen
    uint64_t wp = 0;            // zone-relative, bytes
    uint64_t live = 0;          // padded live bytes
    uint64_t last_write = 0;    // logical time (device bytes written) of the last write
    std::vector<uint32_t> slots;  // segment slots written here (may be stale)
    Window* window = nullptr;   // read-path window hint
  };
  struct Slot {
    uint32_t gen = 0;   // odd = live
    uint32_t zone = 0;
    uint64_t offset = 0;
    uint32_t len = 0;
    uint32_t padded = 0;
  };
  ZonedSegmentStore(zns::ZonedDevice& d, ZonedStoreOptions o) : dev_(d), opt_(o) {}
  Status format();
  Result<uint32_t> slot_of(SegmentKey key) const;
  // Writes staging_[0, padded) into `stream`; returns (zone, offset).
  Status write_stream(uint32_t stream, const uint8_t* buf, uint32_t padded, uint32_t* zone, uint64_t* offset);
  Status take_zone(uint32_t stream, bool for_gc);
  Status close_stream_zone(uint32_t stream);
  Status reset_zone(uint32_t z, uint64_t live_at_pick);
  Status collect_one();
  Status read_into(const Slot& s, uint8_t* dst);
  void cache_drop(uint32_t slot);
  void mark_unusable(uint32_t z);
  void note_error() { ++c_.device_errors; }

  zns::ZonedDevice& dev_;
  ZonedStoreOptions opt_;
  uint64_t lba_ = 4096, zcap_ = 0;
  std::vector<ZoneInfo> zones_;
  std::vector<uint32_t> free_;            // empty zones (LIFO)
  std::vector<int64_t> stream_zone_;      // per stream (host streams, then GC): zone or -1
  uint32_t gc_stream_ = 0;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  uint8_t* staging_ = nullptr;            // put(): aligned, max segment rounded to lba
  uint8_t* gc_buf_ = nullptr;             // GC copies and device reads; same size
  uint64_t staging_bytes_ = 0;
  bool in_gc_ = false;
  // mmap read path
  std::unique_ptr<FileRegistry> files_;
  std::unique_ptr<MappingManager> mm_;
  // device read path: LRU buffer cache keyed by slot
  struct CacheEntry { std::vector<uint8_t> data; std::list<uint32_t>::iterator lru; };
  std::unordered_map<uint32_t, CacheEntry> cache_;
  std::list<uint32_t> cache_lru_;
  uint64_t cache_used_ = 0;
  ZonedStoreCounters c_;
};

}  // namespace znslab::segment
