// Regression (issue 13, class 3): page storage handed to uninstrumented code is marked when the
// call's operands are evaluated and again at the end of the full-expression, so that a commit in
// another argument (a [[mmsb::transaction]]) cannot consume the mark before the callee writes.
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -fsyntax-only %s
#include <mini_std.h>
struct Acc { long sum; void Add(int v) { sum += v; } };
struct [[mmsb::page]] P { Acc acc; std::array<int, 8> arr; int a[8]; };
[[mmsb::page]] P g;
[[mmsb::transaction]] int Produce();

void Calls(P* p) {
  // CHECK: ::mmsb::rt::MarkHeld(g.acc).Add(Produce());
  g.acc.Add(Produce());
  // CHECK: ::mmsb::rt::MarkHeld(g.arr).fill(Produce());
  g.arr.fill(Produce());
  // CHECK: __builtin_addressof(::mmsb::rt::MarkHeld(*((&p->acc))))->Add(Produce());
  (&p->acc)->Add(Produce());
  // CHECK: std::fill(::mmsb::rt::MarkFromHeld(g.a), ::mmsb::rt::MarkFromHeld(g.a + 8), Produce());
  std::fill(g.a, g.a + 8, Produce());
  // CHECK: std::swap(::mmsb::rt::MarkHeld(g.a[0]), ::mmsb::rt::MarkHeld(g.a[Produce()]));
  std::swap(g.a[0], g.a[Produce()]);
}
