// A store to a destination less aligned than its type (a packed member, #pragma pack, an aligned
// struct at an odd offset) goes through wsu, which stores with memcpy; an aligned one keeps ws,
// whatever its struct. The alignment comes from the record layout, not from the member's type.
// Where wsu cannot serve (the result is used as an lvalue, a bit-field of a misaligned object),
// the store stays as written and the page is escaped, with a warning; in template code, an error.
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -fsyntax-only -Xclang -verify %s
// RUN: %cxx -fsyntax-only -Werror -fplugin-arg-mmsb-Wno-mmsb-unrewritable %s
// RUN: not %cxx -fsyntax-only -DTEMPLATE %s 2>&1 | FileCheck %s --check-prefix=TEMPLATE
#include <stdint.h>

struct Vec { int a; double b; };
struct Bits { unsigned level : 4; };
struct [[mmsb::page]] __attribute__((packed)) P {
  char c;
  int i;
  char aligned_c;
  int32_t at8;   // offset 6: misaligned
  double d;      // offset 10
  Vec vec;       // offset 18
  Bits bits;     // offset 34
  int arr[4];    // offset 38
};
struct [[mmsb::page]] __attribute__((packed)) Even {
  int first;     // offset 0 of a packed struct: still misaligned (the struct's alignment is 1)
};
#pragma pack(push, 2)
struct [[mmsb::page]] Two { char c; short s; int i; };
#pragma pack(pop)
struct [[mmsb::page]] Plain { char c; int i; P inner; };
struct [[mmsb::page]] __attribute__((aligned(8))) Wide { int lo; int hi; };

[[mmsb::page]] P g;
[[mmsb::page]] Two two;
[[mmsb::page]] Plain plain;
[[mmsb::page]] Wide wide;

void Stores(int v, P* p, Even* e) {
  // CHECK: ::mmsb::rt::wsu(&(g.i)) _Pragma("clang diagnostic pop") = v;
  g.i = v;
  // CHECK: ::mmsb::rt::ws(&(g.aligned_c)) = 'x';
  g.aligned_c = 'x';
  // CHECK: ::mmsb::rt::wsu(&(g.d)) _Pragma("clang diagnostic pop") += 1.5;
  g.d += 1.5;
  // CHECK: ++_Pragma("clang diagnostic push") _Pragma("clang diagnostic ignored \"-Waddress-of-packed-member\"") ::mmsb::rt::wsu(&(g.at8)) _Pragma("clang diagnostic pop");
  ++g.at8;
  // CHECK: ::mmsb::rt::wsu(&(p->d)) _Pragma("clang diagnostic pop")--;
  p->d--;
  // CHECK: ::mmsb::rt::wsu(&(e->first)) _Pragma("clang diagnostic pop") = 1;
  e->first = 1;
  // CHECK: ::mmsb::rt::wsu(&(g.vec.b)) _Pragma("clang diagnostic pop") = 2;
  g.vec.b = 2;
  // CHECK: ::mmsb::rt::wsu(&(g.vec)) _Pragma("clang diagnostic pop") = Vec{1, 2};
  g.vec = Vec{1, 2};
  // CHECK: ::mmsb::rt::wsu(&(g.arr[v])) _Pragma("clang diagnostic pop") = 3;
  g.arr[v] = 3;
  // CHECK: ::mmsb::rt::ws(&(two.s)) = 1;
  two.s = 1;
  // CHECK: ::mmsb::rt::wsu(&(two.i)) _Pragma("clang diagnostic pop") = 1;
  two.i = 1;
  // CHECK: ::mmsb::rt::ws(&(plain.i)) = 1;
  plain.i = 1;
  // CHECK: ::mmsb::rt::wsu(&(plain.inner.i)) _Pragma("clang diagnostic pop") = 1;
  plain.inner.i = 1;
  // CHECK: ::mmsb::rt::ws(&(wide.hi)) = 1;
  wide.hi = 1;
  // CHECK: int r = _Pragma("clang diagnostic push") {{.*}} ::mmsb::rt::wsu(&(g.i)) _Pragma("clang diagnostic pop") = 4;
  int r = g.i = 4;
  (void)r;
}

void AsLvalue() {
  // CHECK: ::mmsb::rt::Escape(&(::g)); int& ref = (g.i = 4);
  int& ref = (g.i = 4); // expected-warning {{store into page storage cannot be rewritten (its destination is less aligned than its type); the page is marked escaped}}
  (void)ref;
  // CHECK: ::mmsb::rt::Escape(&(::g)); (g.i = 5) += 1;
  (g.i = 5) += 1; // expected-warning 2 {{store into page storage cannot be rewritten (its destination is less aligned than its type); the page is marked escaped}}
  // CHECK: ::mmsb::rt::Escape(&(::g)); g.bits.level = 3;
  g.bits.level = 3; // expected-warning {{store into page storage cannot be rewritten (its destination is less aligned than its type); the page is marked escaped}}
}

// A braced scalar goes through wsu's `=` as through the built-in one (plain clang does not warn);
// a volatile destination keeps the user's store (memcpy has no volatile form), escaped.
struct [[mmsb::page]] __attribute__((packed)) Q { char c; short s; volatile int vol; };
[[mmsb::page]] Q q;

void BracedAndVolatile(int v) {
  // CHECK: ::mmsb::rt::wsu(&(q.s)) _Pragma("clang diagnostic pop") = {3};
  q.s = {3};
  // CHECK: ::mmsb::rt::Escape(&(::q)); q.vol = v;
  q.vol = v; // expected-warning {{store into page storage cannot be rewritten (a volatile destination less aligned than its type); the page is marked escaped}}
  // CHECK: ::mmsb::rt::Escape(&(::q)); q.vol += 1;
  q.vol += 1; // expected-warning {{store into page storage cannot be rewritten (a volatile destination less aligned than its type); the page is marked escaped}}
}

// Template code over a packed type: the object is marked first and the store stays the user's,
// which the compiler knows is to a packed member.
template <class T> void Set(T& t) {
  // CHECK: ::mmsb::rt::wt(t).i = 5;
  t.i = 5;
}
void UseSet() { Set(g); }

#ifdef TEMPLATE
// A member of a packed class template, stored through `this`: one edit would serve every
// instantiation, so this is an error.
template <class T> struct [[mmsb::page]] __attribute__((packed)) Box {
  char c;
  T v;
  void Put(T x) { v = x; }
};
[[mmsb::page]] Box<int> box;
void UseBox() { box.Put(3); }
// TEMPLATE: error: store to 'v' in template code cannot be tracked: its destination is less aligned than its type
#endif
