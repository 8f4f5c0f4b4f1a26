#include "src/segment/file_registry.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "src/pages/pages.h"

namespace znslab::segment {

size_t derive_max_open_files(size_t requested, size_t headroom) noexcept {
  size_t want = requested ? requested : 256;
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur != RLIM_INFINITY) {
    size_t cur = static_cast<size_t>(r.rlim_cur);
    size_t avail = cur > headroom ? cur - headroom : 1;
    want = std::min(want, avail);
  }
  return std::max<size_t>(want, 1);
}

FileRef& FileRef::operator=(FileRef&& o) noexcept {
  if (this != &o) {
    reset();
    reg_ = o.reg_;
    file_id_ = o.file_id_;
    fd_ = o.fd_;
    o.reg_ = nullptr;
    o.fd_ = -1;
  }
  return *this;
}

void FileRef::reset() noexcept {
  if (reg_) reg_->release(file_id_);
  reg_ = nullptr;
  fd_ = -1;
}

FileRegistry::FileRegistry(size_t max_open) : limit_(max_open ? max_open : derive_max_open_files(0)) {}

FileRegistry::~FileRegistry() {
  for (auto& [id, e] : files_)
    if (e.owned && e.fd >= 0) ::close(e.fd);
}

Status FileRegistry::add_file(uint32_t file_id, std::string path, bool writable) {
  if (path.empty()) return Status(Code::kInvalidArgument, "segment::FileRegistry::add_file: empty path");
  std::lock_guard<std::mutex> g(mu_);
  if (files_.count(file_id))
    return Status(Code::kInvalidArgument, "segment::FileRegistry::add_file: file id already registered");
  Entry e;
  e.path = std::move(path);
  e.writable = writable;
  struct stat st{};
  if (::stat(e.path.c_str(), &st) == 0) e.size = static_cast<uint64_t>(st.st_size);
  files_.emplace(file_id, std::move(e));
  return Status::ok();
}

Status FileRegistry::add_borrowed(uint32_t file_id, int fd, bool writable) {
  if (fd < 0) return Status(Code::kInvalidArgument, "segment::FileRegistry::add_borrowed: fd < 0");
  std::lock_guard<std::mutex> g(mu_);
  if (files_.count(file_id))
    return Status(Code::kInvalidArgument, "segment::FileRegistry::add_borrowed: file id already registered");
  Entry e;
  e.fd = fd;
  e.owned = false;
  e.writable = writable;
  struct stat st{};
  if (::fstat(fd, &st) == 0) e.size = static_cast<uint64_t>(st.st_size);
  files_.emplace(file_id, std::move(e));
  return Status::ok();
}

Status FileRegistry::open_locked(uint32_t file_id, Entry& e) {
  // Make room: close least-recently-used unpinned files.
  while (open_ >= limit_) {
    bool closed = false;
    for (auto it = lru_.rbegin(); it != lru_.rend(); ++it) {
      Entry& victim = files_.at(*it);
      if (victim.pins != 0) continue;
      ::close(victim.fd);
      victim.fd = -1;
      lru_.erase(std::next(it).base());
      --open_;
      ++evictions_;
      closed = true;
      break;
    }
    if (!closed) return Status(Code::kBusy, "segment::FileRegistry: fd limit reached and every open file is pinned");
  }
  int flags = (e.writable ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC;
  int fd = ::open(e.path.c_str(), flags, 0644);
  ++opens_;
  if (fd < 0) return Status::from_errno(errno, "segment::FileRegistry open data file");
  struct stat st{};
  if (::fstat(fd, &st) == 0) e.size = static_cast<uint64_t>(st.st_size);
  e.fd = fd;
  lru_.push_front(file_id);
  e.lru = lru_.begin();
  ++open_;
  peak_open_ = std::max(peak_open_, open_);
  (void)file_id;
  return Status::ok();
}

Result<FileRef> FileRegistry::acquire(uint32_t file_id) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = files_.find(file_id);
  if (it == files_.end()) return Status(Code::kNotFound, "segment::FileRegistry::acquire: unknown file id");
  Entry& e = it->second;
  if (e.owned) {
    if (e.fd < 0) {
      Status s = open_locked(file_id, e);
      if (!s) return s;
    } else {
      lru_.splice(lru_.begin(), lru_, e.lru);  // most recently used
    }
  }
  ++e.pins;
  FileRef ref;
  ref.reg_ = this;
  ref.file_id_ = file_id;
  ref.fd_ = e.fd;
  return ref;
}

void FileRegistry::release(uint32_t file_id) noexcept {
  std::lock_guard<std::mutex> g(mu_);
  auto it = files_.find(file_id);
  if (it != files_.end() && it->second.pins > 0) --it->second.pins;
}

Status FileRegistry::ensure_size(uint32_t file_id, uint64_t bytes) {
  {
    std::lock_guard<std::mutex> g(mu_);
    auto it = files_.find(file_id);
    if (it == files_.end()) return Status(Code::kNotFound, "segment::FileRegistry::ensure_size: unknown file id");
    if (!it->second.owned || !it->second.writable)
      return Status(Code::kInvalidArgument, "segment::FileRegistry::ensure_size: file is borrowed or read-only");
    if (it->second.size >= bytes) return Status::ok();
  }
  auto ref = acquire(file_id);
  if (!ref) return ref.status();
  std::lock_guard<std::mutex> g(mu_);
  Entry& e = files_.at(file_id);
  if (e.size >= bytes) return Status::ok();
  Status s = pages::truncate_file(ref->fd(), bytes);
  ++truncates_;
  if (!s) return s;
  e.size = bytes;
  return Status::ok();
}

uint64_t FileRegistry::file_size(uint32_t file_id) const {
  std::lock_guard<std::mutex> g(mu_);
  auto it = files_.find(file_id);
  return it == files_.end() ? 0 : it->second.size;
}

bool FileRegistry::writable(uint32_t file_id) const {
  std::lock_guard<std::mutex> g(mu_);
  auto it = files_.find(file_id);
  return it != files_.end() && it->second.writable;
}

bool FileRegistry::contains(uint32_t file_id) const {
  std::lock_guard<std::mutex> g(mu_);
  return files_.count(file_id) != 0;
}

FileRegistryStats FileRegistry::stats() const {
  std::lock_guard<std::mutex> g(mu_);
  FileRegistryStats s;
  s.open_fds = open_;
  s.peak_open_fds = peak_open_;
  s.limit = limit_;
  s.opens = opens_;
  s.evictions = evictions_;
  s.truncates = truncates_;
  for (auto& [id, e] : files_)
    if (e.owned) s.file_bytes += e.size;
  return s;
}

}  // namespace znslab::segment
