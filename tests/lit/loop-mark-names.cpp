// Regression (issue 13, class 1): a loop range mark names, before the loop, only variables that
// mean the same there and do not change in the loop. The induction variable never indexes the
// marked array's base (`g.m[i][i]`: the mark used to name `i` out of its scope, or an outer `i`
// that is 7 before `for (i = 0; ...)`), and a variable the loop body declares (shadowing an
// outer one of the same name) is not the outer one.
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -fsyntax-only %s
struct [[mmsb::page]] P { double m[8][8]; long long a[16]; long long b[16]; };
[[mmsb::page]] P g;

void Identity() {
  // CHECK-LABEL: void Identity() {
  // CHECK: for (int i = 0; i < 8; ++i) ::mmsb::rt::ws(&(g.m[i][i])) = 1.0;
  for (int i = 0; i < 8; ++i) g.m[i][i] = 1.0;
}

void OuterInduction() {
  // CHECK-LABEL: void OuterInduction() {
  int i = 7;
  // CHECK: for (i = 0; i < 8; ++i) ::mmsb::rt::ws(&(g.m[i][i])) = 1.0;
  for (i = 0; i < 8; ++i) g.m[i][i] = 1.0;
}

void ShadowedRow() {
  // CHECK-LABEL: void ShadowedRow() {
  long long* row = g.a;
  // CHECK: for (int i = 0; i < 16; ++i) { long long* row = g.b; ::mmsb::rt::ws(&(row[i])) = i; }
  for (int i = 0; i < 16; ++i) { long long* row = g.b; row[i] = i; }
}

void Invariant() {
  // CHECK-LABEL: void Invariant() {
  long long* row = g.a;
  // CHECK: { {{.*}}::mmsb::rt::ScopedMark _mmsb_loop_mark_{{[0-9]+}}(((0) < (16)) ? ::mmsb::rt::detail::Bytes(&(row)[(0)]) : nullptr, ((0) < (16)) ? sizeof((row)[(0)]) * static_cast<::std::size_t>((16) - (0)) : 0); {{.*}} for (int i = 0; i < 16; ++i) row[i] = i; }
  for (int i = 0; i < 16; ++i) row[i] = i;
}
