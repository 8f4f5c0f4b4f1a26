// The shared workload-config loader used by `znslab run` (and by every
// workload through RunContext::config).
//
// A workload file is one JSON object: a "workload" key naming a registered
// workload plus flat parameter keys, e.g.
//   {"workload": "churn", "cycles": 200, "objects_per_cycle": 100000}
// Resolution: the workload's defaults() <- the file's keys <- each
// `--set KEY=VALUE` in order. VALUE is parsed as JSON ("2000", "true",
// "[1,2]", "\"x\"") and, when that fails, taken as a plain string
// ("uniform"). Every key must exist in defaults() and have the default's
// type (integer, number, boolean, string, array, object; a null default
// accepts anything); a float with an integral value (1e6) is accepted for an
// integer key. Then Workload::validate() checks ranges and enums.
//
// Errors (exceptions at the CLI/config boundary, DESIGN.md): ConfigError
// whose message names the file (or the --set argument) and the key:
//   workloads/churn.json: unknown key "cyclez" (workload churn accepts: ...)
//   workloads/churn.json: key "cycles": expected an integer, got "many"
//   --set threads=0: key "threads": must be in [1, 64], got 0
//   workloads/bad.json: invalid JSON at line 3, column 7: ...
// Thread-safety: the functions are reentrant; nothing is shared.
#pragma once

#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/registry.h"
#include "src/common/status.h"

namespace znslab::harness {

// A ConfigError about one key; thrown by the check_* helpers below and by
// Workload::validate() so that the loader can say where the value came from.
struct ConfigKeyError : ConfigError {
  ConfigKeyError(std::string k, const std::string& msg)
      : ConfigError("key \"" + k + "\": " + msg), key(std::move(k)) {}
  std::string key;
};

struct WorkloadConfig {
  std::string file;                 // the path given ("" for a bare workload name)
  std::string workload;             // the "workload" key
  const WorkloadInfo* info = nullptr;
  nlohmann::json config;            // resolved: {"workload": name, every default key...}
  // Where each key's value came from: the file path, "--set K=V" or "default".
  std::map<std::string, std::string> origin;
};

// "64M" -> 67108864: digits with an optional K/M/G/T suffix (binary
// multiples; "KiB", "KB" and "K" all mean 1024), at most 2^63-1. Integer
// workload keys that hold bytes (names containing "bytes" or ending in
// "size") accept such strings in files and in --set.
Result<uint64_t> parse_byte_size(std::string_view text);

// Parses the VALUE of --set: JSON if it parses, else the raw string.
nlohmann::json parse_set_value(std::string_view text);
// Splits "KEY=VALUE"; throws UsageError when there is no '=' or KEY is empty.
std::pair<std::string, nlohmann::json> parse_set(std::string_view arg);

// Loads, resolves and validates a workload file. `path_or_name` may also be
// a bare registered workload name ("churn"): its defaults are used.
// Throws ConfigError (see above), never returns a partial config.
WorkloadConfig load_workload(const std::string& path_or_name,
                             const std::vector<std::string>& sets);
// Same from JSON text; `origin` names the text in messages (a file path).
WorkloadConfig load_workload_text(const std::string& text, const std::string& origin,
                                  const std::vector<std::string>& sets);

// ---- helpers for Workload::validate() and run() -----------------------------
// Each throws ConfigKeyError naming `key` when the value is out of range.
void check_int_range(const nlohmann::json& cfg, const std::string& key, int64_t lo, int64_t hi);
void check_number_range(const nlohmann::json& cfg, const std::string& key, double lo, double hi);
void check_one_of(const nlohmann::json& cfg, const std::string& key,
                  std::initializer_list<const char*> allowed);
[[noreturn]] void throw_key_error(const std::string& key, const std::string& msg);

// Typed reads of a resolved config (the loader has checked the types).
int64_t cfg_int(const nlohmann::json& cfg, const std::string& key);
uint64_t cfg_u64(const nlohmann::json& cfg, const std::string& key);
double cfg_double(const nlohmann::json& cfg, const std::string& key);
bool cfg_bool(const nlohmann::json& cfg, const std::string& key);
std::string cfg_str(const nlohmann::json& cfg, const std::string& key);

}  // namespace znslab::harness
