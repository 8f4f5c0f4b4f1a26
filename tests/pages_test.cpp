#include <cstring>

#include <catch2/catch.hpp>

#include "src/common/crc32c.h"
#include "src/pages/pages.h"

using namespace znslab;

TEST_CASE("reservation is aligned and decommit returns resident pages", "[pages]") {
  const size_t huge = pages::huge_page_size();
  auto r = pages::Reservation::reserve(8 * huge, huge);
  REQUIRE(r.is_ok());
  REQUIRE(reinterpret_cast<uintptr_t>(r->base()) % huge == 0);
  REQUIRE(r->size() == 8 * huge);
  const uint64_t before = pages::rss_bytes();
  std::memset(r->base(), 0xAB, 4 * huge);
  const uint64_t touched = pages::rss_bytes();
  CHECK(touched >= before + 3 * huge);
  REQUIRE(pages::decommit(r->base(), 4 * huge).is_ok());
  const uint64_t after = pages::rss_bytes();
  CHECK(after + 3 * huge <= touched);
  // The range stays mapped and reads back as zeros.
  CHECK(r->base()[12345] == 0);
}

TEST_CASE("pages calls reject bad ranges with kInvalidArgument", "[pages]") {
  CHECK(pages::Reservation::reserve(0, 4096).status().code() == Code::kInvalidArgument);
  CHECK(pages::Reservation::reserve(4096, 3000).status().code() == Code::kInvalidArgument);
  alignas(4096) static char buf[8192];
  CHECK(pages::decommit(buf + 1, 4096).code() == Code::kInvalidArgument);
  CHECK(pages::map_file(-1, 0, 4096, false).status().code() == Code::kInvalidArgument);
  CHECK(pages::truncate_file(-1, 0).code() == Code::kInvalidArgument);
}

TEST_CASE("Status carries errno and the NVMe status name", "[common]") {
  Status s = Status::from_errno(ENOMEM, "test");
  CHECK(s.code() == Code::kOutOfMemory);
  CHECK(s.sys_errno() == ENOMEM);
  CHECK(s.to_string().find("errno 12") != std::string::npos);
  CHECK(std::string(code_name(Code::kZoneIsFull)) == "Zone Is Full");
  CHECK(Status().is_ok());
}

TEST_CASE("crc32c gives the standard check value and extends across buffers", "[common]") {
  const char text[] = "123456789";
  CHECK(crc32c(text, 9) == 0xE3069283u);
  CHECK(crc32c(text, 0) == 0u);
  CHECK(crc32c_extend(crc32c(text, 4), text + 4, 5) == 0xE3069283u);
  char flipped[9];
  std::memcpy(flipped, text, 9);
  flipped[3] ^= 0x10;
  CHECK(crc32c(flipped, 9) != 0xE3069283u);
}
