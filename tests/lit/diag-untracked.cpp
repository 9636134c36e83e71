// Page-typed objects that are not pages warn under -Wmmsb-untracked, which can be silenced.
// RUN: %cxx -fsyntax-only -Xclang -verify %s
// RUN: %cxx -fsyntax-only -Xclang -verify=silenced -Wno-unknown-warning-option -Wno-mmsb-untracked %s
// RUN: %cxx -fsyntax-only -Xclang -verify=silenced -fplugin-arg-mmsb-Wno-mmsb-untracked %s
// RUN: %cxx -fsyntax-only -Xclang -verify=silenced -w %s
// RUN: not %cxx -fsyntax-only -Wno-unknown-warning-option -Werror=mmsb-untracked %s 2>&1 | FileCheck %s --check-prefix=ERR
// RUN: %cxx -fsyntax-only -Wno-unknown-warning-option -Werror -Wno-error=mmsb-untracked %s
// ERR: error: variable 'local' of page type 'P' has automatic storage duration; its changes are not tracked [-Werror=mmsb-untracked]
// silenced-no-diagnostics
#include <mini_std.h>
struct [[mmsb::page]] P { int v; };
struct Holder {
  P p;  // expected-warning {{member 'p' of page type 'P' is inside 'Holder', which is not a page type; its changes are not tracked [-Wmmsb-untracked]}}
};
struct [[mmsb::page]] Outer {
  P nested;  // a page inside a page is tracked with it
};
std::vector<P> g_many;  // expected-warning {{elements of page type 'P' in standard container 'vector' are not tracked [-Wmmsb-untracked]}}
// Smart pointers refer to objects from `new`, which come from the arena: no warning.
std::unique_ptr<P> g_owned;
std::shared_ptr<P> g_shared;
void F() {
  g_owned = std::make_unique<P>();
  g_shared = std::shared_ptr<P>(new P{});
  g_shared = std::make_shared<P>();  // expected-warning {{'std::make_shared' of page type 'P' allocates through an allocator, not from the page arena; its changes are not tracked (use std::shared_ptr<T>(new T) instead) [-Wmmsb-untracked]}}
  P local;  // expected-warning {{variable 'local' of page type 'P' has automatic storage duration; its changes are not tracked [-Wmmsb-untracked]}}
  P arr[2];  // expected-warning {{variable 'arr' of page type 'P[2]' has automatic storage duration}}
  P* heap = new P[4];  // expected-warning {{array new of page type 'P' does not allocate pages}}
  (void)local; (void)arr; (void)heap;
}
