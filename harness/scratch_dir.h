// The folder a run keeps its files in: a workload's default device (an
// emulator file when no --device is given; store and device runners) or a
// file-backed allocator's files (pager-churn, overflow-spill: the phase
// runner). Either a given folder (created if absent, kept) or a new
// $TMPDIR/znslab-<tag>-XXXXXX, removed with its contents when the run ends
// unless `keep`.
// Throws RunError (CLI boundary) naming the path and errno when the folder
// cannot be created. Not thread-safe; one per run.
#pragma once

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "harness/registry.h"

namespace znslab::harness {

class ScratchDir {
 public:
  ScratchDir() = default;
  // Creates $TMPDIR (or /tmp) /znslab-<tag>-XXXXXX, removed at the end.
  explicit ScratchDir(const std::string& tag) : ScratchDir(tag, "", false) {}
  // `dir` when not empty (created if absent, never removed), else a new
  // temporary folder as above, removed at the end unless `keep`.
  ScratchDir(const std::string& tag, const std::string& dir, bool keep) {
    if (!dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      if (ec) throw RunError(tag + ": cannot create dir " + dir + ": " + ec.message());
      path_ = dir;
      return;
    }
    const char* t = std::getenv("TMPDIR");
    std::string tmpl = std::string(t && *t ? t : "/tmp") + "/znslab-" + tag + "-XXXXXX";
    std::vector<char> b(tmpl.begin(), tmpl.end());
    b.push_back('\0');
    if (!::mkdtemp(b.data())) throw RunError(tag + ": mkdtemp " + tmpl + ": " + std::strerror(errno));
    path_ = b.data();
    remove_ = !keep;
  }
  ~ScratchDir() {
    if (!remove_) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool remove_ = false;
};

// The URI a workload runs on: --device when given, else an emulator in a new
// scratch folder with the workload's `default_device` parameters.
inline std::string device_or_scratch(const std::string& device_uri, const std::string& tag,
                                     const std::string& default_params,
                                     std::unique_ptr<ScratchDir>& scratch) {
  if (!device_uri.empty()) return device_uri;
  scratch = std::make_unique<ScratchDir>(tag);
  return "emu:" + scratch->path() + "/device.zns?" + default_params;
}

}  // namespace znslab::harness
