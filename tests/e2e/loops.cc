// Loops: counted loops and range-fors over page arrays, which the plugin covers with one range
// mark before the loop instead of a barrier per store, and loops it must not cover that way
// (the body can commit, the bounds or the array change). Each loop in its own epoch, so a mark
// that misses part of what the loop writes shows up as a verify miss.
#include <algorithm>
#include <cstddef>

#include "harness.h"

namespace loops {

constexpr int kN = 256;

struct Cell {
  float a, b;
};

struct [[mmsb::page]] Field {
  float x[kN];
  float v[kN];
  Cell cells[kN];
  float grid[16][16];
  int n;
};

[[mmsb::page]] Field g_field;
[[mmsb::page]] int g_commits;

[[mmsb::transaction]] void Bump() {
  E2E_TRANSACTION();
  ++g_commits;
}

void Step(Field* f, float dt) {
  for (int i = 0; i < kN; ++i) {
    f->v[i] += -f->x[i] * dt;
    f->x[i] += f->v[i] * dt;
  }
}

}  // namespace loops

using namespace loops;

int main() {
  auto* heap = new Field();
  e2e::Track("g_field", &g_field);
  e2e::Track("g_commits", &g_commits);
  e2e::Track("heap", heap);
  e2e::EndEpoch();

  for (int i = 0; i < kN; ++i) heap->x[i] = static_cast<float>(i % 13);
  e2e::EndEpoch();
  Step(heap, 0.1f);
  e2e::EndEpoch();
  // Members of elements, an inclusive bound, a sub-range, i += 1.
  int lo = 10, hi = 40;
  for (int i = lo; i <= hi; i += 1) g_field.cells[i].b = static_cast<float>(i);
  e2e::EndEpoch();
  // Nested: the outer loop marks whole rows; then a loop per row.
  for (int r = 2; r < 9; ++r)
    for (int c = 0; c < 16; ++c) g_field.grid[r][c] = static_cast<float>(r * c);
  e2e::EndEpoch();
  for (int r = 0; r < 16; r += 1) {
    g_field.n = r;
    for (int c = r; c < 16; ++c) g_field.grid[r][c] += 1;
  }
  e2e::EndEpoch();
  // An empty range marks nothing and writes nothing; a loop that stops early.
  for (int i = 5; i < 5; ++i) heap->v[i] = 1;
  for (int i = 0; i < kN; ++i) {
    if (heap->x[i] > 11) break;
    heap->v[i] = -1;
  }
  e2e::EndEpoch();
  // Range-for over page arrays, nested.
  for (float& x : g_field.x) x = 0.5f;
  e2e::EndEpoch();
  for (auto& row : heap->grid)
    for (float& c : row) c = -c + 1;
  e2e::EndEpoch();
  // A loop whose body commits: the stores after each commit still count.
  for (int i = 0; i < 4; ++i) {
    g_field.v[i * 10] = static_cast<float>(i + 1);
    Bump();
  }
  e2e::EndEpoch();
  // A loop whose bound shrinks inside it.
  int n = 20;
  for (int i = 0; i < n; ++i) {
    heap->cells[i].a = 7;
    --n;
  }
  e2e::EndEpoch();
  // Through a local pointer into the page, with an unsigned bound.
  float* vs = heap->v;
  unsigned count = 50;
  for (unsigned i = 3; i < count; ++i) vs[i] = static_cast<float>(i) * 0.25f;
  e2e::EndEpoch();
  // A loop in a lambda; a library call in the body.
  [&] {
    for (int i = 0; i < kN; i += 1) heap->x[i] = std::min(heap->x[i], 3.f);
  }();
  e2e::EndEpoch();

  e2e::ExpectPageName(&g_commits, "_ZN5loops9g_commitsE");
  return e2e::Finish();
}
