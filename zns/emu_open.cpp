// EmuDevice: URI parameters, geometry validation (as QEMU hw/nvme/ns.c
// nvme_ns_zoned_check_calc_geometry), creating / reopening the backing
// file and mapping its zone table (src/pages).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>

#include "src/pages/pages.h"
#include "zns/backends.h"
#include "zns/emu_device.h"
#include "zns/emu_layout.h"
#include "zns/uri.h"

namespace znslab::zns {

namespace {

Status fail(std::string* error, Code code, const char* ctx, std::string msg, int err = 0) {
  if (error) *error = std::move(msg);
  return Status(code, ctx, err);
}

std::string errno_text(int e) {
  char buf[128];
  return std::string(strerror_r(e, buf, sizeof buf)) + " (errno " + std::to_string(e) + ")";
}

struct EmuParams {
  std::optional<uint64_t> zones, zone_size, zone_cap, lba, max_open, max_active;
  uint64_t max_io = 512 * 1024;
  std::optional<uint64_t> zasl;
  int direct = -1;  // -1 auto
  int prealloc = -1;  // -1: not given
  uint64_t qd = 128;
};

}  // namespace

static Status parse_params(const DeviceUri& u, EmuParams& p, std::string* error) {
  static const char* kKnown =
      "zones, zone_size, zone_cap, max_open, max_active, lba, max_io, zasl, direct, prealloc, qd";
  for (const auto& [k, v] : u.params) {
    auto bad_value = [&](const char* what) {
      return fail(error, Code::kInvalidArgument, "emu URI",
                  "emu: parameter " + k + "=" + v + ": " + what);
    };
    if (k == "direct") {
      if (v == "auto") p.direct = -1;
      else if (v == "0" || v == "false") p.direct = 0;
      else if (v == "1" || v == "true") p.direct = 1;
      else return bad_value("expected auto, 0 or 1");
      continue;
    }
    if (k == "prealloc") {
      if (v == "0" || v == "false") p.prealloc = 0;
      else if (v == "1" || v == "true") p.prealloc = 1;
      else return bad_value("expected 0 or 1");
      continue;
    }
    auto n = parse_size(v);
    if (!n) return bad_value("not a number or size (examples: 16, 64M, 4K)");
    if (k == "zones") p.zones = *n;
    else if (k == "zone_size") p.zone_size = *n;
    else if (k == "zone_cap") p.zone_cap = *n;
    else if (k == "lba") p.lba = *n;
    else if (k == "max_open") p.max_open = *n;
    else if (k == "max_active") p.max_active = *n;
    else if (k == "max_io") p.max_io = *n;
    else if (k == "zasl") p.zasl = *n;
    else if (k == "qd") p.qd = *n;
    else {
      return fail(error, Code::kInvalidArgument, "emu URI",
                  "emu: unknown parameter '" + k + "' (known: " + kKnown + ")");
    }
  }
  return Status::ok();
}

// The checks QEMU makes when it sets up a zoned namespace, plus ours
// (sizes multiples of the LBA size, so every offset stays LBA-aligned).
static Status validate_geometry(uint64_t zones, uint64_t zsize, uint64_t zcap, uint64_t lba,
                                uint64_t mopen, uint64_t mactive, std::string* error) {
  auto bad = [&](std::string m) { return fail(error, Code::kInvalidArgument, "emu geometry", "emu: " + m); };
  if (lba != 512 && lba != 4096) return bad("lba=" + std::to_string(lba) + ": must be 512 or 4096");
  if (zones == 0 || zones > (1u << 24)) return bad("zones=" + std::to_string(zones) + ": must be 1..16777216");
  if (zcap > zsize) {
    return bad("zone capacity " + std::to_string(zcap) + "B exceeds zone size " +
               std::to_string(zsize) + "B");
  }
  if (zsize < lba) return bad("zone size " + std::to_string(zsize) + "B too small, must be at least " + std::to_string(lba) + "B");
  if (zcap < lba) return bad("zone capacity " + std::to_string(zcap) + "B too small, must be at least " + std::to_string(lba) + "B");
  if (zsize % lba) return bad("zone size " + std::to_string(zsize) + "B is not a multiple of lba=" + std::to_string(lba));
  if (zcap % lba) return bad("zone capacity " + std::to_string(zcap) + "B is not a multiple of lba=" + std::to_string(lba));
  if (mopen > UINT32_MAX || mactive > UINT32_MAX) return bad("max_open/max_active too large");
  if (mactive != 0 && mopen > mactive) {
    return bad("max_open (" + std::to_string(mopen) + ") exceeds max_active (" + std::to_string(mactive) + ")");
  }
  if (zones * zsize / zones != zsize) return bad("zones * zone_size overflows");
  return Status::ok();
}

Result<std::unique_ptr<EmuDevice>> EmuDevice::open_spec(std::string_view spec, std::string* error) {
  auto uri = parse_device_spec(spec, error);
  if (!uri) return uri.status();
  EmuParams p;
  if (auto s = parse_params(*uri, p, error); !s) return s;
  if (p.qd == 0 || p.qd > 4096) {
    return fail(error, Code::kInvalidArgument, "emu URI", "emu: qd must be 1..4096");
  }
  if (p.max_io == 0 || p.max_io % 4096) {
    return fail(error, Code::kInvalidArgument, "emu URI", "emu: max_io must be a non-zero multiple of 4K");
  }
  const std::string& path = uri->path;

  std::unique_ptr<EmuDevice> d(new EmuDevice());
  d->path_ = path;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    int e = errno;
    return fail(error, e == ENOENT ? Code::kNotFound : Code::kIoError, "emu open",
                "emu: cannot open or create " + path + ": " + errno_text(e), e);
  }
  d->fd_ = fd;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    return fail(error, Code::kBusy, "emu flock",
                "emu: " + path + " is in use by another process or device handle (flock: " +
                    errno_text(e) + ")", e);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    return fail(error, Code::kIoError, "emu fstat", "emu: fstat " + path + ": " + errno_text(e), e);
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(error, Code::kInvalidArgument, "emu open", "emu: " + path + " is not a regular file");
  }

  EmuHeader h{};
  const bool create = st.st_size == 0;
  // A device created by this call is removed again if opening fails later.
  struct UnlinkOnFail {
    std::string path;
    bool armed = false;
    ~UnlinkOnFail() {
      if (armed) ::unlink(path.c_str());
    }
  } undo{path, create};
  if (create) {
    uint64_t zones = p.zones.value_or(16);
    uint64_t zsize = p.zone_size.value_or(64ull << 20);
    uint64_t zcap = p.zone_cap.value_or(zsize);
    uint64_t lba = p.lba.value_or(4096);
    uint64_t mopen = p.max_open.value_or(0), mactive = p.max_active.value_or(0);
    if (auto s = validate_geometry(zones, zsize, zcap, lba, mopen, mactive, error); !s) {
      ::unlink(path.c_str());  // created by us just now (size 0): leave nothing behind
      return s;
    }
    std::memcpy(h.magic, kEmuMagic, sizeof h.magic);
    h.version = kEmuVersion;
    h.zone_count = uint32_t(zones);
    h.zone_size = zsize;
    h.zone_capacity = zcap;
    h.lba_bytes = uint32_t(lba);
    h.max_open = uint32_t(mopen);
    h.max_active = uint32_t(mactive);
    uint64_t table_end = kEmuZoneTableOffset + zones * sizeof(EmuZoneMeta);
    h.data_offset = (table_end + kEmuDataAlign - 1) / kEmuDataAlign * kEmuDataAlign;
    h.imp_open_seq = 1;
    if (auto s = pages::truncate_file(fd, h.data_offset + zones * zsize); !s) {
      ::unlink(path.c_str());
      return fail(error, s.code(), "emu ftruncate",
                  "emu: cannot size " + path + ": " + s.to_string(), s.sys_errno());
    }
    if (p.prealloc == 1) {
      // Allocate every data block now (unwritten extents read as zeros):
      // writes then never allocate, as on a file fio lays out.
      if (::fallocate(fd, 0, off_t(h.data_offset), off_t(zones * zsize)) != 0) {
        int e = errno;
        ::unlink(path.c_str());
        return fail(error, e == EOPNOTSUPP ? Code::kNotSupported : Code::kIoError, "emu fallocate",
                    "emu: prealloc=1 but cannot allocate " + std::to_string(zones * zsize) + " bytes for " +
                        path + ": " + errno_text(e), e);
      }
      h.flags |= kEmuFlagPrealloc;
    }
  } else {
    ssize_t n = ::pread(fd, &h, sizeof h, 0);
    if (n != ssize_t(sizeof h) || std::memcmp(h.magic, kEmuMagic, sizeof h.magic) != 0) {
      return fail(error, Code::kCorrupt, "emu header",
                  "emu: " + path + " exists but is not an emulated zoned device (bad magic); "
                  "remove it or pick another path");
    }
    if (h.version != kEmuVersion) {
      return fail(error, Code::kCorrupt, "emu header",
                  "emu: " + path + " has format version " + std::to_string(h.version) +
                      ", this build reads version " + std::to_string(kEmuVersion));
    }
    if (auto s = validate_geometry(h.zone_count, h.zone_size, h.zone_capacity, h.lba_bytes,
                                   h.max_open, h.max_active, error); !s) {
      return fail(error, Code::kCorrupt, "emu header", "emu: " + path + ": stored geometry invalid: " + (error ? *error : std::string()));
    }
    uint64_t table_end = kEmuZoneTableOffset + uint64_t(h.zone_count) * sizeof(EmuZoneMeta);
    if (h.data_offset < table_end || h.data_offset % kEmuDataAlign ||
        uint64_t(st.st_size) < h.data_offset + uint64_t(h.zone_count) * h.zone_size) {
      return fail(error, Code::kCorrupt, "emu header", "emu: " + path + ": truncated or bad data offset");
    }
    // Geometry given in the URI must match the file's.
    std::string diff;
    auto cmp = [&](const char* key, const std::optional<uint64_t>& want, uint64_t have) {
      if (want && *want != have) {
        if (!diff.empty()) diff += ", ";
        diff += std::string(key) + "=" + format_size(have) + " (URI asks " + format_size(*want) + ")";
      }
    };
    cmp("zones", p.zones, h.zone_count);
    cmp("zone_size", p.zone_size, h.zone_size);
    cmp("zone_cap", p.zone_cap, h.zone_capacity);
    cmp("lba", p.lba, h.lba_bytes);
    cmp("max_open", p.max_open, h.max_open);
    cmp("max_active", p.max_active, h.max_active);
    if (p.prealloc >= 0 && bool(p.prealloc) != bool(h.flags & kEmuFlagPrealloc)) {
      if (!diff.empty()) diff += ", ";
      diff += std::string("prealloc=") + ((h.flags & kEmuFlagPrealloc) ? "1" : "0") + " (URI asks " +
              std::to_string(p.prealloc) + ")";
    }
    if (!diff.empty()) {
      return fail(error, Code::kInvalidArgument, "emu geometry",
                  "emu: " + path + " was created with a different geometry: " + diff +
                      "; use the file's geometry or a new path");
    }
  }

  // Map header + zone table shared: stores reach the page cache at once.
  d->map_bytes_ = size_t(h.data_offset);
  auto m = pages::map_file(fd, 0, d->map_bytes_, true);
  if (!m) {
    return fail(error, m.status().code(), "emu map", "emu: cannot map the zone table of " + path +
                                                     ": " + m.status().to_string(), m.status().sys_errno());
  }
  d->map_ = *m;
  d->hdr_ = static_cast<EmuHeader*>(d->map_);
  d->zones_ = reinterpret_cast<EmuZoneMeta*>(static_cast<uint8_t*>(d->map_) + kEmuZoneTableOffset);
  if (create) {
    // Zone table is zero (EMPTY, wp 0) from ftruncate; the magic goes last.
    EmuHeader tmp = h;
    std::memset(tmp.magic, 0, sizeof tmp.magic);
    std::memcpy(d->hdr_, &tmp, sizeof tmp);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // compiler barrier: magic stored last
    std::memcpy(d->hdr_->magic, kEmuMagic, sizeof kEmuMagic);
  }
  d->hdr_->opens++;
  d->data_offset_ = h.data_offset;
  d->prealloc_ = (h.flags & kEmuFlagPrealloc) != 0;

  DeviceInfo& i = d->info_;
  i.backend = "emu";
  i.path = path;
  i.model = "znslab emulated ZNS namespace (QEMU hw/nvme semantics)";
  i.zone_count = h.zone_count;
  i.zone_size = h.zone_size;
  i.zone_capacity = h.zone_capacity;
  i.lba_bytes = h.lba_bytes;
  i.max_open = h.max_open;
  i.max_active = h.max_active;
  i.max_io_bytes = p.max_io;
  i.zone_append_max_bytes = p.zasl.value_or(p.max_io);
  if (i.zone_append_max_bytes % h.lba_bytes) {
    return fail(error, Code::kInvalidArgument, "emu URI", "emu: zasl must be a multiple of lba");
  }

  // Recover the in-memory counters from the persistent table; repair what a
  // kill between two stores can leave (a zone whose reserved write pointer
  // reached capacity while it was still open becomes Full, as its last
  // write's completion would have made it).
  d->inflight_.assign(h.zone_count, 0);
  for (uint32_t z = 0; z < h.zone_count; ++z) {
    EmuZoneMeta& zm = d->zones_[z];
    if (zm.state > uint8_t(ZoneState::kOffline) || zm.wp > h.zone_capacity || zm.wp % h.lba_bytes) {
      return fail(error, Code::kCorrupt, "emu zone table",
                  "emu: " + path + ": zone " + std::to_string(z) + " has a corrupt entry (state " +
                      std::to_string(zm.state) + ", wp " + std::to_string(zm.wp) + ")");
    }
    auto s = ZoneState(zm.state);
    if (is_active(s) && zm.wp == h.zone_capacity) {
      zm.state = uint8_t(ZoneState::kFull);
      s = ZoneState::kFull;
    }
    if (s == ZoneState::kEmpty && zm.wp != 0) zm.wp = 0;  // reset interrupted after the state store
    if (is_open(s)) d->nr_open_++;
    if (is_active(s)) d->nr_active_++;
  }

  // O_DIRECT for data when the filesystem allows (tmpfs does not).
  int dfd = -1;
  if (p.direct != 0) {
    dfd = ::open(path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
    if (dfd < 0 && p.direct == 1) {
      int e = errno;
      return fail(error, Code::kNotSupported, "emu O_DIRECT",
                  "emu: direct=1 but " + path + " cannot be opened with O_DIRECT: " + errno_text(e), e);
    }
  }
  if (dfd >= 0) {
    // The data fd replaces the buffered one; the lock stays with the
    // original open file description, kept as fd_ for backing_file().
    d->direct_ = true;
    d->data_fd_ = dfd;
  } else {
    d->data_fd_ = fd;
  }

  io::EngineOptions eo;
  eo.max_io_bytes = i.max_io_bytes;
  eo.max_append_bytes = i.zone_append_max_bytes;
  for (int k = 0; k < 2; ++k) {
    eo.queue_depth = 8;
    auto e = io::UringEngine::create(eo);
    if (!e) return fail(error, e.status().code(), "emu io_uring", "emu: io_uring setup: " + e.status().to_string(), e.status().sys_errno());
    auto r = std::make_unique<SyncRing>();
    r->engine = std::move(*e);
    d->sync_.push_back(std::move(r));
  }
  eo.queue_depth = unsigned(p.qd);
  eo.cq_factor = 2;
  auto e = io::UringEngine::create(eo);
  if (!e) return fail(error, e.status().code(), "emu io_uring", "emu: io_uring setup: " + e.status().to_string(), e.status().sys_errno());
  d->async_ = std::move(*e);
  d->init_pending(d->async_->capacity());
  undo.armed = false;
  return d;
}

EmuDevice::~EmuDevice() {
  // Drain async I/O still in flight so no completion targets freed memory.
  if (async_) {
    io::EngineCompletion c[32];
    while (async_->in_flight() > 0) {
      auto r = async_->reap(c, 1);
      if (!r) break;
    }
  }
  if (map_) (void)pages::unmap(map_, map_bytes_);
  if (data_fd_ >= 0 && data_fd_ != fd_) ::close(data_fd_);
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

Result<std::unique_ptr<ZonedDevice>> open_emu_device(std::string_view spec, std::string* error) {
  auto d = EmuDevice::open_spec(spec, error);
  if (!d) return d.status();
  return std::unique_ptr<ZonedDevice>(std::move(*d));
}

}  // namespace znslab::zns
