// The folder a file-backed run (pager-churn, overflow-spill: the phase
// runner, harness/phase_runner.h) keeps its files in: the `dir` key when set
// (created if absent, kept), else a new
// $TMPDIR/znslab-<tag>-XXXXXX removed at the end unless `keep_files`.
// Throws RunError (CLI boundary) naming the path. Not thread-safe.
#pragma once

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "harness/registry.h"

namespace znslab::harness {

class WorkDir {
 public:
  WorkDir(const std::string& tag, const std::string& dir, bool keep) {
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
  ~WorkDir() {
    if (!remove_) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool remove_ = false;
};

}  // namespace znslab::harness
