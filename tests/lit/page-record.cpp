// A page type gets class-scope operator new/delete from the arena and its layout descriptor.
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -fsyntax-only %s
#include <mini_std.h>
struct Inner { short a; double b; };
enum class Mode : unsigned char { kOff, kOn };
struct [[mmsb::page]] Particles {
  float x[4];
  double grid[2][3];
  Inner in;
  Mode mode;
  bool alive;
  char tag;
  unsigned long long step;
  unsigned lo : 3, hi : 5;
  void* user;
};
// CHECK: struct {{\[\[}}mmsb::page]] Particles {
// CHECK: void* user;
// CHECK-NEXT: public: static void* operator new(::std::size_t _mmsb_n) { void* _mmsb_p = ::mmsb::rt::AllocPageStorage(_mmsb_n, alignof(Particles), _mmsb_n == sizeof(Particles) ? Particles::_mmsb_type() : nullptr); if (!_mmsb_p) throw ::std::bad_alloc(); return _mmsb_p; }
// CHECK-SAME: static void* operator new(::std::size_t, void* _mmsb_p) noexcept { return _mmsb_p; }
// CHECK-SAME: static void operator delete(void* _mmsb_p) noexcept { ::mmsb::rt::FreePageStorage(_mmsb_p); }
// Nested records are interned first, then the type itself.
// CHECK-SAME: ::mmsb::rt::InternLayout("Inner", 16u, 8u, {{[{][{]}}"a", 0u, 2u, ::mmsb::rt::kind::kI16, 2u, {}, ""}, {"b", 8u, 8u, ::mmsb::rt::kind::kF64, 8u, {}, ""}}),
// CHECK-SAME: ::mmsb::rt::InternLayout("Particles", 112u, 8u, {
// CHECK-SAME: {"x", 0u, 16u, ::mmsb::rt::kind::kF32, 4u, {4u}, ""},
// CHECK-SAME: {"grid", 16u, 48u, ::mmsb::rt::kind::kF64, 8u, {2u, 3u}, ""},
// CHECK-SAME: {"in", 64u, 16u, ::mmsb::rt::kind::kRecord, 16u, {}, "Inner"},
// CHECK-SAME: {"mode", 80u, 1u, ::mmsb::rt::kind::kU8, 1u, {}, ""},
// CHECK-SAME: {"alive", 81u, 1u, ::mmsb::rt::kind::kBool, 1u, {}, ""},
// CHECK-SAME: {"tag", 82u, 1u, ::mmsb::rt::kind::kChar, 1u, {}, ""},
// CHECK-SAME: {"step", 88u, 8u, ::mmsb::rt::kind::kU64, 8u, {}, ""},
// CHECK-SAME: {"lo,hi", 96u, 1u, ::mmsb::rt::kind::kBytes, 1u, {}, ""},
// CHECK-SAME: {"user", 104u, 8u, ::mmsb::rt::kind::kPointer, 8u, {}, ""}}));
// CHECK-SAME: return _mmsb_d; } _Pragma("clang diagnostic pop") };

namespace ns {
struct [[mmsb::page]] Named { int v; };
}
// CHECK: InternLayout("ns::Named", 4u, 4u,

void Alloc() {
  // new and make_unique pick up the class-scope operator new; placement new still works.
  // CHECK: auto* p = new Particles{};
  auto* p = new Particles{};
  auto u = std::make_unique<Particles>();
  alignas(Particles) unsigned char buf[sizeof(Particles)];
  auto* q = new (buf) Particles{};
  (void)q;
  (void)u;
  delete p;
}
