// Errors in the instrumented compile fail the command, once, at the user's lines; warnings are
// printed once.
// RUN: not %cxx -Wall -c %s -o %t.o 2>&1 | FileCheck %s --implicit-check-not=error: --implicit-check-not=warning:
// RUN: not ls %t.o
struct [[mmsb::page]] S { int n; };
[[mmsb::page]] S g;

void G() {
  // CHECK: inner-error.cpp:[[@LINE+1]]:7: warning: unused variable 'unused'
  int unused;
}

void F() {
  g.n = 1;
  // CHECK: inner-error.cpp:[[@LINE+1]]:5: error: no member named 'missing' in 'S'
  g.missing = 2;
  // CHECK: 1 warning and 1 error generated.
}
