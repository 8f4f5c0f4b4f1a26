// On-file layout of the emulator, format version 2 (docs/zns.md, "Emulator
// file format"). Internal to zns/emu_*.cpp and the fuzz/crash tests.
//
//   [0, 4096)                header page: EmuHeader (written once, at creation)
//   [4096, 4096 + 16 * N)    zone table: one EmuZoneEntry per zone
//   [data_offset, + N * zone_size)  zone data (data_offset: multiple of 1 MiB)
//
// Checksums are CRC32C (src/common/crc32c.h, ISA-L). Every mutable word of
// the zone table is one aligned 8-byte store that carries its own CRC, so a
// process killed between any two instructions leaves each word old or new,
// never torn; a single flipped bit fails a CRC and the open is refused.
#pragma once

#include <cstddef>
#include <cstdint>

#include "src/common/crc32c.h"

namespace znslab::zns {

inline constexpr char kEmuMagic[8] = {'Z', 'N', 'S', 'E', 'M', 'U', '0', '1'};
// 1: no checksums, 32-byte zone entries (refused). 2: this layout.
inline constexpr uint32_t kEmuVersion = 2;
inline constexpr uint64_t kEmuZoneTableOffset = 4096;  // bytes from file start
inline constexpr uint64_t kEmuDataAlign = 1 << 20;     // data_offset alignment
// Largest write pointer an entry holds, in logical blocks (28 bits).
inline constexpr uint64_t kEmuMaxZoneLbas = uint64_t(1) << 28;
// Data region allocated at creation (fallocate): writes never allocate
// blocks and a reset leaves them allocated.
inline constexpr uint32_t kEmuFlagPrealloc = 1;

// Page 0 of the file. Geometry in bytes. Never changed after creation.
// crc = crc32c of the bytes before it.
struct EmuHeader {
  char magic[8];
  uint32_t version;        // kEmuVersion
  uint32_t header_bytes;   // sizeof(EmuHeader)
  uint32_t zone_count;
  uint32_t lba_bytes;
  uint64_t zone_size;
  uint64_t zone_capacity;
  uint32_t max_open;
  uint32_t max_active;
  uint32_t flags;          // kEmuFlagPrealloc
  uint32_t entry_bytes;    // sizeof(EmuZoneEntry)
  uint64_t table_offset;   // kEmuZoneTableOffset
  uint64_t data_offset;
  uint32_t reserved;
  uint32_t crc;
};
static_assert(sizeof(EmuHeader) == 80);

inline uint32_t emu_header_crc(const EmuHeader& h) noexcept {
  return crc32c(&h, offsetof(EmuHeader, crc));
}

// One zone's persistent state: two self-checked 8-byte words.
//   state word: bits 0..27 write pointer in logical blocks (the extent
//     written: every byte below it was written and completed before the
//     word was stored), bits 28..31 ZoneState, bits 32..63 CRC32C of
//     (zone index, bits 0..31). The all-zero word is Empty with wp 0
//     (a new table needs no initialisation).
//   order word: bits 0..31 implicit-open sequence number (which implicitly
//     opened zone the open limit closes first), bits 32..63 its CRC32C with
//     the zone index; all-zero means 0.
struct EmuZoneEntry {
  uint64_t state_word;
  uint64_t order_word;
};
static_assert(sizeof(EmuZoneEntry) == 16);

inline uint32_t emu_word_crc(uint32_t zone, uint32_t payload, uint32_t salt) noexcept {
  const uint32_t v[3] = {zone, payload, salt};
  return crc32c(v, sizeof v);
}
inline constexpr uint32_t kEmuSaltState = 0x53544154;  // "STAT"
inline constexpr uint32_t kEmuSaltOrder = 0x4f524452;  // "ORDR"

inline uint64_t emu_pack_word(uint32_t zone, uint32_t payload, uint32_t salt) noexcept {
  if (payload == 0) return 0;
  return uint64_t(payload) | (uint64_t(emu_word_crc(zone, payload, salt)) << 32);
}
// False when the word's CRC does not match (the payload is then unusable).
inline bool emu_unpack_word(uint32_t zone, uint64_t word, uint32_t salt, uint32_t* payload) noexcept {
  *payload = uint32_t(word);
  if (word == 0) return true;
  return *payload != 0 && uint32_t(word >> 32) == emu_word_crc(zone, *payload, salt);
}
inline uint32_t emu_state_payload(uint32_t state, uint64_t wp_lbas) noexcept {
  return uint32_t(wp_lbas & (kEmuMaxZoneLbas - 1)) | (state << 28);
}

}  // namespace znslab::zns
