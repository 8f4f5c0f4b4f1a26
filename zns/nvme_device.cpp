// nvme: backend (libnvme + io_uring NVMe passthrough); see nvme_device.h.
#include "zns/nvme_device.h"

#include <fcntl.h>
#include <libnvme.h>
#include <linux/io_uring.h>
#include <linux/nvme_ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>

#include "zns/backends.h"
#include "zns/io/uring_engine.h"
#include "zns/real_device.h"
#include "zns/uri.h"

namespace znslab::zns {

Status nvme_status_to_status(int st, const char* context) noexcept {
  if (st == 0) return Status::ok();
  if (st < 0) return Status::from_errno(-st, context);
  const int sct = (st >> NVME_SCT_SHIFT) & NVME_SCT_MASK;
  const int sc = st & NVME_SC_MASK;
  if (sct == NVME_SCT_CMD_SPECIFIC) {
    switch (sc) {
      case NVME_SC_ZNS_BOUNDARY_ERROR: return Status(Code::kZoneBoundaryError, context);
      case NVME_SC_ZNS_FULL: return Status(Code::kZoneIsFull, context);
      case NVME_SC_ZNS_READ_ONLY: return Status(Code::kZoneIsReadOnly, context);
      case NVME_SC_ZNS_OFFLINE: return Status(Code::kZoneIsOffline, context);
      case NVME_SC_ZNS_INVALID_WRITE: return Status(Code::kZoneInvalidWrite, context);
      case NVME_SC_ZNS_TOO_MANY_ACTIVE: return Status(Code::kTooManyActiveZones, context);
      case NVME_SC_ZNS_TOO_MANY_OPENS: return Status(Code::kTooManyOpenZones, context);
      case NVME_SC_ZNS_INVAL_TRANSITION: return Status(Code::kInvalidZoneStateTransition, context);
      default: break;
    }
  } else if (sct == NVME_SCT_GENERIC) {
    if (sc == NVME_SC_LBA_RANGE) return Status(Code::kLbaOutOfRange, context);
    if (sc == NVME_SC_INVALID_FIELD) return Status(Code::kInvalidArgument, context, EINVAL);
  }
  return Status(Code::kIoError, context, EIO);
}

namespace {

constexpr uint8_t kOpWrite = 0x01;
constexpr uint8_t kOpRead = 0x02;
constexpr uint8_t kOpZoneAppend = 0x7d;

uint64_t read_u64(const std::string& path) {
  std::ifstream f(path);
  uint64_t v = 0;
  if (!(f >> v)) return 0;
  return v;
}

// /dev/ng0n1 -> "nvme0n1" (the block device of the same namespace).
std::string block_name_for(const std::string& path) {
  char buf[4096];
  std::string p = path;
  if (realpath(path.c_str(), buf)) p = buf;
  auto slash = p.rfind('/');
  std::string name = slash == std::string::npos ? p : p.substr(slash + 1);
  if (name.rfind("ng", 0) == 0) return "nvme" + name.substr(2);
  return name;
}

ZoneState state_from_zs(uint8_t zs) {
  switch (zs >> 4) {
    case NVME_ZNS_ZS_EMPTY: return ZoneState::kEmpty;
    case NVME_ZNS_ZS_IMPL_OPEN: return ZoneState::kImplicitOpen;
    case NVME_ZNS_ZS_EXPL_OPEN: return ZoneState::kExplicitOpen;
    case NVME_ZNS_ZS_CLOSED: return ZoneState::kClosed;
    case NVME_ZNS_ZS_READ_ONLY: return ZoneState::kReadOnly;
    case NVME_ZNS_ZS_FULL: return ZoneState::kFull;
    default: return ZoneState::kOffline;
  }
}

struct PrepArg {
  int fd;
  nvme_uring_cmd cmd;
};

void prep_uring_cmd(io_uring_sqe* sqe, void* arg) {
  auto* a = static_cast<PrepArg*>(arg);
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = a->fd;
  sqe->cmd_op = NVME_URING_CMD_IO;
  static_assert(sizeof(nvme_uring_cmd) <= 80, "nvme_uring_cmd must fit a 128-byte SQE");
  std::memcpy(sqe->cmd, &a->cmd, sizeof(a->cmd));
}

class NvmeDevice final : public RealZonedDevice {
 public:
  ~NvmeDevice() override {
    if (fd_ >= 0) ::close(fd_);
  }

  static Result<std::unique_ptr<ZonedDevice>> open(const std::string& path) {
    auto dev = std::unique_ptr<NvmeDevice>(new NvmeDevice());
    int fd = ::open(path.c_str(), O_RDWR);
    if (fd < 0) {
      const int e = errno;
      std::string msg = "nvme: cannot open " + path + ": " + std::strerror(e);
      if (e == EACCES || e == EPERM)
        msg += " (passthrough needs read/write access to the ng device; identify needs CAP_SYS_ADMIN)";
      return Status::from_errno_message(e, msg);
    }
    dev->fd_ = fd;
    auto fail = [&](const std::string& what, int rc, const char* ctx, const char* hint = "") -> Status {
      const int e = errno ? errno : EIO;
      char b[16];
      std::snprintf(b, sizeof b, "%x", unsigned(rc));
      const std::string msg = "nvme: " + what + " failed on " + path + ": " +
                              (rc < 0 ? std::string(std::strerror(e)) : "NVMe status 0x" + std::string(b)) + hint;
      const Status s = rc < 0 ? Status::from_errno(e, ctx) : nvme_status_to_status(rc, ctx);
      return Status::with_message(s.code(), msg, s.sys_errno());
    };
    __u32 nsid = 0;
    if (int rc = nvme_get_nsid(fd, &nsid); rc != 0) return fail("NVME_IOCTL_ID", rc, "nvme_get_nsid");
    dev->nsid_ = nsid;
    nvme_id_ns ns{};
    if (int rc = nvme_identify_ns(fd, nsid, &ns); rc != 0) return fail("Identify Namespace", rc, "nvme_identify_ns");
    const unsigned fmt = (ns.flbas & 0xf) | (((ns.flbas >> 5) & 0x3) << 4);
    const uint32_t lba = 1u << ns.lbaf[fmt].ds;
    nvme_zns_id_ns zns{};
    if (int rc = nvme_zns_identify_ns(fd, nsid, &zns); rc != 0) {
      Status s = fail("ZNS Identify Namespace", rc, "nvme_zns_identify_ns", " (not a zoned namespace?)");
      return rc > 0 ? Status::with_message(Code::kNotSupported, s.context()) : s;
    }
    nvme_id_ctrl ctrl{};
    if (int rc = nvme_identify_ctrl(fd, &ctrl); rc != 0) return fail("Identify Controller", rc, "nvme_identify_ctrl");
    nvme_zns_id_ctrl zctrl{};
    if (int rc = nvme_zns_identify_ctrl(fd, &zctrl); rc != 0) return fail("ZNS Identify Controller", rc, "nvme_zns_identify_ctrl");

    DeviceInfo& in = dev->info_;
    in.backend = "nvme";
    in.path = path;
    in.model = std::string(ctrl.mn, strnlen(ctrl.mn, sizeof ctrl.mn));
    while (!in.model.empty() && in.model.back() == ' ') in.model.pop_back();
    in.lba_bytes = lba;
    const uint64_t zsze = le64toh(zns.lbafe[fmt].zsze);
    const uint64_t nsze = le64toh(ns.nsze);
    if (zsze == 0) {
      return Status::with_message(Code::kNotSupported, "nvme: " + path + " reports zone size 0");
    }
    in.zone_size = zsze * lba;
    in.zone_count = uint32_t(nsze / zsze);
    const uint32_t mor = le32toh(zns.mor), mar = le32toh(zns.mar);
    in.max_open = mor == 0xffffffffu ? 0 : mor + 1;    // 0-based; all ones = no limit
    in.max_active = mar == 0xffffffffu ? 0 : mar + 1;
    // Maximum transfer: the block layer's max_hw_sectors_kb for this
    // namespace (MDTS x CAP.MPSMIN, capped by the driver); without sysfs
    // assume 4 KiB minimum pages.
    const std::string blk = block_name_for(path);
    uint64_t max_hw = read_u64("/sys/block/" + blk + "/queue/max_hw_sectors_kb") * 1024;
    uint64_t mps = 4096;
    if (max_hw == 0) max_hw = ctrl.mdts ? (uint64_t(1) << ctrl.mdts) * mps : 1024 * 1024;
    else if (ctrl.mdts) mps = std::max<uint64_t>(4096, max_hw >> ctrl.mdts);
    const uint64_t zasl = zctrl.zasl ? (uint64_t(1) << zctrl.zasl) * mps : max_hw;
    max_hw = unsplit_io_limit(max_hw, read_u64("/sys/block/" + blk + "/queue/max_segments"), lba);
    in.max_io_bytes = max_hw;
    in.zone_append_max_bytes = std::min(zasl, max_hw);
    dev->init_zones();
    auto z = dev->do_report(0, 1);
    if (!z) {
      return Status::with_message(z.status().code(), "nvme: Report Zones failed on " + path + ": " + z.status().to_string(),
                                  z.status().sys_errno());
    }
    in.zone_capacity = (*z)[0].capacity;
    return std::unique_ptr<ZonedDevice>(std::move(dev));
  }

 protected:
  Result<std::vector<Zone>> do_report(uint32_t first, uint32_t count) override {
    std::vector<Zone> out;
    out.reserve(count);
    const uint32_t lba = info_.lba_bytes;
    const uint64_t zlbas = info_.zone_size / lba;
    constexpr uint32_t kChunk = 63;  // 64 + 63 * 64 bytes = one 4 KiB page per command
    alignas(4096) static thread_local uint8_t buf[4096];
    while (out.size() < count) {
      const uint32_t z0 = first + uint32_t(out.size());
      const uint32_t want = std::min<uint32_t>(kChunk, count - uint32_t(out.size()));
      std::memset(buf, 0, sizeof buf);
      __u32 result = 0;
      int rc = nvme_zns_report_zones(fd_, nsid_, uint64_t(z0) * zlbas, NVME_ZNS_ZRAS_REPORT_ALL, false,
                                     true, uint32_t(64 + 64 * want), buf, NVME_DEFAULT_IOCTL_TIMEOUT,
                                     &result);
      if (rc != 0) return rc < 0 ? Status::from_errno(errno ? errno : EIO, "nvme Zone Management Receive")
                                 : nvme_status_to_status(rc, "nvme Zone Management Receive");
      auto* rep = reinterpret_cast<nvme_zone_report*>(buf);
      const uint64_t got = std::min<uint64_t>(le64toh(rep->nr_zones), want);
      if (got == 0) return Status(Code::kIoError, "nvme Report Zones returned no zone", EIO);
      for (uint64_t i = 0; i < got; ++i) {
        const nvme_zns_desc& d = rep->entries[i];
        Zone z;
        z.index = z0 + uint32_t(i);
        z.start = le64toh(d.zslba) * lba;
        z.capacity = le64toh(d.zcap) * lba;
        z.write_pointer = le64toh(d.wp) * lba;
        z.state = state_from_zs(d.zs);
        // The ZNS spec leaves the WP of Full/Read Only/Offline zones
        // undefined (QEMU reports ~0 for some): normalise like zbd:.
        if (z.state == ZoneState::kFull)
          z.write_pointer = z.start + z.capacity;
        else if (z.state == ZoneState::kOffline || z.state == ZoneState::kReadOnly)
          z.write_pointer = z.start;
        out.push_back(z);
      }
    }
    return out;
  }

  Status do_mgmt(ZoneMgmt op, uint32_t zone) override {
    nvme_zns_send_action zsa = NVME_ZNS_ZSA_OPEN;
    const char* ctx = "";
    switch (op) {
      case ZoneMgmt::kOpen: zsa = NVME_ZNS_ZSA_OPEN; ctx = "nvme Open Zone"; break;
      case ZoneMgmt::kClose: zsa = NVME_ZNS_ZSA_CLOSE; ctx = "nvme Close Zone"; break;
      case ZoneMgmt::kFinish: zsa = NVME_ZNS_ZSA_FINISH; ctx = "nvme Finish Zone"; break;
      case ZoneMgmt::kReset: zsa = NVME_ZNS_ZSA_RESET; ctx = "nvme Reset Zone"; break;
    }
    __u32 result = 0;
    nvme_zns_mgmt_send_args a{};
    a.slba = uint64_t(zone) * (info_.zone_size / info_.lba_bytes);
    a.result = &result;
    a.args_size = sizeof(a);
    a.fd = fd_;
    a.timeout = NVME_DEFAULT_IOCTL_TIMEOUT;
    a.nsid = nsid_;
    a.zsa = zsa;
    a.select_all = false;
    int rc = nvme_zns_mgmt_send(&a);
    if (rc < 0) return Status::from_errno(errno ? errno : EIO, ctx);
    return nvme_status_to_status(rc, ctx);
  }

  bool native_append() const noexcept override { return true; }

  Status queue_piece(io::UringEngine& eng, IoOp op, uint32_t zone, uint64_t offset, void* buf,
                     size_t len, uint64_t tag) override {
    const uint64_t lba = info_.lba_bytes;
    const uint64_t zslba = uint64_t(zone) * (info_.zone_size / lba);
    PrepArg a{};
    a.fd = fd_;
    a.cmd.opcode = op == IoOp::kRead ? kOpRead : op == IoOp::kWrite ? kOpWrite : kOpZoneAppend;
    a.cmd.nsid = nsid_;
    const uint64_t slba = op == IoOp::kAppend ? zslba : zslba + offset / lba;
    a.cmd.cdw10 = uint32_t(slba & 0xffffffffu);
    a.cmd.cdw11 = uint32_t(slba >> 32);
    a.cmd.cdw12 = uint32_t(len / lba - 1) & 0xffffu;  // NLB, 0-based
    a.cmd.addr = reinterpret_cast<uint64_t>(buf);
    a.cmd.data_len = uint32_t(len);
    return eng.queue_raw(&prep_uring_cmd, &a, tag);
  }

  Status piece_status(IoOp op, uint32_t zone, const io::EngineCompletion& c, uint64_t* landed) override {
    const char* ctx = op == IoOp::kRead ? "nvme Read (io_uring passthrough)"
                      : op == IoOp::kWrite ? "nvme Write (io_uring passthrough)"
                                           : "nvme Zone Append (io_uring passthrough)";
    Status s = nvme_status_to_status(int(c.res), ctx);
    if (s.is_ok() && op == IoOp::kAppend && landed) {
      const uint64_t lba = info_.lba_bytes;
      *landed = c.big[0] * lba - uint64_t(zone) * info_.zone_size;
    }
    return s;
  }

  io::EngineOptions engine_options(unsigned qd) const override {
    io::EngineOptions o;
    o.queue_depth = qd;
    o.big_entries = true;
    o.max_io_bytes = 0;  // raw SQEs are never split; RealZonedDevice cuts to MDTS
    o.max_append_bytes = info_.zone_append_max_bytes;
    return o;
  }

 private:
  NvmeDevice() = default;
  int fd_ = -1;
  uint32_t nsid_ = 0;
};

}  // namespace

Result<std::unique_ptr<ZonedDevice>> open_nvme_device(std::string_view spec) {
  auto uri = parse_device_spec(spec);
  if (!uri) return uri.status();
  if (!uri->params.empty()) {
    return Status::with_message(Code::kInvalidArgument, "nvme: unknown parameter '" + uri->params.begin()->first +
                                                            "' in nvme:" + std::string(spec) +
                                                            " (nvme: takes only a device path)");
  }
  struct stat st{};
  if (::stat(uri->path.c_str(), &st) != 0) {
    const int e = errno;
    return Status::from_errno_message(e, "nvme: " + uri->path + ": " + std::strerror(e));
  }
  if (!S_ISCHR(st.st_mode)) {
    return Status::with_message(Code::kNotSupported, "nvme: " + uri->path +
                                                         " is not a character device (use the generic /dev/ngXnY "
                                                         "node; for the block device /dev/nvmeXnY use zbd:)");
  }
  return NvmeDevice::open(uri->path);
}

}  // namespace znslab::zns
