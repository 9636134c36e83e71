// A page type, a page class template and an inline static page shared by two translation units
// (multi_a.cc, multi_b.cc). Both TUs register the layouts and the page; the runtime must end up
// with one descriptor per type and one page (checked by the harness and by the absence of any
// "mmsb:" complaint).
#pragma once

namespace multi {

struct Point {
  float x, y;
};

struct [[mmsb::page]] Shared {
  int id;
  double value[4];
  Point at;
};

template <class T>
struct [[mmsb::page]] Slot {
  T v;
  int n;
};

[[mmsb::page]] inline Shared g_shared;

// Instrumented in both TUs; the linker keeps one copy.
inline void Touch(Shared& s, int k) {
  s.value[k % 4] += k;
  ++s.id;
  s.at.y = static_cast<float>(k);
}

Shared* MakeInB();
Slot<float>* MakeSlotInB();
void WriteFromB(Shared* s, Slot<float>* slot);

}  // namespace multi
