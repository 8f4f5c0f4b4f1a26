#include "src/common/crc32c.h"

#include <climits>

#include <isa-l/crc.h>

namespace znslab {

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t len) noexcept {
  // ISA-L works on the raw register: pre- and post-inversion are ours.
  uint32_t reg = ~crc;
  auto* p = static_cast<unsigned char*>(const_cast<void*>(data));
  while (len > 0) {
    int n = len > size_t(INT_MAX) ? INT_MAX : int(len);
    reg = crc32_iscsi(p, n, reg);
    p += n;
    len -= size_t(n);
  }
  return ~reg;
}

uint32_t crc32c(const void* data, size_t len) noexcept { return crc32c_extend(0, data, len); }

}  // namespace znslab
