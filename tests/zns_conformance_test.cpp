// ZNS conformance suite, part 1: data path, state transitions, limits.
// Every body runs on a fresh emulator and on ZNS_TEST_DEV when set
// (ZNS_CONFORMANCE in tests/zns_test_util.h). Expected statuses follow
// NVMe ZNS 1.1 as QEMU hw/nvme implements it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <thread>
#include <vector>

#include "tests/zns_test_util.h"

using namespace znslab;
using namespace znslab::zns;
using namespace znslab::zns::test;

namespace {


void write_ok(ZonedDevice& dev, uint32_t z, uint64_t off, size_t len, uint64_t seed) {
  const uint64_t start = uint64_t(z) * dev.info().zone_size;
  auto b = pattern_buf(len, seed, start + off);
  Status s = dev.write(z, off, b.data(), len);
  INFO("write zone " << z << " offset " << off << " len " << len << ": " << s.to_string());
  REQUIRE(s.is_ok());
}

void verify(ZonedDevice& dev, uint32_t z, uint64_t off, size_t len, uint64_t seed) {
  const uint64_t start = uint64_t(z) * dev.info().zone_size;
  auto b = zero_buf(len);
  Status s = dev.read(z, off, b.data(), len);
  INFO("read zone " << z << " offset " << off << ": " << s.to_string());
  REQUIRE(s.is_ok());
  REQUIRE(io::verify_pattern(b.data(), len, seed, start + off) == len);
}

void require_zeros(ZonedDevice& dev, uint32_t z, uint64_t off, size_t len) {
  auto b = pattern_buf(len, 999, 0);  // pre-filled: zeros must come from the device
  Status s = dev.read(z, off, b.data(), len);
  INFO("read zone " << z << " offset " << off << ": " << s.to_string());
  REQUIRE(s.is_ok());
  REQUIRE(all_zero(b.data(), len));
}

// ---- bodies -------------------------------------------------------------------

void initial_report(Dut& d) {
  auto dev = d.open();
  const auto& i = dev->info();
  REQUIRE(i.zone_count > 0);
  REQUIRE(i.zone_capacity <= i.zone_size);
  REQUIRE(i.zone_size % i.lba_bytes == 0);
  auto r = dev->report_zones();
  REQUIRE(r.is_ok());
  REQUIRE(r->size() == i.zone_count);
  for (uint32_t z = 0; z < std::min<uint32_t>(i.zone_count, 8); ++z) {
    const Zone& zz = (*r)[z];
    CHECK(zz.index == z);
    CHECK(zz.start == uint64_t(z) * i.zone_size);
    CHECK(zz.capacity == i.zone_capacity);
    CHECK(zz.state == ZoneState::kEmpty);
    CHECK(zz.write_pointer == zz.start);
  }
  auto tail = dev->report_zones(i.zone_count - 1, 10);
  REQUIRE(tail.is_ok());
  CHECK(tail->size() == 1);
  CHECK(dev->report_zones(i.zone_count, 1).status().code() == Code::kLbaOutOfRange);
}

void write_read(Dut& d) {
  auto dev = d.open();
  const auto& i = dev->info();
  const size_t lba = i.lba_bytes, len = 16 * lba;
  write_ok(*dev, 0, 0, len, 11);
  Zone z = zone_of(*dev, 0);
  CHECK(z.state == ZoneState::kImplicitOpen);
  CHECK(z.write_pointer == z.start + len);
  // Not at the write pointer: behind it and beyond it.
  auto b = pattern_buf(lba, 1, 0);
  CHECK(zone_err_is(*dev, dev->write(0, 0, b.data(), lba), Code::kZoneInvalidWrite));
  CHECK(zone_err_is(*dev, dev->write(0, len + lba, b.data(), lba), Code::kZoneInvalidWrite));
  CHECK(zone_of(*dev, 0).write_pointer == z.start + len);
  // Read-after-write, then past the write pointer: zeros.
  verify(*dev, 0, 0, len, 11);
  require_zeros(*dev, 0, len, 8 * lba);
  {
    auto r = zero_buf(2 * len);
    REQUIRE_OK(dev->read(0, 0, r.data(), 2 * len));
    CHECK(io::verify_pattern(r.data(), len, 11, 0) == len);
    CHECK(all_zero(r.data() + len, len));
  }
  // A write larger than the device's max I/O size is split and lands whole.
  const size_t big = size_t(std::max<uint64_t>(i.max_io_bytes, 64 * 1024) * 3);
  if (len + big <= i.zone_capacity) {
    write_ok(*dev, 0, len, big, 11);
    verify(*dev, 0, 0, len + big, 11);
    CHECK(zone_of(*dev, 0).write_pointer == z.start + len + big);
  }
  // Between capacity and zone size: readable, zeros.
  if (i.zone_capacity + lba <= i.zone_size) require_zeros(*dev, 0, i.zone_capacity, lba);
  // A read crossing the zone end (the block layer allows it on zbd:).
  if (!backend_is_zbd(*dev)) {
    auto r = zero_buf(2 * lba);
    CHECK(dev->read(0, i.zone_size - lba, r.data(), 2 * lba).code() == Code::kZoneBoundaryError);
  }
}

void boundary_and_full(Dut& d) {
  auto dev = d.open();
  const auto& i = dev->info();
  const size_t lba = i.lba_bytes;
  const uint64_t cap = i.zone_capacity;
  // Fill up to one block short of the capacity.
  for (uint64_t off = 0; off < cap - lba;) {
    size_t n = size_t(std::min<uint64_t>(256 * 1024, cap - lba - off));
    write_ok(*dev, 1, off, n, 21);
    off += n;
  }
  auto b = pattern_buf(2 * lba, 21, uint64_t(1) * i.zone_size + cap - lba);
  CHECK(zone_err_is(*dev, dev->write(1, cap - lba, b.data(), 2 * lba), Code::kZoneBoundaryError));
  CHECK(zone_of(*dev, 1).state == ZoneState::kImplicitOpen);
  REQUIRE_OK(dev->write(1, cap - lba, b.data(), lba));
  Zone z = zone_of(*dev, 1);
  CHECK(z.state == ZoneState::kFull);
  CHECK(z.write_pointer == z.start + cap);
  CHECK(zone_err_is(*dev, dev->write(1, cap, b.data(), lba), Code::kZoneIsFull));
  auto a = dev->append(1, b.data(), lba);
  CHECK(zone_err_is(*dev, a.status(), Code::kZoneIsFull));
  verify(*dev, 1, 0, size_t(cap), 21);
}

void state_transitions(Dut& d) {
  auto dev = d.open();
  const size_t lba = dev->info().lba_bytes;
  const uint32_t z = 2;
  auto st = [&] { return zone_of(*dev, z).state; };
  auto b = pattern_buf(lba, 3, uint64_t(z) * dev->info().zone_size);
  // Empty: close is invalid, open -> Explicitly Opened (twice is fine).
  CHECK(zone_err_is(*dev, dev->close(z), Code::kInvalidZoneStateTransition));
  REQUIRE_OK(dev->open(z));
  CHECK(st() == ZoneState::kExplicitOpen);
  REQUIRE_OK(dev->open(z));
  CHECK(st() == ZoneState::kExplicitOpen);
  // Explicitly Opened -> Closed, even with nothing written (QEMU nvme_zrm_close).
  REQUIRE_OK(dev->close(z));
  if (d.emulated) CHECK(st() == ZoneState::kClosed);
  else CHECK((st() == ZoneState::kClosed || st() == ZoneState::kEmpty));
  // Closed -> Closed is fine (null_blk turned the unwritten zone EMPTY instead).
  if (st() == ZoneState::kClosed) REQUIRE_OK(dev->close(z));
  // Closed/Empty -> write -> Implicitly Opened -> open -> Explicitly Opened.
  REQUIRE_OK(dev->write(z, 0, b.data(), lba));
  CHECK(st() == ZoneState::kImplicitOpen);
  REQUIRE_OK(dev->open(z));
  CHECK(st() == ZoneState::kExplicitOpen);
  // A write keeps an explicitly opened zone explicit.
  auto b2 = pattern_buf(lba, 3, uint64_t(z) * dev->info().zone_size + lba);
  REQUIRE_OK(dev->write(z, lba, b2.data(), lba));
  CHECK(st() == ZoneState::kExplicitOpen);
  REQUIRE_OK(dev->close(z));
  CHECK(st() == ZoneState::kClosed);
  CHECK(zone_of(*dev, z).written() == 2 * lba);
  // Closed -> finish -> Full (write pointer at the capacity); finish again is fine.
  REQUIRE_OK(dev->finish(z));
  Zone zz = zone_of(*dev, z);
  CHECK(zz.state == ZoneState::kFull);
  CHECK(zz.write_pointer == zz.start + zz.capacity);
  REQUIRE_OK(dev->finish(z));
  CHECK(zone_err_is(*dev, dev->open(z), Code::kInvalidZoneStateTransition));
  CHECK(zone_err_is(*dev, dev->close(z), Code::kInvalidZoneStateTransition));
  verify(*dev, z, 0, 2 * lba, 3);
  // Full -> reset -> Empty; reset of Empty is fine.
  REQUIRE_OK(dev->reset(z));
  zz = zone_of(*dev, z);
  CHECK(zz.state == ZoneState::kEmpty);
  CHECK(zz.write_pointer == zz.start);
  REQUIRE_OK(dev->reset(z));
  // Empty -> finish -> Full (QEMU: no resources needed).
  REQUIRE_OK(dev->finish(z));
  CHECK(st() == ZoneState::kFull);
  REQUIRE_OK(dev->reset(z));
  // Implicitly Opened -> finish / reset / close.
  REQUIRE_OK(dev->write(z, 0, b.data(), lba));
  REQUIRE_OK(dev->finish(z));
  CHECK(st() == ZoneState::kFull);
  REQUIRE_OK(dev->reset(z));
  REQUIRE_OK(dev->write(z, 0, b.data(), lba));
  REQUIRE_OK(dev->reset(z));
  CHECK(st() == ZoneState::kEmpty);
  // Explicitly Opened -> reset / finish.
  REQUIRE_OK(dev->open(z));
  REQUIRE_OK(dev->reset(z));
  CHECK(st() == ZoneState::kEmpty);
  REQUIRE_OK(dev->open(z));
  REQUIRE_OK(dev->finish(z));
  CHECK(st() == ZoneState::kFull);
  REQUIRE_OK(dev->reset(z));
  // Zone index past the end.
  const uint32_t past = dev->info().zone_count;
  CHECK(dev->open(past).code() == Code::kLbaOutOfRange);
  CHECK(dev->reset(past).code() == Code::kLbaOutOfRange);
  CHECK(dev->write(past, 0, b.data(), lba).code() == Code::kLbaOutOfRange);
}

void open_limits(Dut& d) {
  auto dev = d.open();
  const auto& i = dev->info();
  const uint32_t mo = i.max_open, ma = i.max_active;
  if (mo == 0 || mo + 2 > i.zone_count || (ma != 0 && ma < mo + 1)) {
    ZNSLAB_SKIP("device has no usable open limit (max_open=" + std::to_string(mo) +
                ", max_active=" + std::to_string(ma) + ")");
  }
  const size_t lba = i.lba_bytes;
  auto one = [&](uint32_t z) {
    auto b = pattern_buf(lba, 5, uint64_t(z) * i.zone_size + zone_of(*dev, z).written());
    return dev->write(z, zone_of(*dev, z).written(), b.data(), lba);
  };
  auto st = [&](uint32_t z) { return zone_of(*dev, z).state; };
  // Auto-transition: opening one more zone implicitly closes the zone that
  // was implicitly opened first.
  for (uint32_t z = 0; z < mo; ++z) REQUIRE_OK(one(z));
  for (uint32_t z = 0; z < mo; ++z) CHECK(st(z) == ZoneState::kImplicitOpen);
  REQUIRE_OK(one(mo));
  CHECK(st(0) == ZoneState::kClosed);
  CHECK(st(mo) == ZoneState::kImplicitOpen);
  REQUIRE_OK(one(0));  // reopening zone 0 closes zone 1 (now the oldest)
  CHECK(st(0) == ZoneState::kImplicitOpen);
  CHECK(st(1) == ZoneState::kClosed);
  for (uint32_t z = 0; z <= mo; ++z) REQUIRE_OK(dev->reset(z));
  // Every open zone explicit: Too Many Open Zones, for writes and opens.
  for (uint32_t z = 0; z < mo; ++z) REQUIRE_OK(dev->open(z));
  CHECK(zone_err_is(*dev, one(mo), Code::kTooManyOpenZones));
  CHECK(zone_err_is(*dev, dev->open(mo), Code::kTooManyOpenZones));
  CHECK(st(mo) == ZoneState::kEmpty);
  REQUIRE_OK(dev->close(0));
  REQUIRE_OK(one(mo));
  CHECK(st(mo) == ZoneState::kImplicitOpen);
  // One implicit among explicit ones: it is the one closed. (Reset zone 0
  // first: a Closed zone still holds an active resource.)
  REQUIRE_OK(dev->reset(0));
  REQUIRE_OK(one(mo + 1 < i.zone_count ? mo + 1 : 0));
  CHECK(st(mo) == ZoneState::kClosed);
  for (uint32_t z = 0; z < std::min<uint32_t>(i.zone_count, mo + 2); ++z) REQUIRE_OK(dev->reset(z));
}

void active_limits(Dut& d) {
  auto dev = d.open();
  const auto& i = dev->info();
  const uint32_t mo = i.max_open, ma = i.max_active;
  if (ma == 0 || mo == 0 || ma <= mo || ma + 2 > i.zone_count) {
    ZNSLAB_SKIP("device has no usable active limit above the open limit (max_open=" +
                std::to_string(mo) + ", max_active=" + std::to_string(ma) + ")");
  }
  const size_t lba = i.lba_bytes;
  auto one = [&](uint32_t z) {
    auto b = pattern_buf(lba, 6, uint64_t(z) * i.zone_size + zone_of(*dev, z).written());
    return dev->write(z, zone_of(*dev, z).written(), b.data(), lba);
  };
  auto st = [&](uint32_t z) { return zone_of(*dev, z).state; };
  for (uint32_t z = 0; z < ma; ++z) REQUIRE_OK(one(z));  // closed + open = ma active
  CHECK(zone_err_is(*dev, one(ma), Code::kTooManyActiveZones));
  CHECK(zone_err_is(*dev, dev->open(ma), Code::kTooManyActiveZones));
  CHECK(st(ma) == ZoneState::kEmpty);
  // Opening a Closed zone needs no new active resource.
  REQUIRE(st(0) == ZoneState::kClosed);
  REQUIRE_OK(dev->open(0));
  CHECK(st(0) == ZoneState::kExplicitOpen);
  // Finishing an Empty zone needs none either; finishing an active zone frees one.
  REQUIRE_OK(dev->finish(ma + 1));
  CHECK(st(ma + 1) == ZoneState::kFull);
  REQUIRE_OK(dev->finish(1));
  REQUIRE_OK(one(ma));
  CHECK(st(ma) == ZoneState::kImplicitOpen);
  for (uint32_t z = 0; z < ma + 2; ++z) REQUIRE_OK(dev->reset(z));
}

void zone_append(Dut& d) {
  auto dev = d.open();
  const auto& i = dev->info();
  if (i.zone_append_max_bytes == 0) ZNSLAB_SKIP("device reports no zone append support");
  const size_t lba = i.lba_bytes;
  const size_t n = std::min<size_t>(2 * lba, size_t(i.zone_append_max_bytes));
  const uint32_t z = 3;
  // Sequential appends land in order at the write pointer.
  for (int k = 0; k < 4; ++k) {
    auto b = pattern_buf(n, 100 + k, 0);
    auto off = dev->append(z, b.data(), n);
    REQUIRE(off.is_ok());
    CHECK(*off == uint64_t(k) * n);
  }
  CHECK(zone_of(*dev, z).state == ZoneState::kImplicitOpen);
  for (int k = 0; k < 4; ++k) {
    auto r = zero_buf(n);
    REQUIRE_OK(dev->read(z, uint64_t(k) * n, r.data(), n));
    CHECK(io::verify_pattern(r.data(), n, 100 + k, 0) == n);
  }
  // Larger than the zone append size limit: Invalid Field.
  if (d.emulated && i.zone_append_max_bytes + lba <= i.zone_capacity) {
    auto b = zero_buf(i.zone_append_max_bytes + lba);
    CHECK(dev->append(z, b.data(), i.zone_append_max_bytes + lba).status().code() == Code::kInvalidArgument);
  }
  // Concurrent appends to one zone: all succeed at distinct offsets, data intact.
  const uint32_t zc = 4;
  const int threads = 4, per = 8;
  std::vector<std::vector<std::pair<uint64_t, uint64_t>>> got(threads);  // (offset, seed)
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (int k = 0; k < per; ++k) {
        uint64_t seed = 1000 + uint64_t(t) * 100 + uint64_t(k);
        auto b = io::AlignedBuffer::allocate(lba, 4096);
        if (!b) { failures++; continue; }
        io::fill_pattern(b->data(), lba, seed, 0);
        auto off = dev->append(zc, b->data(), lba);
        if (!off) { failures++; continue; }
        got[t].push_back({*off, seed});
      }
    });
  }
  for (auto& th : ts) th.join();
  REQUIRE(failures.load() == 0);
  std::set<uint64_t> offs;
  for (auto& v : got)
    for (auto& [off, seed] : v) {
      offs.insert(off);
      auto r = zero_buf(lba);
      REQUIRE_OK(dev->read(zc, off, r.data(), lba));
      CHECK(io::verify_pattern(r.data(), lba, seed, 0) == lba);
    }
  CHECK(offs.size() == size_t(threads * per));
  CHECK(*offs.rbegin() == uint64_t(threads * per - 1) * lba);
  CHECK(zone_of(*dev, zc).written() == uint64_t(threads * per) * lba);
  // Asynchronous appends in one batch: distinct offsets covering the range.
  const uint32_t za = 5;
  const int q = 16;
  std::vector<io::AlignedBuffer> bufs;
  std::vector<IoRequest> reqs;
  for (int k = 0; k < q; ++k) {
    bufs.push_back(pattern_buf(lba, 500 + k, 0));
    reqs.push_back(IoRequest{IoOp::kAppend, za, 0, bufs.back().data(), lba, uint64_t(k)});
  }
  REQUIRE_OK(dev->submit(reqs));
  std::vector<IoCompletion> cs(q);
  size_t done = 0;
  while (done < size_t(q)) {
    auto r = dev->reap(std::span<IoCompletion>(cs.data() + done, q - done), 1);
    REQUIRE(r.is_ok());
    REQUIRE(*r > 0);
    done += *r;
  }
  std::set<uint64_t> aoffs;
  for (auto& c : cs) {
    INFO(c.status.to_string());
    REQUIRE(c.status.is_ok());
    CHECK(c.bytes == lba);
    aoffs.insert(c.offset);
    auto r = zero_buf(lba);
    REQUIRE_OK(dev->read(za, c.offset, r.data(), lba));
    CHECK(io::verify_pattern(r.data(), lba, 500 + c.user_data, 0) == lba);
  }
  CHECK(aoffs.size() == size_t(q));
  CHECK(*aoffs.rbegin() == uint64_t(q - 1) * lba);
  for (uint32_t zz : {z, zc, za}) REQUIRE_OK(dev->reset(zz));
}

void reset_and_finish(Dut& d) {
  auto dev = d.open();
  const size_t lba = dev->info().lba_bytes, len = 16 * lba;
  const uint32_t z = 6;
  write_ok(*dev, z, 0, len, 61);
  REQUIRE_OK(dev->finish(z));
  verify(*dev, z, 0, len, 61);
  require_zeros(*dev, z, len, len);  // finished, never written: zeros
  auto b = pattern_buf(lba, 61, 0);
  CHECK(zone_err_is(*dev, dev->write(z, len, b.data(), lba), Code::kZoneIsFull));
  REQUIRE_OK(dev->reset(z));
  require_zeros(*dev, z, 0, len);  // reset discards the data
  write_ok(*dev, z, 0, len, 62);
  verify(*dev, z, 0, len, 62);
  REQUIRE_OK(dev->reset(z));
}

void async_io(Dut& d) {
  auto dev = d.open();
  const auto& i = dev->info();
  const size_t lba = i.lba_bytes, chunk = 16 * lba;
  const int per_zone = 4;
  const uint32_t zones[] = {0, 1, 2};
  std::vector<io::AlignedBuffer> bufs;
  std::vector<IoRequest> reqs;
  for (uint32_t z : zones)
    for (int k = 0; k < per_zone; ++k) {
      uint64_t off = uint64_t(k) * chunk;
      bufs.push_back(pattern_buf(chunk, 71, uint64_t(z) * i.zone_size + off));
      reqs.push_back(IoRequest{IoOp::kWrite, z, off, bufs.back().data(), chunk, z * 100 + uint64_t(k)});
    }
  REQUIRE_OK(dev->submit(reqs));
  std::vector<IoCompletion> cs(reqs.size());
  size_t done = 0;
  while (done < reqs.size()) {
    auto r = dev->reap(std::span<IoCompletion>(cs.data() + done, cs.size() - done), 1);
    REQUIRE(r.is_ok());
    REQUIRE(*r > 0);
    done += *r;
  }
  for (auto& c : cs) {
    INFO(c.user_data << ": " << c.status.to_string());
    CHECK(c.status.is_ok());
    CHECK(c.bytes == chunk);
    CHECK(c.offset == (c.user_data % 100) * chunk);
    CHECK(c.latency_ns > 0);
  }
  for (uint32_t z : zones) verify(*dev, z, 0, per_zone * chunk, 71);
  // A zone error arrives as that request's completion; the others proceed.
  auto good = pattern_buf(lba, 71, uint64_t(0) * i.zone_size + per_zone * chunk);
  auto bad = pattern_buf(lba, 71, 0);
  IoRequest two[] = {{IoOp::kWrite, 0, per_zone * chunk, good.data(), lba, 1},
                     {IoOp::kWrite, 1, 0, bad.data(), lba, 2}};
  REQUIRE_OK(dev->submit(two));
  IoCompletion c2[2];
  size_t got = 0;
  while (got < 2) {
    auto r = dev->reap(std::span<IoCompletion>(c2 + got, 2 - got), 1);
    REQUIRE(r.is_ok());
    REQUIRE(*r > 0);
    got += *r;
  }
  for (auto& c : c2) {
    if (c.user_data == 1) CHECK(c.status.is_ok());
    else CHECK(zone_err_is(*dev, c.status, Code::kZoneInvalidWrite));
  }
  // An argument error refuses the whole batch: nothing is written.
  const uint64_t wp_before = zone_of(*dev, 2).write_pointer;
  IoRequest mixed[] = {{IoOp::kWrite, 2, per_zone * chunk, good.data(), lba, 3},
                       {IoOp::kWrite, 2, per_zone * chunk + lba, good.data(), lba / 2, 4}};
  CHECK(dev->submit(mixed).code() == Code::kInvalidArgument);
  CHECK(zone_of(*dev, 2).write_pointer == wp_before);
  // Asynchronous reads, including past the write pointer (zeros).
  auto r1 = zero_buf(chunk), r2 = pattern_buf(chunk, 5, 0);
  IoRequest rd[] = {{IoOp::kRead, 1, 0, r1.data(), chunk, 10},
                    {IoOp::kRead, 1, per_zone * chunk, r2.data(), chunk, 11}};
  REQUIRE_OK(dev->submit(rd));
  got = 0;
  while (got < 2) {
    auto r = dev->reap(std::span<IoCompletion>(c2 + got, 2 - got), 1);
    REQUIRE(r.is_ok());
    REQUIRE(*r > 0);
    got += *r;
  }
  CHECK(c2[0].status.is_ok());
  CHECK(c2[1].status.is_ok());
  CHECK(io::verify_pattern(r1.data(), chunk, 71, uint64_t(1) * i.zone_size) == chunk);
  CHECK(all_zero(r2.data(), chunk));
  // Nothing in flight: reap does not block.
  auto none = dev->reap(std::span<IoCompletion>(c2, 2), 1);
  REQUIRE(none.is_ok());
  CHECK(*none == 0);
  for (uint32_t z : zones) REQUIRE_OK(dev->reset(z));
}

}  // namespace

ZNS_CONFORMANCE("initial report and geometry", initial_report)
ZNS_CONFORMANCE("write at the write pointer, read-after-write, zeros past it", write_read)
ZNS_CONFORMANCE("zone boundary error, zone becomes full, zone is full", boundary_and_full)
ZNS_CONFORMANCE("every zone state transition", state_transitions)
ZNS_CONFORMANCE("open limit: auto-transition and too many open zones", open_limits)
ZNS_CONFORMANCE("active limit: too many active zones", active_limits)
ZNS_CONFORMANCE("zone append: order, ZASL, concurrency, async", zone_append)
ZNS_CONFORMANCE("reset and finish semantics", reset_and_finish)
ZNS_CONFORMANCE("asynchronous submit/reap", async_io)
