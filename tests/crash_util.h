// Helpers for the fork/kill -9 crash tests of [pager], [subpage], [overflow]:
// a pipe carrying uint64 values between parent and child, waitpid with the
// exit status or -signal, and the trial count (ZNSLAB_CRASH_TRIALS overrides
// the default; the figure is 200).
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <time.h>

#include <cstdint>
#include <algorithm>
#include <cstdlib>

namespace znslab::testutil {

class Channel {
 public:
  Channel() {
    if (::pipe(fd_) != 0) fd_[0] = fd_[1] = -1;
  }
  ~Channel() {
    if (fd_[0] >= 0) ::close(fd_[0]);
    if (fd_[1] >= 0) ::close(fd_[1]);
  }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;
  // Writes one value (async-signal-safe; child side).
  void send(uint64_t v) { (void)!::write(fd_[1], &v, sizeof v); }
  // Blocks for one value; 0 on EOF/error.
  uint64_t recv() {
    uint64_t v = 0;
    size_t got = 0;
    while (got < sizeof v) {
      ssize_t n = ::read(fd_[0], reinterpret_cast<char*>(&v) + got, sizeof v - got);
      if (n <= 0) return 0;
      got += size_t(n);
    }
    last_ = v;
    return v;
  }
  // Parent side: blocks until a value >= `target` arrives (true) or EOF.
  bool wait_for(uint64_t target) {
    for (;;) {
      uint64_t v = recv();
      if (v == 0) return false;
      if (v >= target) return true;
    }
  }
  // Parent side after the child is gone: closes the write end, reads what
  // is left and returns the last complete value received (0 if none).
  uint64_t drain_last() {
    if (fd_[1] >= 0) { ::close(fd_[1]); fd_[1] = -1; }
    while (recv() != 0) {
    }
    return last_;
  }

 private:
  int fd_[2];
  uint64_t last_ = 0;
};

// Exit status of pid, or -signal when it was killed; -1000 on error.
inline int wait_exit(pid_t pid) {
  int st = 0;
  if (::waitpid(pid, &st, 0) != pid) return -1000;
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return -WTERMSIG(st);
  return -1000;
}

// CLOCK_MONOTONIC in microseconds (to size kill delays to the child's run).
inline uint64_t now_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000u + uint64_t(ts.tv_nsec) / 1000u;
}

inline int crash_trials(int dflt) {
  const char* e = std::getenv("ZNSLAB_CRASH_TRIALS");
  if (e && *e) return std::max(1, std::atoi(e));
  return dflt;
}

}  // namespace znslab::testutil
