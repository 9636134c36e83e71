// A const member function may write its object's mutable members. Called on page storage (and
// not compiled in this file as a page type's member), it gets the held mark a non-const call gets;
// a const call on a type without mutable members gets none.
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -fsyntax-only %s
#include <mini_std.h>
struct Counter {
  int v;
  mutable int reads;
  int Peek() const {
    ++reads;
    return v;
  }
};
struct Outer {
  Counter c;
  int Total() const { return c.Peek(); }
};
struct Plain {
  int v;
  int Get() const { return v; }
};
struct [[mmsb::page]] P {
  Counter counter;
  Outer outer;
  Plain plain;
  Counter arr[2];
};
[[mmsb::page]] P g;

int Reads(const P& cp) {
  // CHECK: int t = ::mmsb::rt::MarkHeld(g.counter).Peek();
  int t = g.counter.Peek();
  // The mutable member is a member's member.
  // CHECK: t += ::mmsb::rt::MarkHeld(g.outer).Total();
  t += g.outer.Total();
  // CHECK: t += ::mmsb::rt::MarkHeld(g.arr[1]).Peek();
  t += g.arr[1].Peek();
  // CHECK: t += ::mmsb::rt::MarkHeld(cp.counter).Peek();
  t += cp.counter.Peek();
  // CHECK: t += g.plain.Get();
  t += g.plain.Get();
  return t;
}
