// Lambdas (plain and generic) and range-for with non-const references.
// RUN: %rw %s -- | FileCheck %s
// RUN: %cxx -fsyntax-only %s
struct [[mmsb::page]] P { int v; float f[8]; };
[[mmsb::page]] P g;

void Lambdas(P* p) {
  // CHECK: auto set = [p](int x) { (*::mmsb::rt::w(&(p->v))) = x; };
  auto set = [p](int x) { p->v = x; };
  set(1);
  // CHECK: auto gen = [](auto& q) { (*::mmsb::rt::w(&(q.v))) += 1; };
  auto gen = [](auto& q) { q.v += 1; };
  gen(*p);
  // CHECK: [&] { (*::mmsb::rt::w(&(g.f[0]))) = 2; }();
  [&] { g.f[0] = 2; }();
}

void RangeFor() {
  // CHECK: for (float& x : (*[](auto* _mmsb_p) noexcept { ::mmsb::rt::MarkEscapedAt(_mmsb_p); return _mmsb_p; }(&(g.f)))) x = 1;
  for (float& x : g.f) x = 1;
  // A const reference cannot write: untouched.
  // CHECK: for (const float& x : g.f) (void)x;
  for (const float& x : g.f) (void)x;
}
