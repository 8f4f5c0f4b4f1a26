// `znslab zone ACTION --device URI [...]`: one zone command per process, so
// the emulator's persistence is exercised between calls.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "harness/cli.h"
#include "harness/registry.h"
#include "zns/io/pattern.h"
#include "zns/io/uring_engine.h"
#include "zns/uri.h"
#include "zns/zoned_device.h"

namespace znslab::harness {
namespace {

const char* kZoneIntro =
    "One zone command per process (the emulator's persistence is exercised\n"
    "between calls). ACTION:\n"
    "  info         device geometry and limits\n"
    "  report       per zone: index, start, capacity, write pointer, state\n"
    "               (all zones, or only --zone N)\n"
    "  open         explicit open of --zone N        close   close --zone N\n"
    "  finish       finish --zone N (-> FULL)        reset   reset --zone N (-> EMPTY)\n"
    "  write        write --size bytes at --offset (must equal the write pointer)\n"
    "  append       zone append of --size bytes; prints the offset it landed at\n"
    "  read         read --size bytes at --offset; with --pattern SEED verifies them\n"
    "  power-cycle  device reset: open zones become CLOSED (EMPTY if unwritten), as QEMU\n"
    "               does at shutdown (emu: only)";

const char* kZoneFooter =
    "Offsets and sizes must be multiples of the logical block size.\n"
    "Exit status: 0 ok, 1 failure (I/O, verification), 2 bad arguments,\n"
    "3 zone error (prints the NVMe status name, e.g. \"Zone Is Full\").";

struct Args {
  std::string action, device;
  int64_t zone = -1;
  uint64_t offset = 0;
  std::optional<uint64_t> size;
  std::optional<uint64_t> pattern;
  bool json = false;
};

// Parses argv with CLI11; returns false when --help was printed.
bool parse_args(int argc, char** argv, Args* a) {
  std::string offset, size, pattern;
  CLI::App app{kZoneIntro, "znslab zone"};
  app.add_option("ACTION", a->action, "info, report, open, close, finish, reset, write, append, read, power-cycle")
      ->required()
      ->check(CLI::IsMember(
          {"info", "report", "open", "close", "finish", "reset", "write", "append", "read", "power-cycle"}));
  app.add_option("--device", a->device,
                 "emu:PATH?zones=N&zone_size=64M&zone_cap=62M&max_open=14&max_active=14&lba=4096 "
                 "(created if PATH does not exist), zbd:/dev/nvmeXnY, nvme:/dev/ngXnY")
      ->required();
  app.add_option("--zone", a->zone, "zone index (0-based)")->check(CLI::NonNegativeNumber);
  app.add_option("--offset", offset, "zone-relative offset in bytes (64K, 1M accepted; default 0)")
      ->check(kByteSize);
  app.add_option("--size", size, "bytes to write/append/read (default: one logical block)")->check(kByteSize);
  app.add_option("--pattern", pattern,
                 "data written is a function of SEED and the absolute device offset (default seed 1); "
                 "read --pattern SEED verifies it");
  app.add_flag("--json", a->json, "machine-readable output on stdout");
  app.footer(kZoneFooter);
  if (!cli_parse(app, argc, argv)) return false;
  if (!offset.empty()) a->offset = byte_size_value(offset);
  if (!size.empty()) a->size = byte_size_value(size);
  if (!pattern.empty()) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long n = std::strtoull(pattern.c_str(), &end, 0);
    if (*end || errno) throw UsageError("--pattern " + pattern + ": not an integer seed");
    a->pattern = n;
  }
  return true;
}

// A device status from a zone operation: exit 3 (bad arguments: exit 2).
[[noreturn]] void zone_fail(const Status& s, const std::string& what) {
  if (s.code() == Code::kInvalidArgument) throw UsageError(what + ": " + s.to_string());
  throw ZoneError(what + ": " + s.to_string());
}

nlohmann::json zone_json(const zns::Zone& z) {
  return {{"index", z.index}, {"start", z.start}, {"capacity", z.capacity},
          {"write_pointer", z.write_pointer}, {"written", z.written()},
          {"state", zns::zone_state_name(z.state)}};
}

nlohmann::json info_json(const zns::DeviceInfo& i) {
  return {{"backend", i.backend}, {"path", i.path}, {"model", i.model},
          {"zone_count", i.zone_count}, {"zone_size", i.zone_size},
          {"zone_capacity", i.zone_capacity}, {"lba_bytes", i.lba_bytes},
          {"max_open", i.max_open}, {"max_active", i.max_active},
          {"zone_append_max_bytes", i.zone_append_max_bytes}, {"max_io_bytes", i.max_io_bytes},
          {"capacity_bytes", i.capacity_bytes()}};
}

int zone_main(int argc, char** argv) {
  Args a;
  if (!parse_args(argc, argv, &a)) return 0;
  auto dev_r = zns::open_device(a.device);
  if (!dev_r) {
    std::string msg = "cannot open device " + a.device + ": " + dev_r.status().to_string();
    if (dev_r.status().code() == Code::kInvalidArgument) throw UsageError(msg);
    throw RunError(msg);
  }
  zns::ZonedDevice& dev = **dev_r;
  const zns::DeviceInfo& info = dev.info();
  const std::string& act = a.action;

  if (act == "info") {
    auto j = info_json(info);
    if (a.json) {
      std::printf("%s\n", j.dump(2).c_str());
    } else {
      for (auto it = j.begin(); it != j.end(); ++it) {
        std::printf("%-22s %s\n", it.key().c_str(),
                    it->is_string() ? it->get<std::string>().c_str() : it->dump().c_str());
      }
    }
    return 0;
  }
  if (act == "power-cycle") {
    if (auto s = dev.power_cycle(); !s) zone_fail(s, "power-cycle");
    if (a.json) std::printf("{\"power_cycle\": \"ok\"}\n");
    else std::printf("power-cycle: open zones closed\n");
    return 0;
  }

  const bool needs_zone = act != "report";
  if (needs_zone && a.zone < 0) throw UsageError(act + " needs --zone N");
  if (a.zone >= 0 && uint64_t(a.zone) >= info.zone_count) {
    throw UsageError("--zone " + std::to_string(a.zone) + ": the device has zones 0.." +
                     std::to_string(info.zone_count - 1));
  }
  const uint32_t zone = uint32_t(a.zone < 0 ? 0 : a.zone);

  if (act == "report") {
    uint32_t first = a.zone < 0 ? 0 : zone, count = a.zone < 0 ? UINT32_MAX : 1;
    auto zr = dev.report_zones(first, count);
    if (!zr) zone_fail(zr.status(), "report");
    if (a.json) {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& z : *zr) arr.push_back(zone_json(z));
      std::printf("%s\n", nlohmann::json{{"device", info_json(info)}, {"zones", arr}}.dump(2).c_str());
    } else {
      std::printf("%6s %14s %12s %14s %12s  %s\n", "zone", "start", "capacity", "write_pointer", "written", "state");
      for (const auto& z : *zr) {
        std::printf("%6u %14" PRIu64 " %12" PRIu64 " %14" PRIu64 " %12" PRIu64 "  %s\n", z.index, z.start,
                    z.capacity, z.write_pointer, z.written(), zns::zone_state_name(z.state));
      }
    }
    return 0;
  }

  auto print_zone = [&](const char* verb) {
    auto zr = dev.report_zones(zone, 1);
    if (!zr || zr->empty()) return;
    const auto& z = zr->front();
    if (a.json) {
      std::printf("%s\n", nlohmann::json{{"action", verb}, {"zone", zone_json(z)}}.dump(2).c_str());
    } else {
      std::printf("zone %u: %s, write pointer %" PRIu64 " (+%" PRIu64 ")\n", zone,
                  zns::zone_state_name(z.state), z.write_pointer, z.written());
    }
  };
  if (act == "open" || act == "close" || act == "finish" || act == "reset") {
    Status s = act == "open" ? dev.open(zone) : act == "close" ? dev.close(zone)
             : act == "finish" ? dev.finish(zone) : dev.reset(zone);
    if (!s) zone_fail(s, act + " zone " + std::to_string(zone));
    print_zone(act.c_str());
    return 0;
  }

  // Data commands.
  const uint64_t size = a.size.value_or(info.lba_bytes);
  if (size == 0 || size % info.lba_bytes || a.offset % info.lba_bytes) {
    throw UsageError("--offset and --size must be multiples of the logical block size (" +
                     std::to_string(info.lba_bytes) + " bytes), size > 0");
  }
  if (size > (uint64_t(1) << 32)) throw UsageError("--size above 4G per call");
  // Check the request against the zone before building a buffer for it: a
  // request the device must refuse is refused with the device's error
  // (NVMe names), without allocating or filling --size bytes.
  {
    auto zr = dev.report_zones(zone, 1);
    if (!zr || zr->empty()) zone_fail(zr ? Status(Code::kLbaOutOfRange, "report") : zr.status(), "report zone " + std::to_string(zone));
    const zns::Zone& z = zr->front();
    const std::string where = act + " zone " + std::to_string(zone);
    auto refuse = [&](Code c, const char* why) { zone_fail(Status(c, why), where); };
    if (act == "read") {
      if (a.offset > info.zone_size || size > info.zone_size - a.offset)
        refuse(Code::kZoneBoundaryError, "read crosses the zone end");
    } else {
      switch (z.state) {
        case zns::ZoneState::kFull: refuse(Code::kZoneIsFull, "zone is Full"); break;
        case zns::ZoneState::kReadOnly: refuse(Code::kZoneIsReadOnly, "zone is Read Only"); break;
        case zns::ZoneState::kOffline: refuse(Code::kZoneIsOffline, "zone is Offline"); break;
        default: break;
      }
      if (act == "append" && info.zone_append_max_bytes && size > info.zone_append_max_bytes) {
        throw UsageError("append --size " + std::to_string(size) + ": above the zone append size limit (" +
                         std::to_string(info.zone_append_max_bytes) + " bytes)");
      }
      const uint64_t at = act == "append" ? z.written() : a.offset;
      if (act == "write" && at != z.written()) {
        refuse(Code::kZoneInvalidWrite, "write not at the write pointer");
      }
      if (at > info.zone_capacity || size > info.zone_capacity - at) {
        refuse(Code::kZoneBoundaryError, "write crosses the zone capacity");
      }
    }
  }
  auto buf_r = zns::io::AlignedBuffer::allocate(size, 4096);
  if (!buf_r) throw RunError("cannot allocate " + std::to_string(size) + " bytes");
  zns::io::AlignedBuffer buf = std::move(*buf_r);
  const uint64_t seed = a.pattern.value_or(1);
  const uint64_t zstart = uint64_t(zone) * info.zone_size;

  if (act == "write") {
    zns::io::fill_pattern(buf.data(), size, seed, zstart + a.offset);
    if (auto s = dev.write(zone, a.offset, buf.data(), size); !s) {
      zone_fail(s, "write zone " + std::to_string(zone) + " offset " + std::to_string(a.offset));
    }
    print_zone("write");
    return 0;
  }
  if (act == "append") {
    // The pattern depends on where the data lands, which only the device
    // knows: fill for the current write pointer, and rewrite nothing — an
    // append that lands elsewhere (a concurrent writer) is reported.
    auto zr = dev.report_zones(zone, 1);
    if (!zr) zone_fail(zr.status(), "report zone " + std::to_string(zone));
    zns::io::fill_pattern(buf.data(), size, seed, zr->front().write_pointer);
    auto off = dev.append(zone, buf.data(), size);
    if (!off) zone_fail(off.status(), "append zone " + std::to_string(zone));
    if (zstart + *off != zr->front().write_pointer) {
      std::fprintf(stderr, "znslab zone: warning: append landed at %" PRIu64
                           ", not at the write pointer read before it (concurrent writer?): "
                           "data will not verify with --pattern\n", *off);
    }
    if (a.json) {
      std::printf("%s\n", nlohmann::json{{"action", "append"}, {"zone", zone}, {"offset", *off},
                                         {"device_offset", zstart + *off}, {"bytes", size}}.dump(2).c_str());
    } else {
      std::printf("%" PRIu64 "\n", *off);
    }
    return 0;
  }
  // read
  if (auto s = dev.read(zone, a.offset, buf.data(), size); !s) {
    zone_fail(s, "read zone " + std::to_string(zone) + " offset " + std::to_string(a.offset));
  }
  if (a.pattern) {
    size_t bad = zns::io::verify_pattern(buf.data(), size, seed, zstart + a.offset);
    if (bad != size) {
      throw RunError("verify: zone " + std::to_string(zone) + " byte " +
                     std::to_string(a.offset + bad) + " (device offset " +
                     std::to_string(zstart + a.offset + bad) + ") does not match pattern seed " +
                     std::to_string(seed));
    }
  }
  uint64_t nonzero = 0, h = 1469598103934665603ull;
  for (uint64_t i = 0; i < size; ++i) {
    nonzero += buf.data()[i] != 0;
    h = (h ^ buf.data()[i]) * 1099511628211ull;
  }
  if (a.json) {
    nlohmann::json j{{"action", "read"}, {"zone", zone}, {"offset", a.offset}, {"bytes", size},
                     {"nonzero_bytes", nonzero}, {"fnv1a64", h}};
    if (a.pattern) j["verified_seed"] = seed;
    std::printf("%s\n", j.dump(2).c_str());
  } else if (a.pattern) {
    std::printf("read %" PRIu64 " bytes at zone %u offset %" PRIu64 ": verified (seed %" PRIu64 ")\n", size, zone,
                a.offset, seed);
  } else {
    std::printf("read %" PRIu64 " bytes at zone %u offset %" PRIu64 ": %" PRIu64 " non-zero bytes, fnv1a64 %016" PRIx64 "\n",
                size, zone, a.offset, nonzero, h);
  }
  return 0;
}

Registrar reg{Command{"zone", "zone commands on a zoned device: info, report, open, close, finish, reset, write, append, read, power-cycle", zone_main}};

}  // namespace
}  // namespace znslab::harness
