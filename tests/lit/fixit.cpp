// -fixit writes fixed sources back: it must see the user's code, never the instrumented one.
// RUN: rm -rf %t && mkdir -p %t && cp %s %t/fixit.cpp
// RUN: %cxx -Wextra-semi -fsyntax-only -Xclang -fixit %t/fixit.cpp
// RUN: %strip_comments < %t/fixit.cpp | FileCheck %s --implicit-check-not=mmsb::rt --implicit-check-not=_Pragma
// CHECK: {{^}}void f() { g.n = 1; }{{$}}
struct [[mmsb::page]] S { int n; };
[[mmsb::page]] S g;
void f() { g.n = 1; };
