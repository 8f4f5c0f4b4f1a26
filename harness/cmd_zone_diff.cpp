// `znslab zone-diff --seed S --ops N --device A --device B [--json FILE] [--quiet]`
// Runs the seeded differential zone-command trace (zns/zone_trace.h) on two
// devices in lockstep and reports every mismatch with the shortest trace
// prefix that shows it. Exit 0: no mismatch; 1: mismatches or a device
// failure; 2: bad arguments.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/cli.h"
#include "harness/registry.h"
#include "zns/zone_trace.h"

namespace znslab::harness {
namespace {

const char* kIntro =
    "Runs one seeded random trace of zone commands (open, close, finish, reset,\n"
    "writes at and off the write pointer, append, read; commands that must fail\n"
    "and commands that hit the open/active limits included) on device A (the\n"
    "reference) and device B in lockstep. After every command the outcome and\n"
    "every zone's state and write pointer are compared. Every zone of both\n"
    "devices is reset first (the devices' data is destroyed).";

const char* kFooter =
    "Comparison: exact NVMe status when neither device is zbd:; when one is zbd:\n"
    "(the block layer reports most zone errors as EIO) only success/failure is\n"
    "compared and a failure with different classes counts as a documented\n"
    "difference. Zone states, write pointers, append offsets and read data are\n"
    "always compared exactly. After a mismatch both devices are reset and the\n"
    "trace continues, so every mismatch is counted.\n"
    "\n"
    "Exit status: 0 no mismatch, 1 mismatch or device failure, 2 bad arguments.";

nlohmann::json op_json(const zns::trace::TraceOp& op) {
  return {{"op", zns::trace::op_kind_name(op.kind)}, {"zone", op.zone},     {"offset", op.offset},
          {"len", op.len},                          {"note", op.note},      {"text", zns::trace::format_op(op)}};
}

int zone_diff_main(int argc, char** argv) {
  std::vector<std::string> devices;
  uint64_t seed = 1;
  size_t ops = 1000;
  std::string json_out;
  bool quiet = false;
  CLI::App app{kIntro, "znslab zone-diff"};
  app.add_option("--device", devices,
                 "twice: A then B (emu:PATH?..., zbd:/dev/nvme0n1, nvme:/dev/ng0n1); both must have the "
                 "same geometry (zones, zone size and capacity, LBA size, max open, max active)")
      ->required()
      ->expected(2)
      ->allow_extra_args(false);
  app.add_option("--seed", seed, "PRNG seed (default 1)");
  app.add_option("--ops", ops, "commands in the trace (default 1000)")->check(CLI::PositiveNumber);
  app.add_option("--json", json_out, "also write the result as JSON (\"-\" = stdout)");
  app.add_flag("-q,--quiet", quiet, "no progress on stderr");
  app.footer(kFooter);
  if (!cli_parse(app, argc, argv)) return 0;

  std::unique_ptr<zns::ZonedDevice> dev[2];
  for (int k = 0; k < 2; ++k) {
    auto d = zns::open_device(devices[k]);
    if (!d) {
      std::fprintf(stderr, "zone-diff: cannot open %s: %s\n", devices[k].c_str(),
                   d.status().to_string().c_str());
      return 1;
    }
    dev[k] = std::move(*d);
  }
  zns::trace::DiffOptions o;
  o.seed = seed;
  o.ops = ops;
  o.progress_every = ops >= 10 ? ops / 10 : 1;
  if (!quiet)
    o.progress = [](size_t done, size_t total) { std::fprintf(stderr, "zone-diff: %zu/%zu ops\n", done, total); };
  auto r = zns::trace::run_diff(*dev[0], *dev[1], o);
  const char* mode = r.mode == zns::trace::CompareMode::kExact ? "exact" : "outcome+state";

  std::printf("zone-diff seed %llu: %zu ops on A=%s B=%s, comparison %s\n",
              static_cast<unsigned long long>(seed), r.ops_run, devices[0].c_str(), devices[1].c_str(), mode);
  if (!r.setup_error.empty()) std::printf("ERROR: %s\n", r.setup_error.c_str());
  for (const auto& m : r.recorded) {
    std::printf("MISMATCH at op %zu; shortest prefix showing it (%zu ops after a reset of all zones):\n",
                m.op_index, m.prefix.size());
    for (size_t i = 0; i < m.prefix.size(); ++i)
      std::printf("  %4zu  %s\n", i, zns::trace::format_op(m.prefix[i]).c_str());
    std::printf("  expected (A): %s\n  got      (B): %s\n", m.expected.c_str(), m.got.c_str());
  }
  if (r.mismatches > r.recorded.size())
    std::printf("(%zu more mismatches not shown)\n", r.mismatches - r.recorded.size());
  for (const auto& [rule, n] : r.documented_by_rule) std::printf("documented difference x%zu: %s\n", n, rule.c_str());
  std::printf("mismatches %zu, documented differences %zu, commands that failed on A %zu\n", r.mismatches,
              r.documented_differences, r.failures_expected);

  if (!json_out.empty()) {
    nlohmann::json j;
    j["schema"] = "znslab.zone-diff/1";
    j["seed"] = seed;
    j["ops"] = ops;
    j["ops_run"] = r.ops_run;
    j["device_a"] = devices[0];
    j["device_b"] = devices[1];
    j["comparison"] = mode;
    j["mismatches"] = r.mismatches;
    j["documented_differences"] = r.documented_differences;
    j["documented_by_rule"] = r.documented_by_rule;
    j["failed_commands"] = r.failures_expected;
    j["error"] = r.setup_error;
    j["recorded"] = nlohmann::json::array();
    for (const auto& m : r.recorded) {
      nlohmann::json pj = nlohmann::json::array();
      for (const auto& op : m.prefix) pj.push_back(op_json(op));
      j["recorded"].push_back({{"op_index", m.op_index}, {"prefix", pj}, {"expected", m.expected}, {"got", m.got}});
    }
    if (json_out == "-") {
      std::cout << j.dump(2) << "\n";
    } else {
      std::ofstream f(json_out);
      f << j.dump(2) << "\n";
      if (!f) {
        std::fprintf(stderr, "zone-diff: cannot write %s\n", json_out.c_str());
        return 1;
      }
    }
  }
  return (r.mismatches == 0 && r.setup_error.empty()) ? 0 : 1;
}

Registrar reg{Command{"zone-diff", "differential zone-command trace between two zoned devices", zone_diff_main}};

}  // namespace
}  // namespace znslab::harness
