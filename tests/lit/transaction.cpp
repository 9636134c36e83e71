// [[mmsb::transaction]] functions hold a TransactionScope: commit at every exit.
// RUN: %rw %s -- | FileCheck %s
// RUN: %cxx -fsyntax-only -Xclang -verify %s
struct [[mmsb::page]] S { int v; };
[[mmsb::page]] S g;
// CHECK: {{\[\[}}mmsb::transaction]] void Step(int x) { ::mmsb::rt::TransactionScope _mmsb_tx;
[[mmsb::transaction]] void Step(int x) {
  if (x < 0) return;
  g.v = x;
}
// The attribute on a declaration carries over to the definition.
[[mmsb::transaction]] int Later();
// CHECK: int Later() { ::mmsb::rt::TransactionScope _mmsb_tx; return g.v; }
int Later() { return g.v; }
struct Sys {
  // CHECK: {{\[\[}}mmsb::transaction]] void Run() { ::mmsb::rt::TransactionScope _mmsb_tx; (*::mmsb::rt::w(&(g.v)))++; }
  [[mmsb::transaction]] void Run() { g.v++; }
};
// CHECK: void NotATransaction() { (*::mmsb::rt::w(&(g.v))) = 0; }
void NotATransaction() { g.v = 0; }
// expected-no-diagnostics
