// Verifiable data patterns for zone I/O (CLI `--pattern SEED`, tests,
// workloads). The 8-byte word at absolute device byte offset a (a multiple
// of 8) is splitmix64(seed * K + a / 8), so data written by zone append
// verifies at whatever offset it landed, and the same bytes are produced
// whichever request wrote them. Header-only, no state; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace znslab::zns::io {

constexpr uint64_t pattern_word(uint64_t seed, uint64_t device_offset) noexcept {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + (device_offset >> 3) + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Fills buf[0, len) with the pattern of bytes [device_offset, device_offset+len).
// device_offset and len must be multiples of 8.
inline void fill_pattern(void* buf, size_t len, uint64_t seed, uint64_t device_offset) noexcept {
  auto* p = static_cast<uint8_t*>(buf);
  for (size_t i = 0; i + 8 <= len; i += 8) {
    uint64_t w = pattern_word(seed, device_offset + i);
    std::memcpy(p + i, &w, 8);
  }
}

// Returns the index of the first byte that differs from the pattern, or len
// if all match.
inline size_t verify_pattern(const void* buf, size_t len, uint64_t seed, uint64_t device_offset) noexcept {
  auto* p = static_cast<const uint8_t*>(buf);
  for (size_t i = 0; i + 8 <= len; i += 8) {
    uint64_t w = pattern_word(seed, device_offset + i);
    if (std::memcmp(p + i, &w, 8) != 0) {
      for (size_t j = 0; j < 8; ++j) {
        if (p[i + j] != reinterpret_cast<const uint8_t*>(&w)[j]) return i + j;
      }
    }
  }
  return len;
}

}  // namespace znslab::zns::io
