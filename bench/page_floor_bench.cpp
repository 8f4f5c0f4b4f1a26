// page_floor_bench: the physical floor of churn's per-cycle memory return
// (issue 14): the cost of backing a region and returning it to the OS, as
// churn under the RSS bound must do every cycle, with no allocator at all.
// Not a test: a measurement with JSON output.
//
//   build/bench/page_floor_bench [--mib 28] [--cycles 40] [--objects 64000]
//
// Per mode, each of --cycles rounds backs the whole --mib region, then
// returns it with one madvise(MADV_DONTNEED) (pages::decommit); the first
// 10 % of rounds are warm-up. Modes:
//   touch_4k     one byte written per 4 KiB page (a page fault each);
//   populate_4k  pages::populate_write over 64 KiB steps (the slab's
//                populate_slabs = 16 batches);
//   touch_thp    MADV_HUGEPAGE on the region, one byte per 4 KiB (a huge
//                page fault per 2 MiB: the zeroing of 2 MiB).
// Reported per mode: ns per 4 KiB page to back and to return, and both
// divided by --objects (churn's objects per cycle: 28 MiB is what churn's
// 64,000 objects of 64..768 B occupy in slabs), i.e. the floor in
// ns/object that any allocator returning the memory every cycle pays.
// Output: one JSON line per mode on stdout; a summary on stderr.
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "src/pages/pages.h"

using namespace znslab;

namespace {

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

struct Args {
  uint64_t mib = 28, cycles = 40, objects = 64000;
};

bool parse(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) return false;
    const uint64_t v = std::strtoull(argv[++i], nullptr, 10);
    if (k == "--mib") a.mib = v;
    else if (k == "--cycles") a.cycles = v;
    else if (k == "--objects") a.objects = v;
    else return false;
  }
  return a.mib > 0 && a.cycles >= 2 && a.objects > 0;
}

enum class Mode { kTouch4k, kPopulate4k, kTouchThp };
const char* mode_name(Mode m) {
  return m == Mode::kTouch4k ? "touch_4k" : m == Mode::kPopulate4k ? "populate_4k" : "touch_thp";
}

// Returns false (with a message) if a pages call fails.
bool run(Mode m, const Args& a) {
  const size_t huge = size_t(2) << 20, bytes = size_t(a.mib) << 20;
  auto r = pages::Reservation::reserve(bytes, huge);
  if (!r) {
    std::fprintf(stderr, "page_floor_bench: reserve: %s\n", r.status().to_string().c_str());
    return false;
  }
  uint8_t* p = r->base();
  if (m == Mode::kTouchThp) {
    Status s = pages::advise_hugepage(p, bytes, true);
    if (!s) {
      std::fprintf(stderr, "page_floor_bench: MADV_HUGEPAGE: %s (THP off?)\n", s.to_string().c_str());
      return false;
    }
  }
  const uint64_t warm = a.cycles / 10;
  uint64_t back_ns = 0, ret_ns = 0;
  for (uint64_t c = 0; c < a.cycles; ++c) {
    const uint64_t t0 = now_ns();
    if (m == Mode::kPopulate4k) {
      for (size_t o = 0; o < bytes; o += 65536) {
        Status s = pages::populate_write(p + o, std::min<size_t>(65536, bytes - o));
        if (!s) {
          std::fprintf(stderr, "page_floor_bench: populate_write: %s\n", s.to_string().c_str());
          return false;
        }
      }
    } else {
      for (size_t o = 0; o < bytes; o += 4096) p[o] = uint8_t(c + 1);
    }
    const uint64_t t1 = now_ns();
    Status s = pages::decommit(p, bytes);
    if (!s) {
      std::fprintf(stderr, "page_floor_bench: decommit: %s\n", s.to_string().c_str());
      return false;
    }
    const uint64_t t2 = now_ns();
    if (c >= warm) {
      back_ns += t1 - t0;
      ret_ns += t2 - t1;
    }
  }
  const double n = double(a.cycles - warm), pages4k = double(bytes / 4096);
  const double back_page = double(back_ns) / n / pages4k, ret_page = double(ret_ns) / n / pages4k;
  const double back_obj = double(back_ns) / n / double(a.objects), ret_obj = double(ret_ns) / n / double(a.objects);
  std::printf(
      "{\"bench\":\"page_floor\",\"mode\":\"%s\",\"mib\":%llu,\"cycles\":%llu,\"objects\":%llu,"
      "\"back_ns_per_page\":%.1f,\"return_ns_per_page\":%.1f,\"back_ns_per_object\":%.1f,"
      "\"return_ns_per_object\":%.1f,\"floor_ns_per_object\":%.1f}\n",
      mode_name(m), (unsigned long long)a.mib, (unsigned long long)a.cycles, (unsigned long long)a.objects,
      back_page, ret_page, back_obj, ret_obj, back_obj + ret_obj);
  std::fprintf(stderr, "%-12s back %6.0f ns/page  return %5.0f ns/page  floor %5.1f ns/object\n", mode_name(m),
               back_page, ret_page, back_obj + ret_obj);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse(argc, argv, a)) {
    std::fprintf(stderr, "usage: page_floor_bench [--mib 28] [--cycles 40] [--objects 64000]\n");
    return 2;
  }
  bool ok = true;
  for (Mode m : {Mode::kTouch4k, Mode::kPopulate4k, Mode::kTouchThp}) ok = run(m, a) && ok;
  return ok ? 0 : 1;
}
