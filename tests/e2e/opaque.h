// Code compiled without the plugin in every e2e build: calls into it are uninstrumented calls.
#pragma once

namespace opaque {

// Multiplies p[0..n) by f.
void Scale(float* p, int n, float f);
// Keeps p; WriteKept writes through it later.
void Keep(float* p);
void WriteKept(float v);

// A non-page type whose member functions the plugin never sees.
struct Counter {
  int count;
  int last;
  void Bump(int by);
};

}  // namespace opaque
