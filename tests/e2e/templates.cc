// Templates (instantiated over page and plain types, dependent code, a page class template),
// lambdas (capturing, generic, init-captures), range-for with non-const references, and local
// pointers and references into pages, which the rewriter follows instead of escaping the page.
#include <array>
#include <cstddef>
#include <tuple>

#include "harness.h"

namespace tl {

struct [[mmsb::page]] Grid {
  float cells[8][8];
  int total;
  std::array<int, 6> hist;
  float Sum() const {
    float s = 0;
    for (const auto& row : cells)
      for (float c : row) s += c;
    return s;
  }
};

struct PlainGrid {
  float cells[8][8];
  int total;
  std::array<int, 6> hist;
};

template <class T>
struct [[mmsb::page]] Cell {
  T value;
  int writes;
  void Set(T v) {
    value = v;
    ++writes;
  }
};

[[mmsb::page]] Grid g_grid;
[[mmsb::page]] Cell<int> g_cell;

template <class G>
void Fill(G& g, float v) {
  for (auto& row : g.cells)
    for (float& c : row) c = v;
  g.total += 1;
}

template <class G>
void Histogram(G& g) {
  for (int& h : g.hist) h += 2;
  std::get<3>(g.hist) = 30;
}

template <class T, class F>
void Apply(T& target, F f) {
  f(target);
}

}  // namespace tl

using namespace tl;

int main() {
  auto* heap = new Grid();
  auto* cell = new Cell<double>();
  e2e::Track("g_grid", &g_grid);
  e2e::Track("g_cell", &g_cell);
  e2e::Track("heap", heap);
  e2e::Track("cell", cell);
  e2e::EndEpoch();

  // Function templates over page and plain types.
  PlainGrid plain{};
  Fill(*heap, 1.f);
  Fill(plain, 2.f);
  Histogram(g_grid);
  Histogram(plain);
  heap->total += static_cast<int>(plain.cells[0][0]);
  e2e::EndEpoch();

  // A page class template: members write through this; instantiations have descriptors.
  cell->Set(2.5);
  g_cell.Set(4);
  g_cell.Set(5);
  e2e::EndEpoch();

  // Lambdas.
  [&] { g_grid.total *= 3; }();
  [p = heap] { p->cells[7][7] = 77; }();
  auto bump = [](auto& c) { c.writes += 10; };
  bump(*cell);
  bump(g_cell);
  Apply(g_grid, [](Grid& g) { g.cells[0][1] = -1; });
  [&r = g_grid.cells[6][6]] { r = 66; }();
  e2e::EndEpoch();

  // Range-for with non-const references, also nested and over std::array.
  for (float& c : g_grid.cells[2]) c += 1;
  for (auto& row : heap->cells) row[5] = 5;
  for (int& h : heap->hist) h = 3;
  for (auto&& c : g_grid.cells[4]) c = 4;
  e2e::EndEpoch();

  // Local pointers and references into pages.
  float* row = g_grid.cells[5];
  for (int k = 0; k < 8; ++k) row[k] = static_cast<float>(k);
  float* q = row + 3;
  *q = 100;
  int& total = heap->total;
  total += 5;
  auto& [h0, h1, h2, h3, h4, h5] = g_grid.hist;
  h5 = 55;
  (void)h0, (void)h1, (void)h2, (void)h3, (void)h4;
  double& value = cell->value;
  value *= 2;
  float* cursor = nullptr;
  for (int k = 0; k < 3; ++k) {
    if (cursor != nullptr) *cursor = 9;  // writes the page assigned below, one round later
    cursor = &heap->cells[1][k];
  }
  e2e::EndEpoch();

  heap->total = static_cast<int>(g_grid.Sum());
  e2e::EndEpoch();

  e2e::ExpectField("tl::Cell<double>", "value", offsetof(Cell<double>, value), 8, "f64");
  e2e::ExpectField("tl::Cell<double>", "writes", offsetof(Cell<double>, writes), 4, "i32");
  e2e::ExpectField("tl::Cell<int>", "value", 0, 4, "i32");
  e2e::ExpectField("tl::Grid", "cells", 0, sizeof(Grid::cells), "f32", {8, 8});
  e2e::ExpectPageName(&g_cell, "_ZN2tl6g_cellE");
  return e2e::Finish();
}
