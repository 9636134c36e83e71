// [[mmsb::transaction]] functions hold a TransactionScope: commit at every exit.
// RUN: %rw %s -- | %strip_comments | FileCheck %s
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
  // CHECK: {{\[\[}}mmsb::transaction]] void Run() { ::mmsb::rt::TransactionScope _mmsb_tx; ::mmsb::rt::ws(&(g.v))++; }
  [[mmsb::transaction]] void Run() { g.v++; }
};
// A function-try-block: the scope in the try block commits when an exception leaves it, and each
// handler commits its own stores.
// CHECK: {{\[\[}}mmsb::transaction]] void Guarded() try { ::mmsb::rt::TransactionScope _mmsb_tx;
[[mmsb::transaction]] void Guarded() try {
  g.v = 1;
  throw 1;
// CHECK: } catch (int) { ::mmsb::rt::TransactionScope _mmsb_tx;
} catch (int) {
  g.v = 2;
}
// CHECK: void NotATransaction() { ::mmsb::rt::ws(&(g.v)) = 0; }
void NotATransaction() { g.v = 0; }
// expected-no-diagnostics
