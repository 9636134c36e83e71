// Templates: a store in a template is rewritten once, in the pattern, when an instantiation
// writes page storage; instantiations over other types pass through the (harmless) barrier.
// RUN: %rw %s -- | FileCheck %s
// RUN: %cxx -fsyntax-only %s
struct [[mmsb::page]] P { int v; float f[4]; };
struct Plain { int v; float f[4]; };

template <class T> void Set(T& t, int x) {
  // CHECK: (*::mmsb::rt::w(&(t.v))) = x;
  t.v = x;
  // A range-for with a non-const reference over page storage marks the page escaped.
  // CHECK: for (float& e : (*[](auto* _mmsb_p) noexcept { ::mmsb::rt::MarkEscapedAt(_mmsb_p); return _mmsb_p; }(&(t.f)))) e = 0;
  for (float& e : t.f) e = 0;
}
// A template never instantiated over a page type is left alone.
template <class T> void Other(T& t) {
  // CHECK: t.v = 1;
  t.v = 1;
}
// A class template marked as a page: its members' stores go through 'this'.
template <class T> struct [[mmsb::page]] Box {
  T value;
  // CHECK: void Put(T x) { (*::mmsb::rt::w(&(value))) = x; }
  void Put(T x) { value = x; }
  // CHECK: static const ::mmsb::TypeDescriptor* _mmsb_type() noexcept { static const ::mmsb::TypeDescriptor* const _mmsb_d = nullptr; return _mmsb_d; } };
};

void Use(P& p, Plain& q) {
  Set(p, 1);
  Set(q, 2);
  Other(q);
  Box<int> b;  // expected by -Wmmsb-untracked elsewhere; here only the rewrite matters
  b.Put(3);
}
// Nothing is wrapped twice although Set is instantiated twice.
// CHECK-NOT: w(&((*{{:}}:mmsb
