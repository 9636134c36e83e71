// Every assignment form into page storage becomes a barrier; other stores are untouched.
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -fsyntax-only -Xclang -verify %s
// expected-no-diagnostics
struct [[mmsb::page]] S { int n; float f; unsigned u; };
[[mmsb::page]] S g;
int plain;

void Stores(int v) {
  // CHECK: ::mmsb::rt::ws(&(g.n)) = v;
  g.n = v;
  // CHECK: ::mmsb::rt::ws(&(g.n)) += v;
  g.n += v;
  // CHECK: ::mmsb::rt::ws(&(g.n)) -= v;
  g.n -= v;
  // CHECK: ::mmsb::rt::ws(&(g.n)) *= v;
  g.n *= v;
  // CHECK: ::mmsb::rt::ws(&(g.n)) /= v;
  g.n /= v;
  // CHECK: ::mmsb::rt::ws(&(g.n)) %= v;
  g.n %= v;
  // CHECK: ::mmsb::rt::ws(&(g.u)) <<= 1;
  g.u <<= 1;
  // CHECK: ::mmsb::rt::ws(&(g.u)) >>= 1;
  g.u >>= 1;
  // CHECK: ::mmsb::rt::ws(&(g.u)) &= 3u;
  g.u &= 3u;
  // CHECK: ::mmsb::rt::ws(&(g.u)) |= 3u;
  g.u |= 3u;
  // CHECK: ::mmsb::rt::ws(&(g.u)) ^= 3u;
  g.u ^= 3u;
  // CHECK: ++::mmsb::rt::ws(&(g.n));
  ++g.n;
  // CHECK: --::mmsb::rt::ws(&(g.n));
  --g.n;
  // CHECK: ::mmsb::rt::ws(&(g.n))++;
  g.n++;
  // CHECK: ::mmsb::rt::ws(&(g.n))--;
  g.n--;
  // Chained: both destinations, the value of the inner assignment flows on.
  // CHECK: ::mmsb::rt::ws(&(g.f)) = ::mmsb::rt::ws(&(g.n)) = 4;
  g.f = g.n = 4;
  // The result keeps its value category: an lvalue that can be assigned again.
  // CHECK: ::mmsb::rt::ws(&((::mmsb::rt::ws(&(g.n)) = 1))) = 2;
  (g.n = 1) = 2;
  // Whole-object assignment.
  // CHECK: ::mmsb::rt::ws(&(g)) = S{};
  g = S{};
  // CHECK: plain = v;
  plain = v;
  // CHECK: int r = g.n + plain;
  int r = g.n + plain;
  (void)r;
}
