// Templates: a store in a template is rewritten once, in the pattern, when an instantiation
// writes page storage. The edit takes the forwarding form wt(), which works for every
// instantiation (over plain types too, where the barrier finds no page and does nothing).
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -fsyntax-only -Wno-unknown-warning-option -Wno-mmsb-untracked %s
// RUN: %cxx -S -emit-llvm -O0 -Wno-unknown-warning-option -Wno-mmsb-untracked %s -o - | FileCheck %s --check-prefix=IR
#include <mini_std.h>
struct [[mmsb::page]] P { int v; float f[4]; };
struct Plain { int v; float f[4]; };
struct [[mmsb::page]] Row {
  int cells[4];
  int& operator[](int i) { return cells[i]; }
};

void Opaque();
template <class T> void Set(T& t, int x) {
  // CHECK: ::mmsb::rt::wt(t).v = x;
  t.v = x;
  // CHECK: { {{.*}} ::mmsb::rt::ScopedMark _mmsb_loop_mark_{{[0-9]+}}(::mmsb::rt::detail::Bytes(&(t.f)), sizeof(t.f)); {{.*}} for (float& e : t.f) e = 0; }
  for (float& e : t.f) e = 0;
  // CHECK: for (float& e : t.f) { ::mmsb::rt::wst(e) = 1; Opaque(); }
  for (float& e : t.f) { e = 1; Opaque(); }
}
// A template never instantiated over a page type is left alone.
template <class T> void Other(T& t) {
  // CHECK: t.v = 1;
  t.v = 1;
}
// Dependent code over a proxy reference still compiles: wt() forwards whatever it gets.
template <class C> void Clear(C& c) {
  // CHECK: ::mmsb::rt::wst(c[0]) = 0;
  c[0] = 0;
}
// Non-dependent stores inside a template take the plain form.
template <class T> void Touch(P& p) {
  // CHECK: ::mmsb::rt::ws(&(p.v)) = sizeof(T);
  p.v = sizeof(T);
}

// A class template marked as a page: its members' stores go through 'this', and each
// instantiation the TU uses gets a layout descriptor, found by argument-dependent lookup.
namespace geo {
template <class T> struct [[mmsb::page]] Box {
  T value;
  int count;
  // CHECK: void Put(T x) { ::mmsb::rt::wst(value) = x; ::mmsb::rt::wst(count)++; }
  void Put(T x) { value = x; count++; }
  // CHECK: static const ::mmsb::TypeDescriptor* _mmsb_type() noexcept { using ::mmsb::rt::_mmsb_describe; static const ::mmsb::TypeDescriptor* const _mmsb_d = _mmsb_describe(static_cast<Box*>(nullptr)); return _mmsb_d; } _Pragma("clang diagnostic pop") };
};
}  // namespace geo

void Use(P& p, Plain& q, std::vector<bool>& bits) {
  Set(p, 1);
  Set(q, 2);
  Other(q);
  static Row row;
  Clear(row);
  Clear(bits);
  Touch<int>(p);
  auto* b = new geo::Box<double>{};
  b->Put(1.5);
  delete b;
}
// Nothing is wrapped twice although Set is instantiated twice.
// CHECK-NOT: wt(::mmsb
// CHECK: namespace geo { inline const ::mmsb::TypeDescriptor* _mmsb_describe(::geo::Box<double>*) noexcept { return (::mmsb::rt::InternLayout("geo::Box<double>", 16u, 8u, {{[{][{]}}"value", 0u, 8u, ::mmsb::rt::kind::kF64, 8u, {}, ""}, {"count", 8u, 4u, ::mmsb::rt::kind::kI32, 4u, {}, ""}})); } }
// IR: define {{.*}} @_ZN3geo3BoxIdE10_mmsb_typeEv()
// IR: call {{.*}} @_ZN3geo14_mmsb_describeEPNS_3BoxIdEE(
