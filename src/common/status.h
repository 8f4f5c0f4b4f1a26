// Status and Result<T>: the one error type of every znslab layer.
//
// A Status is a small trivially-copyable value (code, errno, static context
// string): building or returning one never allocates, so fast paths (slab
// allocate/free/deref, segment pin) can return errors without heap traffic.
// errno is converted in one place (Status::from_errno); the zone error codes
// carry the NVMe Zoned Namespace Command Set status names (NVMe ZNS spec
// 1.1, section 3.4.1 "Zoned Namespace Command Set Specific Status Values").
//
// Thread-safety: values; safe to copy between threads.
#pragma once

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace znslab {

enum class Code : uint8_t {
  kOk = 0,
  // Generic.
  kInvalidArgument,  // caller passed a malformed value (size 0, bad URI, ...)
  kOutOfMemory,      // arena/registry exhausted, or mmap failed with ENOMEM
  kIoError,          // an OS call failed; errno() says which
  kNotSupported,     // the backend or kernel cannot do this (EOPNOTSUPP)
  kNotFound,         // file/device/key absent
  kCorrupt,          // persisted state failed validation
  kBusy,             // resource in use (pinned window, owned domain)
  // Allocator handles (seed 002, "Portable Handle Format v1").
  kInvalidHandle,    // forged: version bits, class or slot out of range
  kStaleHandle,      // generation mismatch: the slab was recycled
  kDoubleFree,       // slot already free
  kEpochClosed,      // allocation refused: epoch is CLOSING
  kDomainViolation,  // epoch domain used off its owner thread or not LIFO
  // NVMe ZNS status values (ZNS spec 1.1 §3.4.1) and generic ones devices use.
  kZoneBoundaryError,
  kZoneIsFull,
  kZoneIsReadOnly,
  kZoneIsOffline,
  kZoneInvalidWrite,
  kTooManyActiveZones,
  kTooManyOpenZones,
  kInvalidZoneStateTransition,
  kLbaOutOfRange,
  kDeviceGone,       // the device vanished (ENODEV/ENXIO) mid-run
  // File-backed pages and regions (seeds 003, 004; appended: the enum is additive).
  kOutOfBounds,      // page/sub-page/slot id outside the file or table
  kOutOfSpace,       // the configured maximum (pages, region bytes) is reached
};

// Stable name of a code; for zone codes, the NVMe status name
// ("Zone Boundary Error", "Zone Is Full", ...).
const char* code_name(Code c) noexcept;

class [[nodiscard]] Status {
 public:
  constexpr Status() noexcept = default;
  constexpr Status(Code code, const char* context, int sys_errno = 0) noexcept
      : code_(code), errno_(sys_errno), context_(context) {}

  static constexpr Status ok() noexcept { return Status(); }
  // A status whose context is built at run time ("emu: zone_size 3M is not a
  // multiple of the 4096-byte LBA"): the text is interned in a process-wide,
  // append-only table (deduplicated; mutex-protected; capped at 64 Ki
  // messages / 16 MiB, after which the text is replaced by a fixed notice),
  // so the Status itself stays a trivially-copyable value. For error paths
  // only, never a fast path: it allocates and takes a lock. Thread-safe.
  static Status with_message(Code code, std::string_view message, int sys_errno = 0);
  // with_message() with the Code that from_errno() maps `sys_errno` to.
  static Status from_errno_message(int sys_errno, std::string_view message);

  // Maps errno to a Code (ENOMEM -> kOutOfMemory, EINVAL -> kInvalidArgument,
  // ENOENT -> kNotFound, EOPNOTSUPP -> kNotSupported, ENODEV/ENXIO ->
  // kDeviceGone, else kIoError) and keeps the errno. `context` must be a
  // string with static storage duration (a literal).
  static Status from_errno(int sys_errno, const char* context) noexcept;

  constexpr bool is_ok() const noexcept { return code_ == Code::kOk; }
  constexpr explicit operator bool() const noexcept { return is_ok(); }
  constexpr Code code() const noexcept { return code_; }
  constexpr int sys_errno() const noexcept { return errno_; }
  constexpr const char* context() const noexcept { return context_ ? context_ : ""; }

  // "Zone Is Full (zns emu write)" or "I/O error: No such device (errno 19, pread)".
  std::string to_string() const;

 private:
  Code code_ = Code::kOk;
  int errno_ = 0;
  const char* context_ = nullptr;
};

// Result<T>: a T or a non-ok Status. Small, no exceptions.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                    // NOLINT
  Result(Status s) : v_(s) {}                                  // NOLINT: must be non-ok
  bool is_ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return is_ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  Status status() const noexcept { return is_ok() ? Status::ok() : std::get<1>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace znslab
