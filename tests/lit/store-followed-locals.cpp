// Local pointers and references into page storage are followed: stores through them get
// barriers, so keeping page storage in a local is not an escape. A pointer whose address is
// taken, or that is bound to a reference, cannot be followed: taking page storage into it escapes.
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -fsyntax-only %s
#include <mini_std.h>
struct Vec { float x, y; };
struct [[mmsb::page]] P { float x[8]; Vec v; std::array<int, 2> pair; int n; };
[[mmsb::page]] P g;

void Pointers(P* page, int i, bool c) {
  float buf[8];
  // CHECK: float* p = g.x;
  float* p = g.x;
  // CHECK: ::mmsb::rt::ws(&(p[i])) = 1;
  p[i] = 1;
  // CHECK: ::mmsb::rt::ws(&(*p++)) = 2;
  *p++ = 2;
  // A pointer assigned a page pointer later (here in a loop) is followed from its start.
  // CHECK: float* q = buf;
  float* q = buf;
  for (int k = 0; k < 2; ++k) {
    // CHECK: ::mmsb::rt::ws(&(*q)) += 1;
    *q += 1;
    // CHECK: q = page->x + k;
    q = page->x + k;
  }
  // Copies of followed pointers are followed.
  // CHECK: float* r = c ? q : buf;
  float* r = c ? q : buf;
  // CHECK: ::mmsb::rt::ws(&(r[0])) = 3;
  r[0] = 3;
  // Through casts and to other types.
  // CHECK: unsigned char* bytes = reinterpret_cast<unsigned char*>(&g.v);
  unsigned char* bytes = reinterpret_cast<unsigned char*>(&g.v);
  // CHECK: ::mmsb::rt::ws(&(bytes[1])) = 0;
  bytes[1] = 0;
  // CHECK: Vec* vp = &page->v;
  Vec* vp = &page->v;
  // CHECK: ::mmsb::rt::ws(&(vp->y)) = 4;
  vp->y = 4;
}

void Unfollowable(float** out) {
  // The address of `held` is taken: its page pointer escapes where it is stored.
  // CHECK: float* held = ::mmsb::rt::Escape(g.x);
  float* held = g.x;
  *out = held;
  float** where = &held;
  (void)where;
  // Swapped through references: both escape where they get page pointers.
  float* a = nullptr;
  float* b = nullptr;
  // CHECK: a = ::mmsb::rt::Escape(&g.x[1]);
  a = &g.x[1];
  std::swap(a, b);
  // A followed pointer that leaves escapes where it leaves.
  // CHECK: float* f = g.x;
  float* f = g.x;
  // CHECK: *out = ::mmsb::rt::Escape(f);
  *out = f;
}

void References() {
  // CHECK: float& r = g.x[3];
  float& r = g.x[3];
  // CHECK: ::mmsb::rt::ws(&(r)) = 5;
  r = 5;
  // CHECK: Vec& v = g.v;
  Vec& v = g.v;
  // CHECK: ::mmsb::rt::ws(&(v.x)) = 6;
  v.x = 6;
  // Structured bindings, by member and tuple-like.
  // CHECK: auto& [vx, vy] = g.v;
  auto& [vx, vy] = g.v;
  // CHECK: ::mmsb::rt::ws(&(vy)) = 7;
  vy = 7;
  // CHECK: auto& [first, second] = g.pair;
  auto& [first, second] = g.pair;
  // CHECK: ::mmsb::rt::ws(&(second)) = 8;
  second = 8;
  // A copy is not page storage.
  // CHECK: auto [cx, cy] = g.v;
  auto [cx, cy] = g.v;
  // CHECK: cx = 9;
  cx = 9;
  (void)cy;
}
