// A non-const member call on page storage marks the whole object first; const calls do not.
// RUN: %rw %s -- | FileCheck %s
// RUN: %cxx -fsyntax-only %s
#include <mini_std.h>
struct Acc {
  int sum;
  void Add(int v);
  int Get() const;
};
struct [[mmsb::page]] P {
  Acc acc;
  std::array<int, 4> arr;
  void Reset();
  // An implicit-this call to a member defined elsewhere is marked too.
  // CHECK: void Touch() { ::mmsb::rt::w(this)->Reset(); }
  void Touch() { Reset(); }
};
[[mmsb::page]] P g;

void Calls(P* p) {
  // CHECK: (*::mmsb::rt::w(&(g.acc))).Add(1);
  g.acc.Add(1);
  // CHECK: int v = g.acc.Get();
  int v = g.acc.Get();
  // CHECK: ::mmsb::rt::w(p)->Reset();
  p->Reset();
  // Non-const operator[] of a member object.
  // CHECK: (*::mmsb::rt::w(&(g.arr)))[2] = v;
  g.arr[2] = v;
}
