// Regression (issue 13, class 5): a page variable with external linkage gets a symbol of its own
// (`_mmsb_page.<mangled name>`) in every declaration the plugin sees, so that a translation unit
// that declares it without [[mmsb::page]] (and would write it untracked) fails to link, naming
// the plain symbol, instead of silently sharing the variable.
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -c %s -o %t.page.o
// RUN: llvm-nm-19 %t.page.o | FileCheck %s --check-prefix=SYM
// RUN: %cxx -c -DOTHER_TU %s -o %t.other.o
// RUN: not %cxx %t.page.o %t.other.o -o %t.exe 2>&1 | FileCheck %s --check-prefix=LINK
#ifndef OTHER_TU
// CHECK: extern float g_series[64] __asm__("_mmsb_page.g_series");
extern float g_series[64];
// CHECK: {{\[\[mmsb::page\]\]}} {{.*}}float g_series[64] __asm__("_mmsb_page.g_series");
[[mmsb::page]] float g_series[64];
// Internal linkage: no other translation unit can name it.
// CHECK: {{\[\[mmsb::page\]\]}} static {{.*}}float s_local[4];
// CHECK-NOT: _mmsb_page.s_local
[[mmsb::page]] static float s_local[4];
float Read(int k) { return g_series[k] + s_local[k & 3]; }
// SYM: {{[BD]}} _mmsb_page.g_series
// SYM-NOT: {{ }}g_series{{$}}
#else
// Another translation unit that forgot the attribute.
extern float g_series[64];
void Write(int k) { g_series[k] = 1; }
int main() { Write(1); }
// LINK: undefined reference to `g_series'
#endif
