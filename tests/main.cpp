// The one Catch2 main of build/tests/znslab_tests (Catch2 2.13, Debian).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
