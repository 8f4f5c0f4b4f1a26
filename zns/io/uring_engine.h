// zns::io::UringEngine: the one io_uring engine of znslab (the only code
// that calls liburing; DESIGN.md "Layering rules").
//
// What it does: sets up one ring with a chosen queue depth, queues reads,
// writes and raw SQEs (NVMe passthrough), submits them in batches and reaps
// completions in batches. Every read/write is split into pieces of at most
// `max_io_bytes` (the device limit: max_sectors_kb on zbd:, MDTS on nvme:,
// the emulator's MDTS), and the pieces of one request complete as one
// EngineCompletion. Raw SQEs are never split (passthrough commands are not
// split by the kernel either: an oversized one fails with EINVAL), so the
// caller clamps them; check_append() tells whether a zone append fits
// `max_append_bytes` (ZASL / zone_append_max_bytes).
//
// Options: registered files and buffers (IORING_REGISTER_FILES/BUFFERS),
// SQPOLL (off by default: it hurts on 2 vCPUs), 128-byte SQEs and 32-byte
// CQEs (IORING_SETUP_SQE128 | IORING_SETUP_CQE32) for IORING_OP_URING_CMD.
//
// Thread-safety: the submission side (queue*, submit) is serialised by an
// internal mutex (it may be called from several threads); the completion
// side (reap) must be used by one thread at a time. The two sides may run
// concurrently (reap's flush of pending SQEs takes the submission mutex).
// in_flight() may be called from anywhere.
//
// Errors are Status values: kInvalidArgument (bad op), kBusy (more pieces in
// flight than capacity(): reap first), kIoError / kNotSupported with the
// errno from io_uring_setup/io_uring_enter/io_uring_register.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "src/common/status.h"

struct io_uring_sqe;  // <linux/io_uring.h>: raw SQE layout (fill it, no liburing needed)

namespace znslab::zns::io {

struct EngineOptions {
  unsigned queue_depth = 64;       // SQ entries (rounded up to a power of two by the kernel)
  unsigned cq_factor = 4;          // CQ entries = cq_factor * queue_depth (IORING_SETUP_CQSIZE)
  bool sqpoll = false;             // IORING_SETUP_SQPOLL (kernel thread polls the SQ)
  unsigned sqpoll_idle_ms = 50;    // SQPOLL thread idle time before it sleeps
  bool big_entries = false;        // IORING_SETUP_SQE128 | IORING_SETUP_CQE32 (passthrough)
  uint64_t max_io_bytes = 0;       // split reads/writes into pieces <= this; 0 = no split
  uint64_t max_append_bytes = 0;   // zone append limit checked by check_append(); 0 = none
};

enum class OpKind : uint8_t { kRead, kWrite };

// One read or write on a file. `file_offset` and `len` in bytes. With
// O_DIRECT, buf/len/file_offset must be aligned to the logical block size
// (use AlignedBuffer). `fd` is a file descriptor, or with fixed_file an
// index into register_files(). With buf_index >= 0 the buffer lies inside
// registered buffer buf_index (READ_FIXED/WRITE_FIXED).
struct EngineOp {
  OpKind kind = OpKind::kRead;
  int fd = -1;
  bool fixed_file = false;
  int buf_index = -1;
  void* buf = nullptr;
  size_t len = 0;
  uint64_t file_offset = 0;
  uint64_t user_data = 0;
};

// One finished request (all its pieces). res: total bytes transferred, or
// -errno of the first failed piece. prefix: bytes from the start of the
// request that were transferred without a gap (== len on success; on a
// failed or short piece, the bytes before it: what a caller may count as
// written). For raw SQEs: the CQE's res, flags and,
// with big_entries, the two extra 64-bit CQE words (big[0] carries the
// NVMe completion result, e.g. the LBA a zone append landed at).
struct EngineCompletion {
  uint64_t user_data = 0;
  int64_t res = 0;
  uint32_t flags = 0;
  uint64_t big[2] = {0, 0};
  uint64_t latency_ns = 0;  // queue() to reap(), CLOCK_MONOTONIC
  uint64_t prefix = 0;      // read/write: contiguous bytes done from the start
};

// Fills a raw SQE (already zeroed; the engine sets user_data afterwards).
using RawPrep = void (*)(io_uring_sqe* sqe, void* arg);

class UringEngine {
 public:
  // Errors: kInvalidArgument (queue_depth 0 or > 4096), kNotSupported
  // (kernel lacks a requested flag), kIoError (io_uring_setup errno).
  static Result<std::unique_ptr<UringEngine>> create(const EngineOptions& opts);
  ~UringEngine();
  UringEngine(const UringEngine&) = delete;
  UringEngine& operator=(const UringEngine&) = delete;

  const EngineOptions& options() const noexcept { return opts_; }
  // Pieces that may be in flight at once (the CQ size).
  size_t capacity() const noexcept { return slots_.size(); }
  // Pieces queued or submitted and not yet reaped.
  size_t in_flight() const noexcept { return in_flight_.load(std::memory_order_relaxed); }

  // Registered files / buffers (call before any I/O; once each).
  Status register_files(std::span<const int> fds);
  Status register_buffers(std::span<const iovec> bufs);

  // Queues one read/write (split into pieces of <= max_io_bytes); submits
  // the SQ when it is full. Errors: kInvalidArgument (len 0, no buffer),
  // kBusy (capacity reached).
  Status queue(const EngineOp& op);
  // Queues one raw SQE filled by prep(sqe, arg) (never split).
  Status queue_raw(RawPrep prep, void* arg, uint64_t user_data);
  // kInvalidArgument when an append of len bytes exceeds max_append_bytes.
  Status check_append(size_t len) const noexcept;

  // Submits everything queued (one io_uring_enter). Returns SQEs submitted.
  Result<unsigned> submit();
  // Stores up to out.size() finished requests; waits until at least
  // min_complete are available (0 = never wait). Submits pending SQEs first.
  Result<size_t> reap(std::span<EngineCompletion> out, size_t min_complete);

 private:
  struct Slot {
    uint64_t user_data = 0;
    uint32_t pieces_left = 0;
    int64_t res = 0;
    uint64_t t0_ns = 0;
    uint32_t next_free = 0;
    uint32_t flags = 0;
    uint64_t big[2] = {0, 0};
    uint64_t len = 0;        // request bytes (read/write)
    uint64_t piece = 0;      // bytes per piece (the last may be shorter)
    uint64_t prefix = 0;     // contiguous bytes done before the first bad piece
    uint32_t bad_piece = UINT32_MAX;  // lowest failed or short piece
  };
  struct Ring;  // liburing state, defined in uring_engine.cpp

  explicit UringEngine(const EngineOptions& opts);
  io_uring_sqe* get_sqe();
  Result<uint32_t> alloc_slot(uint64_t user_data, uint32_t pieces);
  void free_slot(uint32_t idx);

  EngineOptions opts_;
  std::unique_ptr<Ring> ring_;
  std::vector<Slot> slots_;
  std::mutex sq_mu_;               // the SQ ring and queued_ (lock order: sq_mu_, slot_mu_)
  std::mutex slot_mu_;             // guards the slots and their free list
  uint32_t free_head_ = 0;
  std::atomic<size_t> in_flight_{0};
  unsigned queued_ = 0;            // SQEs prepared, not yet submitted (sq_mu_)
  Result<unsigned> submit_locked();
};

// A heap buffer aligned for O_DIRECT (default 4096 bytes), zero-filled.
// Move-only; frees itself. size() is the requested size rounded up to the
// alignment.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // Errors: kInvalidArgument (bytes 0, alignment not a power of two),
  // kOutOfMemory.
  static Result<AlignedBuffer> allocate(size_t bytes, size_t alignment = 4096);
  AlignedBuffer(AlignedBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr; o.n_ = 0; }
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer();
  uint8_t* data() const noexcept { return p_; }
  size_t size() const noexcept { return n_; }

 private:
  uint8_t* p_ = nullptr;
  size_t n_ = 0;
};

// Splits [0, len) into pieces of at most max_bytes (0 = one piece);
// returns the number of pieces. Used by the engine and by backends that
// issue their own commands (passthrough) to clamp to MDTS.
constexpr size_t piece_count(size_t len, uint64_t max_bytes) noexcept {
  return (max_bytes == 0 || len <= max_bytes) ? 1 : size_t((len + max_bytes - 1) / max_bytes);
}

// CLOCK_MONOTONIC in ns.
uint64_t now_ns() noexcept;

}  // namespace znslab::zns::io

namespace znslab::zns::io {

// Fills a raw SQE as IORING_OP_URING_CMD to `fd` with command `cmd_op` and
// `len` payload bytes copied into the SQE's command area (at most 16 bytes
// in a 64-byte SQE, 80 in a 128-byte one: EngineOptions::big_entries).
// For queue_raw() preps (NVMe passthrough, ublk control and I/O commands).
void prep_uring_cmd(io_uring_sqe* sqe, int fd, uint32_t cmd_op, const void* payload, size_t len) noexcept;

}  // namespace znslab::zns::io
