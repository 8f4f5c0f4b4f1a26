// Peer allocators (glibc, jemalloc, mimalloc, tcmalloc): which shared
// library each one is, how to load it (LD_PRELOAD + re-exec), and how to
// prove which one is loaded (/proc/self/maps) and its version.
//
// Rule (issue 2, section 3): RSS of one allocator never shares a process
// with another, and a peer result is reported only when its library is in
// /proc/self/maps. Version sources: jemalloc mallctl("version"), mimalloc
// mi_version(), tcmalloc tc_version(), glibc gnu_get_libc_version(); the
// Debian package version (dpkg-query) is recorded beside it.
//
// Thread-safety: call from the main thread before workload threads start.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace znslab::harness {

struct PeerLibrary {
  const char* allocator;  // "jemalloc"
  const char* soname;     // "libjemalloc.so.2"
  const char* package;    // Debian package, "libjemalloc2"
  const char* maps_token; // substring identifying it in /proc/self/maps, "libjemalloc"
};
// The LD_PRELOAD peers (not glibc). Directory: kPeerLibDir.
const std::vector<PeerLibrary>& peer_libraries();
inline constexpr const char* kPeerLibDir = "/usr/lib/x86_64-linux-gnu";
// The preloadable library of `allocator`, or nullptr (glibc, temporal-slab, unknown).
const PeerLibrary* peer_library(std::string_view allocator);

// Paths of mapped files in a /proc/<pid>/maps text (unique, in order).
std::vector<std::string> mapped_files(const std::string& maps_text);
// Which preloadable malloc libraries `maps_text` shows: allocator names
// ("jemalloc", ...) in peer_libraries() order.
std::vector<std::string> loaded_peer_allocators(const std::string& maps_text);
// /proc/self/maps, read whole. Throws RunError when unreadable.
std::string read_self_maps();

// The LD_PRELOAD value that runs `allocator` alone: its library (for a
// peer) followed by `current` minus every known malloc library. "" when
// nothing is left.
std::string preload_for(std::string_view allocator, std::string_view current);

// Makes sure this process runs `allocator` and no other malloc library:
// when the maps disagree, re-executes /proc/self/exe with `args` (argv
// without the program name) under the right LD_PRELOAD; returns only when
// the process is right. Throws RunError when the library is missing, a
// re-exec did not help (guard variable ZNSLAB_REEXEC), or in a sanitizer
// build (a preloaded malloc cannot replace the sanitizer's).
void ensure_allocator_process(const std::string& allocator, const std::vector<std::string>& args);

// {"library": path, "version": "...", "version_source": "...",
//  "package": "...", "package_version": "..."} of the malloc serving this
// process for `allocator` ("glibc" or a peer). Throws RunError when the
// peer's library is not in /proc/self/maps, or another peer is.
nlohmann::json malloc_identity(const std::string& allocator);

// `dpkg-query -W -f '${Version}' PKG`, "" when unknown.
std::string debian_package_version(const std::string& package);

}  // namespace znslab::harness
