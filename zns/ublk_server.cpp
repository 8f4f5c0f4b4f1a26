// ublk server for zoned devices (see ublk_server.h).
#include "zns/ublk_server.h"

#include <fcntl.h>
#include <linux/blkzoned.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "zns/io/uring_engine.h"
#include "zns/ublk_uapi.h"

namespace znslab::zns {

namespace {
constexpr uint64_t kSector = 512;
}

int ublk_errno(const Status& s) noexcept {
  switch (s.code()) {
    case Code::kOk: return 0;
    case Code::kTooManyOpenZones: return -ETOOMANYREFS;     // BLK_STS_ZONE_OPEN_RESOURCE
    case Code::kTooManyActiveZones: return -EOVERFLOW;      // BLK_STS_ZONE_ACTIVE_RESOURCE
    case Code::kNotSupported: return -EOPNOTSUPP;
    case Code::kInvalidArgument: return -EINVAL;
    case Code::kOutOfMemory: return -ENOMEM;
    case Code::kDeviceGone: return -ENODEV;
    case Code::kIoError: return s.sys_errno() > 0 ? -s.sys_errno() : -EIO;
    default: return -EIO;  // zone state/boundary/write-pointer errors, LBA out of range
  }
}

UblkRequestHandler::UblkRequestHandler(ZonedDevice& dev, size_t max_io_bytes)
    : dev_(dev), buf_(std::max<size_t>(max_io_bytes, 4096)) {}

UblkRequestHandler::Reply UblkRequestHandler::handle(uint8_t op, uint64_t start_sector, uint32_t nr,
                                                     const CopyFn& copy_in, const CopyFn& copy_out) {
  const DeviceInfo& inf = dev_.info();
  const uint64_t zsize = inf.zone_size;
  const uint64_t start = start_sector * kSector;
  const uint64_t dev_bytes = uint64_t(inf.zone_count) * zsize;
  Reply r;
  auto fail = [&](const Status& s) {
    r.result = ublk_errno(s);
    return r;
  };
  const uint32_t zone = uint32_t(start / zsize);
  const uint64_t off = start % zsize;
  switch (op) {
    case ublk::kOpFlush:
      return r;
    case ublk::kOpRead:
    case ublk::kOpWrite:
    case ublk::kOpZoneAppend: {
      const uint64_t len = uint64_t(nr) * kSector;
      if (len == 0 || len > buf_.size()) return fail(Status(Code::kInvalidArgument, "ublk: request size"));
      if (start + len > dev_bytes) return fail(Status(Code::kLbaOutOfRange, "ublk: beyond the device"));
      if (op == ublk::kOpRead) {
        // Split at zone boundaries; bytes past a zone's capacity read as zeros.
        uint64_t done = 0;
        while (done < len) {
          const uint64_t pos = start + done;
          const uint32_t z = uint32_t(pos / zsize);
          const uint64_t o = pos % zsize;
          const uint64_t n = std::min(len - done, zsize - o);
          uint8_t* p = buf_.data() + done;
          const uint64_t readable = o < inf.zone_capacity ? std::min(n, inf.zone_capacity - o) : 0;
          if (readable > 0) {
            Status s = dev_.read(z, o, p, readable);
            if (!s.is_ok()) return fail(s);
          }
          std::memset(p + readable, 0, n - readable);
          done += n;
        }
        ssize_t c = copy_out(buf_.data(), len, 0);
        if (c < 0) return fail(Status::from_errno(int(-c), "ublk: copy to request"));
        r.result = int32_t(len);
        return r;
      }
      ssize_t c = copy_in(buf_.data(), len, 0);
      if (c < 0) return fail(Status::from_errno(int(-c), "ublk: copy from request"));
      if (uint64_t(c) != len) return fail(Status(Code::kIoError, "ublk: short copy", EIO));
      if (op == ublk::kOpWrite) {
        if (off + len > zsize) return fail(Status(Code::kZoneBoundaryError, "ublk: write across zones"));
        Status s = dev_.write(zone, off, buf_.data(), len);
        if (!s.is_ok()) return fail(s);
      } else {
        if (off != 0) return fail(Status(Code::kInvalidArgument, "ublk: append not at a zone start"));
        auto at = dev_.append(zone, buf_.data(), len);
        if (!at) return fail(at.status());
        r.append_lba = (uint64_t(zone) * zsize + *at) / kSector;
      }
      r.result = int32_t(len);
      return r;
    }
    case ublk::kOpZoneOpen:
    case ublk::kOpZoneClose:
    case ublk::kOpZoneFinish:
    case ublk::kOpZoneReset: {
      if (off != 0 || zone >= inf.zone_count) return fail(Status(Code::kInvalidArgument, "ublk: zone"));
      Status s = op == ublk::kOpZoneOpen    ? dev_.open(zone)
                 : op == ublk::kOpZoneClose ? dev_.close(zone)
                 : op == ublk::kOpZoneFinish ? dev_.finish(zone)
                                             : dev_.reset(zone);
      if (!s.is_ok()) return fail(s);
      return r;
    }
    case ublk::kOpZoneResetAll: {
      auto zones = dev_.report_zones(0, inf.zone_count);
      if (!zones) return fail(zones.status());
      for (const Zone& z : *zones) {
        if (z.state == ZoneState::kEmpty || z.state == ZoneState::kOffline || z.state == ZoneState::kReadOnly) {
          continue;
        }
        Status s = dev_.reset(z.index);
        if (!s.is_ok()) return fail(s);
      }
      return r;
    }
    case ublk::kOpReportZones: {
      if (zone >= inf.zone_count) return fail(Status(Code::kLbaOutOfRange, "ublk: report beyond the device"));
      const uint32_t want = std::min<uint32_t>({nr, inf.zone_count - zone, uint32_t(buf_.size() / sizeof(blk_zone))});
      auto zones = dev_.report_zones(zone, want);
      if (!zones) return fail(zones.status());
      const size_t bytes = zones->size() * sizeof(blk_zone);
      std::memset(buf_.data(), 0, bytes);
      auto* out = reinterpret_cast<blk_zone*>(buf_.data());
      for (size_t i = 0; i < zones->size(); ++i) {
        const Zone& z = (*zones)[i];
        blk_zone& b = out[i];
        b.start = z.start / kSector;
        b.len = zsize / kSector;
        b.capacity = z.capacity / kSector;
        b.type = BLK_ZONE_TYPE_SEQWRITE_REQ;
        b.wp = z.write_pointer / kSector;
        switch (z.state) {
          case ZoneState::kEmpty: b.cond = BLK_ZONE_COND_EMPTY; break;
          case ZoneState::kImplicitOpen: b.cond = BLK_ZONE_COND_IMP_OPEN; break;
          case ZoneState::kExplicitOpen: b.cond = BLK_ZONE_COND_EXP_OPEN; break;
          case ZoneState::kClosed: b.cond = BLK_ZONE_COND_CLOSED; break;
          case ZoneState::kFull:
            b.cond = BLK_ZONE_COND_FULL;
            b.wp = b.start + b.len;  // as the kernel's NVMe driver reports a full zone
            break;
          case ZoneState::kReadOnly: b.cond = BLK_ZONE_COND_READONLY; break;
          case ZoneState::kOffline: b.cond = BLK_ZONE_COND_OFFLINE; break;
        }
      }
      if (bytes > 0) {
        ssize_t c = copy_out(buf_.data(), bytes, 0);
        if (c < 0) return fail(Status::from_errno(int(-c), "ublk: copy zone report"));
      }
      r.result = int32_t(bytes);
      return r;
    }
    default:
      return fail(Status(Code::kNotSupported, "ublk: operation"));
  }
}

// ---- server -----------------------------------------------------------------

namespace {

struct CtrlPrep {
  int fd;
  uint32_t op;
  ublk::CtrlCmd cmd;
};
void prep_ctrl(io_uring_sqe* sqe, void* arg) {
  auto* a = static_cast<CtrlPrep*>(arg);
  io::prep_uring_cmd(sqe, a->fd, a->op, &a->cmd, sizeof a->cmd);
}

struct IoPrep {
  int fd;
  uint32_t op;
  ublk::IoCmd cmd;
};
void prep_io(io_uring_sqe* sqe, void* arg) {
  auto* a = static_cast<IoPrep*>(arg);
  io::prep_uring_cmd(sqe, a->fd, a->op, &a->cmd, sizeof a->cmd);
}

bool is_pow2(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

}  // namespace

Result<std::unique_ptr<UblkServer>> UblkServer::create(ZonedDevice& dev, const UblkOptions& opts) {
  const DeviceInfo& inf = dev.info();
  if (!is_pow2(inf.zone_size) || inf.zone_size % kSector != 0) {
    return Status(Code::kNotSupported, "ublk: the zone size must be a power of two (the kernel's zoned block layer)");
  }
  if (!is_pow2(inf.lba_bytes) || inf.lba_bytes < 512 || inf.lba_bytes > 4096) {
    return Status(Code::kNotSupported, "ublk: the LBA size must be 512..4096 bytes");
  }
  if (opts.queue_depth == 0 || opts.queue_depth > 4096) {
    return Status(Code::kInvalidArgument, "ublk: queue depth must be 1..4096");
  }
  if (opts.max_io_bytes < 4096 || opts.max_io_bytes % 4096 != 0 || opts.max_io_bytes > ublk::kMaxIoBufBytes) {
    return Status(Code::kInvalidArgument, "ublk: max I/O bytes must be a multiple of 4096, at most 32 MiB");
  }
  std::unique_ptr<UblkServer> s(new UblkServer(dev, opts));
  s->ctrl_fd_ = ::open("/dev/ublk-control", O_RDWR | O_CLOEXEC);
  if (s->ctrl_fd_ < 0) {
    const int e = errno;
    return Status(e == ENOENT ? Code::kNotSupported : Code::kIoError,
                  "open /dev/ublk-control (modprobe ublk_drv; Linux >= 6.6 for zoned ublk)", e);
  }
  return s;
}

UblkServer::~UblkServer() {
  if (ctrl_fd_ >= 0) ::close(ctrl_fd_);
}

Status UblkServer::ctrl(uint32_t op, uint64_t addr, uint16_t len, uint64_t data0) {
  io::EngineOptions eo;
  eo.queue_depth = 4;
  eo.big_entries = true;
  auto eng = io::UringEngine::create(eo);
  if (!eng) return eng.status();
  CtrlPrep p{};
  p.fd = ctrl_fd_;
  p.op = op;
  p.cmd.dev_id = dev_id_;
  p.cmd.queue_id = UINT16_MAX;
  p.cmd.len = len;
  p.cmd.addr = addr;
  p.cmd.data[0] = data0;
  Status q = (*eng)->queue_raw(prep_ctrl, &p, 1);
  if (!q.is_ok()) return q;
  io::EngineCompletion c;
  auto n = (*eng)->reap(std::span<io::EngineCompletion>(&c, 1), 1);
  if (!n) return n.status();
  if (c.res < 0) return Status::from_errno(int(-c.res), "ublk control command");
  return Status::ok();
}

void UblkServer::request_stop() { stop_.store(true, std::memory_order_relaxed); }

Status UblkServer::queue_loop(int cdev_fd, std::atomic<int>* state) {
  const unsigned depth = opts_.queue_depth;
  const size_t map_bytes = (depth * sizeof(ublk::IoDesc) + 4095) / 4096 * 4096;
  // The request descriptors: a read-only mapping of the driver's per-queue
  // array (device memory, not an allocation: src/pages is not involved).
  void* map = ::mmap(nullptr, map_bytes, PROT_READ, MAP_SHARED | MAP_POPULATE, cdev_fd, 0);
  if (map == MAP_FAILED) {
    state->store(-errno);
    return Status::from_errno(errno, "mmap /dev/ublkcN");
  }
  const auto* descs = static_cast<const ublk::IoDesc*>(map);
  io::EngineOptions eo;
  eo.queue_depth = depth;
  eo.cq_factor = 2;
  auto eng_r = io::UringEngine::create(eo);
  if (!eng_r) {
    ::munmap(map, map_bytes);
    state->store(-EIO);
    return eng_r.status();
  }
  io::UringEngine& eng = **eng_r;
  auto issue = [&](uint32_t op, uint16_t tag, int32_t result, uint64_t addr) {
    IoPrep p{};
    p.fd = cdev_fd;
    p.op = op;
    p.cmd.q_id = 0;
    p.cmd.tag = tag;
    p.cmd.result = result;
    p.cmd.addr = addr;
    return eng.queue_raw(prep_io, &p, tag);
  };
  Status st = Status::ok();
  for (unsigned t = 0; t < depth && st.is_ok(); ++t) st = issue(ublk::kIoFetchReq, uint16_t(t), 0, 0);
  if (st.is_ok()) {
    auto sub = eng.submit();
    if (!sub) st = sub.status();
  }
  state->store(st.is_ok() ? 1 : -EIO);
  UblkRequestHandler handler(dev_, opts_.max_io_bytes);
  std::vector<io::EngineCompletion> cqes(depth);
  unsigned live = st.is_ok() ? depth : 0;
  while (live > 0) {
    auto n = eng.reap(cqes, 1);
    if (!n) {
      st = n.status();
      break;
    }
    for (size_t i = 0; i < *n; ++i) {
      const uint16_t tag = uint16_t(cqes[i].user_data);
      const int64_t res = cqes[i].res;
      if (res != 0) {  // UBLK_IO_RES_ABORT (device stopping) or a refused command
        if (res != ublk::kIoResAbort && opts_.verbose) {
          std::fprintf(stderr, "ublk: tag %u: io command failed: %s\n", tag, std::strerror(int(-res)));
        }
        --live;
        continue;
      }
      const ublk::IoDesc d = descs[tag];
      const uint64_t pos = ublk::user_copy_pos(0, tag);
      auto copy_in = [&](void* b, size_t len, uint64_t off) -> ssize_t {
        ssize_t r = ::pread(cdev_fd, b, len, off_t(pos + off));
        return r < 0 ? -errno : r;
      };
      auto copy_out = [&](void* b, size_t len, uint64_t off) -> ssize_t {
        ssize_t r = ::pwrite(cdev_fd, b, len, off_t(pos + off));
        return r < 0 ? -errno : r;
      };
      auto rep = handler.handle(uint8_t(d.op_flags & 0xff), d.start_sector, d.nr_sectors, copy_in, copy_out);
      requests_.fetch_add(1, std::memory_order_relaxed);
      Status q = issue(ublk::kIoCommitAndFetchReq, tag, rep.result, rep.append_lba);
      if (!q.is_ok()) {
        st = q;
        --live;
      }
    }
    auto sub = eng.submit();
    if (!sub) {
      st = sub.status();
      break;
    }
  }
  ::munmap(map, map_bytes);
  state->store(2);
  return st;
}

Status UblkServer::run(const std::function<void(int dev_id)>& on_ready) {
  const DeviceInfo& inf = dev_.info();
  ublk::DevInfo di{};
  di.nr_hw_queues = 1;
  di.queue_depth = uint16_t(opts_.queue_depth);
  di.max_io_buf_bytes = opts_.max_io_bytes;
  di.dev_id = opts_.dev_id < 0 ? UINT32_MAX : uint32_t(opts_.dev_id);
  di.ublksrv_pid = int32_t(::getpid());
  di.flags = ublk::kFlagZoned | ublk::kFlagUserCopy | ublk::kFlagCmdIoctlEncode;
  dev_id_ = di.dev_id;
  Status s = ctrl(ublk::kCmdAddDev, reinterpret_cast<uint64_t>(&di), sizeof di, 0);
  if (!s.is_ok()) return Status(s.code(), "ublk ADD_DEV", s.sys_errno());
  dev_id_ = di.dev_id;
  auto cleanup_del = [&] { (void)ctrl(ublk::kCmdDelDev, 0, 0, 0); };

  ublk::Params p{};
  p.len = sizeof p;
  p.types = ublk::kParamBasic | ublk::kParamZoned;
  unsigned shift = 9;
  while ((1u << shift) < inf.lba_bytes) ++shift;
  p.basic.logical_bs_shift = uint8_t(shift);
  p.basic.physical_bs_shift = uint8_t(shift);
  p.basic.io_opt_shift = uint8_t(shift);
  p.basic.io_min_shift = uint8_t(shift);
  p.basic.max_sectors = opts_.max_io_bytes / kSector;
  p.basic.chunk_sectors = uint32_t(inf.zone_size / kSector);
  p.basic.dev_sectors = uint64_t(inf.zone_count) * inf.zone_size / kSector;
  p.zoned.max_open_zones = inf.max_open;
  p.zoned.max_active_zones = inf.max_active;
  uint64_t zasl = inf.zone_append_max_bytes == 0 ? opts_.max_io_bytes
                                                 : std::min<uint64_t>(inf.zone_append_max_bytes, opts_.max_io_bytes);
  p.zoned.max_zone_append_sectors = uint32_t(zasl / kSector);
  s = ctrl(ublk::kCmdSetParams, reinterpret_cast<uint64_t>(&p), sizeof p, 0);
  if (!s.is_ok()) {
    cleanup_del();
    return Status(s.code(), "ublk SET_PARAMS", s.sys_errno());
  }

  const std::string cdev = "/dev/ublkc" + std::to_string(dev_id_);
  int cfd = -1;
  for (int i = 0; i < 200 && cfd < 0; ++i) {  // devtmpfs/udev creates the node
    cfd = ::open(cdev.c_str(), O_RDWR | O_CLOEXEC);
    if (cfd < 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (cfd < 0) {
    const int e = errno;
    cleanup_del();
    return Status::from_errno(e, "open /dev/ublkcN");
  }
  std::atomic<int> qstate{0};
  Status qstatus = Status::ok();
  std::thread qt([&] { qstatus = queue_loop(cfd, &qstate); });
  while (qstate.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  Status started = qstate.load() == 1 ? ctrl(ublk::kCmdStartDev, 0, 0, uint64_t(::getpid()))
                                      : Status(Code::kIoError, "ublk: queue setup failed", EIO);
  if (started.is_ok()) {
    if (opts_.verbose) std::fprintf(stderr, "ublk: /dev/ublkb%u started\n", dev_id_);
    if (on_ready) on_ready(int(dev_id_));
    while (!stop_.load(std::memory_order_relaxed) && qstate.load() != 2) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  // STOP_DEV removes /dev/ublkbN and aborts every pending fetch: the queue
  // thread ends when all its tags came back. Harmless when the device was
  // already removed from elsewhere.
  (void)ctrl(ublk::kCmdStopDev, 0, 0, 0);
  qt.join();
  ::close(cfd);
  Status del = ctrl(ublk::kCmdDelDev, 0, 0, 0);
  if (opts_.verbose) {
    std::fprintf(stderr, "ublk: /dev/ublkb%u stopped after %llu requests\n", dev_id_,
                 static_cast<unsigned long long>(requests()));
  }
  if (!started.is_ok()) return Status(started.code(), "ublk START_DEV", started.sys_errno());
  if (!qstatus.is_ok()) return qstatus;
  (void)del;
  return Status::ok();
}

}  // namespace znslab::zns
