// What normalised IR looks like: no debug info, positional locals, local attribute and metadata
// numbering with the definitions listed after the body, anonymous globals and uniqued types
// named by content.
// RUN: rm -rf %t && mkdir -p %t
// RUN: env MMSB_IR_STORE=%t/ir.db %cxx -O2 -g -c %s -o %t/t.o
// RUN: %mmsb ir show 'Use(int)' --gen 1 --store %t/ir.db \
// RUN:   | FileCheck %s --check-prefix=PRE --implicit-check-not=!dbg --implicit-check-not='#dbg_'
// RUN: %mmsb ir show Use --gen latest --stage post --store %t/ir.db \
// RUN:   | FileCheck %s --check-prefix=POST --implicit-check-not=!dbg --implicit-check-not='#dbg_'
extern "C" int printf(const char*, ...);

int Use(int x) {
  auto f = [x](int y) { return x + y; };
  for (int i = 0; i < x; ++i) printf("value %d\n", f(i));
  return f(1);
}

// The header names the function, its TU and stage, counts, the source line, the hashes.
// PRE: ; Use(int) [_Z3Usei]
// PRE-NEXT: ; TU {{.*}}ir/normalize-text.cpp, stage pre, captured in 1
// PRE-NEXT: ; external, {{[0-9]+}} instructions, {{[0-9]+}} blocks, defined at {{.*}}normalize-text.cpp:12
// PRE-NEXT: ; structural hash {{[0-9a-f]+}}, text {{[0-9a-f]+}}, writes pages: -
// PRE-NEXT: define dso_local noundef i32 @_Z3Usei(i32 noundef %0) #0 {
// PRE: %3 = alloca %class.anon.{{[0-9a-f]+}}, align 4
// PRE: call void @llvm.lifetime.start.p0(i64 4, ptr %3) #1
// PRE: call i32 (ptr, ...) @printf(ptr noundef @.str.{{[0-9a-f]+}}, i32 noundef %{{[0-9]+}})
// PRE: br {{.*}}, !llvm.loop !{{[0-9]+}}
// PRE: {{^}}}
// PRE-EMPTY:
// PRE-NEXT: %class.anon.{{[0-9a-f]+}} = type { i32 }
// PRE-NEXT: @.str.{{[0-9a-f]+}} = private unnamed_addr constant [10 x i8] c"value %d\0A\00", align 1
// PRE-NEXT: attributes #0 = { mustprogress {{.*}}}
// PRE-NEXT: attributes #1 = { {{.*}}}
// PRE-NEXT: !0 = !{
// The loop metadata keeps its content but not its debug locations.
// PRE: = distinct !{!{{[0-9]+}}, !DI, !DI, !{{[0-9]+}}}
// PRE: = !{!"llvm.loop.mustprogress"}

// POST: define dso_local noundef i32 @_Z3Usei(i32 noundef %0) local_unnamed_addr #0 {
// POST-NOT: _ZZ3UseiENK3$_0clEi
// POST: @.str.{{[0-9a-f]+}} = private unnamed_addr constant
