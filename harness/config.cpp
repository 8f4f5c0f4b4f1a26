#include "harness/config.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace znslab::harness {
namespace {

using nlohmann::json;

std::string type_word(const json& v) {
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_boolean()) return "a boolean";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

std::string shown(const json& v) {
  // replace: a string with invalid UTF-8 must not turn a clean ConfigError
  // into a json type_error (found by tests/fuzz/fuzz_workload).
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// True for integer keys that hold a byte count: their values may be given
// with a binary suffix ("64M", "2GiB", "512K").
bool is_byte_key(const std::string& key) {
  auto ends = [&](const char* suf) {
    const size_t n = std::strlen(suf);
    return key.size() >= n && key.compare(key.size() - n, n, suf) == 0;
  };
  return key.find("bytes") != std::string::npos || ends("size") || ends("_max_io");
}

}  // namespace

Result<uint64_t> parse_byte_size(std::string_view text) {
  static constexpr Status kBad(Code::kInvalidArgument,
                               "expected a byte count: digits with an optional K, M, G, T suffix (KiB = 1024)");
  size_t i = 0;
  unsigned __int128 v = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    v = v * 10 + unsigned(text[i] - '0');
    if (v > UINT64_MAX) return kBad;
    ++i;
  }
  if (i == 0) return kBad;
  std::string_view suf = text.substr(i);
  unsigned shift = 0;
  if (!suf.empty()) {
    switch (suf[0]) {
      case 'k': case 'K': shift = 10; break;
      case 'm': case 'M': shift = 20; break;
      case 'g': case 'G': shift = 30; break;
      case 't': case 'T': shift = 40; break;
      default: return kBad;
    }
    suf.remove_prefix(1);
    if (suf == "i" || suf == "iB" || suf == "B" || suf.empty()) {
    } else {
      return kBad;
    }
  }
  v <<= shift;
  if (v > uint64_t(INT64_MAX)) return kBad;
  return uint64_t(v);
}

namespace {

// Converts `v` to the type of `def`; throws ConfigKeyError on a mismatch.
// Integers must fit int64 (JSON allows larger unsigned values: refused, not
// wrapped); byte-count keys also take "64M"-style strings.
json coerce(const std::string& key, const json& def, const json& v) {
  if (def.is_null()) return v;
  if (def.is_number_integer()) {
    if (v.is_number_unsigned()) {
      if (v.get<uint64_t>() > uint64_t(INT64_MAX))
        throw_key_error(key, "out of range: " + shown(v) + " is above 2^63-1");
      return json(int64_t(v.get<uint64_t>()));
    }
    if (v.is_number_integer()) return v;
    if (v.is_number_float()) {
      double d = v.get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e18) return json(int64_t(d));
      if (std::isfinite(d) && d == std::floor(d))
        throw_key_error(key, "out of range: " + shown(v) + " is beyond +-9e18");
    }
    if (v.is_string() && is_byte_key(key)) {
      auto b = parse_byte_size(v.get<std::string>());
      if (!b) throw_key_error(key, std::string(b.status().context()) + ", got " + shown(v));
      return json(int64_t(*b));
    }
    throw_key_error(key, std::string("expected an integer") +
                             (is_byte_key(key) ? " or a byte count like \"64M\"" : "") + ", got " + shown(v));
  }
  if (def.is_number()) {
    if (v.is_number()) return json(v.get<double>());
    throw_key_error(key, "expected a number, got " + shown(v));
  }
  if (def.is_boolean() && !v.is_boolean()) throw_key_error(key, "expected a boolean, got " + shown(v));
  if (def.is_string() && !v.is_string()) throw_key_error(key, "expected a string, got " + shown(v));
  if (def.is_array() && !v.is_array()) throw_key_error(key, "expected an array, got " + shown(v));
  if (def.is_object() && !v.is_object()) throw_key_error(key, "expected an object, got " + shown(v));
  return v;
}

std::string known_keys(const json& defaults) {
  std::string s;
  for (auto& [k, _] : defaults.items()) s += (s.empty() ? "" : ", ") + k;
  return s;
}

// Line and column (1-based) of byte offset `pos` in `text`.
std::pair<size_t, size_t> line_col(const std::string& text, size_t pos) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < pos && i < text.size(); ++i) {
    if (text[i] == '\n') { ++line; col = 1; } else { ++col; }
  }
  return {line, col};
}

WorkloadConfig resolve(const json& file_obj, const std::string& origin,
                       const std::vector<std::string>& sets) {
  WorkloadConfig wc;
  wc.file = origin;
  const std::string where = origin.empty() ? "workload" : origin;
  if (!file_obj.is_object())
    throw ConfigError(where + ": a workload file must be a JSON object, got " + type_word(file_obj));
  if (!file_obj.contains("workload"))
    throw ConfigError(where + ": key \"workload\" is missing (it names the workload, e.g. \"churn\")");
  if (!file_obj["workload"].is_string())
    throw ConfigError(where + ": key \"workload\": expected a string, got " + shown(file_obj["workload"]));
  wc.workload = file_obj["workload"].get<std::string>();
  wc.info = find_workload(wc.workload);
  if (!wc.info) {
    std::string names;
    for (auto* w : all_workloads()) names += (names.empty() ? "" : ", ") + w->name;
    throw ConfigError(where + ": key \"workload\": unknown workload \"" + wc.workload +
                      "\" (registered: " + names + ")");
  }
  auto wl = wc.info->make();
  json defaults = wl->defaults();
  json cfg = defaults;
  for (auto& [k, _] : defaults.items()) wc.origin[k] = "default";

  auto apply = [&](const std::string& key, const json& value, const std::string& from) {
    if (key == "workload")
      throw ConfigError(from + ": key \"workload\" cannot be overridden");
    if (!defaults.contains(key))
      throw ConfigError(from + ": unknown key \"" + key + "\" (workload " + wc.workload +
                        " accepts: " + known_keys(defaults) + ")");
    try {
      cfg[key] = coerce(key, defaults[key], value);
    } catch (const ConfigKeyError& e) {
      throw ConfigError(from + ": " + e.what());
    }
    wc.origin[key] = from;
  };
  for (auto& [k, v] : file_obj.items())
    if (k != "workload") apply(k, v, where);
  for (const auto& s : sets) {
    auto [k, v] = parse_set(s);
    apply(k, v, "--set " + s);
  }
  try {
    wl->validate(cfg);
  } catch (const ConfigKeyError& e) {
    auto it = wc.origin.find(e.key);
    std::string from = it == wc.origin.end() ? where : it->second;
    if (from == "default") from = where + " (default value)";
    throw ConfigError(from + ": " + e.what());
  } catch (const ConfigError& e) {
    throw ConfigError(where + ": " + e.what());
  }
  cfg["workload"] = wc.workload;
  wc.config = std::move(cfg);
  return wc;
}

}  // namespace

nlohmann::json parse_set_value(std::string_view text) {
  json v;
  try {
    v = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  } catch (const json::exception&) {
    // A number JSON cannot hold (1e400): the same clean error as in a file.
    throw ConfigError("--set value " + std::string(text) + ": number out of range");
  }
  if (v.is_discarded()) return json(std::string(text));
  return v;
}

std::pair<std::string, nlohmann::json> parse_set(std::string_view arg) {
  auto eq = arg.find('=');
  if (eq == std::string_view::npos || eq == 0)
    throw UsageError("--set expects KEY=VALUE, got \"" + std::string(arg) + "\"");
  return {std::string(arg.substr(0, eq)), parse_set_value(arg.substr(eq + 1))};
}

WorkloadConfig load_workload_text(const std::string& text, const std::string& origin,
                                  const std::vector<std::string>& sets) {
  json obj;
  try {
    obj = json::parse(text);
  } catch (const json::parse_error& e) {
    auto [line, col] = line_col(text, e.byte > 0 ? e.byte - 1 : 0);
    std::string what = e.what();
    // nlohmann's message: "[json.exception.parse_error.101] parse error at line L, column C: ..."
    auto p = what.find(": ", what.find("parse error"));
    std::string detail = p == std::string::npos ? what : what.substr(p + 2);
    throw ConfigError(origin + ": invalid JSON at line " + std::to_string(line) + ", column " +
                      std::to_string(col) + ": " + detail);
  } catch (const json::exception& e) {
    // out_of_range 406: a number JSON cannot hold (1e400).
    std::string what = e.what();
    auto p = what.find("] ");
    throw ConfigError(origin + ": invalid JSON: " + (p == std::string::npos ? what : what.substr(p + 2)));
  }
  return resolve(obj, origin, sets);
}

WorkloadConfig load_workload(const std::string& path_or_name, const std::vector<std::string>& sets) {
  std::error_code ec;
  if (!std::filesystem::exists(path_or_name, ec) && find_workload(path_or_name)) {
    WorkloadConfig wc = resolve(json{{"workload", path_or_name}}, "", sets);
    return wc;
  }
  std::ifstream f(path_or_name, std::ios::binary);
  if (!f) {
    std::string names;
    for (auto* w : all_workloads()) names += (names.empty() ? "" : ", ") + w->name;
    throw ConfigError(path_or_name + ": cannot open workload file: " + std::strerror(errno) +
                      " (or give a workload name: " + names + ")");
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return load_workload_text(ss.str(), path_or_name, sets);
}

// ---- helpers -------------------------------------------------------------

void throw_key_error(const std::string& key, const std::string& msg) {
  throw ConfigKeyError(key, msg);
}

void check_int_range(const nlohmann::json& cfg, const std::string& key, int64_t lo, int64_t hi) {
  int64_t v = cfg_int(cfg, key);
  if (v < lo || v > hi)
    throw_key_error(key, "must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                             "], got " + std::to_string(v));
}

void check_number_range(const nlohmann::json& cfg, const std::string& key, double lo, double hi) {
  double v = cfg_double(cfg, key);
  if (!(v >= lo && v <= hi)) {
    std::ostringstream m;
    m << "must be in [" << lo << ", " << hi << "], got " << v;
    throw_key_error(key, m.str());
  }
}

void check_one_of(const nlohmann::json& cfg, const std::string& key,
                  std::initializer_list<const char*> allowed) {
  std::string v = cfg_str(cfg, key), list;
  for (const char* a : allowed) {
    if (v == a) return;
    list += std::string(list.empty() ? "" : ", ") + "\"" + a + "\"";
  }
  throw_key_error(key, "must be one of " + list + ", got \"" + v + "\"");
}

namespace {
const json& at(const json& cfg, const std::string& key) {
  auto it = cfg.find(key);
  if (it == cfg.end()) throw_key_error(key, "missing");
  return *it;
}
}  // namespace

int64_t cfg_int(const nlohmann::json& cfg, const std::string& key) {
  const json& v = at(cfg, key);
  if (!v.is_number_integer()) throw_key_error(key, "expected an integer, got " + shown(v));
  return v.get<int64_t>();
}

uint64_t cfg_u64(const nlohmann::json& cfg, const std::string& key) {
  int64_t v = cfg_int(cfg, key);
  if (v < 0) throw_key_error(key, "must not be negative, got " + std::to_string(v));
  return uint64_t(v);
}

double cfg_double(const nlohmann::json& cfg, const std::string& key) {
  const json& v = at(cfg, key);
  if (!v.is_number()) throw_key_error(key, "expected a number, got " + shown(v));
  return v.get<double>();
}

bool cfg_bool(const nlohmann::json& cfg, const std::string& key) {
  const json& v = at(cfg, key);
  if (!v.is_boolean()) throw_key_error(key, "expected a boolean, got " + shown(v));
  return v.get<bool>();
}

std::string cfg_str(const nlohmann::json& cfg, const std::string& key) {
  const json& v = at(cfg, key);
  if (!v.is_string()) throw_key_error(key, "expected a string, got " + shown(v));
  return v.get<std::string>();
}

}  // namespace znslab::harness
