// The phase runner's core: PhaseRun and ReaderPool (harness/phase_runner.h).
#include "harness/phase_runner.h"

#include <cstdarg>
#include <cstdio>

namespace znslab::harness {

using nlohmann::json;

PhaseRun::PhaseRun(RunContext& ctx, std::string experiment) : ctx_(ctx), x_(std::move(experiment)) {
  doc().doc()["timer"] = timer_json();
}

void PhaseRun::sample(const char* phase, const json& fields) {
  const uint64_t t0 = monotonic_ns();
  json s = sampler_.sample();
  s["phase"] = phase;
  for (auto it = fields.begin(); it != fields.end(); ++it) s[it.key()] = it.value();
  doc().add_sample(std::move(s));
  sampling_ns_ += monotonic_ns() - t0;
}

void PhaseRun::progress(const char* fmt, ...) const {
  if (!ctx_.progress) return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "%s: %s\n", x_.c_str(), line);
}

void PhaseRun::fail(const std::string& what, const Status& s) const {
  throw RunError(x_ + ": " + what + ": " + s.to_string());
}

void PhaseRun::fail(const std::string& what) const { throw RunError(x_ + ": " + what); }

void ReaderPool::start(int n, std::function<Handler(int)> make) {
  for (int i = 0; i < n; ++i) {
    boxes_.push_back(std::make_unique<Box>());
    Box* b = boxes_.back().get();
    threads_.emplace_back([b, i, make] { loop(b, make(i)); });
  }
}

void ReaderPool::loop(Box* b, Handler h) {
  uint64_t seen = 0;
  for (;;) {
    b->req.wait(seen, std::memory_order_acquire);
    if (b->stop.load(std::memory_order_acquire)) break;
    seen = b->req.load(std::memory_order_acquire);
    if (h) h(b->job);
    b->done.store(seen, std::memory_order_release);
  }
}

bool ReaderPool::idle(int i) const noexcept {
  const Box& b = *boxes_[size_t(i)];
  return b.done.load(std::memory_order_acquire) == b.req.load(std::memory_order_relaxed);
}

bool ReaderPool::has_job(int i) const noexcept { return boxes_[size_t(i)]->req.load(std::memory_order_relaxed) != 0; }

void ReaderPool::post(int i, const ReaderJob& j, uint64_t cookie) {
  Box& b = *boxes_[size_t(i)];
  b.job = j;
  b.cookie = cookie;
  b.req.store(b.req.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  b.req.notify_one();
}

void ReaderPool::stop() {
  for (size_t i = 0; i < boxes_.size(); ++i) {
    Box& b = *boxes_[i];
    if (b.stop.load(std::memory_order_relaxed)) continue;
    while (!idle(int(i))) std::this_thread::yield();
    b.stop.store(true, std::memory_order_release);
    b.req.fetch_add(1, std::memory_order_release);
    b.req.notify_one();
  }
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

}  // namespace znslab::harness
