/* A CPU-bound program with known hot functions, compiled with frame
 * pointers so perf's default call graphs see main -> hot_middle ->
 * hot_leaf. Runs for the number of seconds given (default 30). */
#include <stdlib.h>
#include <time.h>

volatile unsigned long sink;

__attribute__((noinline)) void hot_leaf(void) {
  for (unsigned long i = 0; i < 1000000; ++i)
    sink += i * i;
}

__attribute__((noinline)) void hot_middle(void) {
  hot_leaf();
  sink += 1; /* not a tail call: hot_middle keeps its frame */
}

int main(int argc, char** argv) {
  int seconds = argc > 1 ? atoi(argv[1]) : 30;
  time_t end = time(NULL) + seconds;
  while (time(NULL) < end)
    hot_middle();
  return 0;
}
