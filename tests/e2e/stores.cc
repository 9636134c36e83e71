// Every store form into page storage: =, each compound assignment, ++/--, through '.', '->',
// '[]', '*', nested members, arrays of arrays, pointers to members, 'this' in member functions,
// bitfields, whole objects, chained and conditional destinations, and an index with a side effect
// (the destination is evaluated exactly once). No page may escape: verify mode checks them all.
#include <cstddef>
#include <cstdint>

#include "harness.h"

namespace stores {

struct Vec3 {
  float x, y, z;
};

struct [[mmsb::page]] Body {
  double pos[3];
  Vec3 vel;
  int grid[4][5];
  std::int64_t count;
  std::uint32_t flags;
  unsigned armed : 1;
  unsigned mode : 3;
  unsigned char tail[70];  // spans granule boundaries

  void Step(double dt) {
    pos[0] += vel.x * dt;
    pos[1] += vel.y * dt;
    this->pos[2] += vel.z * dt;
    ++count;
  }
  void Arm(unsigned m) {
    armed = 1;
    this->mode = m;
  }
};

// One 64-byte granule per lane: a store form that lost its barrier leaves its lane's granule
// unmarked, and verify mode reports it.
struct Lane {
  std::int64_t v;
  std::uint32_t u;
  float f;
  double d[2];
  unsigned char pad[32];
};
static_assert(sizeof(Lane) == 64);
struct [[mmsb::page]] Lanes {
  Lane lane[40];
};

// A page of many granules, written sparsely.
struct [[mmsb::page]] Big {
  float data[4096];
  int hits;
};

[[mmsb::page]] Body g_body;
Body g_implicit;  // a page by its type alone

int g_index_calls = 0;
int NextIndex() { return g_index_calls++; }

}  // namespace stores

using namespace stores;

int main() {
  auto* heap = new Body();
  auto* big = new Big();
  auto* lanes = new Lanes();
  e2e::Track("g_body", &g_body);
  e2e::Track("g_implicit", &g_implicit);
  e2e::Track("heap", heap);
  e2e::Track("big", big);
  e2e::Track("lanes", lanes);
  e2e::EndEpoch();

  // Each form alone in its granule.
  {
    Lane* l = lanes->lane;
    lanes->lane[0].v = 3;
    lanes->lane[1].v += 3;
    lanes->lane[2].v -= 3;
    lanes->lane[3].v = 5;
    e2e::EndEpoch();
    lanes->lane[3].v *= 3;
    lanes->lane[4].v = 9;
    e2e::EndEpoch();
    lanes->lane[4].v /= 2;
    lanes->lane[5].v = 7;
    e2e::EndEpoch();
    lanes->lane[5].v %= 4;
    lanes->lane[6].u = 1;
    lanes->lane[7].u = 0xFF;
    lanes->lane[8].u = 0x80;
    lanes->lane[9].u = 6;
    lanes->lane[10].u = 6;
    lanes->lane[11].u = 6;
    e2e::EndEpoch();
    lanes->lane[6].u <<= 3;
    lanes->lane[7].u >>= 2;
    lanes->lane[8].u &= 0x81u;
    lanes->lane[9].u |= 1u;
    lanes->lane[10].u ^= 3u;
    ++lanes->lane[11].u;
    lanes->lane[12].u++;
    --lanes->lane[13].u;
    lanes->lane[14].u--;
    (*lanes).lane[15].f = 1.5f;
    l[16].d[1] = 2.5;
    (l + 17)->v = 17;
    *&l[18].f = 18;
    lanes->lane[19].d[0] = lanes->lane[20].d[1] = 20;
    (lanes->lane[21].v > 0 ? lanes->lane[22] : lanes->lane[23]).u = 23;
    lanes->lane[24] = Lane{24, 24, 24, {24, 24}, {}};
    std::uint32_t Lane::*member = &Lane::u;
    lanes->lane[25].*member = 25;
    l[26].*member += 26;
    lanes->lane[27 + NextIndex()].v = 27;
    e2e::EndEpoch();
  }

  // Assignment and every compound assignment.
  g_body.count = 5;
  g_body.count += 7;
  g_body.count -= 2;
  g_body.count *= 3;
  g_body.count /= 2;
  g_body.count %= 11;
  g_body.flags = 0xF0;
  g_body.flags <<= 2;
  g_body.flags >>= 1;
  g_body.flags &= 0x1FEu;
  g_body.flags |= 1u;
  g_body.flags ^= 0x10u;
  heap->count = 100;
  ++heap->count;
  heap->count++;
  --heap->count;
  heap->count--;
  heap->count--;
  e2e::EndEpoch();

  // Access paths.
  heap->vel.x = 1.5f;
  heap->vel.y = -2;
  (*heap).vel.z = 3;
  heap->grid[1][2] = 7;
  heap->grid[3][4] += 2;
  g_body.pos[1] = 2.5;
  *(g_body.grid[2] + 3) = 11;
  Body* alias = &g_body;
  alias[0].grid[0][0] = -1;
  // The destination with a side effect is evaluated once.
  heap->grid[NextIndex()][1] += 4;
  heap->grid[NextIndex()][1] = 5;
  g_body.count = g_index_calls;
  // Chained, conditional and pointer-to-member destinations.
  g_body.pos[0] = heap->pos[0] = 4.25;
  (g_body.count > 1 ? g_body.vel : heap->vel).x = 6;
  std::int64_t Body::*field = &Body::count;
  heap->*field = 77;
  g_body.*field += 1;
  e2e::EndEpoch();

  // Member functions (this), bitfields, whole members and objects, the same value again.
  heap->Step(0.5);
  g_body.Arm(5);
  heap->mode = 2;
  heap->armed = 1;
  g_body.armed = 0;
  heap->vel = Vec3{7, 8, 9};
  g_body.flags = g_body.flags;
  for (int k = 55; k < 70; ++k) g_body.tail[k] = static_cast<unsigned char>(k);
  big->data[0] = 1;
  big->data[4095] = 2;
  big->data[1000] += 3;
  big->hits++;
  e2e::EndEpoch();

  g_implicit = g_body;
  *heap = g_implicit;
  big->data[17] = big->data[17];  // no change, no delta
  e2e::EndEpoch();

  e2e::Untrack(heap);
  delete heap;
  big->data[2048] = 5;
  e2e::EndEpoch();

  e2e::ExpectPageName(&g_body, "_ZN6stores6g_bodyE");
  e2e::ExpectPageName(&g_implicit, "_ZN6stores10g_implicitE");
  e2e::ExpectField("stores::Body", "pos", offsetof(Body, pos), sizeof(Body::pos), "f64", {3});
  e2e::ExpectField("stores::Body", "vel", offsetof(Body, vel), sizeof(Vec3), "record", {},
                   "stores::Vec3");
  e2e::ExpectField("stores::Body", "grid", offsetof(Body, grid), sizeof(Body::grid), "i32", {4, 5});
  e2e::ExpectField("stores::Body", "count", offsetof(Body, count), 8, "i64");
  e2e::ExpectField("stores::Body", "tail", offsetof(Body, tail), 70, "u8", {70});
  e2e::ExpectField("stores::Vec3", "y", offsetof(Vec3, y), 4, "f32");
  e2e::ExpectField("stores::Big", "data", 0, sizeof(Big::data), "f32", {4096});
  e2e::ExpectField("stores::Lanes", "lane", 0, sizeof(Lanes::lane), "record", {40}, "stores::Lane");
  e2e::ExpectField("stores::Lane", "d", offsetof(Lane, d), 16, "f64", {2});
  return e2e::Finish();
}
