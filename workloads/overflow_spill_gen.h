// The overflow-spill generator (issue 10; seed 003 overflow region): the
// operation stream of the overflow-spill workload and nothing else (no
// region, files, threads, timers, samples or JSON). The runner
// (harness/phase_runner.h, run_overflow_phases) executes it through `ex`:
//   ex.write(len) -> blob   write a new blob of len bytes (blobs are
//                           numbered in write order; the runner fills them)
//   ex.observe()            after a write and the frees it caused
//   ex.live_bytes()         the region's live bytes (ends the fill)
//   ex.free(blob)           free a blob
//   ex.read(blob)           the owner reads a blob back
//   ex.pinned(blob)         a reader may still be reading it (do not free)
//   ex.serve_readers(f)     every idle reader gets blob f() (-1: none)
//   ex.fill_done(), ex.free_done(freed_bytes), ex.refill_done()
// Phases: fill (write blobs until the region's live bytes reach
// fill_bytes; a short_lived_fraction of blobs is freed short_lifetime writes later, those
// still pending when the fill ends are freed then), free (free a random
// free_fraction of the live long-lived blobs, pinned ones skipped), refill
// (write as many bytes as were freed, same sizes, all long-lived). After
// every read_every-th write the owner reads a random live blob; after every
// reader_post_every-th write (and free of the free phase) idle readers are
// served: the newest live blob half of the time, else a random one. Sizes:
// 4096 with probability fraction_4k, else uniform [min_size, max_size].
// One mt19937_64(seed) draws every choice in stream order. With readers,
// the serving draws depend on which readers are idle, so only runs without
// readers repeat exactly. Thread-safety: run() is const; one executor per call.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <utility>
#include <vector>

namespace znslab::workloads {

struct OverflowSpillParams {
  uint64_t fill_bytes = 96ull << 20;
  uint32_t min_size = 64, max_size = 16384;  // bytes
  double fraction_4k = 0.25;
  double short_lived_fraction = 0.2;
  uint32_t short_lifetime = 256;  // writes
  double free_fraction = 0.5;
  uint64_t read_every = 4;         // writes per owner read
  uint64_t reader_post_every = 16; // writes (frees) per reader service
  uint64_t seed = 1;
};

class OverflowSpillGenerator {
 public:
  explicit OverflowSpillGenerator(const OverflowSpillParams& p) : p_(p) {}
  const OverflowSpillParams& params() const noexcept { return p_; }

  template <class Ex>
  void run(Ex& ex) const {
    State<Ex> s(p_, ex);
    while (ex.live_bytes() < p_.fill_bytes) s.write_one(s.next_size());
    for (; !s.short_q.empty(); s.short_q.pop_front()) ex.free(s.short_q.front().first);
    s.short_phase = false;
    ex.fill_done();
    uint64_t freed_bytes = 0;
    const size_t to_free = size_t(double(s.live.size()) * p_.free_fraction);
    for (size_t n = 0, tries = 0; n < to_free && !s.live.empty() && tries < 4 * to_free + 16; ++tries) {
      const size_t k = s.pick(s.live.size());
      const size_t b = s.live[k];
      if (ex.pinned(b)) continue;
      freed_bytes += s.len[b];
      ex.free(b);
      s.live[k] = s.live.back();
      s.live.pop_back();
      ++n;
      if (n % p_.reader_post_every == 0) s.serve();
    }
    ex.free_done(freed_bytes);
    for (uint64_t w = 0; w < freed_bytes;) w += s.write_one(s.next_size());
    ex.refill_done();
  }

 private:
  template <class Ex>
  struct State {
    State(const OverflowSpillParams& params, Ex& e) : p(params), ex(e), rng(params.seed) {}
    const OverflowSpillParams& p;
    Ex& ex;
    std::mt19937_64 rng;
    std::vector<uint32_t> len;                        // by blob
    std::vector<size_t> live;                         // live long-lived blobs
    std::deque<std::pair<size_t, uint64_t>> short_q;  // (blob, due write count)
    uint64_t writes = 0;
    bool short_phase = true;  // short-lived blobs are written in the fill only

    double coin() { return double(rng() >> 11) * 0x1.0p-53; }
    size_t pick(size_t n) { return size_t(rng() % n); }
    uint32_t next_size() {
      if (coin() < p.fraction_4k) return 4096;
      return p.min_size + uint32_t(rng() % (uint64_t(p.max_size - p.min_size) + 1));
    }
    void serve() {
      ex.serve_readers([this]() -> int64_t {
        if (live.empty()) return -1;
        return int64_t(coin() < 0.5 ? live.back() : live[pick(live.size())]);
      });
    }
    uint64_t write_one(uint32_t n) {
      const size_t b = ex.write(n);
      len.push_back(n);
      ++writes;
      if (short_phase && coin() < p.short_lived_fraction) short_q.emplace_back(b, writes + p.short_lifetime);
      else live.push_back(b);
      for (; !short_q.empty() && short_q.front().second <= writes; short_q.pop_front()) ex.free(short_q.front().first);
      ex.observe();
      if (writes % p.read_every == 0 && !live.empty()) ex.read(live[pick(live.size())]);
      if (writes % p.reader_post_every == 0) serve();
      return n;
    }
  };

  OverflowSpillParams p_;
};

}  // namespace znslab::workloads
