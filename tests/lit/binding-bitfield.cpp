// Regression (issue 13, class 6): a store through a structured binding to a bitfield cannot be
// barriered (a bitfield has no address, and the hidden decomposed object has no name); the page
// is marked escaped through the object the binding's declaration names, as the warning says.
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -fsyntax-only -Xclang -verify %s
struct [[mmsb::page]] Bits { unsigned n : 4; unsigned mode : 4; };
[[mmsb::page]] Bits g;

void Bind() {
  auto& [n, mode] = g;
  // CHECK: ::mmsb::rt::Escape(&(::g)); mode = 5;
  mode = 5; // expected-warning {{store into page storage cannot be rewritten (a bitfield through a structured binding); the page is marked escaped}}
  (void)n;
}
