// A variable of static storage duration whose initialiser points into a static page: the Escape
// wrapped around the initialiser is constexpr, so a constant initialiser never runs it (and a
// dynamic one may run before the page is registered, in another TU). A StaticEscape registrar
// after the declaration marks each page escaped once both exist (runtime: BusTest's
// StaticEscapeBeforeOrAfterRegistrationEscapesThePage; the generator's static_init_alias).
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %rw %s -- -Rmmsb-escape 2>&1 >/dev/null | FileCheck %s --check-prefix=REMARK
// RUN: %rw %s -- -Wmmsb-unrewritable 2>&1 >/dev/null | FileCheck %s --check-prefix=WARN --allow-empty
// RUN: %cxx -fsyntax-only %s
#include <mini_std.h>
struct Cell {
  int a;
  double b;
};
struct [[mmsb::page]] S {
  int a[64];
  long long b[32];
  Cell cells[4];
};
[[mmsb::page]] S g0;
[[mmsb::page]] S g1;
int* Slot(S& s, int k);

// CHECK: int& g_ref = ::mmsb::rt::EscapeRef(g0.a[5]);{{.*}} static ::mmsb::rt::StaticEscape _mmsb_static_escape_1{(const void*)&(::g0)};
// REMARK: [[@LINE+1]]:6: remark: page of '::g0' is marked escaped and diffed in full at every commit: the initialiser of static variable 'g_ref' points into it
int& g_ref = g0.a[5];
// CHECK: long long* const g_end = ::mmsb::rt::Escape(g0.b + 3);{{.*}} static ::mmsb::rt::StaticEscape _mmsb_static_escape_2{(const void*)&(::g0)};
long long* const g_end = g0.b + 3;
// Two declarators, two pages, one `;`: both registrars after it.
// CHECK: int *g_p = ::mmsb::rt::Escape(&g0.a[1]), *g_q = ::mmsb::rt::Escape(&g1.cells[2].a);{{.*}}_mmsb_static_escape_3{(const void*)&(::g0)};{{.*}}_mmsb_static_escape_4{(const void*)&(::g1)};
int *g_p = &g0.a[1], *g_q = &g1.cells[2].a;
// A conditional: both pages.
// CHECK: Cell* g_c = {{.*}}_mmsb_static_escape_5{(const void*)&(::g0)};{{.*}}_mmsb_static_escape_6{(const void*)&(::g1)};
Cell* g_c = sizeof(int) == 4 ? &g0.cells[1] : &g1.cells[1];
// A const pointee escapes nothing; neither does a lambda's body (it runs when called).
// CHECK: {{^}}const int* g_read = &g1.a[3];{{$}}
const int* g_read = &g1.a[3];
// CHECK: {{^}}auto g_lam = [] { return ::mmsb::rt::Escape(&g0.a[7]); };{{$}}
auto g_lam = [] { return &g0.a[7]; };
// constexpr alike (a pointer to non-const storage may be constexpr).
// CHECK: constexpr int* g_cp = ::mmsb::rt::Escape(&g1.a[3]);{{.*}}_mmsb_static_escape_7{(const void*)&(::g1)};
constexpr int* g_cp = &g1.a[3];
// Through a reference to a page: its page.
// CHECK: constexpr S& g_alias = g0;
constexpr S& g_alias = g0;
// CHECK: int* g_via = ::mmsb::rt::Escape(&g_alias.a[2]);{{.*}}_mmsb_static_escape_8{(const void*)&(::g0)};
int* g_via = &g_alias.a[2];
// A dynamic initialiser runs its own Escape (the runtime keeps it until the page is registered,
// page_test's StaticEscapeBeforeOrAfterRegistrationEscapesThePage): no registrar, no warning.
// CHECK: {{^}}int* g_slot = Slot(g0, 2);
int* g_slot = Slot(g0, 2);
// A static data member initialised in its class: no registrar can go in a class, so it goes
// after the class, at namespace scope; one defined out of its class gets it after its definition.
// CHECK: static inline int* kept = ::mmsb::rt::Escape(&g1.a[8]);
// CHECK-NEXT: static int* defined_outside;
// CHECK-NEXT: };{{.*}} static ::mmsb::rt::StaticEscape _mmsb_static_escape_9{(const void*)&(::g1)};
struct Holder {
  static inline int* kept = &g1.a[8];
  static int* defined_outside;
};
// CHECK: int* Holder::defined_outside = ::mmsb::rt::Escape(&g0.a[9]);{{.*}} static ::mmsb::rt::StaticEscape _mmsb_static_escape_10{(const void*)&(::g0)};
int* Holder::defined_outside = &g0.a[9];
// A static data member of a local class cannot be initialised in it (C++), so every class that
// can hold one is reachable from namespace scope. WARN-NOT: warning:

void Use() {
  // Static local pointers and references are followed: their stores get barriers, and they
  // need no registrar.
  // CHECK: static int* sp = &g1.a[3]; ::mmsb::rt::ws(&(*sp)) = 1;
  static int* sp = &g1.a[3]; *sp = 1;
  // CHECK: static int& sr = g0.a[4];
  // CHECK-NEXT: ::mmsb::rt::ws(&(sr)) = 2;
  static int& sr = g0.a[4];
  sr = 2;
}
