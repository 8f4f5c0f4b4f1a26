// zns/io engine, URI parsing and data patterns ([zns-io]).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <linux/io_uring.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "tests/zns_test_util.h"
#include "zns/io/pattern.h"
#include "zns/io/uring_engine.h"
#include "zns/uri.h"

using namespace znslab;
using namespace znslab::zns;

namespace {

struct TempFile {
  test::TempDir dir;
  int fd = -1;
  explicit TempFile(bool direct) {
    std::string p = dir.file("f.bin");
    fd = ::open(p.c_str(), O_RDWR | O_CREAT | (direct ? O_DIRECT : 0), 0644);
    if (fd < 0 && direct) fd = ::open(p.c_str(), O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, 4 << 20) == 0);
  }
  ~TempFile() { ::close(fd); }
};

size_t reap_all(io::UringEngine& e, std::vector<io::EngineCompletion>& out, size_t n) {
  out.resize(n);
  size_t got = 0;
  while (got < n) {
    auto r = e.reap(std::span<io::EngineCompletion>(out.data() + got, n - got), 1);
    REQUIRE(r.is_ok());
    if (*r == 0) break;
    got += *r;
  }
  return got;
}

}  // namespace

TEST_CASE("sizes and device URIs parse; bad ones are refused", "[zns-io]") {
  CHECK(parse_size("64M") == uint64_t(64) << 20);
  CHECK(parse_size("62m") == uint64_t(62) << 20);
  CHECK(parse_size("4K") == 4096u);
  CHECK(parse_size("1G") == uint64_t(1) << 30);
  CHECK(parse_size("512") == 512u);
  CHECK(parse_size("64MiB") == uint64_t(64) << 20);
  CHECK(parse_size("64MB") == uint64_t(64) << 20);
  CHECK(!parse_size(""));
  CHECK(!parse_size("M"));
  CHECK(!parse_size("12Q"));
  CHECK(!parse_size("-1"));
  CHECK(!parse_size("99999999999999999999"));
  CHECK(!parse_size("20000000T"));
  CHECK(format_size(64 << 20) == "64M");
  CHECK(format_size(1000) == "1000");
  CHECK(format_size(3 << 10) == "3K");

  // The message of a refused URI ("" when it parsed).
  auto uri_error = [](std::string_view text) {
    auto r = parse_device_uri(text);
    CHECK(!r);
    return r ? std::string() : std::string(r.status().context());
  };
  auto u = parse_device_uri("emu:/tmp/x.img?zones=4&zone_size=64M");
  REQUIRE(u.is_ok());
  CHECK(u->scheme == "emu");
  CHECK(u->path == "/tmp/x.img");
  CHECK(u->params.at("zones") == "4");
  CHECK(u->params.at("zone_size") == "64M");
  CHECK(uri_error("/tmp/x.img").find("no scheme") != std::string::npos);
  CHECK(uri_error("emu:/x?zones").find("not key=value") != std::string::npos);
  CHECK(uri_error("emu:/x?a=1&a=2").find("twice") != std::string::npos);
  CHECK(!uri_error("emu:?a=1").empty());
}

TEST_CASE("engine splits a request into max_io_bytes pieces and completes it once", "[zns-io]") {
  TempFile f(true);
  io::EngineOptions o;
  o.queue_depth = 4;
  o.max_io_bytes = 16 * 1024;
  auto e = io::UringEngine::create(o);
  REQUIRE(e.is_ok());
  const size_t len = 96 * 1024;  // 6 pieces: more than the SQ holds at once
  auto w = test::pattern_buf(len, 3, 0);
  REQUIRE((*e)->queue({io::OpKind::kWrite, f.fd, false, -1, w.data(), len, 4096, 7}).is_ok());
  std::vector<io::EngineCompletion> c;
  REQUIRE(reap_all(**e, c, 1) == 1);
  CHECK(c[0].user_data == 7);
  CHECK(c[0].res == int64_t(len));
  CHECK((*e)->in_flight() == 0);
  auto r = test::zero_buf(len);
  REQUIRE((*e)->queue({io::OpKind::kRead, f.fd, false, -1, r.data(), len, 4096, 8}).is_ok());
  REQUIRE(reap_all(**e, c, 1) == 1);
  CHECK(c[0].res == int64_t(len));
  CHECK(c[0].prefix == len);
  CHECK(std::memcmp(r.data(), w.data(), len) == 0);
  // A read across the end of the 4 MiB file: the pieces before the short
  // one count as the prefix, and the short piece's bytes too (56K).
  REQUIRE((*e)->queue({io::OpKind::kRead, f.fd, false, -1, r.data(), len, (4 << 20) - 56 * 1024, 10}).is_ok());
  REQUIRE(reap_all(**e, c, 1) == 1);
  CHECK(c[0].prefix == 56 * 1024);
  // A failing piece fails the request with its errno (bad fd: EBADF).
  REQUIRE((*e)->queue({io::OpKind::kRead, 1000, false, -1, r.data(), len, 0, 9}).is_ok());
  REQUIRE(reap_all(**e, c, 1) == 1);
  CHECK(c[0].res == -EBADF);
  CHECK(c[0].prefix == 0);
  CHECK((*e)->check_append(16 * 1024).is_ok());
  o.max_append_bytes = 8192;
  auto e2 = io::UringEngine::create(o);
  REQUIRE(e2.is_ok());
  CHECK((*e2)->check_append(8192).is_ok());
  CHECK((*e2)->check_append(12288).code() == Code::kInvalidArgument);
  CHECK((*e2)->queue({io::OpKind::kRead, f.fd, false, -1, nullptr, 4096, 0, 1}).code() == Code::kInvalidArgument);
}

TEST_CASE("engine refuses more pieces than its completion queue holds", "[zns-io]") {
  TempFile f(false);
  io::EngineOptions o;
  o.queue_depth = 2;
  o.cq_factor = 2;
  auto e = io::UringEngine::create(o);
  REQUIRE(e.is_ok());
  const size_t cap = (*e)->capacity();
  REQUIRE(cap >= 4);
  auto b = test::pattern_buf(4096, 1, 0);
  for (size_t k = 0; k < cap; ++k) {
    REQUIRE((*e)->queue({io::OpKind::kWrite, f.fd, false, -1, b.data(), 4096, k * 4096, k}).is_ok());
  }
  CHECK((*e)->queue({io::OpKind::kWrite, f.fd, false, -1, b.data(), 4096, 0, 99}).code() == Code::kBusy);
  std::vector<io::EngineCompletion> c;
  CHECK(reap_all(**e, c, cap) == cap);
  for (auto& x : c) CHECK(x.res == 4096);
  CHECK((*e)->in_flight() == 0);
  CHECK(io::UringEngine::create(io::EngineOptions{0}).status().code() == Code::kInvalidArgument);
}

TEST_CASE("engine: registered files and buffers, SQPOLL, raw 128-byte SQEs", "[zns-io]") {
  TempFile f(true);
  const size_t len = 32 * 1024;
  auto b = test::pattern_buf(len, 4, 0);
  {
    auto e = io::UringEngine::create(io::EngineOptions{});
    REQUIRE(e.is_ok());
    int fds[] = {f.fd};
    REQUIRE((*e)->register_files(fds).is_ok());
    iovec iov{b.data(), len};
    REQUIRE((*e)->register_buffers(std::span<const iovec>(&iov, 1)).is_ok());
    REQUIRE((*e)->queue({io::OpKind::kWrite, 0, true, 0, b.data(), len, 0, 1}).is_ok());
    std::vector<io::EngineCompletion> c;
    REQUIRE(reap_all(**e, c, 1) == 1);
    CHECK(c[0].res == int64_t(len));
  }
  {
    io::EngineOptions o;
    o.sqpoll = true;
    auto e = io::UringEngine::create(o);
    if (!e) {
      WARN("SQPOLL not available: " << e.status().to_string());
    } else {
      auto r = test::zero_buf(len);
      REQUIRE((*e)->queue({io::OpKind::kRead, f.fd, false, -1, r.data(), len, 0, 2}).is_ok());
      std::vector<io::EngineCompletion> c;
      REQUIRE(reap_all(**e, c, 1) == 1);
      CHECK(c[0].res == int64_t(len));
      CHECK(std::memcmp(r.data(), b.data(), len) == 0);
    }
  }
  io::EngineOptions o;
  o.big_entries = true;
  auto e = io::UringEngine::create(o);
  if (!e) ZNSLAB_SKIP("IORING_SETUP_SQE128|CQE32 unsupported: " + e.status().to_string());
  auto prep = [](io_uring_sqe* sqe, void*) { sqe->opcode = IORING_OP_NOP; };
  REQUIRE((*e)->queue_raw(prep, nullptr, 55).is_ok());
  std::vector<io::EngineCompletion> c;
  REQUIRE(reap_all(**e, c, 1) == 1);
  CHECK(c[0].user_data == 55);
  CHECK(c[0].res == 0);
  CHECK(c[0].big[0] == 0);
}

TEST_CASE("data patterns depend on seed and absolute offset only", "[zns-io]") {
  std::vector<uint8_t> a(8192), b(4096);
  io::fill_pattern(a.data(), a.size(), 9, 1 << 20);
  io::fill_pattern(b.data(), b.size(), 9, (1 << 20) + 4096);
  CHECK(std::memcmp(a.data() + 4096, b.data(), 4096) == 0);
  CHECK(io::verify_pattern(a.data(), a.size(), 9, 1 << 20) == a.size());
  CHECK(io::verify_pattern(a.data(), a.size(), 10, 1 << 20) == 0);
  a[5000] ^= 1;
  CHECK(io::verify_pattern(a.data(), a.size(), 9, 1 << 20) == 5000);
  auto ab = io::AlignedBuffer::allocate(100, 4096);
  REQUIRE(ab.is_ok());
  CHECK(ab->size() == 4096);
  CHECK(reinterpret_cast<uintptr_t>(ab->data()) % 4096 == 0);
  CHECK(io::AlignedBuffer::allocate(0).status().code() == Code::kInvalidArgument);
  CHECK(io::AlignedBuffer::allocate(10, 3000).status().code() == Code::kInvalidArgument);
}
