// Non-const pointers and references into page storage that leave what the rewriter follows mark
// the page escaped. Passed to a library function that writes through them without keeping them
// (memcpy, std::fill, std::swap), they mark the written range for this epoch instead. Const
// views, comparisons and pointers typed as the page type are neither.
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -fsyntax-only %s
#include <mini_std.h>
struct [[mmsb::page]] P { float x[16]; int n; };
[[mmsb::page]] P g;
void Take(float& r);
void Look(const float& r);
void Typed(P* p);
float* Keep;
std::vector<float*> g_ptrs;

void Calls(const P& other) {
  // CHECK: memcpy(::mmsb::rt::MarkFromHeld(&g), &other, sizeof g);
  memcpy(&g, &other, sizeof g);
  // CHECK: std::fill(::mmsb::rt::MarkFromHeld(g.x), ::mmsb::rt::MarkFromHeld(g.x + 16), 0.f);
  std::fill(g.x, g.x + 16, 0.f);
  // std::begin and std::end hand the array through.
  // CHECK: std::fill(::mmsb::rt::MarkFromHeld(std::begin(g.x)), ::mmsb::rt::MarkFromHeld(std::end(g.x)), 1.f);
  std::fill(std::begin(g.x), std::end(g.x), 1.f);
  // CHECK: std::swap(::mmsb::rt::MarkHeld(g.x[0]), ::mmsb::rt::MarkHeld(g.x[1]));
  std::swap(g.x[0], g.x[1]);
  // A library call that writes a page through a page-typed reference is marked too.
  // CHECK: std::swap(::mmsb::rt::MarkHeld(g), ::mmsb::rt::MarkHeld(*&g));
  std::swap(g, *&g);
  // An unknown function may keep what it gets.
  // CHECK: Take(::mmsb::rt::EscapeRef(g.x[1]));
  Take(g.x[1]);
  // A pointer kept by a container, passed as a const reference to a pointer.
  // CHECK: g_ptrs.push_back(::mmsb::rt::Escape(&g.x[2]));
  g_ptrs.push_back(&g.x[2]);
  // CHECK: Keep = ::mmsb::rt::Escape(&g.x[3]);
  Keep = &g.x[3];
  // CHECK: Keep = ::mmsb::rt::Escape(g.n ? g.x : nullptr);
  Keep = g.n ? g.x : nullptr;
  // Not escapes.
  // CHECK: const float* c = g.x;
  const float* c = g.x;
  // CHECK: Look(g.x[2]);
  Look(g.x[2]);
  // CHECK: int same = memcmp(&g, &other, sizeof g);
  int same = memcmp(&g, &other, sizeof g);
  // CHECK: Typed(&g);
  Typed(&g);
  (void)c; (void)same;
}

// Returned and stored pointers and references escape.
struct [[mmsb::page]] Q {
  int data[4];
  // CHECK: int* Data() { return ::mmsb::rt::Escape(data); }
  int* Data() { return data; }
  // CHECK: int& First() { return ::mmsb::rt::EscapeRef(data[0]); }
  int& First() { return data[0]; }
  // CHECK: const int* View() const { return data; }
  const int* View() const { return data; }
};
struct RefHolder { float& r; float* p; };
struct CtorHolder {
  float& r;
  // CHECK: explicit CtorHolder(P& q) : r(::mmsb::rt::EscapeRef(q.x[0])) {}
  explicit CtorHolder(P& q) : r(q.x[0]) {}
};
struct Defaulted {
  // CHECK: float* p = ::mmsb::rt::Escape(g.x);
  float* p = g.x;
};
float Stored() {
  // CHECK: RefHolder h{::mmsb::rt::EscapeRef(g.x[4]), ::mmsb::rt::Escape(&g.x[5])};
  RefHolder h{g.x[4], &g.x[5]};
  // CHECK: float* made = new (::mmsb::rt::Escape(&g.x[6])) float(1.f);
  float* made = new (&g.x[6]) float(1.f);
  return h.r + *h.p + *made;
}

// Inside lambdas (implicitly constexpr) and constexpr functions the same forms apply; they do
// nothing during constant evaluation.
void InLambda() {
  // CHECK: [] { Take(::mmsb::rt::EscapeRef(g.x[7])); }();
  [] { Take(g.x[7]); }();
}
constexpr int Twice(int v) {
  // CHECK: if (v < 0) Take(::mmsb::rt::EscapeRef(g.x[8]));
  if (v < 0) Take(g.x[8]);
  return 2 * v;
}
static_assert(Twice(2) == 4);
