// `znslab ublk --device URI [--dev-id N] [--queue-depth N] [--max-io BYTES] [--quiet]`:
// serves a zoned device (the emulator, emu:...) as /dev/ublkbN through the
// kernel's ublk driver (zns/ublk_server.h) until SIGTERM/SIGINT or until the
// device is removed. Prints "ublk: /dev/ublkbN ready" on stdout once the
// block device exists. Exit 0 after a clean stop, 1 on a failure.
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "harness/cli.h"
#include "harness/registry.h"
#include "zns/ublk_server.h"
#include "zns/uri.h"
#include "zns/zoned_device.h"

namespace znslab::harness {
namespace {

const char* kUblkIntro =
    "Serves the zoned device URI (emu:PATH?zones=N&zone_size=64M&zone_cap=62M&max_open=14&\n"
    "max_active=14&lba=4096, or any znslab URI) as the host-managed zoned block device\n"
    "/dev/ublkbN (ublk, UBLK_F_ZONED + UBLK_F_USER_COPY; needs ublk_drv and Linux >= 6.6).\n"
    "Stops cleanly on SIGTERM or SIGINT, and when the device is removed elsewhere.";

zns::UblkServer* g_server = nullptr;
extern "C" void on_stop_signal(int) {
  if (g_server != nullptr) g_server->request_stop();
}

int ublk_main(int argc, char** argv) {
  std::string uri;
  zns::UblkOptions o;
  o.verbose = true;
  std::string max_io;
  bool quiet = false;
  CLI::App app{kUblkIntro, "znslab ublk"};
  app.add_option("--device", uri, "the device to serve (its zone size must be a power of two)")->required();
  app.add_option("--dev-id", o.dev_id, "ublk device number (default: the first free one)");
  app.add_option("--queue-depth", o.queue_depth, "requests in flight (tags), 1..4096 (default 64)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--max-io", max_io, "largest request in bytes, a multiple of 4K (default 512K)")->check(kByteSize);
  app.add_flag("-q,--quiet", quiet, "no progress lines on stderr");
  app.footer("Exit status: 0 after a clean stop, 1 on a failure, 2 usage error.");
  if (!cli_parse(app, argc, argv)) return 0;
  o.verbose = !quiet;
  if (!max_io.empty()) {
    const uint64_t v = byte_size_value(max_io);
    if (v == 0 || v > UINT32_MAX || v % 4096) throw UsageError("--max-io " + max_io + ": not a multiple of 4K below 4G");
    o.max_io_bytes = uint32_t(v);
  }
  auto dev = zns::open_device(uri);
  if (!dev) {
    std::fprintf(stderr, "ublk: cannot open %s: %s\n", uri.c_str(), dev.status().to_string().c_str());
    return 1;
  }
  auto srv = zns::UblkServer::create(**dev, o);
  if (!srv) {
    std::fprintf(stderr, "ublk: %s\n", srv.status().to_string().c_str());
    return 1;
  }
  g_server = srv->get();
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  Status s = (*srv)->run([](int id) {
    std::printf("ublk: /dev/ublkb%d ready\n", id);
    std::fflush(stdout);
  });
  g_server = nullptr;
  if (!s.is_ok()) {
    std::fprintf(stderr, "ublk: %s\n", s.to_string().c_str());
    return 1;
  }
  return 0;
}

Registrar reg{Command{"ublk", "serve a zoned device as /dev/ublkbN (kernel ublk driver)", ublk_main}};

}  // namespace
}  // namespace znslab::harness
