// Regression (issue 13, class 2): a loop gets a range mark instead of per-store barriers only
// when nothing in its body can commit or hand control to another thread that commits: a call is
// allowed only to a builtin or to a pure C/C++ library function on the rewriter's allowlist.
// Being declared in a system header is not enough: MMSB's own headers are system headers in the
// installed package's build (-isystem), and std::function or std::atomic live there too.
// RUN: %rw %s -- -isystem %mmsb_include | %strip_comments | FileCheck %s
// RUN: %cxx -fsyntax-only -isystem %mmsb_include %s
#include <mini_std.h>
#include <atomic>
#include <functional>
#include <mmsb/mmsb.h>
struct [[mmsb::page]] P { int a[64]; };
[[mmsb::page]] P g;

void CommitInLoop() {
  // CHECK-LABEL: void CommitInLoop() {
  // CHECK: for (int i = 0; i < 64; ++i) { ::mmsb::rt::ws(&(g.a[i])) = i; if (i == 5) (void)mmsb::commit(); }
  for (int i = 0; i < 64; ++i) { g.a[i] = i; if (i == 5) (void)mmsb::commit(); }
}

void CallbackInLoop(const std::function<void()>& cb) {
  // CHECK-LABEL: void CallbackInLoop(
  // CHECK: for (int i = 0; i < 64; ++i) { ::mmsb::rt::ws(&(g.a[i])) = i; cb(); }
  for (int i = 0; i < 64; ++i) { g.a[i] = i; cb(); }
}

std::atomic<int> req;
void HandOffInLoop() {
  // Another thread may commit while this one waits: a quiescent point inside the loop.
  // CHECK-LABEL: void HandOffInLoop() {
  // CHECK: for (int i = 0; i < 64; ++i) { ::mmsb::rt::ws(&(g.a[i])) = i; req.store(1); while (req.load() != 0) {} }
  for (int i = 0; i < 64; ++i) { g.a[i] = i; req.store(1); while (req.load() != 0) {} }
}

void PureCallsStayMarked(float f) {
  // CHECK-LABEL: void PureCallsStayMarked(
  // CHECK: { {{.*}}ScopedMark{{.*}} for (int i = 0; i < 64; ++i) g.a[i] = i + (int)std::max(f, 3.f); }
  for (int i = 0; i < 64; ++i) g.a[i] = i + (int)std::max(f, 3.f);
}
