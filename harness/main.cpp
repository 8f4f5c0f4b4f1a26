// build/znslab: one binary, subcommands registered in harness/*.cpp.
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <new>

#include "harness/provenance.h"
#include "harness/registry.h"

namespace {
void print_help(FILE* out) {
  std::fprintf(out,
               "usage: znslab <command> [options]\n"
               "       znslab --version\n"
               "       znslab <command> --help\n\n"
               "znslab: a testbed for temporal slab and segment allocators over emulated or\n"
               "real NVMe ZNS zones through io_uring. Results are JSON (schema znslab.result/1).\n\n"
               "commands:\n");
  for (const auto* c : znslab::harness::all_commands())
    std::fprintf(out, "  %-12s %s\n", c->name.c_str(), c->summary.c_str());
  std::fprintf(out, "\nworkloads (the \"workload\" key of a workload file):\n");
  for (const auto* w : znslab::harness::all_workloads())
    std::fprintf(out, "  %-14s %s\n", w->name.c_str(), w->summary.c_str());
}
}  // namespace

int main(int argc, char** argv) {
  using namespace znslab::harness;
  if (argc >= 2 && (!std::strcmp(argv[1], "--version") || !std::strcmp(argv[1], "version"))) {
    std::printf("znslab %s (%s)\n", build_git_rev().c_str(), build_info()["compiler"].get<std::string>().c_str());
    return 0;
  }
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") ||
      !std::strcmp(argv[1], "help")) {
    print_help(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const Command* cmd = find_command(argv[1]);
  if (!cmd) {
    std::fprintf(stderr, "znslab: unknown command '%s'\n\n", argv[1]);
    print_help(stderr);
    return 2;
  }
  // The one table of error classes to exit codes (docs/harness.md).
  try {
    return cmd->main(argc - 1, argv + 1);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "znslab %s: %s\n(see: znslab %s --help)\n", argv[1], e.what(), argv[1]);
    return kExitUsage;
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "znslab %s: configuration error: %s\n", argv[1], e.what());
    return kExitUsage;
  } catch (const ZoneError& e) {
    std::fprintf(stderr, "znslab %s: zone error: %s\n", argv[1], e.what());
    return kExitZone;
  } catch (const RunError& e) {
    std::fprintf(stderr, "znslab %s: %s\n", argv[1], e.what());
    return kExitRun;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "znslab %s: out of memory (the configuration needs more than this machine gives)\n",
                 argv[1]);
    return kExitRun;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "znslab %s: unexpected error: %s\n", argv[1], e.what());
    return kExitRun;
  }
}
