// A page variable of a type that keeps its contents elsewhere (std::string, std::vector) would
// log only its pointers: the same error as for a page type, in every action (issue 15).
// RUN: not %cxx -fsyntax-only %s 2>&1 | FileCheck %s
// RUN: not %cxx -c %s -o %t.o 2>&1 | FileCheck %s
// RUN: %cxx -fsyntax-only -Xclang -verify %s
#include <mini_std.h>
// CHECK: diag-page-variable-not-trivially-copyable.cpp:[[@LINE+1]]:28: error: page type 'std::string' {{.*}}is not trivially copyable
[[mmsb::page]] std::string g_name;  // expected-error {{is not trivially copyable}} expected-note {{'g_name' is a page variable of that type}}
[[mmsb::page]] std::vector<int> g_list;  // expected-error {{page type 'std::vector<int>' is not trivially copyable}} expected-note {{is a page variable}}
[[mmsb::page]] std::string g_names[2];  // expected-error {{is not trivially copyable}} expected-note {{is a page variable}}
[[mmsb::page]] int g_plain[4];  // fine: trivially copyable
struct Pod { int a; float b; };
[[mmsb::page]] Pod g_pod;  // fine
template <class T> struct Holder { [[mmsb::page]] static T value; };
template <class T> T Holder<T>::value;
// CHECK: 3 errors generated.
