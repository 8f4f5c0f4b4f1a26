// Registries of the `znslab` binary: subcommands and workloads.
//
// Each subcommand (run, compare, check, zone, zone-diff, ...) and each
// workload (churn, alternating, zone-write, segment-scale, zone-churn, ...)
// lives in its own harness/*.cpp and registers itself with a static
// Registrar, so adding one never edits main.cpp. harness objects are linked
// directly into build/znslab and the test binary (never archived), so the
// registrars always run.
//
// Errors at this boundary are exceptions (DESIGN.md: "exceptions only at the
// CLI/config boundary"): UsageError -> exit 2 with usage, ConfigError -> exit
// 2 naming the key, RunError -> exit 1 with what failed and where.
// Thread-safety: registration happens during static initialisation; lookups
// afterwards are read-only.
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace znslab::harness {

// Exit codes of build/znslab, one per error class.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRun = 1;    // RunError, a failed run, a violated check
inline constexpr int kExitUsage = 2;  // UsageError, ConfigError
inline constexpr int kExitZone = 3;   // ZoneError: a zone command failed with a device status

struct UsageError : std::runtime_error { using std::runtime_error::runtime_error; };
struct ConfigError : std::runtime_error { using std::runtime_error::runtime_error; };
struct RunError : std::runtime_error { using std::runtime_error::runtime_error; };
// A zone command failed with a device status: exit 3 (zone CLI contract).
struct ZoneError : std::runtime_error { using std::runtime_error::runtime_error; };

// ---- subcommands -----------------------------------------------------------
struct Command {
  std::string name;     // "run"
  std::string summary;  // one line for `znslab --help`
  // argv[0] is the subcommand name. Returns the process exit status.
  std::function<int(int argc, char** argv)> main;
};
void register_command(Command c);
const Command* find_command(std::string_view name);
std::vector<const Command*> all_commands();  // sorted by name

// ---- workloads -------------------------------------------------------------
class ResultDoc;

// What a workload run receives.
struct RunContext {
  nlohmann::json config;    // workload file merged with --set, validated against defaults()
  std::string allocator;    // --allocator (workloads that use one), "" otherwise
  std::string device_uri;   // --device, "" when not given
  bool progress = true;     // progress lines on stderr
  ResultDoc* result = nullptr;
};

// One workload key, for `znslab keys` and the docs.
struct KeyDoc {
  std::string key;
  std::string type;     // "string", "integer", "number", "boolean", "object", "array"
  std::string unit;     // "bytes", "ns", "ms", "count", "" ...
  std::string meaning;  // one line
};

class Workload {
 public:
  virtual ~Workload() = default;
  // Every key the workload accepts with its default value; a key in the
  // workload file or --set that is not here is a ConfigError naming it.
  virtual nlohmann::json defaults() const = 0;
  // Checks values (ranges, enums); throws ConfigError naming the key.
  virtual void validate(const nlohmann::json& config) const = 0;
  // Unit and meaning of the workload's own keys (slab_* keys are described
  // by harness/slab_options.h); keys missing here are listed without them.
  virtual std::vector<KeyDoc> key_docs() const { return {}; }
  // Runs and fills ctx.result (config, samples, latency_ns, summary, ...).
  virtual void run(RunContext& ctx) = 0;
};

struct WorkloadInfo {
  std::string name;         // the "workload" key of a workload file
  std::string summary;
  std::function<std::unique_ptr<Workload>()> make;
  bool uses_allocator = true;  // drives an allocator (--allocator applies; labels default to it)
  bool uses_device = false;    // takes a zoned device (--device); else --device is a usage error
};
void register_workload(WorkloadInfo w);
const WorkloadInfo* find_workload(std::string_view name);
std::vector<const WorkloadInfo*> all_workloads();

// Static registration helpers: `static Registrar r{Command{...}};`
struct Registrar {
  explicit Registrar(Command c) { register_command(std::move(c)); }
  explicit Registrar(WorkloadInfo w) { register_workload(std::move(w)); }
};

}  // namespace znslab::harness
