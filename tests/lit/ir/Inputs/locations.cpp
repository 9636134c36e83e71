#include <algorithm>
#include <vector>
struct [[mmsb::page]] Grid { int v[8]; };
static int SortDescending(std::vector<int>& xs) {
  std::sort(xs.begin(), xs.end(), [](int a, int b) { return a > b; });
  return xs[0];
}
struct A { virtual ~A() = default; virtual int F() { return 1; } };
struct B { virtual ~B() = default; virtual int G() { return 2; } };
struct C : A, B { int G() override { return 3; } };
int Use(Grid* grid, std::vector<int>& xs) {
  grid->v[0] = SortDescending(xs);
  C c;
  B* b = &c;
  return b->G() + grid->v[0];
}
