#include "common.h"
int Logger(int k) {
  auto f = [k](int j) { return j * k; };
  printf("logger %d\n", f(k));
  return k;
}
static int Helper(int x) { return x + 11; }
int Caller(int x) { return Helper(x) * 2; }
int Scale(int x) { return x * 5; }
int Report(int x) { printf("Report %d\n", x); return x; }
int UsesScale(int x) { return Scale(x) + 1; }
int Stable(int x) { return Shared(x) - 1; }
[[gnu::cold]] void Tune() {}
int Sum(int n) {
  int s = 0;
#pragma clang loop unroll(disable)
  for (int i = 0; i < n; ++i) s += i;
  return s;
}
