#include "harness/peers.h"

#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "harness/registry.h"

namespace znslab::harness {

const std::vector<PeerLibrary>& peer_libraries() {
  static const std::vector<PeerLibrary> libs = {
      {"jemalloc", "libjemalloc.so.2", "libjemalloc2", "libjemalloc"},
      {"mimalloc", "libmimalloc.so.2", "libmimalloc2.0", "libmimalloc"},
      {"tcmalloc", "libtcmalloc_minimal.so.4", "libtcmalloc-minimal4", "libtcmalloc"},
  };
  return libs;
}

const PeerLibrary* peer_library(std::string_view allocator) {
  for (const auto& l : peer_libraries())
    if (allocator == l.allocator) return &l;
  return nullptr;
}

std::vector<std::string> mapped_files(const std::string& maps_text) {
  std::vector<std::string> out;
  std::istringstream in(maps_text);
  std::string line;
  while (std::getline(in, line)) {
    // address perms offset dev inode [path]
    auto p = line.find('/');
    if (p == std::string::npos) continue;
    std::string path = line.substr(p);
    bool seen = false;
    for (const auto& o : out) seen |= (o == path);
    if (!seen) out.push_back(path);
  }
  return out;
}

namespace {
std::string base_name(const std::string& path) {
  auto s = path.rfind('/');
  return s == std::string::npos ? path : path.substr(s + 1);
}
// True when the file's base name starts with the peer's token ("libjemalloc").
bool is_peer_file(const std::string& path, const PeerLibrary& l) {
  return base_name(path).rfind(l.maps_token, 0) == 0;
}
std::string library_path_in_maps(const std::string& maps, const char* token) {
  for (const auto& f : mapped_files(maps))
    if (base_name(f).rfind(token, 0) == 0) return f;
  return "";
}
}  // namespace

std::vector<std::string> loaded_peer_allocators(const std::string& maps_text) {
  std::vector<std::string> out;
  auto files = mapped_files(maps_text);
  for (const auto& l : peer_libraries())
    for (const auto& f : files)
      if (is_peer_file(f, l)) {
        out.push_back(l.allocator);
        break;
      }
  return out;
}

std::string read_self_maps() {
  std::ifstream f("/proc/self/maps");
  if (!f) throw RunError(std::string("cannot read /proc/self/maps: ") + std::strerror(errno));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string preload_for(std::string_view allocator, std::string_view current) {
  std::vector<std::string> keep;
  if (const PeerLibrary* l = peer_library(allocator))
    keep.push_back(std::string(kPeerLibDir) + "/" + l->soname);
  // LD_PRELOAD entries are separated by spaces or colons.
  std::string cur(current), tok;
  auto flush = [&] {
    if (tok.empty()) return;
    bool is_malloc = false;
    for (const auto& l : peer_libraries()) is_malloc |= is_peer_file(tok, l);
    if (!is_malloc) keep.push_back(tok);
    tok.clear();
  };
  for (char c : cur) {
    if (c == ' ' || c == ':') flush();
    else tok += c;
  }
  flush();
  std::string out;
  for (const auto& k : keep) out += (out.empty() ? "" : ":") + k;
  return out;
}

void ensure_allocator_process(const std::string& allocator, const std::vector<std::string>& args) {
  const PeerLibrary* want = peer_library(allocator);
  const std::string maps = read_self_maps();
  const auto loaded = loaded_peer_allocators(maps);
  const bool right = want ? (loaded.size() == 1 && loaded[0] == allocator) : loaded.empty();
  if (right) return;
#ifdef ZNSLAB_SANITIZE
  if (want)
    throw RunError("allocator " + allocator + " cannot run in a SANITIZE=" ZNSLAB_SANITIZE
                   " build: the sanitizer replaces malloc and a preloaded " + want->soname +
                   " would conflict with it; use the plain build (build/znslab)");
#endif
  if (want) {
    std::string lib = std::string(kPeerLibDir) + "/" + want->soname;
    if (access(lib.c_str(), R_OK) != 0)
      throw RunError("allocator " + allocator + ": " + lib + " not found (" + std::strerror(errno) +
                     "); install Debian package " + want->package + " (make deps)");
  }
  const char* guard = std::getenv("ZNSLAB_REEXEC");
  if (guard && allocator == guard) {
    std::string got;
    for (const auto& l : loaded) got += (got.empty() ? "" : ", ") + l;
    throw RunError("allocator " + allocator + ": after re-executing with LD_PRELOAD=\"" +
                   std::string(std::getenv("LD_PRELOAD") ? std::getenv("LD_PRELOAD") : "") +
                   "\" /proc/self/maps shows [" + got + "]; refusing to report a result for a "
                   "library that is not the one loaded");
  }
  const char* cur = std::getenv("LD_PRELOAD");
  std::string preload = preload_for(allocator, cur ? cur : "");
  if (preload.empty()) unsetenv("LD_PRELOAD");
  else setenv("LD_PRELOAD", preload.c_str(), 1);
  setenv("ZNSLAB_REEXEC", allocator.c_str(), 1);
  std::vector<char*> argv;
  static char self[] = "/proc/self/exe";
  argv.push_back(self);
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::fflush(nullptr);
  execv(self, argv.data());
  throw RunError(std::string("re-exec of /proc/self/exe with LD_PRELOAD failed: ") +
                 std::strerror(errno));
}

std::string debian_package_version(const std::string& package) {
  std::string cmd = "dpkg-query -W -f='${Version}' " + package + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "";
  char buf[128] = {0};
  std::string v;
  if (std::fgets(buf, sizeof buf, p)) v = buf;
  pclose(p);
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return v;
}

nlohmann::json malloc_identity(const std::string& allocator) {
  const std::string maps = read_self_maps();
  const auto loaded = loaded_peer_allocators(maps);
  nlohmann::json id;
  id["loaded_malloc_libraries"] = loaded;
  if (allocator == "glibc") {
    if (!loaded.empty())
      throw RunError("allocator glibc: another malloc library is loaded (" + loaded[0] +
                     "); refusing to report it as glibc");
    id["library"] = library_path_in_maps(maps, "libc.so");
    id["version"] = gnu_get_libc_version();
    id["version_source"] = "gnu_get_libc_version()";
    id["package"] = "libc6";
    id["package_version"] = debian_package_version("libc6");
#ifdef ZNSLAB_SANITIZE
    id["note"] = "SANITIZE=" ZNSLAB_SANITIZE " build: malloc/free are intercepted by the sanitizer runtime";
#endif
    return id;
  }
  const PeerLibrary* l = peer_library(allocator);
  if (!l) throw RunError("allocator " + allocator + " is not a malloc peer");
  std::string path = library_path_in_maps(maps, l->maps_token);
  if (path.empty())
    throw RunError("allocator " + allocator + ": " + l->soname +
                   " is not in /proc/self/maps; refusing to report a result for it "
                   "(run it through `znslab run --allocator " + allocator + "`, which preloads it)");
  if (loaded.size() != 1)
    throw RunError("allocator " + allocator + ": more than one malloc library is loaded");
  id["library"] = path;
  std::string version, source;
  if (allocator == "jemalloc") {
    using Mallctl = int (*)(const char*, void*, size_t*, void*, size_t);
    if (auto f = reinterpret_cast<Mallctl>(dlsym(RTLD_DEFAULT, "mallctl"))) {
      const char* v = nullptr;
      size_t len = sizeof v;
      if (f("version", &v, &len, nullptr, 0) == 0 && v) {
        version = v;
        source = "mallctl(\"version\")";
      }
    }
  } else if (allocator == "mimalloc") {
    using MiVersion = int (*)();
    if (auto f = reinterpret_cast<MiVersion>(dlsym(RTLD_DEFAULT, "mi_version"))) {
      int v = f();  // e.g. 209 = 2.0.9
      version = std::to_string(v / 100) + "." + std::to_string((v / 10) % 10) + "." +
                std::to_string(v % 10);
      source = "mi_version() = " + std::to_string(v);
    }
  } else if (allocator == "tcmalloc") {
    using TcVersion = const char* (*)(int*, int*, const char**);
    if (auto f = reinterpret_cast<TcVersion>(dlsym(RTLD_DEFAULT, "tc_version"))) {
      int major = 0, minor = 0;
      const char* patch = nullptr;
      const char* s = f(&major, &minor, &patch);
      version = s ? s : std::to_string(major) + "." + std::to_string(minor);
      source = "tc_version()";
    }
  }
  id["package"] = l->package;
  id["package_version"] = debian_package_version(l->package);
  if (version.empty()) {
    version = id["package_version"].get<std::string>();
    source = "dpkg-query";
  }
  id["version"] = version;
  id["version_source"] = source;
  return id;
}

}  // namespace znslab::harness
