// Non-const pointers and references into page storage that leave the expression mark the page
// escaped; const views and typed page pointers do not.
// RUN: %rw %s -- | FileCheck %s
// RUN: %cxx -fsyntax-only %s
#include <mini_std.h>
struct [[mmsb::page]] P { float x[16]; int n; };
[[mmsb::page]] P g;
void Take(float& r);
void Look(const float& r);
void Typed(P* p);
float* Keep;


void Escapes(const P& other) {
  // CHECK: memcpy([](auto* _mmsb_p) noexcept { ::mmsb::rt::MarkEscapedAt(_mmsb_p); return _mmsb_p; }(&g), &other, sizeof g);
  memcpy(&g, &other, sizeof g);
  // CHECK: std::fill([](auto* _mmsb_p) noexcept { ::mmsb::rt::MarkEscapedAt(_mmsb_p); return _mmsb_p; }(g.x), [](auto* _mmsb_p) noexcept { ::mmsb::rt::MarkEscapedAt(_mmsb_p); return _mmsb_p; }(g.x + 16), 0.f);
  std::fill(g.x, g.x + 16, 0.f);
  // CHECK: float* p = [](auto* _mmsb_p) noexcept { ::mmsb::rt::MarkEscapedAt(_mmsb_p); return _mmsb_p; }(g.x);
  float* p = g.x;
  // CHECK: Keep = [](auto* _mmsb_p) noexcept { ::mmsb::rt::MarkEscapedAt(_mmsb_p); return _mmsb_p; }(&g.x[3]);
  Keep = &g.x[3];
  // CHECK: Take((*[](auto* _mmsb_p) noexcept { ::mmsb::rt::MarkEscapedAt(_mmsb_p); return _mmsb_p; }(&(g.x[1]))));
  Take(g.x[1]);
  // CHECK: float& r = (*[](auto* _mmsb_p) noexcept { ::mmsb::rt::MarkEscapedAt(_mmsb_p); return _mmsb_p; }(&(g.n == 0 ? g.x[0] : g.x[1])));
  float& r = g.n == 0 ? g.x[0] : g.x[1];
  // CHECK: std::swap((*[](auto* _mmsb_p)
  std::swap(g.x[0], g.x[1]);
  // Not escapes: const views, comparisons, typed page pointers.
  // CHECK: const float* c = g.x;
  const float* c = g.x;
  // CHECK: Look(g.x[2]);
  Look(g.x[2]);
  // CHECK: int same = memcmp(&g, &other, sizeof g);
  int same = memcmp(&g, &other, sizeof g);
  // CHECK: Typed(&g);
  Typed(&g);
  // CHECK: bool in = p == g.x;
  bool in = p == g.x;
  (void)c; (void)same; (void)in; (void)r;
}

// A non-const pointer returned from a member function escapes.
struct [[mmsb::page]] Q {
  int data[4];
  // CHECK: int* Data() { return [](auto* _mmsb_p) noexcept { ::mmsb::rt::MarkEscapedAt(_mmsb_p); return _mmsb_p; }(data); }
  int* Data() { return data; }
  // CHECK: const int* View() const { return data; }
  const int* View() const { return data; }
};
