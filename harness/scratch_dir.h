// A scratch folder for a workload's default device (an emulator file when no
// --device is given), removed with its contents when the run ends.
// Throws RunError (CLI boundary) naming the template and errno when mkdtemp
// fails. Not thread-safe; one per run.
#pragma once

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "harness/registry.h"

namespace znslab::harness {

class ScratchDir {
 public:
  ScratchDir() = default;
  // Creates $TMPDIR (or /tmp) /znslab-<tag>-XXXXXX.
  explicit ScratchDir(const std::string& tag) {
    const char* t = std::getenv("TMPDIR");
    std::string tmpl = std::string(t && *t ? t : "/tmp") + "/znslab-" + tag + "-XXXXXX";
    std::vector<char> b(tmpl.begin(), tmpl.end());
    b.push_back('\0');
    if (!::mkdtemp(b.data())) throw RunError(tag + ": mkdtemp " + tmpl + ": " + std::strerror(errno));
    path_ = b.data();
  }
  ~ScratchDir() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
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
