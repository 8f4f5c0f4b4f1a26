#include "harness/sampler.h"

#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace znslab::harness {
namespace {

int perf_open(uint64_t config, bool exclude_kernel) {
  perf_event_attr a;
  std::memset(&a, 0, sizeof a);
  a.type = PERF_TYPE_SOFTWARE;
  a.size = sizeof a;
  a.config = config;
  a.exclude_hv = 1;
  a.exclude_kernel = exclude_kernel ? 1 : 0;
  return int(syscall(SYS_perf_event_open, &a, 0 /*this thread*/, -1 /*any cpu*/, -1, PERF_FLAG_FD_CLOEXEC));
}

// Reads the value after "Key:" in kB from smaps_rollup text; -1 if absent.
int64_t smaps_kb(const char* text, const char* key) {
  const char* p = std::strstr(text, key);
  if (!p) return -1;
  p += std::strlen(key);
  while (*p == ' ' || *p == '\t') ++p;
  return std::strtoll(p, nullptr, 10);
}

}  // namespace

Sampler::Sampler() {
  statm_fd_ = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  attach_thread();
}

Sampler::~Sampler() {
  if (statm_fd_ >= 0) close(statm_fd_);
  for (int fd : perf_fds_) close(fd);
}

void Sampler::attach_thread() {
  std::lock_guard<std::mutex> g(mu_);
  if (!perf_ok_) return;
  int mn = perf_open(PERF_COUNT_SW_PAGE_FAULTS_MIN, false);
  if (mn < 0) mn = perf_open(PERF_COUNT_SW_PAGE_FAULTS_MIN, true);
  int mj = mn < 0 ? -1 : perf_open(PERF_COUNT_SW_PAGE_FAULTS_MAJ, false);
  if (mn >= 0 && mj < 0) mj = perf_open(PERF_COUNT_SW_PAGE_FAULTS_MAJ, true);
  if (mn < 0 || mj < 0) {
    perf_reason_ = std::string("perf_event_open: ") + std::strerror(errno);
    if (mn >= 0) close(mn);
    perf_ok_ = false;
    for (int fd : perf_fds_) close(fd);
    perf_fds_.clear();
    return;
  }
  perf_fds_.push_back(mn);
  perf_fds_.push_back(mj);
}

uint64_t Sampler::rss_bytes() const {
  if (statm_fd_ < 0) return 0;
  char buf[256];
  ssize_t n = pread(statm_fd_, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  buf[n] = 0;
  unsigned long size = 0, resident = 0;
  if (std::sscanf(buf, "%lu %lu", &size, &resident) != 2) return 0;
  return uint64_t(resident) * uint64_t(sysconf(_SC_PAGESIZE));
}

void Sampler::sample_into(ProcSample& out) const {
  out = ProcSample{};
  out.rss_bytes = rss_bytes();
  int fd = open("/proc/self/smaps_rollup", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n > 0) {
      buf[n] = 0;
      int64_t a = smaps_kb(buf, "\nAnonymous:"), h = smaps_kb(buf, "\nAnonHugePages:"),
              p = smaps_kb(buf, "\nPss:");
      if (a >= 0) out.anon_rss_bytes = a * 1024;
      if (h >= 0) out.anon_huge_bytes = h * 1024;
      if (p >= 0) out.pss_bytes = p * 1024;
    }
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  out.minor_faults = uint64_t(ru.ru_minflt);
  out.major_faults = uint64_t(ru.ru_majflt);
  std::lock_guard<std::mutex> g(mu_);
  if (perf_ok_ && !perf_fds_.empty()) {
    uint64_t mn = 0, mj = 0;
    for (size_t i = 0; i + 1 < perf_fds_.size(); i += 2) {
      uint64_t v = 0;
      if (read(perf_fds_[i], &v, sizeof v) == sizeof v) mn += v;
      if (read(perf_fds_[i + 1], &v, sizeof v) == sizeof v) mj += v;
    }
    out.perf_minor_faults = int64_t(mn);
    out.perf_major_faults = int64_t(mj);
  }
}

void ProcSample::to_json(nlohmann::json& s) const {
  auto opt = [](int64_t v) { return v < 0 ? nlohmann::json(nullptr) : nlohmann::json(uint64_t(v)); };
  s["rss_bytes"] = rss_bytes;
  s["anon_rss_bytes"] = opt(anon_rss_bytes);
  s["anon_huge_bytes"] = opt(anon_huge_bytes);
  s["pss_bytes"] = opt(pss_bytes);
  s["minor_faults"] = minor_faults;
  s["major_faults"] = major_faults;
  s["perf_minor_faults"] = opt(perf_minor_faults);
  s["perf_major_faults"] = opt(perf_major_faults);
}

nlohmann::json Sampler::sample() const {
  ProcSample p;
  sample_into(p);
  nlohmann::json s;
  p.to_json(s);
  return s;
}

nlohmann::json Sampler::perf_info() const {
  std::lock_guard<std::mutex> g(mu_);
  return nlohmann::json{
      {"available", perf_ok_},
      {"reason", perf_ok_ ? nlohmann::json(nullptr) : nlohmann::json(perf_reason_)},
      {"threads", perf_fds_.size() / 2},
      {"counters", {"PERF_COUNT_SW_PAGE_FAULTS_MIN", "PERF_COUNT_SW_PAGE_FAULTS_MAJ"}}};
}

void PeriodicSampler::start(uint32_t interval_ms, std::function<void()> tick) {
  if (interval_ms == 0) return;
  stop_ = false;
  th_ = std::thread([this, interval_ms, tick = std::move(tick)] {
    std::unique_lock<std::mutex> lk(mu_);
    while (!cv_.wait_for(lk, std::chrono::milliseconds(interval_ms), [&] { return stop_; })) {
      lk.unlock();
      tick();
      lk.lock();
    }
  });
}

void PeriodicSampler::stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (th_.joinable()) th_.join();
}

}  // namespace znslab::harness
