// libFuzzer target: workload JSON text and --set strings through the
// harness loader (harness/config.h load_workload_text, parse_set). Input:
// JSON text, then a NUL byte, then --set arguments separated by '\n'.
// Every input must load or throw ConfigError / UsageError (exit 2 at the
// CLI); any other exception (std::bad_alloc, nlohmann errors, ...) is a
// finding (the CLI would print "unexpected error").
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/config.h"
#include "harness/registry.h"

using namespace znslab::harness;

namespace {

// A workload with one key of each kind the real ones use, checked with
// the shared helpers (the real workloads need the whole project linked).
class FuzzTypes : public Workload {
 public:
  nlohmann::json defaults() const override {
    return {{"count", 10}, {"ratio", 0.5}, {"mode", "write"}, {"flag", true}, {"bytes", 4096},
            {"big", 1u << 20}, {"label", ""}};
  }
  void validate(const nlohmann::json& c) const override {
    check_int_range(c, "count", 0, 1000000);
    check_number_range(c, "ratio", 0.0, 1.0);
    check_one_of(c, "mode", {"write", "append"});
    check_int_range(c, "bytes", 1, int64_t(1) << 40);
    check_int_range(c, "big", 0, INT64_MAX);
    (void)cfg_int(c, "count");
    (void)cfg_u64(c, "bytes");
    (void)cfg_double(c, "ratio");
    (void)cfg_bool(c, "flag");
    (void)cfg_str(c, "label");
  }
  void run(RunContext&) override {}
};

Registrar reg{WorkloadInfo{"fuzz-types", "fuzz target workload", [] { return std::make_unique<FuzzTypes>(); }}};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string all(reinterpret_cast<const char*>(data), size);
  size_t nul = all.find('\0');
  std::string text = all.substr(0, nul);
  std::vector<std::string> sets;
  if (nul != std::string::npos) {
    std::string rest = all.substr(nul + 1);
    size_t p = 0;
    while (p <= rest.size() && sets.size() < 16) {
      size_t q = rest.find('\n', p);
      if (q == std::string::npos) q = rest.size();
      sets.push_back(rest.substr(p, q - p));
      p = q + 1;
    }
  }
  for (const auto& s : sets) {
    try {
      (void)parse_set(s);
    } catch (const UsageError&) {
    } catch (const ConfigError&) {
    }
  }
  try {
    WorkloadConfig c = load_workload_text(text, "fuzz.json", sets);
    if (c.info == nullptr || c.workload.empty()) __builtin_trap();
    // Invalid UTF-8 in strings is replaced, not thrown (result files use
    // the same dump; see docs/zns.md "Fuzzing" for that finding).
    (void)c.config.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const ConfigError&) {
  } catch (const UsageError&) {
  }
  return 0;
}
