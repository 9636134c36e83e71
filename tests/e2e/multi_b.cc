#include "multi_shared.h"

namespace multi {

Shared* MakeInB() { return new Shared(); }

Slot<float>* MakeSlotInB() { return new Slot<float>(); }

void WriteFromB(Shared* s, Slot<float>* slot) {
  s->at.x = 2;
  Touch(*s, 3);
  Touch(g_shared, 5);
  slot->v = 1.25f;
  ++slot->n;
}

}  // namespace multi
