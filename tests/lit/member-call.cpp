// A non-const member call on page storage marks the object first; const calls do not. Member
// functions of page types defined in the TU are instrumented themselves, so calling them marks
// nothing. A reference or pointer such a call returns is followed like page storage.
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -fsyntax-only %s
#include <mini_std.h>
struct Acc {
  int sum;
  void Add(int v);
  int Get() const;
  int& Ref();
};
struct [[mmsb::page]] P {
  Acc acc;
  std::array<int, 4> arr;
  int n;
  void Reset();
  void Bump() { n++; }
  // An implicit-this call to a member defined elsewhere is marked.
  // CHECK: void Touch() { __builtin_addressof(::mmsb::rt::MarkHeld(*this))->Reset(); }
  void Touch() { Reset(); }
  // One defined here is not.
  // CHECK: void Twice() { Bump(); Bump(); }
  void Twice() { Bump(); Bump(); }
};
[[mmsb::page]] P g;

void Calls(P* p) {
  // CHECK: ::mmsb::rt::MarkHeld(g.acc).Add(1);
  g.acc.Add(1);
  // CHECK: int v = g.acc.Get();
  int v = g.acc.Get();
  // CHECK: __builtin_addressof(::mmsb::rt::MarkHeld(*(p)))->Reset();
  p->Reset();
  // CHECK: p->Bump();
  p->Bump();
  // Non-const operator[] of a member object marks the member when it is evaluated and at the end
  // of the full-expression (the index may commit: class 3); the store needs no mark of its own.
  // CHECK: ::mmsb::rt::MarkHeld(g.arr)[2] = v;
  g.arr[2] = v;
  // CHECK: ::mmsb::rt::MarkHeld(g.acc).Ref() = 3;
  g.acc.Ref() = 3;
  // What the call returns is followed after it.
  // CHECK: int& r = ::mmsb::rt::MarkHeld(g.arr)[3];
  int& r = g.arr[3];
  // CHECK: ::mmsb::rt::ws(&(r)) = 6;
  r = 6;
  // CHECK: for (auto it = ::mmsb::rt::MarkHeld(g.arr).begin(); it != ::mmsb::rt::MarkHeld(g.arr).end(); ++it) ::mmsb::rt::ws(&(*it)) = 0;
  for (auto it = g.arr.begin(); it != g.arr.end(); ++it) *it = 0;
  // Through a pointer to member function, only the constness of the callee is known.
  void (Acc::*add)(int) = &Acc::Add;
  int (Acc::*get)() const = &Acc::Get;
  // CHECK: (::mmsb::rt::MarkHeld(g.acc).*add)(2);
  (g.acc.*add)(2);
  // CHECK: (g.acc.*get)();
  (g.acc.*get)();
  // Stores through pointers to data members.
  int P::*field = &P::n;
  // CHECK: ::mmsb::rt::ws(&(g.*field)) = 3;
  g.*field = 3;
  // CHECK: ::mmsb::rt::ws(&(p->*field)) += 1;
  p->*field += 1;
  // std::get hands the element through.
  // CHECK: ::mmsb::rt::ws(&(std::get<1>(g.arr))) = 1;
  std::get<1>(g.arr) = 1;
}
