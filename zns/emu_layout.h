// On-file layout of the emulator (zns/emu_device.h describes the format).
// Internal to zns/emu_*.cpp.
#pragma once

#include <cstdint>

namespace znslab::zns {

inline constexpr char kEmuMagic[8] = {'Z', 'N', 'S', 'E', 'M', 'U', '0', '1'};
inline constexpr uint32_t kEmuVersion = 1;
inline constexpr uint64_t kEmuZoneTableOffset = 4096;  // bytes from file start
inline constexpr uint64_t kEmuDataAlign = 1 << 20;     // data_offset alignment
// Data region allocated at creation (fallocate); reset keeps the blocks
// (FALLOC_FL_ZERO_RANGE) instead of punching holes.
inline constexpr uint32_t kEmuFlagPrealloc = 1;

// Page 0 of the file. Geometry in bytes.
struct EmuHeader {
  char magic[8];
  uint32_t version;
  uint32_t zone_count;
  uint64_t zone_size;
  uint64_t zone_capacity;
  uint32_t lba_bytes;
  uint32_t max_open;
  uint32_t max_active;
  uint32_t flags;          // kEmuFlagPrealloc
  uint64_t data_offset;
  uint64_t imp_open_seq;   // next sequence number for an implicit open
  uint64_t power_cycles;   // power_cycle() calls over the device's life
  uint64_t opens;          // process opens of this file
};

// One zone's persistent state (32 bytes, at kEmuZoneTableOffset + 32 * z).
// wp: zone-relative write pointer in bytes (reserved: advanced before the
// data is submitted). imp_seq: when the zone became implicitly open (the
// auto-transition closes the smallest). For a Full zone wp keeps the
// extent actually written (reported write pointer is start + capacity).
struct EmuZoneMeta {
  uint64_t wp;
  uint64_t imp_seq;
  uint8_t state;           // ZoneState
  uint8_t pad[15];
};
static_assert(sizeof(EmuZoneMeta) == 32);

}  // namespace znslab::zns
