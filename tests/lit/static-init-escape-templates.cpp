// Static variables in templates whose initialisers point into static pages: a function
// template's static locals (the list's type dependent or not, its elements dependent or not), a
// generic lambda's, a class template's static data members (in the class, or defined out of it)
// and a variable template. Their initialisers are constant, so the Escape around them never
// runs: each gets a StaticEscape registrar in the pattern (static-init-escape.cpp has the rest;
// the generator's static_init_alias writes through each, an epoch later).
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %rw %s -- -Wmmsb-unrewritable 2>&1 >/dev/null | FileCheck %s --check-prefix=WARN --allow-empty
// RUN: %cxx -fsyntax-only %s
#include <mini_std.h>
struct [[mmsb::page]] S {
  int a[64];
  long long b[32];
};
[[mmsb::page]] S g0;
[[mmsb::page]] S g1;
struct Pair {
  int* p;
  int* q;
};
template <class T>
struct P2 {
  T* p;
  T* q;
};
template <class T>
struct R2 {
  T& r;
};

// Elements that depend on the template's parameter: checked in each instantiation, the
// registrar from the pattern.
// CHECK: static int* ps[2] = {::mmsb::rt::Escape(&g0.a[K]), ::mmsb::rt::Escape(&g1.a[K])};{{.*}} static ::mmsb::rt::StaticEscape _mmsb_static_escape_{{[0-9]+}}{(const void*)&(::g0)}; static ::mmsb::rt::StaticEscape _mmsb_static_escape_{{[0-9]+}}{(const void*)&(::g1)};
template <int K>
int* Dependent() {
  static int* ps[2] = {&g0.a[K], &g1.a[K]};
  return ps[1];
}
// CHECK: static Pair pr{{.*}};{{.*}} static ::mmsb::rt::StaticEscape {{.*}}(::g0){{.*}}(::g1)
template <int K>
int* Aggregate() {
  static Pair pr{&g0.a[K + 1], &g1.a[K + 1]};
  return pr.q;
}
// A list whose type depends on the parameter has no semantic form in the pattern.
// CHECK: static P2<T> pr{{.}}::mmsb::rt::Escape(&g0.a[1]), ::mmsb::rt::Escape(&g1.a[2])};{{.*}}(::g0){{.*}}(::g1)
// CHECK-NEXT: static T* ps[2] = {::mmsb::rt::Escape(&g0.a[3]), ::mmsb::rt::Escape(&g1.a[4])};{{.*}}(::g0){{.*}}(::g1)
template <class T>
T* DependentType() {
  static P2<T> pr{&g0.a[1], &g1.a[2]};
  static T* ps[2] = {&g0.a[3], &g1.a[4]};
  return pr.q + (ps[0] - ps[0]);
}
// A reference member bound to page storage.
// CHECK: static R2<T> r{{.}}::mmsb::rt::EscapeRef(g1.a[7])};{{.*}}StaticEscape {{.*}}(::g1)};
template <class T>
T& ReferenceMember() {
  static R2<T> r{g1.a[7]};
  return r.r;
}
// A read-only view escapes nothing.
// CHECK: {{^}}  static const T* cp{&g0.a[10]};{{$}}
template <class T>
const T* ConstOnly() {
  static const T* cp{&g0.a[10]};
  return cp;
}
// Static data members of a class template: one initialised in the class gets its registrar
// after the class (at namespace scope: a class template's members are instantiated only when
// used); one defined out of the class, after its definition.
// CHECK: static inline int* kept = ::mmsb::rt::Escape(&g1.a[9]);
// CHECK-NEXT: static int* later;
// CHECK-NEXT: static T* dependent;
// CHECK-NEXT: };{{.*}}StaticEscape {{.*}}(::g1)};
template <class T>
struct Box {
  static inline int* kept = &g1.a[9];
  static int* later;
  static T* dependent;
};
// CHECK: int* Box<T>::later = ::mmsb::rt::Escape(&g0.a[9]);{{.*}}StaticEscape {{.*}}(::g0)};
template <class T>
int* Box<T>::later = &g0.a[9];
// Its type depends on the parameter: no Escape in the pattern (no instantiation gives one a
// place either: the definition's text is shared), the registrar all the same.
// CHECK: T* Box<T>::dependent = &g1.a[12];{{.*}}StaticEscape {{.*}}(::g1)};
template <class T>
T* Box<T>::dependent = &g1.a[12];
// A nested class of a class template: after the outermost class.
// CHECK: struct Inner {
// CHECK-NEXT: static inline int* p = ::mmsb::rt::Escape(&g1.a[8]);
// CHECK-NEXT: };
// CHECK-NEXT: };{{.*}}StaticEscape {{.*}}(::g1)};
template <class T>
struct Outer {
  struct Inner {
    static inline int* p = &g1.a[8];
  };
};
// A variable template.
// CHECK: int* g_vt = ::mmsb::rt::Escape(&g1.a[5]);{{.*}}StaticEscape {{.*}}(::g1)};
template <class T>
int* g_vt = &g1.a[5];
// A generic lambda's static local.
// CHECK: static int* ps[2] = {{.*}};{{.*}}(::g0){{.*}}(::g1)
auto g_generic = [](auto v) {
  static int* ps[2] = {&g0.a[6], &g1.a[7]};
  *ps[1] = v;
};

// Storage named through a template parameter (`&T::page.a[3]`): no name in the pattern says which
// page, so the rewriter says it cannot track it, except for a function's static pointer, which
// each instantiation follows like any local pointer (its stores get barriers).
struct Holder {
  static S page;
};
// WARN: [[@LINE+3]]:22: warning: static variable 'dp' cannot be instrumented (its constant initialiser points into storage named through a template parameter, whose page cannot be named here)
template <class T>
struct ViaParam {
  static inline int* dp = &T::page.a[3];
};
// WARN: [[@LINE+2]]:6: warning: static variable 'g_dv' cannot be instrumented
template <class T>
int* g_dv = &T::page.a[4];
template <class T>
int* ViaParamArray() {
  // WARN: [[@LINE+1]]:15: warning: static variable 'ps' cannot be instrumented
  static int* ps[2] = {&T::page.a[5], &T::page.a[6]};
  return ps[1];
}
template <class T>
void ViaParamPointer(int v) {
  static int* p = &T::page.a[7];  // followed: no warning
  *p = v;
}

// The instantiations compile with their registrars (the last RUN line).
void Use() {
  *Dependent<4>() = 1;
  *Aggregate<5>() = 2;
  *DependentType<int>() = 3;
  ReferenceMember<int>() = 4;
  (void)ConstOnly<int>();
  *Box<int>::kept = 5;
  *Box<int>::later = 6;
  *Box<int>::dependent = 10;
  *Outer<int>::Inner::p = 7;
  *g_vt<int> = 8;
  g_generic(9);
  *ViaParam<Holder>::dp = 11;
  *g_dv<Holder> = 12;
  *ViaParamArray<Holder>() = 13;
  ViaParamPointer<Holder>(14);
}
// WARN-NOT: warning:
