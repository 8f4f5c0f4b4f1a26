// The one way a `znslab` subcommand parses its command line: CLI11.
//
// cli_parse() runs `app` over argv (argv[0] is the subcommand's name). On
// -h/--help it prints the help (the app's usage, options and footer) to
// stdout and returns false: the caller exits 0. A parse error (unknown
// option, missing value, failed check) becomes a UsageError naming the
// option (exit 2, registry.h). Not thread-safe; once per process.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

namespace znslab::harness {

// Throws UsageError. Returns false when help was printed.
bool cli_parse(CLI::App& app, int argc, char** argv);

// A CLI11 validator for byte sizes: an integer with an optional K/M/G/T
// suffix (powers of 1024), as zns::parse_size accepts ("64K", "1M").
extern const CLI::Validator kByteSize;

// The value of a byte-size option already checked by kByteSize.
uint64_t byte_size_value(const std::string& s);

}  // namespace znslab::harness
