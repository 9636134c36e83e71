// Line numbers in debug info are the user's, also after lines the plugin rewrote and for the
// code it appends.
// RUN: %cxx -S -emit-llvm -g -O0 %s -o - | FileCheck %s
struct [[mmsb::page]] S {
  int n;
  int m;
};
[[mmsb::page]] S g;

void Bump(int v) {
  g.n = v;
  // CHECK: store i32 %{{.*}}, ptr %{{.*}}, align 4, !dbg ![[STORE:[0-9]+]]
  g.m += v;
  // CHECK: store i32 %{{.*}}, ptr %{{.*}}, align 4, !dbg ![[ADD:[0-9]+]]
}
// CHECK-DAG: ![[STORE]] = !DILocation(line: [[# @LINE - 5]],
// CHECK-DAG: ![[ADD]] = !DILocation(line: [[# @LINE - 4]],
// CHECK-DAG: !DISubprogram(name: "Bump"{{.*}}line: [[# @LINE - 8]],
// The registrar of 'g' is appended after the user's last line.
// CHECK-DAG: !DIGlobalVariable(name: "_mmsb_reg_g"{{.*}}line: [[# @LINE + 1]],
// (last line)
