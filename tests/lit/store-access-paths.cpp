// Stores through '.', '->', '[]', nested members, arrays of arrays and pointer arithmetic.
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -fsyntax-only %s
struct Vec { float x, y; };
struct [[mmsb::page]] World {
  Vec pos[4];
  int grid[3][5];
  Vec* cursor;
  int count;
};
[[mmsb::page]] World w;

int Next(int& i) { return i++; }

void Paths(World* p, World& r, int i, int j) {
  // CHECK: ::mmsb::rt::ws(&(w.pos[i].x)) = 1;
  w.pos[i].x = 1;
  // CHECK: ::mmsb::rt::ws(&(p->pos[i].y)) = 2;
  p->pos[i].y = 2;
  // CHECK: ::mmsb::rt::ws(&(r.grid[i][j])) += 3;
  r.grid[i][j] += 3;
  // CHECK: ::mmsb::rt::ws(&((*p).count)) = 0;
  (*p).count = 0;
  // CHECK: ::mmsb::rt::ws(&(*(w.grid[1] + j))) = 7;
  *(w.grid[1] + j) = 7;
  // CHECK: ::mmsb::rt::ws(&(p[1].count)) = 3;
  p[1].count = 3;
  // Nested stores: each destination gets its barrier, the index is evaluated once.
  // CHECK: ::mmsb::rt::ws(&(w.grid[::mmsb::rt::ws(&(w.count))++][0])) = 5;
  w.grid[w.count++][0] = 5;
  // Through a pointer member: the pointee is not page storage.
  // CHECK: w.cursor->x = 1;
  w.cursor->x = 1;
  // Whole nested member (a record assignment).
  // CHECK: ::mmsb::rt::ws(&(w.pos[0])) = Vec{1, 2};
  w.pos[0] = Vec{1, 2};
  // Byte-wise writes through a cast pointer.
  // CHECK: ::mmsb::rt::ws(&(reinterpret_cast<char*>(&w)[3])) = 0;
  reinterpret_cast<char*>(&w)[3] = 0;
}
