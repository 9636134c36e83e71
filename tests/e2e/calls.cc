// Calls: non-const member calls (a member type's function that keeps `this` escapes the page),
// library calls that write through pointers and references
// (memcpy, std::fill, std::sort, snprintf, ...: the range is marked, the page stays exact under
// verify mode), atomic builtins; escapes (an uninstrumented callee, a kept pointer written in a
// later epoch, a returned reference, placement new, a store inside a macro): the page is marked
// escaped and still yields exact deltas; [[mmsb::transaction]] commits at every exit.
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <new>
#include <stdexcept>
#include <utility>

#include "harness.h"
#include "opaque.h"

namespace calls {

struct [[mmsb::page]] Marks {
  float x[32];
  int ids[16];
  std::array<int, 8> arr;
  long atom;
  long expected;
  int sync;
  char text[32];
  int tail[64];
};

struct [[mmsb::page]] Scratch {
  float v[16];
};

// Member types whose functions this TU compiles: one keeps its object's address (`this`), the
// other only reads and writes its members.
struct Node;
Node* g_node = nullptr;
struct Node {
  int v[4];
  void Register() { g_node = this; }
};
struct Tally {
  int n;
  int last;
  Tally& Add(int by) {
    n += by;
    last = by;
    return *this;
  }
};

struct [[mmsb::page]] Members {
  Tally tally;
  Node node;
  opaque::Counter counter;
};

struct [[mmsb::page]] TxState {
  int a, b, c, d;
  int log[8];
};

[[mmsb::page]] Marks g_marks;
[[mmsb::page]] Members g_tallied;
[[mmsb::page]] Members g_registered;
[[mmsb::page]] Members g_counted;
[[mmsb::page]] Scratch g_opaque_call;
[[mmsb::page]] Scratch g_kept;
[[mmsb::page]] Scratch g_returned;
[[mmsb::page]] Scratch g_macro;
[[mmsb::page]] Scratch g_placement;
[[mmsb::page]] TxState g_tx;

float& Slot(int i) { return g_returned.v[i]; }

#define MACRO_BUMP() g_macro.v[3] += 1

[[mmsb::transaction]] void Tx(int mode) {
  E2E_TRANSACTION();
  g_tx.a += 1;
  if (mode == 1) return;
  g_tx.b += 1;
  if (mode == 2) throw std::runtime_error("mode 2");
  g_tx.c += 1;
}

[[mmsb::transaction]] void Outer() {
  E2E_TRANSACTION();
  Tx(0);
  Tx(1);
  g_tx.d += 1;
}

[[mmsb::transaction]] void Guarded() try {
  E2E_TRANSACTION();
  g_tx.log[0] = 1;
  throw 1;
} catch (int) {
  E2E_TRANSACTION();
  g_tx.log[1] = 2;
}

struct System {
  [[mmsb::transaction]] int Run(int v) {
    E2E_TRANSACTION();
    g_tx.log[2] = v;
    return v * 2;
  }
};

}  // namespace calls

using namespace calls;

int main() {
  e2e::Track("g_marks", &g_marks);
  e2e::Track("g_tallied", &g_tallied);
  e2e::Track("g_registered", &g_registered);
  e2e::Track("g_counted", &g_counted);
  e2e::Track("g_opaque_call", &g_opaque_call);
  e2e::Track("g_kept", &g_kept);
  e2e::Track("g_returned", &g_returned);
  e2e::Track("g_macro", &g_macro);
  e2e::Track("g_placement", &g_placement);
  e2e::Track("g_tx", &g_tx);
  e2e::EndEpoch();

  // Library calls mark what they write; each in its own epoch so that a missing mark shows.
  const float src[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  std::memcpy(&g_marks.x[4], src, sizeof src);
  e2e::EndEpoch();
  std::memset(g_marks.ids, 0x11, sizeof g_marks.ids);
  e2e::EndEpoch();
  std::fill(g_marks.x + 20, g_marks.x + 24, 2.f);
  e2e::EndEpoch();
  std::copy(src, src + 4, std::begin(g_marks.x) + 28);
  e2e::EndEpoch();
  for (int i = 0; i < 16; ++i) g_marks.ids[i] = 16 - i;
  e2e::EndEpoch();
  std::sort(std::begin(g_marks.ids), std::end(g_marks.ids));
  e2e::EndEpoch();
  std::swap(g_marks.tail[0], g_marks.tail[63]);
  g_marks.tail[10] = 1;
  e2e::EndEpoch();
  std::swap(g_marks.tail[10], g_marks.tail[62]);
  e2e::EndEpoch();
  std::snprintf(g_marks.text, sizeof g_marks.text, "epoch %d", 9);
  e2e::EndEpoch();
  g_marks.tail[40] = std::exchange(g_marks.tail[20], 42) + 1;
  e2e::EndEpoch();

  // Member calls the plugin cannot see into mark the object.
  g_marks.arr.fill(7);
  e2e::EndEpoch();
  g_tallied.tally.Add(3).Add(4);
  e2e::EndEpoch();
  // A member function the plugin cannot see may keep its object's address: the page escapes.
  g_counted.counter.Bump(3);
  e2e::EndEpoch();
  // Regression: Register keeps `this`; the store through it an epoch later is exact.
  g_registered.node.Register();
  e2e::EndEpoch();
  g_node->v[2] = 9;
  e2e::EndEpoch();
  g_marks.arr[5] = 50;
  g_marks.arr.at(6) = 60;
  e2e::EndEpoch();
  // Regression (issue 13, class 3): an operand that commits (a transaction) runs after the
  // object's first mark, so the callee's stores fall in the next epoch: they must be in it.
  g_marks.arr.fill(System{}.Run(4));
  e2e::EndEpoch();
  g_tallied.tally.Add(System{}.Run(5));
  e2e::EndEpoch();
  std::fill(g_marks.tail + 8, g_marks.tail + 12, System{}.Run(6));
  e2e::EndEpoch();
  g_marks.ids[System{}.Run(3) & 15] = System{}.Run(7);
  e2e::EndEpoch();
  g_marks.arr[System{}.Run(8) & 7] += 3;
  e2e::EndEpoch();
  __atomic_fetch_add(&g_marks.atom, System{}.Run(9), __ATOMIC_RELAXED);
  e2e::EndEpoch();

  // Atomic builtins.
  __atomic_fetch_add(&g_marks.atom, 5, __ATOMIC_RELAXED);
  e2e::EndEpoch();
  g_marks.expected = 1;
  e2e::EndEpoch();
  __atomic_compare_exchange_n(&g_marks.atom, &g_marks.expected, 9L, false, __ATOMIC_SEQ_CST,
                              __ATOMIC_SEQ_CST);  // fails: writes 5 into expected
  e2e::EndEpoch();
  __sync_fetch_and_add(&g_marks.sync, 2);
  __atomic_store_n(&g_marks.atom, 11L, __ATOMIC_RELEASE);
  e2e::EndEpoch();

  // Escapes: exact deltas through a full diff.
  opaque::Scale(g_opaque_call.v, 16, 2.f);
  g_opaque_call.v[0] = 1;
  e2e::EndEpoch();
  opaque::Scale(g_opaque_call.v, 16, 3.f);
  opaque::Keep(&g_kept.v[2]);
  e2e::EndEpoch();
  opaque::WriteKept(5.f);  // an epoch later, through the kept pointer
  e2e::EndEpoch();
  Slot(3) = 7;
  float& kept = Slot(4);
  e2e::EndEpoch();
  kept = 8;
  MACRO_BUMP();
  e2e::EndEpoch();
  float* made = new (&g_placement.v[1]) float(3.f);
  e2e::EndEpoch();
  *made += 1;
  e2e::EndEpoch();

  // Transactions commit at every exit: returns, exceptions, nested scopes, handlers.
  Tx(0);
  Tx(1);
  try {
    Tx(2);
  } catch (const std::runtime_error&) {
    g_tx.log[3] = 3;
  }
  Outer();
  Guarded();
  g_tx.log[4] = System{}.Run(21);
  e2e::EndEpoch();

  e2e::ExpectEscaped(&g_counted);
  e2e::ExpectEscaped(&g_registered);
  e2e::ExpectEscaped(&g_opaque_call);
  e2e::ExpectEscaped(&g_kept);
  e2e::ExpectEscaped(&g_returned);
  e2e::ExpectEscaped(&g_macro);
  e2e::ExpectEscaped(&g_placement);
  return e2e::Finish();
}
