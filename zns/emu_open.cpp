// EmuDevice: URI parameters, geometry validation (as QEMU hw/nvme/ns.c
// nvme_ns_zoned_check_calc_geometry), creating / reopening the backing
// file and mapping its zone table (src/pages).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <vector>

#include "src/pages/pages.h"
#include "zns/backends.h"
#include "zns/emu_device.h"
#include "zns/emu_layout.h"
#include "zns/uri.h"

namespace znslab::zns {

namespace {

// `ctx` names the step for readers of this file; the message says it all.
Status fail(Code code, const char* /*ctx*/, const std::string& msg, int err = 0) {
  return Status::with_message(code, msg, err);
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

static Status parse_params(const DeviceUri& u, EmuParams& p) {
  static const char* kKnown =
      "zones, zone_size, zone_cap, max_open, max_active, lba, max_io, zasl, direct, prealloc, qd";
  for (const auto& [k, v] : u.params) {
    auto bad_value = [&](const char* what) {
      return fail(Code::kInvalidArgument, "emu URI",
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
      return fail(Code::kInvalidArgument, "emu URI",
                  "emu: unknown parameter '" + k + "' (known: " + kKnown + ")");
    }
  }
  return Status::ok();
}

// The checks QEMU makes when it sets up a zoned namespace, plus ours
// (sizes multiples of the LBA size, so every offset stays LBA-aligned).
static Status validate_geometry(uint64_t zones, uint64_t zsize, uint64_t zcap, uint64_t lba,
                                uint64_t mopen, uint64_t mactive) {
  auto bad = [&](std::string m) { return fail(Code::kInvalidArgument, "emu geometry", "emu: " + m); };
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
  if (zsize / lba > kEmuMaxZoneLbas - 1) {
    return bad("zone size " + std::to_string(zsize) + "B is more than " + std::to_string(kEmuMaxZoneLbas - 1) +
               " logical blocks (the zone table's write pointer field)");
  }
  if (zones * zsize / zones != zsize || zones * zsize > (uint64_t(1) << 62)) {
    return bad("zones * zone_size overflows (the device must be below 4 EiB)");
  }
  return Status::ok();
}

namespace {

std::string hex32(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", v);
  return b;
}

// fallocate(2) of [off, off+len), repeated where it fails with EINTR.
// tmpfs (the test guest's /tmp) on older kernels (Debian 12's 6.1; not
// 6.18 nor 7.3, which stop only for a fatal signal) stops with EINTR
// whenever any signal or io_uring task work (TIF_NOTIFY_SIGNAL) is pending,
// and then releases what that call had allocated: a retry of the whole range
// can fail forever under periodic signals. So after each EINTR the range is
// taken in pieces half as large (down to one 4 KiB page), doubling again
// after each success. Returns 0 or an errno.
int fallocate_eintr(int fd, int mode, uint64_t off, uint64_t len) {
  uint64_t piece = len;
  while (len > 0) {
    const uint64_t n = std::min(piece, len);
    if (::fallocate(fd, mode, off_t(off), off_t(n)) == 0) {
      off += n;
      len -= n;
      piece = std::min<uint64_t>(piece * 2, uint64_t(1) << 30);
      continue;
    }
    if (errno != EINTR) return errno;
    piece = std::max<uint64_t>(n / 2, 4096);
  }
  return 0;
}

// Reserves [off, off+len) of fd: fallocate, or zeros written where the
// file system has no fallocate. Returns 0 or an errno.
int reserve_range(int fd, uint64_t off, uint64_t len, int mode) {
  int e = fallocate_eintr(fd, mode, off, len);
  if (e == 0) return 0;
  if (e != EOPNOTSUPP) return e;
  std::vector<uint8_t> zeros(std::min<uint64_t>(len, 1 << 20), 0);
  for (uint64_t done = 0; done < len;) {
    size_t n = size_t(std::min<uint64_t>(zeros.size(), len - done));
    ssize_t w = ::pwrite(fd, zeros.data(), n, off_t(off + done));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return w < 0 ? errno : EIO;
    done += uint64_t(w);
  }
  return 0;
}

}  // namespace

// Creates the device file: built under a temporary name (metadata space
// reserved, size set, header written last) and renamed into place, so a
// failed or killed creation never leaves a file at `path`. Returns the
// locked fd, or -1 with *retry set when another process created `path`
// meanwhile.
static Result<int> create_file(const std::string& path, const EmuHeader& h, bool prealloc,
                               bool* retry) {
  *retry = false;
  const std::string tmp = path + ".creating." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    int e = errno;
    return fail(e == ENOENT ? Code::kNotFound : Code::kIoError, "emu create",
                "emu: cannot create " + path + " (via " + tmp + "): " + errno_text(e), e);
  }
  auto undo = [&](Status s) -> Result<int> {
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  };
  (void)::flock(fd, LOCK_EX | LOCK_NB);
  const uint64_t total = h.data_offset + uint64_t(h.zone_count) * h.zone_size;
  if (int e = reserve_range(fd, 0, h.data_offset, 0); e != 0) {
    return undo(fail(Code::kIoError, "emu create",
                     "emu: cannot allocate the " + format_size(h.data_offset) + " header and zone table of " +
                         path + ": " + errno_text(e), e));
  }
  if (auto s = pages::truncate_file(fd, total); !s) {
    return undo(fail(s.code(), "emu create",
                     "emu: cannot size " + path + " to " + std::to_string(total) + " bytes: " + s.to_string(),
                     s.sys_errno()));
  }
  if (prealloc) {
    // Allocate every data block now (unwritten extents read as zeros):
    // writes then never allocate, as on a file fio lays out.
    if (int e = fallocate_eintr(fd, 0, h.data_offset, total - h.data_offset); e != 0) {
      return undo(fail(e == EOPNOTSUPP ? Code::kNotSupported : Code::kIoError, "emu fallocate",
                       "emu: prealloc=1 but cannot allocate " + std::to_string(total - h.data_offset) +
                           " bytes for " + path + ": " + errno_text(e), e));
    }
  }
  if (::pwrite(fd, &h, sizeof h, 0) != ssize_t(sizeof h)) {
    int e = errno ? errno : EIO;
    return undo(fail(Code::kIoError, "emu create", "emu: cannot write the header of " + path + ": " + errno_text(e), e));
  }
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
    int e = errno;
    if (e == EINVAL || e == ENOSYS) {
      // No RENAME_NOREPLACE here: link (fails if path exists), then unlink.
      if (::link(tmp.c_str(), path.c_str()) == 0) {
        ::unlink(tmp.c_str());
        return fd;
      }
      e = errno;
    }
    ::close(fd);
    ::unlink(tmp.c_str());
    if (e == EEXIST) {
      *retry = true;
      return -1;
    }
    return fail(Code::kIoError, "emu create", "emu: cannot move " + tmp + " to " + path + ": " + errno_text(e), e);
  }
  return fd;
}

// Reads and checks the header of an existing device file.
static Status check_header(const std::string& path, int fd, uint64_t file_size, EmuHeader& h) {
  auto corrupt = [&](std::string m) { return fail(Code::kCorrupt, "emu header", "emu: " + path + ": " + m); };
  if (file_size == 0) {
    return corrupt("empty file (0 bytes), not an emulated zoned device (a creation that was cut short, or a "
                   "truncated device); it is not re-created: remove it or pick another path");
  }
  std::memset(&h, 0, sizeof h);
  ssize_t n = ::pread(fd, &h, sizeof h, 0);
  if (n < 0) {
    int e = errno;
    return fail(Code::kIoError, "emu header", "emu: cannot read " + path + ": " + errno_text(e), e);
  }
  if (size_t(n) < sizeof h.magic + sizeof h.version || std::memcmp(h.magic, kEmuMagic, sizeof h.magic) != 0) {
    return corrupt("not an emulated zoned device (bad magic); remove it or pick another path");
  }
  if (h.version != kEmuVersion) {
    return corrupt("format version " + std::to_string(h.version) + (h.version == 1 ? " (no checksums)" : "") +
                   "; this build reads version " + std::to_string(kEmuVersion) +
                   " only: re-create the device (remove the file)");
  }
  if (size_t(n) < sizeof h) return corrupt("truncated header (" + std::to_string(file_size) + " bytes)");
  if (uint32_t c = emu_header_crc(h); c != h.crc) {
    return corrupt("header checksum mismatch (CRC32C stored " + hex32(h.crc) + ", computed " + hex32(c) +
                   "): the geometry cannot be trusted");
  }
  if (h.header_bytes != sizeof(EmuHeader) || h.entry_bytes != sizeof(EmuZoneEntry) ||
      h.table_offset != kEmuZoneTableOffset) {
    return corrupt("header layout fields (header_bytes, entry_bytes, table_offset) do not match version 2");
  }
  return Status::ok();
}

Result<std::unique_ptr<EmuDevice>> EmuDevice::open_spec(std::string_view spec) {
  auto uri = parse_device_spec(spec);
  if (!uri) return uri.status();
  EmuParams p;
  if (auto s = parse_params(*uri, p); !s) return s;
  if (p.qd == 0 || p.qd > 4096) {
    return fail(Code::kInvalidArgument, "emu URI", "emu: qd must be 1..4096");
  }
  if (p.max_io == 0 || p.max_io % 4096 || p.max_io > (uint64_t(1) << 30)) {
    return fail(Code::kInvalidArgument, "emu URI", "emu: max_io must be a non-zero multiple of 4K, at most 1G");
  }
  if (p.zasl && *p.zasl > (uint64_t(1) << 30)) {
    return fail(Code::kInvalidArgument, "emu URI", "emu: zasl must be at most 1G");
  }
  const std::string& path = uri->path;

  std::unique_ptr<EmuDevice> d(new EmuDevice());
  d->path_ = path;
  EmuHeader h{};
  int fd = -1;
  // A device created by this call is removed again if opening fails later.
  struct UnlinkOnFail {
    std::string path;
    bool armed = false;
    ~UnlinkOnFail() {
      if (armed) ::unlink(path.c_str());
    }
  } undo{path, false};
  for (int attempt = 0; fd < 0; ++attempt) {
    fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd >= 0) break;
    int e = errno;
    if (e != ENOENT || attempt > 2) {
      return fail(e == ENOENT ? Code::kNotFound : Code::kIoError, "emu open",
                  "emu: cannot open " + path + ": " + errno_text(e), e);
    }
    // Create: geometry from the URI, checked before any file is made.
    uint64_t zones = p.zones.value_or(16);
    uint64_t zsize = p.zone_size.value_or(64ull << 20);
    uint64_t zcap = p.zone_cap.value_or(zsize);
    uint64_t lba = p.lba.value_or(4096);
    uint64_t mopen = p.max_open.value_or(0), mactive = p.max_active.value_or(0);
    if (auto s = validate_geometry(zones, zsize, zcap, lba, mopen, mactive); !s) return s;
    std::memset(&h, 0, sizeof h);
    std::memcpy(h.magic, kEmuMagic, sizeof h.magic);
    h.version = kEmuVersion;
    h.header_bytes = sizeof(EmuHeader);
    h.zone_count = uint32_t(zones);
    h.lba_bytes = uint32_t(lba);
    h.zone_size = zsize;
    h.zone_capacity = zcap;
    h.max_open = uint32_t(mopen);
    h.max_active = uint32_t(mactive);
    h.flags = p.prealloc == 1 ? kEmuFlagPrealloc : 0;
    h.entry_bytes = sizeof(EmuZoneEntry);
    h.table_offset = kEmuZoneTableOffset;
    uint64_t table_end = kEmuZoneTableOffset + zones * sizeof(EmuZoneEntry);
    h.data_offset = (table_end + kEmuDataAlign - 1) / kEmuDataAlign * kEmuDataAlign;
    h.crc = emu_header_crc(h);
    bool retry = false;
    auto c = create_file(path, h, p.prealloc == 1, &retry);
    if (!c) return c.status();
    fd = *c;  // -1 with retry: someone else created it; open theirs
    undo.armed = fd >= 0;
  }
  d->fd_ = fd;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    return fail(Code::kBusy, "emu flock",
                "emu: " + path + " is in use by another process or device handle (flock: " +
                    errno_text(e) + ")", e);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    return fail(Code::kIoError, "emu fstat", "emu: fstat " + path + ": " + errno_text(e), e);
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(Code::kInvalidArgument, "emu open", "emu: " + path + " is not a regular file");
  }
  if (auto s = check_header(path, fd, uint64_t(st.st_size), h); !s) return s;
  if (auto s = validate_geometry(h.zone_count, h.zone_size, h.zone_capacity, h.lba_bytes,
                                 h.max_open, h.max_active); !s) {
    return fail(Code::kCorrupt, "emu header", "emu: " + path + ": stored geometry invalid: " + s.context());
  }
  {
    uint64_t table_end = kEmuZoneTableOffset + uint64_t(h.zone_count) * sizeof(EmuZoneEntry);
    uint64_t need = h.data_offset + uint64_t(h.zone_count) * h.zone_size;
    if (h.data_offset < table_end || h.data_offset % kEmuDataAlign) {
      return fail(Code::kCorrupt, "emu header", "emu: " + path + ": bad data_offset " + std::to_string(h.data_offset));
    }
    if (uint64_t(st.st_size) < need) {
      return fail(Code::kCorrupt, "emu header",
                  "emu: " + path + ": truncated (" + std::to_string(st.st_size) + " bytes; the geometry needs " +
                      std::to_string(need) + "); it is not re-created: remove it or restore it");
    }
  }
  {
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
      return fail(Code::kInvalidArgument, "emu geometry",
                  "emu: " + path + " was created with a different geometry: " + diff +
                      "; use the file's geometry or a new path");
    }
  }
  // The table's blocks were allocated at creation; make sure (a copied,
  // sparse file) so a store to the mapping can never raise SIGBUS.
  if (int e = reserve_range(fd, 0, h.data_offset, FALLOC_FL_KEEP_SIZE); e != 0 && e != EOPNOTSUPP) {
    return fail(Code::kIoError, "emu reserve",
                "emu: cannot allocate the zone table of " + path + ": " + errno_text(e), e);
  }

  // Map header + zone table shared: stores reach the page cache at once.
  d->map_bytes_ = size_t(h.data_offset);
  auto m = pages::map_file(fd, 0, d->map_bytes_, true);
  if (!m) {
    return fail(m.status().code(), "emu map", "emu: cannot map the zone table of " + path +
                                                     ": " + m.status().to_string(), m.status().sys_errno());
  }
  d->map_ = *m;
  d->table_ = reinterpret_cast<EmuZoneEntry*>(static_cast<uint8_t*>(d->map_) + kEmuZoneTableOffset);
  d->data_offset_ = h.data_offset;
  d->prealloc_ = (h.flags & kEmuFlagPrealloc) != 0;
  d->lba_shift_ = h.lba_bytes == 4096 ? 12 : 9;

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
    return fail(Code::kInvalidArgument, "emu URI", "emu: zasl must be a multiple of lba");
  }

  // Load the zone table; every word must pass its CRC32C.
  const uint64_t cap_lbas = h.zone_capacity / h.lba_bytes;
  d->rt_.assign(h.zone_count, ZoneRt{});
  std::vector<std::pair<uint32_t, uint32_t>> imp;  // (seq, zone)
  for (uint32_t z = 0; z < h.zone_count; ++z) {
    const EmuZoneEntry& e = d->table_[z];
    uint32_t payload = 0, seq = 0;
    auto bad = [&](const std::string& what) {
      return fail(Code::kCorrupt, "emu zone table",
                  "emu: " + path + ": zone table entry of zone " + std::to_string(z) + ": " + what);
    };
    if (!emu_unpack_word(z, e.state_word, kEmuSaltState, &payload)) return bad("state word checksum mismatch (CRC32C)");
    if (!emu_unpack_word(z, e.order_word, kEmuSaltOrder, &seq)) return bad("open-order word checksum mismatch (CRC32C)");
    const uint32_t state = payload >> 28;
    const uint32_t wp = payload & uint32_t(kEmuMaxZoneLbas - 1);
    if (state > uint32_t(ZoneState::kOffline)) return bad("state " + std::to_string(state) + " is not a zone state");
    if (wp > cap_lbas) return bad("write pointer " + std::to_string(wp) + " LBAs beyond the zone capacity");
    auto s = ZoneState(state);
    if (s == ZoneState::kEmpty && wp != 0) return bad("Empty with write pointer " + std::to_string(wp));
    if (is_active(s) && wp == cap_lbas) s = ZoneState::kFull;  // as the write's completion would have made it
    ZoneRt& r = d->rt_[z];
    r.state = uint8_t(s);
    r.wp = r.res = wp;
    if (is_open(s)) d->nr_open_++;
    if (is_active(s)) d->nr_active_++;
    if (s == ZoneState::kImplicitOpen) imp.emplace_back(seq, z);
  }
  std::sort(imp.begin(), imp.end());
  for (const auto& [seq, z] : imp) {
    uint32_t k = d->imp_next_++;
    d->imp_order_[k] = z;
    d->imp_seq_[z] = k;
    if (seq != k) {
      std::lock_guard<std::mutex> g(d->meta_mu_);
      d->store_order(z, k);
    }
  }
  // O_DIRECT for data when the filesystem allows (tmpfs does not).
  int dfd = -1;
  if (p.direct != 0) {
    dfd = ::open(path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
    if (dfd < 0 && p.direct == 1) {
      int e = errno;
      return fail(Code::kNotSupported, "emu O_DIRECT",
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
    if (!e) return fail(e.status().code(), "emu io_uring", "emu: io_uring setup: " + e.status().to_string(), e.status().sys_errno());
    auto r = std::make_unique<SyncRing>();
    r->engine = std::move(*e);
    d->sync_.push_back(std::move(r));
  }
  eo.queue_depth = unsigned(p.qd);
  eo.cq_factor = 2;
  auto e = io::UringEngine::create(eo);
  if (!e) return fail(e.status().code(), "emu io_uring", "emu: io_uring setup: " + e.status().to_string(), e.status().sys_errno());
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

Result<std::unique_ptr<ZonedDevice>> open_emu_device(std::string_view spec) {
  auto d = EmuDevice::open_spec(spec);
  if (!d) return d.status();
  return std::unique_ptr<ZonedDevice>(std::move(*d));
}

}  // namespace znslab::zns
