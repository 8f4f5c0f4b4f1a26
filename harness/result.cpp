#include "harness/result.h"
#include "harness/provenance.h"

#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "harness/registry.h"
#include "src/pages/pages.h"

namespace znslab::harness {

uint64_t monotonic_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// ---- LatencyHistogram ----------------------------------------------------

uint64_t LatencyHistogram::bucket_low(unsigned i) noexcept {
  if (i < kLinear) return i;
  unsigned j = i - kLinear;
  unsigned shift = j / (1u << kSubBits) + 1;
  uint64_t sub = (j % (1u << kSubBits)) + (1u << kSubBits);
  return sub << shift;
}

uint64_t LatencyHistogram::bucket_high(unsigned i) noexcept {
  if (i < kLinear) return i;
  unsigned j = i - kLinear;
  unsigned shift = j / (1u << kSubBits) + 1;
  return bucket_low(i) + (uint64_t(1) << shift) - 1;
}

void LatencyHistogram::merge(const LatencyHistogram& o) noexcept {
  for (unsigned i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  sum_ += o.sum_;
  if (o.max_ > max_) max_ = o.max_;
  if (o.min_ < min_) min_ = o.min_;
}

void LatencyHistogram::clear() noexcept {
  counts_.fill(0);
  count_ = sum_ = max_ = 0;
  min_ = UINT64_MAX;
}

uint64_t LatencyHistogram::percentile(double q) const noexcept {
  if (count_ == 0) return 0;
  if (q <= 0) return min();
  if (q >= 1) return max_;
  // Rank of the q-quantile (nearest-rank definition).
  uint64_t rank = uint64_t(q * double(count_));
  if (rank >= count_) rank = count_ - 1;
  uint64_t seen = 0;
  for (unsigned i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen > rank) {
      uint64_t mid = (bucket_low(i) + bucket_high(i)) / 2;
      if (mid > max_) mid = max_;
      if (mid < min()) mid = min();
      return mid;
    }
  }
  return max_;
}

nlohmann::json LatencyHistogram::to_json() const {
  return nlohmann::json{{"p50", percentile(0.50)}, {"p90", percentile(0.90)},
                        {"p99", percentile(0.99)}, {"p999", percentile(0.999)},
                        {"max", max_},             {"min", min()},
                        {"mean", mean()},          {"count", count_}};
}

// ---- host / provenance ---------------------------------------------------

nlohmann::json host_info() {
  nlohmann::json h;
  utsname u{};
  if (uname(&u) == 0) {
    h["kernel"] = std::string(u.sysname) + " " + u.release;
    h["hostname"] = u.nodename;
    h["machine"] = u.machine;
  }
  h["cpus"] = sysconf(_SC_NPROCESSORS_ONLN);
  h["memory_bytes"] = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGESIZE));
  h["thp_mode"] = pages::thp_mode();
  h["page_size"] = pages::page_size();
  h["huge_page_size"] = pages::huge_page_size();
#ifdef ZNSLAB_SANITIZE
  h["sanitizer"] = ZNSLAB_SANITIZE;
#else
  h["sanitizer"] = nullptr;
#endif
  return h;
}

std::string git_rev() { return build_git_rev(); }

std::string utc_now_iso8601() {
  time_t t = time(nullptr);
  tm g{};
  gmtime_r(&t, &g);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &g);
  return buf;
}

// ---- ResultDoc -------------------------------------------------------------

ResultDoc::ResultDoc(std::string experiment) : t0_ns_(monotonic_ns()) {
  doc_["schema"] = kResultSchema;
  doc_["experiment"] = std::move(experiment);
  doc_["started_at"] = utc_now_iso8601();
  doc_["git_rev"] = git_rev();
  doc_["label"] = doc_["experiment"];         // the runner sets the real label
  doc_["provenance"] = provenance({});        // argv from /proc/self/cmdline; the runner refines it
  doc_["host"] = host_info();
  doc_["config"] = nlohmann::json::object();
  doc_["allocator"] = nullptr;
  doc_["device"] = nullptr;
  doc_["samples"] = nlohmann::json::array();
  doc_["latency_ns"] = nlohmann::json::object();
  doc_["summary"] = nlohmann::json::object();
}

uint64_t ResultDoc::elapsed_ns() const noexcept { return monotonic_ns() - t0_ns_; }

void ResultDoc::add_sample(nlohmann::json sample) {
  if (!sample.contains("t_ns")) sample["t_ns"] = monotonic_ns() - t0_ns_;
  doc_["samples"].push_back(std::move(sample));
}

void ResultDoc::write(const std::string& path) const {
  const std::string text = doc_.dump(2) + "\n";
  if (path == "-") {
    std::cout << text;
    return;
  }
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw RunError("cannot write result " + path + ": " + std::strerror(errno));
  f << text;
  f.flush();
  if (!f) throw RunError("cannot write result " + path + ": " + std::strerror(errno));
}

}  // namespace znslab::harness
