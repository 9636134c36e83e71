// std::copy_backward and std::move_backward are given the end of what they write: marking from
// that pointer to the end of its page (what other library writes get) would mark none of the
// bytes they write. Their page pointers escape the page instead.
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %rw %s -- -Rmmsb-escape 2>&1 >/dev/null | FileCheck %s --check-prefix=REMARK
// RUN: %cxx -fsyntax-only %s
#include <mini_std.h>
#include <iterator>
struct [[mmsb::page]] P { int a[64]; int b[8]; };
[[mmsb::page]] P g;

void Calls(const int* src) {
  // CHECK: std::copy_backward(src, src + 8, ::mmsb::rt::Escape(g.a + 20));
  // REMARK: [[@LINE+1]]:40: remark: {{.*}}which writes below the pointer it is given
  std::copy_backward(src, src + 8, g.a + 20);
  // CHECK: std::move_backward(src, src + 8, ::mmsb::rt::Escape(std::end(g.b)));
  std::move_backward(src, src + 8, std::end(g.b));
  // Forward writers keep the mark from the pointer to the end of its page.
  // CHECK: std::copy(src, src + 8, ::mmsb::rt::MarkFromHeld(g.a + 20));
  std::copy(src, src + 8, g.a + 20);
}
