// The folder a file-backed workload (pager-churn, overflow-spill) keeps its
// files in: the `dir` key when set (created if absent, kept), else a new
// $TMPDIR/znslab-<tag>-XXXXXX removed at the end unless `keep_files`.
// Throws RunError (CLI boundary) naming the path. Not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <system_error>
#include <filesystem>

#include "harness/registry.h"
#include "harness/scratch_dir.h"

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
    scratch_ = std::make_unique<ScratchDir>(tag);
    path_ = scratch_->path();
    if (keep) keep_ = std::move(scratch_);  // never destroyed before exit: see below
  }
  ~WorkDir() {
    // A kept scratch folder is released without removing it.
    if (keep_) (void)keep_.release();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<ScratchDir> scratch_, keep_;
};

}  // namespace znslab::harness
