// zbd: backend (libzbd + io_uring O_DIRECT); see zbd_device.h.
#include "zns/zbd_device.h"

#include <fcntl.h>
#include <libzbd/zbd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>

#include "zns/backends.h"
#include "zns/real_device.h"
#include "zns/uri.h"

namespace znslab::zns {

Status zbd_errno_status(int e, const char* context) noexcept {
  if (e == ETOOMANYREFS) return Status(Code::kTooManyOpenZones, context, e);
  if (e == EOVERFLOW) return Status(Code::kTooManyActiveZones, context, e);
  return Status::from_errno(e, context);
}

namespace {

// Reads one unsigned value from /sys/block/<name>/queue/<attr>; 0 if absent.
uint64_t sysfs_queue_u64(const std::string& name, const char* attr) {
  std::ifstream f("/sys/block/" + name + "/queue/" + attr);
  uint64_t v = 0;
  if (!(f >> v)) return 0;
  return v;
}

// /dev/nvme0n1 -> nvme0n1 (resolving symlinks such as /dev/disk/by-id/...).
std::string block_name(const std::string& path) {
  char buf[4096];
  std::string p = path;
  if (realpath(path.c_str(), buf)) p = buf;
  auto slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

ZoneState state_from_cond(unsigned cond) {
  switch (cond) {
    case ZBD_ZONE_COND_EMPTY: return ZoneState::kEmpty;
    case ZBD_ZONE_COND_IMP_OPEN: return ZoneState::kImplicitOpen;
    case ZBD_ZONE_COND_EXP_OPEN: return ZoneState::kExplicitOpen;
    case ZBD_ZONE_COND_CLOSED: return ZoneState::kClosed;
    case ZBD_ZONE_COND_FULL: return ZoneState::kFull;
    case ZBD_ZONE_COND_READONLY: return ZoneState::kReadOnly;
    default: return ZoneState::kOffline;  // OFFLINE (NOT_WP zones are refused at open)
  }
}

class ZbdDevice final : public RealZonedDevice {
 public:
  ~ZbdDevice() override {
    if (fd_ >= 0) zbd_close(fd_);
  }

  static Result<std::unique_ptr<ZonedDevice>> open(const std::string& path) {
    auto dev = std::unique_ptr<ZbdDevice>(new ZbdDevice());
    zbd_info zi{};
    int fd = zbd_open(path.c_str(), O_RDWR | O_DIRECT, &zi);
    if (fd < 0) {
      const int e = errno;
      std::string msg = "zbd: cannot open " + path + ": " + std::strerror(e);
      if (e == ENXIO || e == ENOTTY)
        return Status::with_message(Code::kNotSupported, msg + " (not a zoned block device?)", e);
      if (e == EACCES || e == EPERM) msg += " (needs read/write permission on the device node)";
      return Status::from_errno_message(e, msg);
    }
    dev->fd_ = fd;
    const std::string name = block_name(path);
    unsigned nz = zi.nr_zones;
    std::vector<zbd_zone> zones(nz ? nz : 1);
    if (zbd_report_zones(fd, 0, 0, ZBD_RO_ALL, zones.data(), &nz) != 0 || nz == 0) {
      const int e = errno;
      return Status::from_errno_message(e ? e : EIO, "zbd: zone report failed on " + path + ": " +
                                                         std::strerror(e ? e : EIO));
    }
    // znslab drives sequential-write-required zones only; a device with
    // conventional zones in front (SMR disks) is refused rather than
    // renumbered silently.
    for (unsigned i = 0; i < nz; ++i) {
      if (zones[i].type != ZBD_ZONE_TYPE_SWR) {
        return Status::with_message(Code::kNotSupported,
                                    "zbd: " + path + " zone " + std::to_string(i) +
                                        " is not sequential-write-required (conventional zones are not supported)");
      }
    }
    DeviceInfo& in = dev->info_;
    in.backend = "zbd";
    in.path = path;
    in.model = zi.vendor_id;
    // null_blk has documented semantic differences (zns/zone_trace.h Quirks).
    if (name.rfind("nullb", 0) == 0) in.model = "null_blk";
    in.zone_count = nz;
    in.zone_size = zi.zone_size;
    in.zone_capacity = zones[0].capacity;
    in.lba_bytes = zi.lblock_size;
    in.max_open = zi.max_nr_open_zones;
    in.max_active = zi.max_nr_active_zones;
    uint64_t max_io = sysfs_queue_u64(name, "max_sectors_kb") * 1024;
    if (max_io == 0) max_io = 128 * 1024;  // the block layer default when sysfs is unreadable
    max_io = unsplit_io_limit(max_io, sysfs_queue_u64(name, "max_segments"), in.lba_bytes);
    in.max_io_bytes = max_io;
    uint64_t zamb = sysfs_queue_u64(name, "zone_append_max_bytes");
    in.zone_append_max_bytes = std::min<uint64_t>(zamb ? zamb : max_io, max_io);
    dev->init_zones();
    return std::unique_ptr<ZonedDevice>(std::move(dev));
  }

 protected:
  Result<std::vector<Zone>> do_report(uint32_t first, uint32_t count) override {
    std::vector<zbd_zone> zs(count);
    unsigned n = count;
    if (zbd_report_zones(fd_, off_t(uint64_t(first) * info_.zone_size), off_t(uint64_t(count) * info_.zone_size),
                         ZBD_RO_ALL, zs.data(), &n) != 0)
      return zbd_errno_status(errno ? errno : EIO, "zbd_report_zones");
    std::vector<Zone> out;
    out.reserve(n);
    for (unsigned i = 0; i < n && i < count; ++i) {
      Zone z;
      z.index = first + i;
      z.start = zs[i].start;
      z.capacity = zs[i].capacity;
      z.state = state_from_cond(zs[i].cond);
      // The kernel reports the WP of FULL zones as start + zone size and of
      // OFFLINE/READ_ONLY zones as undefined; report start + capacity for
      // FULL (the ZonedDevice contract) and start for the others.
      if (z.state == ZoneState::kFull)
        z.write_pointer = z.start + z.capacity;
      else if (z.state == ZoneState::kOffline || z.state == ZoneState::kReadOnly)
        z.write_pointer = z.start;
      else
        z.write_pointer = zs[i].wp;
      out.push_back(z);
    }
    return out;
  }

  Status do_mgmt(ZoneMgmt op, uint32_t zone) override {
    const off_t ofst = off_t(uint64_t(zone) * info_.zone_size);
    const off_t len = off_t(info_.zone_size);
    int rc = 0;
    const char* ctx = "";
    switch (op) {
      case ZoneMgmt::kOpen: rc = zbd_open_zones(fd_, ofst, len); ctx = "zbd open zone (BLKOPENZONE)"; break;
      case ZoneMgmt::kClose: rc = zbd_close_zones(fd_, ofst, len); ctx = "zbd close zone (BLKCLOSEZONE)"; break;
      case ZoneMgmt::kFinish: rc = zbd_finish_zones(fd_, ofst, len); ctx = "zbd finish zone (BLKFINISHZONE)"; break;
      case ZoneMgmt::kReset: rc = zbd_reset_zones(fd_, ofst, len); ctx = "zbd reset zone (BLKRESETZONE)"; break;
    }
    if (rc != 0) return zbd_errno_status(errno ? errno : EIO, ctx);
    return Status::ok();
  }

  bool native_append() const noexcept override { return false; }
  // The block layer passes whatever the device returns for blocks beyond
  // the write pointer (null_blk: 0xff); the contract says zeros.
  bool zero_fill_beyond_wp() const noexcept override { return true; }

  Status queue_piece(io::UringEngine& eng, IoOp op, uint32_t zone, uint64_t offset, void* buf,
                     size_t len, uint64_t tag) override {
    io::EngineOp e;
    e.kind = op == IoOp::kRead ? io::OpKind::kRead : io::OpKind::kWrite;
    e.fd = fd_;
    e.buf = buf;
    e.len = len;
    e.file_offset = uint64_t(zone) * info_.zone_size + offset;
    e.user_data = tag;
    return eng.queue(e);
  }

  Status piece_status(IoOp op, uint32_t, const io::EngineCompletion& c, uint64_t*) override {
    if (c.res < 0)
      return zbd_errno_status(int(-c.res), op == IoOp::kRead ? "zbd read (io_uring O_DIRECT)"
                                                             : "zbd write (io_uring O_DIRECT)");
    return Status::ok();
  }

  io::EngineOptions engine_options(unsigned qd) const override {
    io::EngineOptions o;
    o.queue_depth = qd;
    o.max_io_bytes = 0;  // pieces are cut by RealZonedDevice (writes one at a time)
    return o;
  }

 private:
  ZbdDevice() = default;
  int fd_ = -1;
};

}  // namespace

Result<std::unique_ptr<ZonedDevice>> open_zbd_device(std::string_view spec) {
  auto uri = parse_device_spec(spec);
  if (!uri) return uri.status();
  if (!uri->params.empty()) {
    return Status::with_message(Code::kInvalidArgument, "zbd: unknown parameter '" + uri->params.begin()->first +
                                                            "' in zbd:" + std::string(spec) +
                                                            " (zbd: takes only a device path)");
  }
  struct stat st{};
  if (::stat(uri->path.c_str(), &st) != 0) {
    const int e = errno;
    return Status::from_errno_message(e, "zbd: " + uri->path + ": " + std::strerror(e));
  }
  if (!S_ISBLK(st.st_mode)) {
    return Status::with_message(Code::kNotSupported, "zbd: " + uri->path + " is not a block device");
  }
  return ZbdDevice::open(uri->path);
}

}  // namespace znslab::zns
