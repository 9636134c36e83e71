// Line numbers in debug info are the user's, also after lines the plugin rewrote and for the
// code it appends.
// RUN: %cxx -S -emit-llvm -g -O0 %s -o - | FileCheck %s
struct [[mmsb::page]] S {
  int n;
  int m;
};
[[mmsb::page]] S g;
// CHECK: define {{.*}}@_Z4Bumpi({{.*}}!dbg ![[BUMP:[0-9]+]] {
void Bump(int v) {
  g.n = v;
  g.m += v;
  // The stores run inside the barrier (rt::ws stores, then marks); the rewritten lines keep
  // their own line numbers in Bump.
}
// CHECK-DAG: !DILocation(line: [[# @LINE - 5]], column: {{[0-9]+}}, scope: ![[BUMP]])
// CHECK-DAG: !DILocation(line: [[# @LINE - 5]], column: {{[0-9]+}}, scope: ![[BUMP]])
// CHECK-DAG: !DISubprogram(name: "Bump"{{.*}}line: [[# @LINE - 8]],
// The registrar of 'g' is appended after the user's last line.
// CHECK-DAG: !DIGlobalVariable(name: "_mmsb_reg_g"{{.*}}line: [[# @LINE + 1]],
// (last line)
