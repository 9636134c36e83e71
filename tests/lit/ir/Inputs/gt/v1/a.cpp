#include "common.h"
static int Helper(int x) { return x + 10; }
int Caller(int x) { return Helper(x) * 2; }
int Scale(int x) { return x * 4; }
int Report(int x) { printf("report %d\n", x); return x; }
int UsesScale(int x) { return Scale(x) + 1; }
int Stable(int x) { return Shared(x) - 1; }
void Tune() {}
int Sum(int n) {
  int s = 0;
  for (int i = 0; i < n; ++i) s += i;
  return s;
}
