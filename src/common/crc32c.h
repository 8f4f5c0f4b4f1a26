// CRC32C (Castagnoli, iSCSI polynomial 0x1EDC6F41) of persisted metadata:
// the emulator's header and zone table, the pager's superblock and meta
// areas, the overflow region's slot index. Computed by Intel ISA-L
// (`crc32_iscsi`, Debian libisal-dev), never by a hand-rolled table.
//
// crc32c("123456789") == 0xE3069283 (the standard check value, RFC 3720
// appendix B.4). `crc32c_extend` continues a CRC over a further buffer:
// crc32c_extend(crc32c(a), b) == crc32c(a ++ b).
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace znslab {

// CRC32C of `len` bytes at `data` (len may be 0: returns 0).
uint32_t crc32c(const void* data, size_t len) noexcept;
// CRC32C of (the bytes whose CRC32C is `crc`) followed by `len` bytes at `data`.
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t len) noexcept;

}  // namespace znslab
