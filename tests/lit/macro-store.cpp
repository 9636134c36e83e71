// Stores inside macros: rewritten where the destination is spelled in the file (a macro
// argument, or a whole macro expansion); otherwise a warning, and the page is marked escaped.
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -fsyntax-only -Xclang -verify %s
struct [[mmsb::page]] S { int n; int m; int a[8]; };
[[mmsb::page]] S g;
#define SET(lhs, v) lhs = v
#define GN g.n
#define BUMP() g.m++
#define BUMP_PTR(p) (p)->m += 1
#define BUMP_ALL(p, n) do { for (int i_ = 0; i_ < (n); ++i_) (p)[i_] += 1; } while (0)

void Macros(S* p) {
  // CHECK: SET(::mmsb::rt::ws(&(g.n)), 1);
  SET(g.n, 1);
  // CHECK: ::mmsb::rt::ws(&(GN)) = 2;
  GN = 2;
  // CHECK: ::mmsb::rt::Escape(&(::g)); BUMP();
  BUMP();  // expected-warning {{store into page storage cannot be rewritten (inside a macro expansion); the page is marked escaped and diffed in full at every commit [-Wmmsb-unrewritable]}}
  // CHECK: ::mmsb::rt::Escape(p); BUMP_PTR(p);
  BUMP_PTR(p);  // expected-warning {{store into page storage cannot be rewritten (inside a macro expansion)}}
  // The destination is pointer arithmetic on page storage: its page (this store went untracked
  // before; the generator's `macros`).
  // CHECK: ::mmsb::rt::Escape(&(::g)); BUMP_ALL(g.a + 2, 3);
  BUMP_ALL(g.a + 2, 3);  // expected-warning {{store into page storage cannot be rewritten (inside a macro expansion); the page is marked escaped}}
  // CHECK: ::mmsb::rt::Escape(&(::g)); BUMP_ALL(2 + g.a, 3);
  BUMP_ALL(2 + g.a, 3);  // expected-warning {{store into page storage cannot be rewritten (inside a macro expansion); the page is marked escaped}}
}

// An escape goes before the statement, at the offset where a barrier around the statement's
// first expression opens too: the escape comes first, outside the barrier (docs/PluginGuide.md,
// "Edits at the same offset"). Inside it, the rewritten code did not parse.
struct [[mmsb::page]] A { int a[4]; int m; };
[[mmsb::page]] A h;
#define BUMP_H() h.m++

void EscapeBeforeAnOuterBarrier(int v) {
  // CHECK: ::mmsb::rt::Escape(&(::h)); ::mmsb::rt::ws(&(h.a[BUMP_H() & 3])) = v;
  h.a[BUMP_H() & 3] = v;  // expected-warning {{store into page storage cannot be rewritten (inside a macro expansion)}}
  // CHECK: ::mmsb::rt::Escape(&(::h)); ::mmsb::rt::ws(&(h.a[BUMP_H() & 3])) += v;
  h.a[BUMP_H() & 3] += v;  // expected-warning {{store into page storage cannot be rewritten (inside a macro expansion)}}
  // CHECK: ::mmsb::rt::Escape(&(::h)); ::mmsb::rt::ws(&(h.a[v])) = BUMP_H();
  h.a[v] = BUMP_H();  // expected-warning {{store into page storage cannot be rewritten (inside a macro expansion)}}
}
