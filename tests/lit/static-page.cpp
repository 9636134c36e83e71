// Static page variables: page section and alignment, and a registrar under the mangled name.
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -c %s -o %t.o
// RUN: llvm-objdump-19 -h %t.o | FileCheck %s --check-prefix=OBJ
// OBJ: mmsb_pages
// RUN: llvm-nm-19 -C %t.o | FileCheck %s --check-prefix=SYM
// SYM-DAG: Registry::_mmsb_reg__ZN8Registry7hidden_E
// SYM-DAG: Registry::_mmsb_reg__ZN8Registry5shownE
struct [[mmsb::page]] State { int n; float f[2]; };
// CHECK: {{\[\[}}mmsb::page]] __attribute__((section("mmsb_pages"), aligned(64))) State g_state __asm__("_mmsb_page.g_state");
[[mmsb::page]] State g_state;
// A variable of page type is a page without the attribute on the variable.
// CHECK: __attribute__((section("mmsb_pages"), aligned(64))) State g_implicit __asm__("_mmsb_page.g_implicit");
State g_implicit;
// CHECK: {{\[\[}}mmsb::page]] __attribute__((section("mmsb_pages"), aligned(64))) float g_arr[8] __asm__("_mmsb_page.g_arr");
[[mmsb::page]] float g_arr[8];
namespace app {
// CHECK: {{\[\[}}mmsb::page]] static __attribute__((section("mmsb_pages"), aligned(64))) int counter;
[[mmsb::page]] static int counter;
}
// A declaration is not a definition: nothing to place.
// CHECK: extern State g_other __asm__("_mmsb_page.g_other");
extern State g_other;

// Static data members register through an inline static member of their class, which may name
// them whatever their access.
class Registry {
  // CHECK: {{\[\[}}mmsb::page]] static State hidden_;
  [[mmsb::page]] static State hidden_;
 public:
  // CHECK: {{\[\[}}mmsb::page]] static inline __attribute__((section("mmsb_pages"), aligned(64))) int shown = 1;
  [[mmsb::page]] static inline int shown = 1;
  static void Set(int n) { hidden_.n = n; }
  // CHECK: static inline ::mmsb::rt::StaticPageRegistrar _mmsb_reg__ZN8Registry5shownE{(void*)&(shown), sizeof(shown), "_ZN8Registry5shownE",
  // CHECK-SAME: static inline ::mmsb::rt::StaticPageRegistrar _mmsb_reg__ZN8Registry7hidden_E{(void*)&(hidden_), sizeof(hidden_), "_ZN8Registry7hidden_E",
};
// CHECK: __attribute__((section("mmsb_pages"), aligned(64))) State Registry::hidden_;
State Registry::hidden_;

int Tick() {
  // CHECK: {{\[\[}}mmsb::page]] static __attribute__((section("mmsb_pages"), aligned(64))) int calls = 0; _Pragma("clang diagnostic push") _Pragma("clang diagnostic ignored \"-Weverything\"") static ::mmsb::rt::StaticPageRegistrar _mmsb_reg__ZZ4TickvE5calls((void*)&(calls), sizeof(calls), "_ZZ4TickvE5calls",
  [[mmsb::page]] static int calls = 0;
  return ++calls;
}
// Registrars come after the user's code, numbered as its last line.
// CHECK: #line {{[0-9]+}} "{{.*}}static-page.cpp"
// CHECK-NEXT: static ::mmsb::rt::StaticPageRegistrar _mmsb_reg_g_state((void*)&(::g_state), sizeof(::g_state), "g_state", (::mmsb::rt::InternLayout("State", 12u, 4u,
// CHECK-NEXT: static ::mmsb::rt::StaticPageRegistrar _mmsb_reg_g_implicit(
// CHECK-NEXT: static ::mmsb::rt::StaticPageRegistrar _mmsb_reg_g_arr((void*)&(::g_arr), sizeof(::g_arr), "g_arr", (::mmsb::rt::InternLayout("g_arr", 32u, 4u, {{[{][{]}}"g_arr", 0u, 32u, ::mmsb::rt::kind::kF32, 4u, {8u}, ""}})));
// Internal linkage: the name carries the file, another TU may have its own app::counter.
// CHECK-NEXT: static ::mmsb::rt::StaticPageRegistrar _mmsb_reg__ZN3appL7counterE_static_page_cpp((void*)&(::app::counter), sizeof(::app::counter), "_ZN3appL7counterE@static-page.cpp", (::mmsb::rt::InternLayout("app::counter@static-page.cpp", 4u, 4u,
// CHECK-NOT: _mmsb_reg_g_other
