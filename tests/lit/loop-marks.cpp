// Counted loops that write a page array by their induction variable mark the written range when
// the loop starts and again when it exits (a ScopedMark in a scope around the loop) instead of a
// barrier per store, so they compile (and vectorise) as without the plugin. Only when nothing in
// the loop can move the array, change the bounds, commit or synchronise.
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -fsyntax-only %s
#include <mini_std.h>
constexpr int kN = 64;
struct Cell { float a, b; };
struct [[mmsb::page]] P { float x[kN]; float v[kN]; Cell cells[kN]; float grid[8][8]; int n; };
[[mmsb::page]] P g;
void Opaque();

void Marked(P* p, int n, float dt) {
  // CHECK: { _Pragma("clang diagnostic push") _Pragma("clang diagnostic ignored \"-Weverything\"") ::mmsb::rt::ScopedMark _mmsb_loop_mark_{{[0-9]+}}(((0) < (kN)) ? ::mmsb::rt::detail::Bytes(&(p->v)[(0)]) : nullptr, ((0) < (kN)) ? sizeof((p->v)[(0)]) * static_cast<::std::size_t>((kN) - (0)) : 0); ::mmsb::rt::ScopedMark _mmsb_loop_mark_{{[0-9]+}}(((0) < (kN)) ? ::mmsb::rt::detail::Bytes(&(p->x)[(0)]) : nullptr, ((0) < (kN)) ? sizeof((p->x)[(0)]) * static_cast<::std::size_t>((kN) - (0)) : 0);  _Pragma("clang diagnostic pop") for (int i = 0; i < kN; ++i) {
  for (int i = 0; i < kN; ++i) {
    // CHECK: p->v[i] += p->x[i] * dt;
    p->v[i] += p->x[i] * dt;
    // CHECK: p->x[i] = std::min(p->x[i] + p->v[i], 1.f);
    p->x[i] = std::min(p->x[i] + p->v[i], 1.f);
  }
  // Members of elements, inclusive bounds, bounds from parameters, i += 1.
  // CHECK: { _Pragma("clang diagnostic push") _Pragma("clang diagnostic ignored \"-Weverything\"") ::mmsb::rt::ScopedMark _mmsb_loop_mark_{{[0-9]+}}(((2) <= (n)) ? ::mmsb::rt::detail::Bytes(&(g.cells)[(2)]) : nullptr, ((2) <= (n)) ? sizeof((g.cells)[(2)]) * static_cast<::std::size_t>((n) - (2) + 1) : 0);  _Pragma("clang diagnostic pop") for (int i = 2; i <= n; i += 1) g.cells[i].b = 0; }
  for (int i = 2; i <= n; i += 1) g.cells[i].b = 0;
  // Nested loops: the outer loop marks the rows it visits, whatever the inner index.
  // CHECK: { _Pragma("clang diagnostic push") _Pragma("clang diagnostic ignored \"-Weverything\"") ::mmsb::rt::ScopedMark _mmsb_loop_mark_{{[0-9]+}}(((0) < (8)) ? ::mmsb::rt::detail::Bytes(&(g.grid)[(0)]) : nullptr, ((0) < (8)) ? sizeof((g.grid)[(0)]) * static_cast<::std::size_t>((8) - (0)) : 0);  _Pragma("clang diagnostic pop") for (int r = 0; r < 8; ++r)
  for (int r = 0; r < 8; ++r)
    // CHECK: for (int c = 0; c < 8; ++c) g.grid[r][c] = 1;
    for (int c = 0; c < 8; ++c) g.grid[r][c] = 1;
  // In a block: the outer loop marks the rows it visits, which covers the inner loop's stores.
  // CHECK: { _Pragma("clang diagnostic push") _Pragma("clang diagnostic ignored \"-Weverything\"") ::mmsb::rt::ScopedMark _mmsb_loop_mark_{{[0-9]+}}(((0) < (n)) ? ::mmsb::rt::detail::Bytes(&(g.grid)[(0)]) : nullptr, ((0) < (n)) ? sizeof((g.grid)[(0)]) * static_cast<::std::size_t>((n) - (0)) : 0);  _Pragma("clang diagnostic pop") for (int r = 0; r < n; ++r) { ::mmsb::rt::ws(&(g.n)) = r; { _Pragma("clang diagnostic push") _Pragma("clang diagnostic ignored \"-Weverything\"") ::mmsb::rt::ScopedMark _mmsb_loop_mark_{{[0-9]+}}(((0) < (8)) ? ::mmsb::rt::detail::Bytes(&(g.grid[r])[(0)]) : nullptr, ((0) < (8)) ? sizeof((g.grid[r])[(0)]) * static_cast<::std::size_t>((8) - (0)) : 0);  _Pragma("clang diagnostic pop") for (int c = 0; c < 8; ++c) g.grid[r][c] = 2; } } }
  for (int r = 0; r < n; ++r) { g.n = r; for (int c = 0; c < 8; ++c) g.grid[r][c] = 2; }
}

// Through a local pointer into the page; the start converted to the induction variable's type.
void ThroughPointer(P* p, long lo, unsigned n) {
  float* x = p->x;
  // CHECK: { _Pragma("clang diagnostic push") _Pragma("clang diagnostic ignored \"-Weverything\"") ::mmsb::rt::ScopedMark _mmsb_loop_mark_{{[0-9]+}}((static_cast<unsigned int>(lo) < (n)) ? ::mmsb::rt::detail::Bytes(&(x)[static_cast<unsigned int>(lo)]) : nullptr, (static_cast<unsigned int>(lo) < (n)) ? sizeof((x)[static_cast<unsigned int>(lo)]) * static_cast<::std::size_t>((n) - static_cast<unsigned int>(lo)) : 0);  _Pragma("clang diagnostic pop") for (unsigned i = lo; i < n; ++i) x[i] = 1; }
  for (unsigned i = lo; i < n; ++i) x[i] = 1;
}

void NotMarked(P* p, int n) {
  // A call into user code might commit between the mark and a store.
  // CHECK: for (int i = 0; i < kN; ++i) { ::mmsb::rt::ws(&(p->x[i])) = 0; Opaque(); }
  for (int i = 0; i < kN; ++i) { p->x[i] = 0; Opaque(); }
  // The bound changes in the loop.
  // CHECK: for (int i = 0; i < n; ++i) { ::mmsb::rt::ws(&(p->x[i])) = 0; --n; }
  for (int i = 0; i < n; ++i) { p->x[i] = 0; --n; }
  // The array moves: the pointer is reassigned.
  // CHECK: for (int i = 0; i < kN; ++i) { ::mmsb::rt::ws(&(p->x[i])) = 0; p = &g; }
  for (int i = 0; i < kN; ++i) { p->x[i] = 0; p = &g; }
  // The induction variable jumps.
  // CHECK: for (int i = 0; i < kN; ++i) { ::mmsb::rt::ws(&(p->x[i])) = 0; i += 2; }
  for (int i = 0; i < kN; ++i) { p->x[i] = 0; i += 2; }
  // The bound is read from memory the loop might write.
  // CHECK: for (int i = 0; i < p->n; ++i) ::mmsb::rt::ws(&(p->x[i])) = 0;
  for (int i = 0; i < p->n; ++i) p->x[i] = 0;
  // Not indexed by the induction variable.
  // CHECK: for (int i = 0; i < kN; ++i) ::mmsb::rt::ws(&(p->x[kN - 1 - i])) = 0;
  for (int i = 0; i < kN; ++i) p->x[kN - 1 - i] = 0;
  // Its address escapes, so its value may change behind the loop.
  int* where = &n;
  (void)where;
  // CHECK: for (int i = 0; i < n; ++i) ::mmsb::rt::ws(&(g.x[i])) = 0;
  for (int i = 0; i < n; ++i) g.x[i] = 0;
}

// Inside a lambda (implicitly constexpr; a ScopedMark only makes it not constexpr).
void InLambda() {
  // CHECK: [] { { {{.*}} ::mmsb::rt::ScopedMark _mmsb_loop_mark_{{[0-9]+}}(((0) < (kN)) ? ::mmsb::rt::detail::Bytes(&(g.x)[(0)]) : nullptr, ((0) < (kN)) ? sizeof((g.x)[(0)]) * static_cast<::std::size_t>((kN) - (0)) : 0); {{.*}} for (int i = 0; i < kN; ++i) g.x[i] = 1; } }();
  [] { for (int i = 0; i < kN; ++i) g.x[i] = 1; }();
}
