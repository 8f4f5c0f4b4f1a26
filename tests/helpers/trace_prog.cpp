// A small program with known allocations for the [trace] tests (run under
// build/libznstrace.so). Sizes 1000..9999 are reserved for the calls below
// so that tests can pick them out of everything the C/C++ runtime does.
//   trace_prog basic   a malloc family tour, a realloc chain, 2 threads, a
//                      cross-thread free
//   trace_prog fork    malloc(2001); fork: child malloc/free(2002) and exit(0)
//   trace_prog exec    malloc(3001), then exec itself as "exec2": malloc(3002)
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

void* g_cross = nullptr;

// Keeps the compiler from eliding a malloc/free pair.
void* escape(void* p) {
  asm volatile("" : : "g"(p) : "memory");
  return p;
}

void* worker(void* arg) {
  const long base = long(arg);
  void* p[4];
  for (int i = 0; i < 4; ++i) p[i] = escape(malloc(size_t(base + i)));
  for (int i = 3; i >= 0; --i) free(p[i]);
  if (base == 5000) g_cross = escape(malloc(5100));  // freed by main
  return nullptr;
}

int basic() {
  void* a = escape(malloc(1001));
  void* b = escape(calloc(2, 501));  // 1002 bytes
  void* c = escape(malloc(1003));
  c = escape(realloc(c, 1004));
  c = escape(realloc(c, 1005));
  void* d = nullptr;
  if (posix_memalign(&d, 64, 1006) != 0) return 1;
  void* e = escape(aligned_alloc(128, 1024));
  void* f = escape(memalign(256, 1008));
  void* g = escape(valloc(1009));
  if (malloc_usable_size(a) < 1001) return 1;
  pthread_t t1, t2;
  pthread_create(&t1, nullptr, worker, (void*)5000L);
  pthread_join(t1, nullptr);
  pthread_create(&t2, nullptr, worker, (void*)6000L);
  pthread_join(t2, nullptr);
  free(g_cross);
  free(g);
  free(f);
  free(e);
  free(d);
  c = escape(realloc(c, 0));  // frees
  free(b);
  free(a);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  if (!strcmp(argv[1], "basic")) return basic();
  if (!strcmp(argv[1], "fork")) {
    void* p = escape(malloc(2001));
    pid_t pid = fork();
    if (pid == 0) {
      void* q = escape(malloc(2002));
      free(q);
      exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    free(p);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
  }
  if (!strcmp(argv[1], "exec")) {
    void* p = escape(malloc(3001));
    free(p);
    execl("/proc/self/exe", argv[0], "exec2", (char*)nullptr);
    return 1;
  }
  if (!strcmp(argv[1], "exec2")) {
    void* p = escape(malloc(3002));
    free(p);
    return 0;
  }
  return 2;
}
