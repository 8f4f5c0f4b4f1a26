// The one Catch2 main of build/tests/znslab_tests (Catch2 2.13, Debian).
// GCC 12 with -fsanitize=address raises a false -Wmaybe-uninitialized inside
// Catch2's own use of <regex>; silence it for this third-party header only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#pragma GCC diagnostic pop
