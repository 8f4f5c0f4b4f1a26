// Allocation trace format (znstrace v1): what the LD_PRELOAD recorder
// (src/trace/preload/recorder.cpp) writes and `znslab trace info` and the
// `trace` replay workload read. Full byte layout: docs/trace.md.
//
//   file   = header frame*  end-frame
//   header = "ZNSTRACE" u32 version(=1) u32 payload_bytes payload
//   frame  = u32 magic('ZTRF') u32 kind u32 events u32 raw_bytes u32 zstd_bytes
//            zstd_bytes of a zstd frame (content checksum on) holding
//            `events` x 56-byte TraceEvent records (little-endian)
//   end    = a frame of kind kEndFrame, events = events written to the file
//
// Events of one frame come from one recording thread; frames of different
// threads interleave, so readers order events by `seq`.
// Thread-safety: TraceFileWriter is single-threaded (the recorder's writer
// thread owns it); readers are reentrant.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace znslab::trace {

inline constexpr char kMagic[8] = {'Z', 'N', 'S', 'T', 'R', 'A', 'C', 'E'};
inline constexpr uint32_t kVersion = 1;
inline constexpr uint32_t kFrameMagic = 0x4652545Au;  // "ZTRF" little-endian
inline constexpr uint32_t kEventFrame = 1;
inline constexpr uint32_t kEndFrame = 2;
inline constexpr uint32_t kMaxFrameEvents = 1u << 20;  // reader bound per frame

enum class Op : uint8_t {
  kMalloc = 1,
  kCalloc = 2,        // size = nmemb x size
  kRealloc = 3,       // old_obj -> obj; obj 0 when realloc(p, 0) freed p
  kFree = 4,
  kPosixMemalign = 5,
  kAlignedAlloc = 6,
  kMemalign = 7,
  kValloc = 8,        // also pvalloc
  kUsableSize = 9,    // malloc_usable_size(obj); size = the value returned
};
inline constexpr uint8_t kOpMax = 9;
// "malloc", "calloc", ..., "usable_size"; "?" for an unknown value.
const char* op_name(uint8_t op) noexcept;
// True for the ops that create an object (malloc, calloc, realloc, the
// aligned family, valloc).
inline bool op_allocates(uint8_t op) noexcept {
  return op != uint8_t(Op::kFree) && op != uint8_t(Op::kUsableSize) && op >= 1 && op <= kOpMax;
}

// One operation, 56 bytes on disk (this struct's layout, little-endian).
struct TraceEvent {
  uint64_t seq;       // global sequence number, unique in a file, increasing in time
  uint64_t ts_ns;     // CLOCK_MONOTONIC ns since TraceHeader::start_mono_ns
  uint64_t size;      // bytes requested (calloc: nmemb x size; usable_size: the result)
  uint64_t obj;       // dense object id (1, 2, ... in allocation order; free/usable_size: the
                      // object concerned); 0 = none (failed allocation)
  uint64_t old_obj;   // realloc: the object it replaced (0 for realloc(NULL, n)); else 0
  uint32_t tid;       // recording thread id (gettid)
  uint32_t callsite;  // hash of the caller's return addresses (0 = unknown)
  uint32_t align;     // requested alignment, bytes (0 = malloc's default)
  uint8_t op;         // Op
  uint8_t reserved[3];
};
static_assert(sizeof(TraceEvent) == 56, "TraceEvent is the on-disk record");

struct TraceHeader {
  uint32_t pid = 0, ppid = 0;
  uint64_t start_unix_ns = 0;  // CLOCK_REALTIME ns at recording start
  uint64_t start_mono_ns = 0;  // CLOCK_MONOTONIC ns at recording start (ts_ns base)
  std::string program;         // /proc/self/exe
  std::vector<std::string> args;  // argv, argv[0] included
};

// A whole trace in memory, events sorted by seq.
struct Trace {
  TraceHeader header;
  std::vector<TraceEvent> events;
  uint64_t frames = 0;
};

// Why a file was refused: `offset` is the byte offset in the file of the
// structure that failed (header, frame header, frame payload).
struct TraceError {
  uint64_t offset = 0;
  std::string message;
  // "PATH: offset N: MESSAGE"
  std::string to_string(const std::string& path) const;
};

// Encodes the header (magic, version, payload). Pure.
std::string encode_header(const TraceHeader& h);
// Encodes one frame of `n` events at compression `level` (zstd, checksum
// on). Returns "" when zstd fails (out of memory).
std::string encode_frame(const TraceEvent* ev, uint32_t n, int level = 3);
// The end frame (kind kEndFrame) carrying the number of events written.
std::string encode_end(uint64_t total_events);

// Reads and validates a whole file. Refused (false, `err` set) when: the
// magic/version is wrong, the header or a frame is truncated, a frame
// header is malformed, zstd fails (corrupt data, checksum), the decoded
// size disagrees, an event has an unknown op or non-zero reserved bytes,
// seq repeats, the end frame is missing or its count disagrees, or bytes
// follow it. With `check_objects`, also: an object allocated twice, freed
// or used while not live (naming the event's seq and its frame's offset).
bool read_trace(const std::string& path, Trace& out, TraceError& err, bool check_objects = true);
// The same over bytes already in memory.
bool parse_trace(const std::string& bytes, Trace& out, TraceError& err, bool check_objects = true);

}  // namespace znslab::trace
