// A rewrite that does not compile fails the compile with a clear error that names the user's line
// and the way around it, in every diagnostics format, and never crashes the compiler. The
// test-only -fplugin-arg-mmsb-test-break-rewrite puts a 200-column comment and an undeclared name
// in front of the first store barrier, so the second pass's error lies at a column past the end
// of the user's line (under SARIF, clang's printer read that column in the user's file and
// crashed).
// RUN: not %cxx -c %s -o %t.o -fplugin-arg-mmsb-test-break-rewrite 2>&1 | FileCheck %s --implicit-check-not="Stack dump" --implicit-check-not=PLEASE
// RUN: not %cxx -c %s -o %t.o -fdiagnostics-format=sarif -Wno-sarif-format-unstable -fplugin-arg-mmsb-test-break-rewrite 2>&1 | FileCheck %s --check-prefix=SARIF --implicit-check-not="Stack dump" --implicit-check-not=PLEASE
// A sound rewrite, in SARIF format: the first pass's warning at the user's column, and an object.
// RUN: rm -f %t.o
// RUN: %cxx -c %s -o %t.o -Wall -fdiagnostics-format=sarif -Wno-sarif-format-unstable 2>&1 | FileCheck %s --check-prefix=SARIF-OK --implicit-check-not="Stack dump"
// RUN: test -s %t.o
// The two-pass mode (-E, -M, -verify) refuses the SARIF format with a clear error.
// RUN: not %cxx -E %s -o %t.ii -fdiagnostics-format=sarif -Wno-sarif-format-unstable 2>&1 | FileCheck %s --check-prefix=SARIF-E --implicit-check-not="Stack dump" --implicit-check-not=PLEASE
struct [[mmsb::page]] S { int n; int m; };
[[mmsb::page]] S g;

void F(int v) {
  // CHECK: broken-rewrite.cpp:[[@LINE+6]]:{{[0-9][0-9][0-9]}}: error: use of undeclared identifier 'mmsb_test_broken_rewrite'
  // CHECK: broken-rewrite.cpp:[[@LINE+5]]:1: error: mmsb: the plugin's rewrite of this line does not compile, though the file compiles without it: this is an MMSB bug; please report it with the rewritten code (-fplugin-arg-mmsb-dump-rewrite, or mmsb-rewrite). To build meanwhile, compile this file with -fplugin-arg-mmsb-disable: its stores are then not tracked
  // CHECK: 2 errors generated.
  // SARIF: "region":{"endColumn":23,"startColumn":23,"startLine":[[@LINE+3]]}}}],"message":{"text":"use of undeclared identifier 'mmsb_test_broken_rewrite'"}
  // SARIF: "region":{"endColumn":1,"startColumn":1,"startLine":[[@LINE+2]]}}}],"message":{"text":"mmsb: the plugin's rewrite of this line does not compile
  // SARIF: 2 errors generated.
  g.n = v; int unused;
  // SARIF-OK: "region":{"endColumn":{{[0-9]+}},"endLine":[[@LINE-1]],"startColumn":16,"startLine":[[@LINE-1]]}
  // SARIF-OK: "message":{"text":"unused variable 'unused'"}
  // SARIF-E: error: mmsb: -fdiagnostics-format=sarif works with the plugin only in compiles that parse the source
}
