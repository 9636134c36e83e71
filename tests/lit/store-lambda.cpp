// Lambdas (plain, generic, capturing) and range-for with non-const references. A lambda's call
// operator is implicitly constexpr, so its barriers take the constexpr-safe form wc().
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -fsyntax-only %s
struct [[mmsb::page]] P { int v; float f[8]; float grid[2][4]; };
[[mmsb::page]] P g;

void Lambdas(P* p) {
  // CHECK: auto set = [p](int x) { ::mmsb::rt::ws(&(p->v)) = x; };
  auto set = [p](int x) { p->v = x; };
  set(1);
  // A generic lambda's body is rewritten from its instantiations, in the forwarding form.
  // CHECK: auto gen = [](auto& q) { ::mmsb::rt::wt(q).v += 1; };
  auto gen = [](auto& q) { q.v += 1; };
  gen(*p);
  // CHECK: [&] { ::mmsb::rt::ws(&(g.f[0])) = 2; }();
  [&] { g.f[0] = 2; }();
  // An init-capture by reference is followed like a local reference.
  // CHECK: [&r = g.f[1]] { ::mmsb::rt::ws(&(r)) *= 2; }();
  [&r = g.f[1]] { r *= 2; }();
}

void Opaque();
void RangeFor(P* p) {
  // Over a page array, the array is marked once before the loop (see loop-marks.cpp).
  // CHECK: { {{.*}} ::mmsb::rt::ScopedMark _mmsb_loop_mark_{{[0-9]+}}(::mmsb::rt::detail::Bytes(&(g.f)), sizeof(g.f)); {{.*}} for (float& x : g.f) x = 1; }
  for (float& x : g.f) x = 1;
  // CHECK: { {{.*}} ::mmsb::rt::ScopedMark _mmsb_loop_mark_{{[0-9]+}}(::mmsb::rt::detail::Bytes(&(p->f)), sizeof(p->f)); {{.*}} for (auto&& x : p->f) x += 1; }
  for (auto&& x : p->f) x += 1;
  // Arrays of arrays: the inner range is the outer loop variable.
  // CHECK: { {{.*}} ::mmsb::rt::ScopedMark _mmsb_loop_mark_{{[0-9]+}}(::mmsb::rt::detail::Bytes(&(g.grid)), sizeof(g.grid)); {{.*}} for (auto& row : g.grid) for (float& c : row) c++; }
  for (auto& row : g.grid) for (float& c : row) c++;
  // Otherwise the loop variable refers into the page: stores through it get barriers.
  // CHECK: for (float& x : g.f) { ::mmsb::rt::ws(&(x)) = 1; Opaque(); }
  for (float& x : g.f) { x = 1; Opaque(); }
  // A const reference cannot write: untouched.
  // CHECK: for (const float& x : g.f) (void)x;
  for (const float& x : g.f) (void)x;
  // A loop variable passed on to an unknown function escapes like any reference.
  // CHECK: for (float& x : g.f) Sink(::mmsb::rt::EscapeRef(x));
  void Sink(float&);
  for (float& x : g.f) Sink(x);
}
