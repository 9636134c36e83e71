// A program of two TUs sharing page types (see multi_shared.h).
#include <cstddef>

#include "harness.h"
#include "multi_shared.h"

using namespace multi;

int main() {
  Shared* from_a = new Shared();
  Shared* from_b = MakeInB();
  Slot<float>* slot = MakeSlotInB();
  auto* slot_a = new Slot<float>();
  e2e::Track("g_shared", &g_shared);
  e2e::Track("from_a", from_a);
  e2e::Track("from_b", from_b);
  e2e::Track("slot", slot);
  e2e::Track("slot_a", slot_a);
  e2e::EndEpoch();

  Touch(*from_a, 1);
  Touch(*from_b, 2);
  WriteFromB(from_a, slot);
  slot_a->v = 4;
  e2e::EndEpoch();
  WriteFromB(from_b, slot_a);
  g_shared.id = 100;
  e2e::EndEpoch();

  e2e::ExpectPageName(&g_shared, "_ZN5multi8g_sharedE");
  e2e::ExpectField("multi::Shared", "value", offsetof(Shared, value), 32, "f64", {4});
  e2e::ExpectField("multi::Shared", "at", offsetof(Shared, at), 8, "record", {}, "multi::Point");
  e2e::ExpectField("multi::Slot<float>", "n", offsetof(Slot<float>, n), 4, "i32");
  return e2e::Finish();
}
