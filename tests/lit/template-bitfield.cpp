// Regression (issue 13, class 8): a template shared by a page type and a plain type whose member
// of the same name is a bitfield. The edit lands in the shared template text, so it must compile
// for both: the object is marked (`wt(t).level`), never the member (`wt(t.level)` cannot bind a
// bitfield).
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -fsyntax-only %s
struct [[mmsb::page]] Page { int level; int other; };
struct Plain { int level : 4; };
[[mmsb::page]] Page g;

// CHECK: template <class T> void Set(T& t, int v) { ::mmsb::rt::wt(t).level = v; }
template <class T> void Set(T& t, int v) { t.level = v; }

void Use() {
  Set(g, 3);
  Plain p{};
  Set(p, 2);
}
