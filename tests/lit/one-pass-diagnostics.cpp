// A rewritten translation unit reports the user's diagnostics from the first pass, over the code
// as written: each once, at the user's column, with the user's line in the snippet. The object
// file is the rewritten compile's.
// RUN: %cxx -Wall -c %s -o %t.o 2>&1 | FileCheck %s --implicit-check-not=warning: --implicit-check-not=error:
// RUN: llvm-nm-19 %t.o | FileCheck %s --check-prefix=OBJ
// OBJ: _mmsb_reg_g
struct [[mmsb::page]] S { int n; };
[[mmsb::page]] S g;

void F() {
  // CHECK: one-pass-diagnostics.cpp:[[@LINE+2]]:16: warning: unused variable 'unused' [-Wunused-variable]
  // CHECK-NEXT: {{^ +}}[[@LINE+1]] |   g.n = 1; int unused;{{$}}
  g.n = 1; int unused;
  // CHECK: one-pass-diagnostics.cpp:[[@LINE+1]]:5: warning: variable 'local' of page type 'S' has automatic storage duration; its changes are not tracked [-Wmmsb-untracked]
  S local;
  local.n = 2;
  // CHECK: 2 warnings generated.
}
