#include "harness/cli.h"

#include <cstdio>

#include "harness/registry.h"
#include "zns/uri.h"

namespace znslab::harness {

bool cli_parse(CLI::App& app, int argc, char** argv) {
  app.get_formatter()->column_width(26);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return false;
  } catch (const CLI::ParseError& e) {
    throw UsageError(e.what());
  }
  return true;
}

const CLI::Validator kByteSize(
    [](std::string& s) -> std::string {
      if (zns::parse_size(s)) return {};
      return "'" + s + "' is not a number or size (e.g. 4096, 64K, 1M)";
    },
    "BYTES", "byte size");

uint64_t byte_size_value(const std::string& s) {
  auto n = zns::parse_size(s);
  if (!n) throw UsageError("'" + s + "' is not a number or size (e.g. 4096, 64K, 1M)");
  return *n;
}

}  // namespace znslab::harness
