// Regression (issue 13, class 4): inline asm that writes page storage (an output operand, or a
// "memory" clobber with a page pointer operand) gets a warning and marks the page escaped before
// it runs.
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -fsyntax-only -Xclang -verify %s
struct [[mmsb::page]] P { int a[32]; int n; };
[[mmsb::page]] P g;

void Asm(int v, P* p) {
  // CHECK: ::mmsb::rt::Escape(&(::g)); asm volatile("movl %1, %0" : "=m"(g.a[20]) : "r"(v));
  asm volatile("movl %1, %0" : "=m"(g.a[20]) : "r"(v)); // expected-warning {{inline asm writes page storage; the page is marked escaped and diffed in full at every commit}}
  // CHECK: ::mmsb::rt::Escape(&(::g)); asm volatile("addl %1, %0" : "+m"(g.n) : "r"(v));
  asm volatile("addl %1, %0" : "+m"(g.n) : "r"(v)); // expected-warning {{inline asm writes page storage}}
  // CHECK: ::mmsb::rt::Escape(p); asm volatile("" : : "r"(p->a) : "memory");
  asm volatile("" : : "r"(p->a) : "memory"); // expected-warning {{inline asm may write through a pointer to page storage}}
  // Reads only: nothing to do.
  // CHECK: asm volatile("" : : "r"(g.n));
  asm volatile("" : : "r"(g.n));
}
