// Visible skips for Catch2 2.13 (which has no SKIP): a test that cannot run
// here (no ZNS_TEST_DEV, kernel says EOPNOTSUPP) prints
// "SKIPPED: <reason>" and returns; tests/run_tests.py counts such test
// cases as skipped, never as passed.
#pragma once
#include <iostream>
#include <string>
#include <catch2/catch.hpp>

#define ZNSLAB_SKIP(reason)                                          \
  do {                                                               \
    std::cout << "SKIPPED: " << std::string(reason) << std::endl;    \
    return;                                                          \
  } while (0)
