// -Rmmsb remarks: for each store into page storage, whether it got a barrier, a loop, call or
// library mark, or an escape (its page diffed in full at every commit), and why.
// RUN: %cxx -fsyntax-only -Rmmsb -Wno-unknown-warning-option %s 2>&1 | FileCheck %s
// The plugin argument does the same without clang's "unknown remark option" warning, and one
// group alone shows only its remarks.
// RUN: %cxx -fsyntax-only -fplugin-arg-mmsb-Rmmsb-escape %s 2>&1 | FileCheck %s --check-prefix=ESCAPE --implicit-check-not=remark:
// -Rno-mmsb after -Rmmsb, and no flag at all, show none.
// RUN: %cxx -fsyntax-only -Rmmsb -Rno-mmsb -Wno-unknown-warning-option %s 2>&1 | FileCheck %s --check-prefix=NONE --allow-empty --implicit-check-not=remark:
// RUN: %cxx -fsyntax-only %s 2>&1 | FileCheck %s --check-prefix=NONE --allow-empty --implicit-check-not=remark:
// A compile that generates code (the rewritten source compiled in a second pass) reports each
// remark once, and mmsb-rewrite reports them too.
// RUN: %cxx -c -o %t.o -Rmmsb-mark -Wno-unknown-warning-option %s 2>&1 | grep -c "remark: loop writes 'g.a\[0..16)'" | FileCheck %s --check-prefix=ONCE
// ONCE: {{^}}1{{$}}
// RUN: %rw -extra-arg=-Rmmsb-barrier %s -- 2>&1 >/dev/null | FileCheck %s --check-prefix=TOOL
// NONE-NOT: remark:
#include <mini_std.h>
struct Acc { long sum; void Add(int v) { sum += v; } };
struct [[mmsb::page]] P {
  int a[16];
  double m[4][4];
  unsigned bits : 3;
  Acc acc;
  std::array<int, 4> arr;
  int n;
  void Reset() { n = 0; }
};
[[mmsb::page]] P g;
int* g_keep;
void Take(int* p);
[[mmsb::transaction]] int Produce();
void Callback();

void Stores(int v) {
  // CHECK: remarks.cpp:[[@LINE+2]]:7: remark: store to 'g.n' gets a write barrier (store, then mark) [-Rmmsb-barrier]
  // TOOL: remarks.cpp:[[@LINE+1]]:7: remark: store to 'g.n' gets a write barrier (store, then mark) [-Rmmsb-barrier]
  g.n = v;
  // CHECK: remarks.cpp:[[@LINE+1]]:10: remark: store to 'g.bits' gets a write barrier (a bit-field has no address: its enclosing object is marked first) [-Rmmsb-barrier]
  g.bits = 1;
  // CHECK: remarks.cpp:[[@LINE+2]]:3: remark: loop writes 'g.a[0..16)' under a range mark made at loop entry and at every exit, instead of a barrier per store (loop mark) [-Rmmsb-mark]
  // CHECK: remarks.cpp:[[@LINE+1]]:39: remark: store to 'g.a[i]' has no barrier: the loop's range mark covers it (loop mark) [-Rmmsb-mark]
  for (int i = 0; i < 16; ++i) g.a[i] = v;
  // The identity matrix: g.m[i][i] is not inside one row indexed by i.
  // CHECK: remarks.cpp:[[@LINE+1]]:41: remark: store to 'g.m[i][i]' gets a write barrier (store, then mark; no loop mark: no store indexes an unmoving page array by 'i' alone) [-Rmmsb-barrier]
  for (int i = 0; i < 4; ++i) g.m[i][i] = 1.0;
  // A loop whose body may commit keeps its barriers.
  // CHECK: remarks.cpp:[[@LINE+1]]:53: remark: store to 'g.a[i]' gets a write barrier (store, then mark; no loop mark: the body may commit: it calls 'Callback', which may commit or synchronise) [-Rmmsb-barrier]
  for (int i = 0; i < 16; ++i) { Callback(); g.a[i] = i; }
  // CHECK: remarks.cpp:[[@LINE+1]]:31: remark: store to 'g.a[v & 15]' gets a write barrier (store, then mark; no loop mark: only counted for loops and range-for loops over page arrays get one) [-Rmmsb-barrier]
  while (v-- > 0) g.a[v & 15] += 1;
}

void Calls(int v) {
  // CHECK: remarks.cpp:[[@LINE+1]]:9: remark: 'Acc::Add' may write 'g.acc': the object is marked when the call's operands are evaluated and again at the end of the full-expression (call mark) [-Rmmsb-mark]
  g.acc.Add(Produce());
  // CHECK: remarks.cpp:[[@LINE+1]]:5: remark: 'P::Reset' writes 'g' with no mark here: the member function is compiled in this file, where its own stores get barriers [-Rmmsb-mark]
  g.Reset();
  // CHECK: remarks.cpp:[[@LINE+1]]:13: remark: 'std::fill' writes through the pointer 'g.a': the range from it to the end of its page is marked when the call's operands are evaluated and again at the end of the full-expression (library mark) [-Rmmsb-mark]
  std::fill(g.a, g.a + 4, v);
  // CHECK: remarks.cpp:[[@LINE+1]]:13: remark: 'std::swap' writes through a reference to 'g.a[0]': the object is marked
  std::swap(g.a[0], g.a[1]);
}

void Escapes(int v) {
  // CHECK: remarks.cpp:[[@LINE+2]]:8: remark: page of 'g.a' is marked escaped and diffed in full at every commit: a non-const pointer into it escapes: it is passed to 'Take', which is not instrumented through this argument [-Rmmsb-escape]
  // ESCAPE: remarks.cpp:[[@LINE+1]]:8: remark: page of 'g.a' is marked escaped
  Take(g.a);
  // CHECK: remarks.cpp:[[@LINE+2]]:12: remark: page of '&g.a[2]' is marked escaped and diffed in full at every commit: a non-const pointer into it escapes: it is assigned to 'g_keep', which is not followed [-Rmmsb-escape]
  // ESCAPE: remarks.cpp:[[@LINE+1]]:12: remark: page of '&g.a[2]' is marked escaped
  g_keep = &g.a[2];
  // CHECK: remarks.cpp:[[@LINE+2]]:3: remark: page of 'g.n' is marked escaped and diffed in full at every commit: inline asm writes it [-Rmmsb-escape]
  // ESCAPE: remarks.cpp:[[@LINE+1]]:3: remark: page of 'g.n' is marked escaped
  asm volatile("movl %1, %0" : "=m"(g.n) : "r"(v)); // the -Wmmsb-asm warning comes too
}
