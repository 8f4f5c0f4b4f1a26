#include "src/pages/pages.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace znslab::pages {
namespace {

struct AtomicOsCounters {
  std::atomic<uint64_t> mmap_calls{0}, munmap_calls{0}, madvise_calls{0}, madvise_bytes{0},
      madvise_failures{0}, ftruncate_calls{0}, mremap_calls{0}, msync_calls{0}, fallocate_calls{0};
};
AtomicOsCounters g_counters;

void bump(std::atomic<uint64_t>& c, uint64_t by = 1) noexcept {
  c.fetch_add(by, std::memory_order_relaxed);
}

bool page_aligned(const void* p) noexcept {
  return (reinterpret_cast<uintptr_t>(p) & (page_size() - 1)) == 0;
}

// Reads a small sysfs/procfs file into buf (NUL-terminated); false if absent.
bool read_small_file(const char* path, char* buf, size_t cap) noexcept {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = ::read(fd, buf, cap - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  return true;
}

}  // namespace

size_t page_size() noexcept {
  static const size_t ps = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return ps;
}

size_t huge_page_size() noexcept {
  static const size_t hps = [] {
    char buf[64];
    if (read_small_file("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", buf, sizeof buf)) {
      unsigned long long v = std::strtoull(buf, nullptr, 10);
      if (v > 0) return static_cast<size_t>(v);
    }
    return static_cast<size_t>(2u << 20);
  }();
  return hps;
}

const char* thp_mode() noexcept {
  char buf[128];
  if (!read_small_file("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof buf))
    return "unknown";
  if (std::strstr(buf, "[always]")) return "always";
  if (std::strstr(buf, "[madvise]")) return "madvise";
  if (std::strstr(buf, "[never]")) return "never";
  return "unknown";
}

Reservation::Reservation(Reservation&& o) noexcept : base_(o.base_), size_(o.size_) {
  o.base_ = nullptr;
  o.size_ = 0;
}

Reservation& Reservation::operator=(Reservation&& o) noexcept {
  if (this != &o) {
    this->~Reservation();
    base_ = o.base_;
    size_ = o.size_;
    o.base_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

Reservation::~Reservation() {
  if (base_ != nullptr) {
    ::munmap(base_, size_);
    bump(g_counters.munmap_calls);
    base_ = nullptr;
  }
}

Result<Reservation> Reservation::reserve(size_t bytes, size_t alignment) noexcept {
  const size_t ps = page_size();
  if (bytes == 0 || alignment < ps || (alignment & (alignment - 1)) != 0)
    return Status(Code::kInvalidArgument, "pages::reserve: bytes == 0 or bad alignment");
  bytes = (bytes + ps - 1) & ~(ps - 1);
  // Over-reserve by the alignment, then trim both ends.
  const size_t span = bytes + alignment - ps;
  void* p = ::mmap(nullptr, span, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  bump(g_counters.mmap_calls);
  if (p == MAP_FAILED) return Status::from_errno(errno, "pages::reserve mmap");
  auto raw = reinterpret_cast<uintptr_t>(p);
  uintptr_t aligned = (raw + alignment - 1) & ~(uintptr_t(alignment) - 1);
  if (aligned > raw) {
    ::munmap(p, aligned - raw);
    bump(g_counters.munmap_calls);
  }
  uintptr_t end = raw + span, want_end = aligned + bytes;
  if (end > want_end) {
    ::munmap(reinterpret_cast<void*>(want_end), end - want_end);
    bump(g_counters.munmap_calls);
  }
  Reservation r;
  r.base_ = reinterpret_cast<uint8_t*>(aligned);
  r.size_ = bytes;
  return r;
}

Status decommit(void* addr, size_t bytes) noexcept {
  if (!page_aligned(addr) || bytes == 0 || (bytes & (page_size() - 1)) != 0)
    return Status(Code::kInvalidArgument, "pages::decommit: unaligned range");
  bump(g_counters.madvise_calls);
  if (::madvise(addr, bytes, MADV_DONTNEED) != 0) {
    bump(g_counters.madvise_failures);
    return Status::from_errno(errno, "pages::decommit madvise(MADV_DONTNEED)");
  }
  bump(g_counters.madvise_bytes, bytes);
  return Status::ok();
}

namespace {
// The calling process's pidfd for process_madvise, published as
// (pid << 32) | fd; reopened when getpid() differs (a forked child).
// State of process_madvise(MADV_DONTNEED): 0 untried/working, 1 refused.
std::atomic<uint64_t> g_self_pidfd{0};
std::atomic<int> g_pm_refused{0};

int self_pidfd() noexcept {
  const uint64_t me = uint64_t(uint32_t(::getpid()));
  const uint64_t v = g_self_pidfd.load(std::memory_order_acquire);
  if (v != 0 && (v >> 32) == me) return int(uint32_t(v));
  const long fd = ::syscall(SYS_pidfd_open, pid_t(me), 0u);
  if (fd < 0) return -1;
  uint64_t cur = v;
  if (!g_self_pidfd.compare_exchange_strong(cur, (me << 32) | uint64_t(uint32_t(fd)), std::memory_order_acq_rel)) {
    ::close(int(fd));  // another thread published first
    return (cur >> 32) == me ? int(uint32_t(cur)) : -1;
  }
  return int(fd);
}
}  // namespace

Status decommit_ranges(const Range* ranges, size_t n, uint64_t* syscalls) noexcept {
  uint64_t calls = 0;
  for (size_t i = 0; i < n; ++i)
    if (!page_aligned(ranges[i].addr) || ranges[i].bytes == 0 || (ranges[i].bytes & (page_size() - 1)) != 0)
      return Status(Code::kInvalidArgument, "pages::decommit_ranges: unaligned range");
  Status first = Status::ok();
  auto one = [&](void* a, size_t b) noexcept {
    bump(g_counters.madvise_calls);
    ++calls;
    if (::madvise(a, b, MADV_DONTNEED) != 0) {
      bump(g_counters.madvise_failures);
      if (first.is_ok()) first = Status::from_errno(errno, "pages::decommit_ranges madvise(MADV_DONTNEED)");
      return;
    }
    bump(g_counters.madvise_bytes, b);
  };
  constexpr size_t kBatch = 64;  // ranges per process_madvise (UIO_MAXIOV is 1,024)
  iovec iov[kBatch];
  size_t i = 0;
  size_t skip = 0;  // bytes of ranges[i] already decommitted
  while (i < n) {
    if (n - i == 1 || g_pm_refused.load(std::memory_order_relaxed)) break;
    const int fd = self_pidfd();
    if (fd < 0) break;
    size_t k = 0;
    for (size_t j = i; j < n && k < kBatch; ++j, ++k) {
      iov[k].iov_base = static_cast<char*>(ranges[j].addr) + (j == i ? skip : 0);
      iov[k].iov_len = ranges[j].bytes - (j == i ? skip : 0);
    }
    bump(g_counters.madvise_calls);
    ++calls;
    const long rv = ::syscall(SYS_process_madvise, fd, iov, k, MADV_DONTNEED, 0u);
    if (rv <= 0) {
      if (rv < 0 && (errno == EINVAL || errno == ENOSYS || errno == EPERM))
        g_pm_refused.store(1, std::memory_order_relaxed);
      break;  // the rest one range at a time
    }
    bump(g_counters.madvise_bytes, uint64_t(rv));
    // Advance past what the kernel did (it works through the vector in order).
    size_t done = size_t(rv);
    while (i < n && done > 0) {
      const size_t left = ranges[i].bytes - skip;
      if (done < left) {
        skip += done;
        done = 0;
      } else {
        done -= left;
        skip = 0;
        ++i;
      }
    }
  }
  for (; i < n; ++i, skip = 0) one(static_cast<char*>(ranges[i].addr) + skip, ranges[i].bytes - skip);
  if (syscalls) *syscalls = calls;
  return first;
}

namespace {
// madvise(advice) on a page-aligned range, counted. A kernel that does not
// know `advice` answers EINVAL: kNotSupported. The messages are literals.
Status advise_newer(void* addr, size_t bytes, int advice, const char* bad_range, const char* unknown,
                    const char* failed) noexcept {
  if (!page_aligned(addr) || bytes == 0 || (bytes & (page_size() - 1)) != 0)
    return Status(Code::kInvalidArgument, bad_range);
  bump(g_counters.madvise_calls);
  if (::madvise(addr, bytes, advice) != 0) {
    const int e = errno;
    bump(g_counters.madvise_failures);
    if (e == EINVAL) return Status(Code::kNotSupported, unknown, e);
    return Status::from_errno(e, failed);
  }
  return Status::ok();
}
}  // namespace

Status populate_write(void* addr, size_t bytes) noexcept {
#ifndef MADV_POPULATE_WRITE
  constexpr int MADV_POPULATE_WRITE = 23;  // linux/mman.h, Linux 5.14
#endif
  return advise_newer(addr, bytes, MADV_POPULATE_WRITE, "pages::populate_write: unaligned range",
                      "pages::populate_write: MADV_POPULATE_WRITE",
                      "pages::populate_write madvise(MADV_POPULATE_WRITE)");
}

Status advise_hugepage(void* addr, size_t bytes, bool on) noexcept {
  if (!page_aligned(addr) || bytes == 0 || (bytes & (page_size() - 1)) != 0)
    return Status(Code::kInvalidArgument, "pages::advise_hugepage: unaligned range");
  bump(g_counters.madvise_calls);
  if (::madvise(addr, bytes, on ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) != 0) {
    bump(g_counters.madvise_failures);
    return Status::from_errno(errno, "pages::advise_hugepage madvise");
  }
  return Status::ok();
}

Status advise_cold(void* addr, size_t bytes) noexcept {
#ifndef MADV_COLD
  constexpr int MADV_COLD = 20;  // linux/mman.h, Linux 5.4
#endif
  return advise_newer(addr, bytes, MADV_COLD, "pages::advise_cold: unaligned range", "pages::advise_cold: MADV_COLD",
                      "pages::advise_cold madvise(MADV_COLD)");
}

Result<void*> map_file(int fd, uint64_t offset, size_t bytes, bool writable) noexcept {
  if (fd < 0 || bytes == 0 || (offset & (page_size() - 1)) != 0)
    return Status(Code::kInvalidArgument, "pages::map_file: bad fd, size or offset");
  int prot = writable ? (PROT_READ | PROT_WRITE) : PROT_READ;
  void* p = ::mmap(nullptr, bytes, prot, MAP_SHARED, fd, static_cast<off_t>(offset));
  bump(g_counters.mmap_calls);
  if (p == MAP_FAILED) return Status::from_errno(errno, "pages::map_file mmap");
  return p;
}

Status unmap(void* addr, size_t bytes) noexcept {
  if (addr == nullptr || !page_aligned(addr) || bytes == 0)
    return Status(Code::kInvalidArgument, "pages::unmap: bad range");
  bump(g_counters.munmap_calls);
  if (::munmap(addr, bytes) != 0) return Status::from_errno(errno, "pages::unmap munmap");
  return Status::ok();
}

Status map_file_at(void* addr, int fd, uint64_t offset, size_t bytes) noexcept {
  if (fd < 0 || addr == nullptr || !page_aligned(addr) || bytes == 0 ||
      (offset & (page_size() - 1)) != 0)
    return Status(Code::kInvalidArgument, "pages::map_file_at: bad fd, address, size or offset");
  void* p = ::mmap(addr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
                   static_cast<off_t>(offset));
  bump(g_counters.mmap_calls);
  if (p == MAP_FAILED) return Status::from_errno(errno, "pages::map_file_at mmap");
  return Status::ok();
}

Result<void*> map_shared_anonymous(size_t bytes) noexcept {
  if (bytes == 0) return Status(Code::kInvalidArgument, "pages::map_shared_anonymous: bytes == 0");
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  bump(g_counters.mmap_calls);
  if (p == MAP_FAILED) return Status::from_errno(errno, "pages::map_shared_anonymous mmap");
  return p;
}

Result<int> create_memfd(const char* name) noexcept {
  const int fd = ::memfd_create(name ? name : "znslab", MFD_CLOEXEC);
  if (fd < 0) {
    const int e = errno;
    if (e == ENOSYS) return Status(Code::kNotSupported, "pages::create_memfd: memfd_create", e);
    return Status::from_errno(e, "pages::create_memfd memfd_create");
  }
  return fd;
}

Status truncate_file(int fd, uint64_t bytes) noexcept {
  if (fd < 0) return Status(Code::kInvalidArgument, "pages::truncate_file: bad fd");
  bump(g_counters.ftruncate_calls);
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0)
    return Status::from_errno(errno, "pages::truncate_file ftruncate");
  return Status::ok();
}

Result<void*> reserve_address_space(size_t bytes) noexcept {
  if (bytes == 0) return Status(Code::kInvalidArgument, "pages::reserve_address_space: bytes == 0");
  const size_t ps = page_size();
  bytes = (bytes + ps - 1) & ~(ps - 1);
  void* p = ::mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  bump(g_counters.mmap_calls);
  if (p == MAP_FAILED) return Status::from_errno(errno, "pages::reserve_address_space mmap");
  return p;
}

Status map_file_fixed(void* addr, int fd, uint64_t offset, size_t bytes, bool writable) noexcept {
  if (fd < 0 || bytes == 0 || !page_aligned(addr) || (offset & (page_size() - 1)) != 0)
    return Status(Code::kInvalidArgument, "pages::map_file_fixed: bad fd, address, size or offset");
  int prot = writable ? (PROT_READ | PROT_WRITE) : PROT_READ;
  void* p = ::mmap(addr, bytes, prot, MAP_SHARED | MAP_FIXED, fd, static_cast<off_t>(offset));
  bump(g_counters.mmap_calls);
  if (p == MAP_FAILED) return Status::from_errno(errno, "pages::map_file_fixed mmap");
  return Status::ok();
}

Result<void*> remap(void* addr, size_t old_bytes, size_t new_bytes, bool may_move) noexcept {
  if (addr == nullptr || !page_aligned(addr) || old_bytes == 0 || new_bytes == 0)
    return Status(Code::kInvalidArgument, "pages::remap: bad range");
  bump(g_counters.mremap_calls);
  void* p = ::mremap(addr, old_bytes, new_bytes, may_move ? MREMAP_MAYMOVE : 0);
  if (p == MAP_FAILED) return Status::from_errno(errno, "pages::remap mremap");
  return p;
}

Status sync_range(const void* addr, size_t bytes) noexcept {
  if (addr == nullptr || bytes == 0) return Status(Code::kInvalidArgument, "pages::sync_range: bad range");
  const uintptr_t ps = page_size();
  uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  uintptr_t lo = a & ~(ps - 1), hi = (a + bytes + ps - 1) & ~(ps - 1);
  bump(g_counters.msync_calls);
  if (::msync(reinterpret_cast<void*>(lo), hi - lo, MS_SYNC) != 0)
    return Status::from_errno(errno, "pages::sync_range msync");
  return Status::ok();
}

Status allocate_file(int fd, uint64_t offset, uint64_t bytes) noexcept {
  if (fd < 0 || bytes == 0) return Status(Code::kInvalidArgument, "pages::allocate_file: bad fd or size");
  bump(g_counters.fallocate_calls);
  if (::fallocate(fd, 0, static_cast<off_t>(offset), static_cast<off_t>(bytes)) != 0)
    return Status::from_errno(errno, "pages::allocate_file fallocate");
  return Status::ok();
}

Status advise(void* addr, size_t bytes, Advice advice) noexcept {
  if (!page_aligned(addr) || bytes == 0 || (bytes & (page_size() - 1)) != 0)
    return Status(Code::kInvalidArgument, "pages::advise: unaligned range");
  int a = MADV_NORMAL;
  switch (advice) {
    case Advice::kNormal: a = MADV_NORMAL; break;
    case Advice::kRandom: a = MADV_RANDOM; break;
    case Advice::kSequential: a = MADV_SEQUENTIAL; break;
    case Advice::kWillNeed: a = MADV_WILLNEED; break;
    case Advice::kPopulateWrite:
#ifdef MADV_POPULATE_WRITE
      a = MADV_POPULATE_WRITE;
#else
      a = 23;  // MADV_POPULATE_WRITE (Linux 5.14) when the libc headers predate it
#endif
      break;
  }
  bump(g_counters.madvise_calls);
  if (::madvise(addr, bytes, a) != 0) {
    bump(g_counters.madvise_failures);
    return Status::from_errno(errno, "pages::advise madvise");
  }
  return Status::ok();
}

std::string vm_flags(const void* addr) {
  std::ifstream in("/proc/self/smaps");
  std::string line;
  const uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  bool inside = false;
  while (std::getline(in, line)) {
    unsigned long lo = 0, hi = 0;
    // A mapping header line starts with "lo-hi " in hex.
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find('-') < 17) {
      inside = a >= lo && a < hi;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) {
      std::string f = line.substr(8);
      while (!f.empty() && f.front() == ' ') f.erase(f.begin());
      while (!f.empty() && (f.back() == ' ' || f.back() == '\n')) f.pop_back();
      return f;
    }
  }
  return "";
}

Result<uint64_t> file_size(int fd) noexcept {
  if (fd < 0) return Status(Code::kInvalidArgument, "pages::file_size: bad fd");
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::from_errno(errno, "pages::file_size fstat");
  return static_cast<uint64_t>(st.st_size);
}

OsCounters os_counters() noexcept {
  OsCounters c;
  c.mmap_calls = g_counters.mmap_calls.load(std::memory_order_relaxed);
  c.munmap_calls = g_counters.munmap_calls.load(std::memory_order_relaxed);
  c.madvise_calls = g_counters.madvise_calls.load(std::memory_order_relaxed);
  c.madvise_bytes = g_counters.madvise_bytes.load(std::memory_order_relaxed);
  c.madvise_failures = g_counters.madvise_failures.load(std::memory_order_relaxed);
  c.ftruncate_calls = g_counters.ftruncate_calls.load(std::memory_order_relaxed);
  c.mremap_calls = g_counters.mremap_calls.load(std::memory_order_relaxed);
  c.msync_calls = g_counters.msync_calls.load(std::memory_order_relaxed);
  c.fallocate_calls = g_counters.fallocate_calls.load(std::memory_order_relaxed);
  return c;
}

uint64_t rss_bytes() noexcept {
  char buf[256];
  if (!read_small_file("/proc/self/statm", buf, sizeof buf)) return 0;
  unsigned long long size = 0, resident = 0;
  if (std::sscanf(buf, "%llu %llu", &size, &resident) != 2) return 0;
  return resident * page_size();
}

}  // namespace znslab::pages
