// A member function declared in a system header is not trusted for being there: a third-party
// library under -isystem may keep `this` (or a member's address) beyond the call, and a held
// mark covers the call only. Its body is checked as a user callee's is (the page escapes when it
// may keep an address); only the standard value types of the allowlist (std::array, optional,
// variant, bitset, ... of inert types: no user code runs in them) keep the held mark untested.
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %rw %s -- -Rmmsb-escape 2>&1 >/dev/null | FileCheck %s --check-prefix=REMARK
// RUN: %cxx -fsyntax-only %s
#include <bitset>
#include <mini_std.h>
#include <optional>
#include <third_party.h>
#include <variant>
struct Elem {
  int x;
  Elem() = default;
  Elem(int v) : x(v) {}
};
struct [[mmsb::page]] P {
  tp::Hook hook;
  tp::Ring<int> ring;
  std::array<int, 4> arr;
  std::optional<int> opt;
  std::variant<int, double> var;
  std::bitset<64> bits;
  std::optional<Elem> elem;
};
[[mmsb::page]] P g;

void Keepers() {
  // CHECK: ::mmsb::rt::Escape(&(::g)); ::mmsb::rt::MarkHeld(g.hook).Attach();
  // REMARK: [[@LINE+1]]:10: remark: {{.*}}'g.hook'{{.*}}'tp::Hook::Attach', which may keep its address
  g.hook.Attach();
  // CHECK: ::mmsb::rt::Escape({{.*}}); ::mmsb::rt::MarkHeld(g.hook).Expose();
  g.hook.Expose();
  // CHECK: ::mmsb::rt::Escape({{.*}}); ::mmsb::rt::MarkHeld(g.hook).Unseen();
  g.hook.Unseen();
  // A template's instantiated body is checked too.
  // CHECK: ::mmsb::rt::Escape({{.*}}); ::mmsb::rt::MarkHeld(g.ring).Share();
  // REMARK: [[@LINE+1]]:10: remark: {{.*}}'g.ring'{{.*}}'tp::Ring<int>::Share', which may keep its address
  g.ring.Share();
}

void KeepNothing() {
  // CHECK: {{^}}  ::mmsb::rt::MarkHeld(g.hook).Set(1, 2);
  g.hook.Set(1, 2);
  // CHECK: {{^}}  ::mmsb::rt::MarkHeld(g.ring).Push(3);
  g.ring.Push(3);
  // CHECK: {{^}}  ::mmsb::rt::ws(&(g.hook)) += 4;
  g.hook += 4;
  // The allowlist: inert standard value types.
  // CHECK: {{^}}  ::mmsb::rt::MarkHeld(g.arr).fill(0);
  g.arr.fill(0);
  // CHECK: {{^}}  ::mmsb::rt::MarkHeld(g.opt).emplace(5);
  g.opt.emplace(5);
  // CHECK: {{^}}  ::mmsb::rt::MarkHeld(g.opt).reset();
  g.opt.reset();
  // CHECK: {{^}}  ::mmsb::rt::MarkHeld(g.var).emplace<1>(2.5);
  g.var.emplace<1>(2.5);
  // CHECK: {{^}}  ::mmsb::rt::MarkHeld(g.bits).set(3);
  g.bits.set(3);
}

// REMARK-NOT: remark: {{.*}}which may keep its address
void UserCodeInside() {
  // std::optional<Elem>::emplace runs Elem's constructor: not inert, so its body is checked, and
  // what the library does with `this` on the way there is not shown to keep nothing.
  // CHECK: ::mmsb::rt::Escape({{.*}}); ::mmsb::rt::MarkHeld(g.elem).emplace(6);
  // REMARK: [[@LINE+1]]:10: remark: {{.*}}'g.elem'{{.*}}'std::optional<Elem>::emplace', which may keep its address
  g.elem.emplace(6);
}
