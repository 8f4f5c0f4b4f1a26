#include "src/pages/pages.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>

namespace znslab::pages {
namespace {

struct AtomicOsCounters {
  std::atomic<uint64_t> mmap_calls{0}, munmap_calls{0}, madvise_calls{0}, madvise_bytes{0},
      madvise_failures{0}, ftruncate_calls{0};
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

Status truncate_file(int fd, uint64_t bytes) noexcept {
  if (fd < 0) return Status(Code::kInvalidArgument, "pages::truncate_file: bad fd");
  bump(g_counters.ftruncate_calls);
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0)
    return Status::from_errno(errno, "pages::truncate_file ftruncate");
  return Status::ok();
}

OsCounters os_counters() noexcept {
  OsCounters c;
  c.mmap_calls = g_counters.mmap_calls.load(std::memory_order_relaxed);
  c.munmap_calls = g_counters.munmap_calls.load(std::memory_order_relaxed);
  c.madvise_calls = g_counters.madvise_calls.load(std::memory_order_relaxed);
  c.madvise_bytes = g_counters.madvise_bytes.load(std::memory_order_relaxed);
  c.madvise_failures = g_counters.madvise_failures.load(std::memory_order_relaxed);
  c.ftruncate_calls = g_counters.ftruncate_calls.load(std::memory_order_relaxed);
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
