// MMSB's diagnostics do not depend on the action: a page type holding a std::string is the same
// error (and an untracked page object the same warning) with -c, -fsyntax-only, -E and
// -save-temps, so a distributed build (preprocess here, compile there) or -save-temps cannot
// produce untracked code.
// RUN: rm -rf %t && mkdir -p %t
// RUN: not %cxx -c %s -o %t/a.o 2>&1 | FileCheck %s
// RUN: not %cxx -fsyntax-only %s 2>&1 | FileCheck %s
// RUN: not %cxx -E %s -o %t/a.ii 2>&1 | FileCheck %s
// RUN: not %cxx -E %s 2>&1 >/dev/null | FileCheck %s
// RUN: cd %t && not %cxx -save-temps -c %s -o %t/st.o 2>&1 | FileCheck %s
// RUN: not ls %t/st.o
// Each diagnostic once: the analysis reports them, the preprocessing adds nothing.
// RUN: not %cxx -E %s -o %t/b.ii 2>&1 | FileCheck %s --check-prefix=ONCE
// ONCE-COUNT-1: error: page type 'Bad' is not trivially copyable
// ONCE-NOT: error: page type 'Bad'
// -Wno-mmsb-untracked silences the warning in -E as in -c.
// RUN: not %cxx -E -fplugin-arg-mmsb-Wno-mmsb-untracked %s -o %t/c.ii 2>&1 | FileCheck %s --check-prefix=QUIET
// QUIET-NOT: warning:
// QUIET: error: page type 'Bad' is not trivially copyable
#include <mini_std.h>
// CHECK: diag-every-action.cpp:[[@LINE+1]]:23: error: page type 'Bad' is not trivially copyable
struct [[mmsb::page]] Bad {
  // CHECK: diag-every-action.cpp:[[@LINE+1]]:15: note: member 'name' of type 'std::string' is not trivially copyable
  std::string name;
  int v;
};
struct [[mmsb::page]] Good { int v; };
void Use() {
  // CHECK: diag-every-action.cpp:[[@LINE+1]]:8: warning: {{.*}}untracked
  Good local{};
  local.v = 1;
}
// CHECK: 1 error generated.
