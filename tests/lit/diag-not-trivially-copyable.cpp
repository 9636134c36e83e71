// A page type must be trivially copyable: error, with notes saying why.
// RUN: not %cxx -fsyntax-only %s 2>&1 | FileCheck %s
// RUN: %cxx -fsyntax-only -Xclang -verify %s
// RUN: %rw %s -- -Xclang -verify
#include <mini_std.h>
struct Base { virtual ~Base(); };
// CHECK: diag-not-trivially-copyable.cpp:[[@LINE+1]]:23: error: page type 'Bad' is not trivially copyable
struct [[mmsb::page]] Bad {  // expected-error {{page type 'Bad' is not trivially copyable}}
  // CHECK: diag-not-trivially-copyable.cpp:[[@LINE+1]]:15: note: member 'name' of type 'std::string' is not trivially copyable
  std::string name;  // expected-note {{member 'name' of type 'std::string' is not trivially copyable}}
  int v;
};
struct [[mmsb::page]] Dtor {  // expected-error {{page type 'Dtor' is not trivially copyable}}
  ~Dtor();  // expected-note {{user-provided destructor}}
};
struct [[mmsb::page]] Derived : Base {  // expected-error {{page type 'Derived' is not trivially copyable}}
  // expected-note@-1 {{base class 'Base' is not trivially copyable}}
  int v;
};
struct [[mmsb::page]] Copy {  // expected-error {{page type 'Copy' is not trivially copyable}}
  Copy(const Copy&);  // expected-note {{user-provided copy constructor}}
};
struct [[mmsb::page]] Good { int v; };
// CHECK: 4 errors generated.
