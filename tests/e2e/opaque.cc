#include "opaque.h"

namespace opaque {
namespace {
float* g_kept = nullptr;
}  // namespace

void Scale(float* p, int n, float f) {
  for (int i = 0; i < n; ++i) p[i] *= f;
}

void Keep(float* p) { g_kept = p; }

void WriteKept(float v) { *g_kept = v; }

void Counter::Bump(int by) {
  count += by;
  last = by;
}

}  // namespace opaque
