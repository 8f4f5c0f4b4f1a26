// segment::FileRegistry: one file descriptor per data file (seed 001,
// "FileHandleRegistry"). Files are registered by id, opened on demand with
// O_CLOEXEC, grown with ftruncate (through src/pages), and closed again
// least-recently-used first when more than `limit()` are open. A file that
// is acquired (pinned) is never closed under its user.
//
// A mapping made from an fd stays valid after the fd is closed (mmap holds
// its own reference to the file), so windows of the mapping manager do not
// keep fds open: the number of open data-file fds stays <= limit().
//
// The limit is derived from RLIMIT_NOFILE with headroom for the rest of the
// process (seed 001 "Configuration & Tuning": rlim_cur - 64), capped by the
// caller's request.
//
// Thread-safety: every method is safe to call concurrently (one mutex; this
// is not a fast path: it runs when a window is mapped or a file grows).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

#include "src/common/counters.h"
#include "src/common/status.h"

namespace znslab::segment {

// min(requested (0 = 256), RLIMIT_NOFILE soft limit - headroom), at least 1.
size_t derive_max_open_files(size_t requested, size_t headroom = 64) noexcept;

class FileRegistry;

// A pin on an open fd: the file cannot be closed by LRU eviction while a
// FileRef to it exists. Move-only; the destructor releases the pin.
class FileRef {
 public:
  FileRef() = default;
  FileRef(FileRef&& o) noexcept { *this = std::move(o); }
  FileRef& operator=(FileRef&& o) noexcept;
  FileRef(const FileRef&) = delete;
  FileRef& operator=(const FileRef&) = delete;
  ~FileRef() { reset(); }
  int fd() const noexcept { return fd_; }
  uint32_t file_id() const noexcept { return file_id_; }
  void reset() noexcept;

 private:
  friend class FileRegistry;
  FileRegistry* reg_ = nullptr;
  uint32_t file_id_ = 0;
  int fd_ = -1;
};

// The file registry's counters, declared once (src/common/counters.h): the struct, the JSON keys,
// schema entries and docs table. X(type, field, json key, unit, meaning).
#define ZNSLAB_FILE_REGISTRY_STATS(X) \
  X(size_t, open_fds, "fds_open", "fds", "current: owned data files open") \
  X(size_t, peak_open_fds, "peak_open_fds", "fds", "maximum of fds_open since construction") \
  X(size_t, limit, "fd_limit", "fds", "max owned fds open at once") \
  X(uint64_t, opens, "fd_opens", "count", "open(2) calls") \
  X(uint64_t, evictions, "fd_evictions", "count", "fds closed by LRU eviction") \
  X(uint64_t, truncates, "ftruncates", "count", "ftruncate calls (file growth)") \
  X(uint64_t, file_bytes, "file_bytes", "bytes", "current: sum of owned file sizes")

struct FileRegistryStats {
  ZNSLAB_FILE_REGISTRY_STATS(ZNSLAB_COUNTER_FIELD)
};
ZNSLAB_COUNTER_FUNCTIONS(FileRegistryStats, ZNSLAB_FILE_REGISTRY_STATS)

class FileRegistry {
 public:
  // max_open: 0 = derive_max_open_files(0).
  explicit FileRegistry(size_t max_open = 0);
  // Closes every owned fd (files are kept on disk). Outstanding FileRefs
  // must be gone (precondition).
  ~FileRegistry();
  FileRegistry(const FileRegistry&) = delete;
  FileRegistry& operator=(const FileRegistry&) = delete;

  // Registers an owned data file; it is created (O_CREAT, mode 0644) and
  // opened O_RDWR|O_CLOEXEC on first acquire. Errors: kInvalidArgument when
  // the id is already registered or the path is empty.
  Status add_file(uint32_t file_id, std::string path, bool writable = true);
  // Registers a borrowed fd (e.g. the emulator's backing file): never
  // opened, closed or evicted by the registry and not counted in open_fds.
  Status add_borrowed(uint32_t file_id, int fd, bool writable);

  // Returns the file's fd pinned open, opening it (and closing the least
  // recently used unpinned file when at the limit) if needed.
  // Errors: kNotFound (unknown id), kBusy (limit reached and every open
  // file pinned), kIoError/kNotFound from open(2) with errno.
  Result<FileRef> acquire(uint32_t file_id);
  // Grows the file to at least `bytes` (sparse, ftruncate); never shrinks.
  // Errors: as acquire, kInvalidArgument for a borrowed or read-only file,
  // kIoError from ftruncate.
  Status ensure_size(uint32_t file_id, uint64_t bytes);
  // Size the registry believes the file has (bytes); 0 for unknown ids.
  uint64_t file_size(uint32_t file_id) const;
  bool writable(uint32_t file_id) const;
  bool contains(uint32_t file_id) const;

  size_t limit() const noexcept { return limit_; }
  FileRegistryStats stats() const;

 private:
  friend class FileRef;
  struct Entry {
    std::string path;     // empty for borrowed
    int fd = -1;
    bool owned = true;
    bool writable = true;
    uint32_t pins = 0;
    uint64_t size = 0;
    std::list<uint32_t>::iterator lru;  // valid while owned && fd >= 0
  };
  void release(uint32_t file_id) noexcept;
  Status open_locked(uint32_t file_id, Entry& e);

  mutable std::mutex mu_;
  std::unordered_map<uint32_t, Entry> files_;
  std::list<uint32_t> lru_;  // open owned files, most recently used at front
  size_t limit_;
  size_t open_ = 0, peak_open_ = 0;
  uint64_t opens_ = 0, evictions_ = 0, truncates_ = 0;
};

}  // namespace znslab::segment
