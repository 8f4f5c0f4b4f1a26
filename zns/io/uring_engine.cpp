// io_uring engine on liburing (see uring_engine.h for the contract).
#include "zns/io/uring_engine.h"

#include <liburing.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace znslab::zns::io {

uint64_t now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

struct UringEngine::Ring {
  io_uring ring{};
  bool inited = false;
  ~Ring() {
    if (inited) io_uring_queue_exit(&ring);
  }
};

static constexpr uint32_t kNoSlot = UINT32_MAX;

UringEngine::UringEngine(const EngineOptions& opts) : opts_(opts), ring_(std::make_unique<Ring>()) {}

UringEngine::~UringEngine() = default;

Result<std::unique_ptr<UringEngine>> UringEngine::create(const EngineOptions& opts) {
  if (opts.queue_depth == 0 || opts.queue_depth > 4096 || opts.cq_factor == 0 ||
      opts.cq_factor > 16) {
    return Status(Code::kInvalidArgument, "io_uring engine: queue_depth must be 1..4096");
  }
  std::unique_ptr<UringEngine> e(new UringEngine(opts));
  io_uring_params p;
  std::memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_CQSIZE;
  p.cq_entries = opts.queue_depth * opts.cq_factor;
  if (opts.sqpoll) {
    p.flags |= IORING_SETUP_SQPOLL;
    p.sq_thread_idle = opts.sqpoll_idle_ms;
  }
  if (opts.big_entries) p.flags |= IORING_SETUP_SQE128 | IORING_SETUP_CQE32;
  int rc = io_uring_queue_init_params(opts.queue_depth, &e->ring_->ring, &p);
  if (rc < 0) {
    if (rc == -EINVAL && (opts.big_entries || opts.sqpoll)) {
      return Status(Code::kNotSupported, "io_uring_setup: SQE128/CQE32 or SQPOLL refused", EINVAL);
    }
    return Status::from_errno(-rc, "io_uring_setup");
  }
  e->ring_->inited = true;
  e->slots_.resize(p.cq_entries);
  for (uint32_t i = 0; i < e->slots_.size(); ++i) {
    e->slots_[i].next_free = (i + 1 < e->slots_.size()) ? i + 1 : kNoSlot;
  }
  e->free_head_ = 0;
  return e;
}

Status UringEngine::register_files(std::span<const int> fds) {
  if (fds.empty()) return Status(Code::kInvalidArgument, "register_files: no files");
  int rc = io_uring_register_files(&ring_->ring, fds.data(), unsigned(fds.size()));
  if (rc < 0) return Status::from_errno(-rc, "io_uring_register_files");
  return Status::ok();
}

Status UringEngine::register_buffers(std::span<const iovec> bufs) {
  if (bufs.empty()) return Status(Code::kInvalidArgument, "register_buffers: no buffers");
  int rc = io_uring_register_buffers(&ring_->ring, bufs.data(), unsigned(bufs.size()));
  if (rc < 0) return Status::from_errno(-rc, "io_uring_register_buffers");
  return Status::ok();
}

Result<uint32_t> UringEngine::alloc_slot(uint64_t user_data, uint32_t pieces) {
  std::lock_guard<std::mutex> g(slot_mu_);
  if (free_head_ == kNoSlot || in_flight_.load(std::memory_order_relaxed) + pieces > slots_.size()) {
    return Status(Code::kBusy, "io_uring engine: capacity reached, reap completions first");
  }
  uint32_t idx = free_head_;
  Slot& s = slots_[idx];
  free_head_ = s.next_free;
  s.user_data = user_data;
  s.pieces_left = pieces;
  s.res = 0;
  s.flags = 0;
  s.big[0] = s.big[1] = 0;
  s.len = s.piece = s.prefix = 0;
  s.bad_piece = UINT32_MAX;
  s.t0_ns = now_ns();
  in_flight_.fetch_add(pieces, std::memory_order_relaxed);
  return idx;
}

void UringEngine::free_slot(uint32_t idx) {
  std::lock_guard<std::mutex> g(slot_mu_);
  slots_[idx].next_free = free_head_;
  free_head_ = idx;
}

io_uring_sqe* UringEngine::get_sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_->ring);
  if (sqe == nullptr) {
    // SQ full: push what is queued to the kernel and retry.
    int rc = io_uring_submit(&ring_->ring);
    if (rc > 0) queued_ -= std::min<unsigned>(queued_, unsigned(rc));
    sqe = io_uring_get_sqe(&ring_->ring);
  }
  return sqe;
}

Status UringEngine::queue(const EngineOp& op) {
  if (op.len == 0 || op.buf == nullptr || op.fd < 0) {
    return Status(Code::kInvalidArgument, "io_uring engine: empty I/O, null buffer or bad fd");
  }
  std::lock_guard<std::mutex> sq(sq_mu_);
  const size_t n = piece_count(op.len, opts_.max_io_bytes);
  auto slot = alloc_slot(op.user_data, uint32_t(n));
  if (!slot) return slot.status();
  const uint64_t piece = (n == 1) ? op.len : opts_.max_io_bytes;
  {
    std::lock_guard<std::mutex> g(slot_mu_);
    slots_[*slot].len = op.len;
    slots_[*slot].piece = piece;
  }
  size_t done = 0;
  for (size_t i = 0; i < n; ++i) {
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) {
      // Cannot happen after a successful submit; account the missing pieces
      // as failed so the request still completes exactly once.
      std::lock_guard<std::mutex> g(slot_mu_);
      Slot& s = slots_[*slot];
      if (s.res >= 0) s.res = -EAGAIN;
      if (uint32_t(i) < s.bad_piece) {
        s.bad_piece = uint32_t(i);
        s.prefix = 0;
      }
      s.pieces_left -= uint32_t(n - i);
      in_flight_.fetch_sub(n - i, std::memory_order_relaxed);
      if (i == 0) {
        s.next_free = free_head_;
        free_head_ = *slot;
        return Status(Code::kBusy, "io_uring engine: no SQE available");
      }
      break;
    }
    const size_t len = std::min<uint64_t>(piece, op.len - done);
    auto* p = static_cast<uint8_t*>(op.buf) + done;
    const uint64_t off = op.file_offset + done;
    if (op.buf_index >= 0) {
      if (op.kind == OpKind::kRead) {
        io_uring_prep_read_fixed(sqe, op.fd, p, unsigned(len), off, op.buf_index);
      } else {
        io_uring_prep_write_fixed(sqe, op.fd, p, unsigned(len), off, op.buf_index);
      }
    } else if (op.kind == OpKind::kRead) {
      io_uring_prep_read(sqe, op.fd, p, unsigned(len), off);
    } else {
      io_uring_prep_write(sqe, op.fd, p, unsigned(len), off);
    }
    if (op.fixed_file) sqe->flags |= IOSQE_FIXED_FILE;
    // Low 32 bits: the slot; high 32 bits: the piece index (for prefix).
    io_uring_sqe_set_data64(sqe, uint64_t(*slot) | (uint64_t(i) << 32));
    ++queued_;
    done += len;
  }
  return Status::ok();
}

Status UringEngine::queue_raw(RawPrep prep, void* arg, uint64_t user_data) {
  if (prep == nullptr) return Status(Code::kInvalidArgument, "io_uring engine: null prep");
  std::lock_guard<std::mutex> sq(sq_mu_);
  auto slot = alloc_slot(user_data, 1);
  if (!slot) return slot.status();
  io_uring_sqe* sqe = get_sqe();
  if (sqe == nullptr) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    free_slot(*slot);
    return Status(Code::kBusy, "io_uring engine: no SQE available");
  }
  std::memset(static_cast<void*>(sqe), 0, opts_.big_entries ? 128 : 64);
  prep(sqe, arg);
  io_uring_sqe_set_data64(sqe, *slot);
  ++queued_;
  return Status::ok();
}

Status UringEngine::check_append(size_t len) const noexcept {
  if (len == 0) return Status(Code::kInvalidArgument, "zone append of 0 bytes");
  if (opts_.max_append_bytes != 0 && len > opts_.max_append_bytes) {
    return Status(Code::kInvalidArgument,
                  "zone append larger than the zone append size limit (ZASL)");
  }
  return Status::ok();
}

Result<unsigned> UringEngine::submit() {
  std::lock_guard<std::mutex> sq(sq_mu_);
  return submit_locked();
}

Result<unsigned> UringEngine::submit_locked() {
  if (queued_ == 0) return 0u;
  int rc;
  do {
    rc = io_uring_submit(&ring_->ring);
  } while (rc == -EINTR);
  if (rc < 0) return Status::from_errno(-rc, "io_uring_submit");
  queued_ -= std::min<unsigned>(queued_, unsigned(rc));
  return unsigned(rc);
}

Result<size_t> UringEngine::reap(std::span<EngineCompletion> out, size_t min_complete) {
  {
    std::lock_guard<std::mutex> sq(sq_mu_);
    if (queued_ != 0) {
      auto s = submit_locked();
      if (!s) return s.status();
    }
  }
  size_t n = 0;
  const bool big = opts_.big_entries;
  while (n < out.size()) {
    io_uring_cqe* cqe = nullptr;
    int rc;
    if (n < min_complete && in_flight() > 0) {
      rc = io_uring_wait_cqe(&ring_->ring, &cqe);
      if (rc == -EINTR) continue;
    } else {
      rc = io_uring_peek_cqe(&ring_->ring, &cqe);
      if (rc == -EAGAIN) break;
    }
    if (rc < 0) return Status::from_errno(-rc, "io_uring_wait_cqe");
    const uint64_t data = io_uring_cqe_get_data64(cqe);
    const uint32_t idx = uint32_t(data);
    const uint32_t piece_idx = uint32_t(data >> 32);
    const int32_t res = cqe->res;
    const uint32_t flags = cqe->flags;
    uint64_t b0 = 0, b1 = 0;
    if (big) {
      b0 = cqe->big_cqe[0];
      b1 = cqe->big_cqe[1];
    }
    io_uring_cqe_seen(&ring_->ring, cqe);
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    if (idx >= slots_.size()) continue;  // not ours (cannot happen)
    // The slot was filled by the submission side: take its lock so the
    // hand-over is visible (and TSan sees it) without relying on the kernel.
    std::lock_guard<std::mutex> g(slot_mu_);
    Slot& s = slots_[idx];
    if (res < 0) {
      if (s.res >= 0) s.res = res;
    } else if (s.res >= 0) {
      s.res += res;
    }
    if (s.piece != 0) {
      const uint64_t start = uint64_t(piece_idx) * s.piece;
      const uint64_t plen = std::min<uint64_t>(s.piece, s.len > start ? s.len - start : 0);
      if ((res < 0 || uint64_t(res) < plen) && piece_idx < s.bad_piece) {
        s.bad_piece = piece_idx;
        s.prefix = start + (res > 0 ? uint64_t(res) : 0);
      }
    }
    s.flags = flags;
    s.big[0] = b0;
    s.big[1] = b1;
    if (--s.pieces_left == 0) {
      EngineCompletion& c = out[n++];
      c.user_data = s.user_data;
      c.res = s.res;
      c.flags = s.flags;
      c.big[0] = s.big[0];
      c.big[1] = s.big[1];
      c.latency_ns = now_ns() - s.t0_ns;
      c.prefix = s.bad_piece == UINT32_MAX ? s.len : s.prefix;
      s.next_free = free_head_;
      free_head_ = idx;
    }
  }
  return n;
}

Result<AlignedBuffer> AlignedBuffer::allocate(size_t bytes, size_t alignment) {
  if (bytes == 0 || alignment == 0 || (alignment & (alignment - 1)) != 0) {
    return Status(Code::kInvalidArgument, "AlignedBuffer: size 0 or alignment not a power of two");
  }
  size_t n = (bytes + alignment - 1) / alignment * alignment;
  void* p = nullptr;
  if (posix_memalign(&p, std::max<size_t>(alignment, sizeof(void*)), n) != 0) {
    return Status(Code::kOutOfMemory, "posix_memalign", ENOMEM);
  }
  std::memset(p, 0, n);
  AlignedBuffer b;
  b.p_ = static_cast<uint8_t*>(p);
  b.n_ = n;
  return b;
}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& o) noexcept {
  if (this != &o) {
    std::free(p_);
    p_ = o.p_;
    n_ = o.n_;
    o.p_ = nullptr;
    o.n_ = 0;
  }
  return *this;
}

AlignedBuffer::~AlignedBuffer() { std::free(p_); }

}  // namespace znslab::zns::io

namespace znslab::zns::io {

void prep_uring_cmd(io_uring_sqe* sqe, int fd, uint32_t cmd_op, const void* payload, size_t len) noexcept {
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = fd;
  sqe->cmd_op = cmd_op;
  if (len > 0) std::memcpy(sqe->cmd, payload, len);
}

}  // namespace znslab::zns::io
