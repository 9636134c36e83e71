// Stores to members with reduced alignment: a packed page type, #pragma pack, a packed struct
// nested in a page type, an array of packed structs, and an aligned struct at an odd offset.
// Built with -fsanitize=alignment in both builds (fatal): a store the rewriter turned into an
// aligned access fails the instrumented run, and the traces compare every delta byte for byte
// with the plain build's. Members straddle granule boundaries, so a mark that misses the second
// granule is a verify-mode miss.
#include <cstddef>
#include <cstdint>

#include "harness.h"

namespace packed {

struct Vec {
  int a;
  double b;
};

struct __attribute__((packed)) Rec {
  char tag;
  double value;
  std::uint32_t count;
};
static_assert(sizeof(Rec) == 13);

struct [[mmsb::page]] __attribute__((packed)) Wire {
  char c;
  int i;
  double d;
  std::uint64_t u;
  short s;
  char pad[38];
  std::uint64_t straddle;  // offset 61: crosses the first granule boundary
  int arr[5];
  Vec vec;  // an aligned struct at an odd offset
  float* ptr;
  Rec recs[7];
};
static_assert(offsetof(Wire, straddle) == 61);

#pragma pack(push, 1)
struct [[mmsb::page]] Pragma {
  std::uint8_t kind;
  std::uint32_t len;
  double x;
  std::int64_t when;
};
#pragma pack(pop)

// A page type that is not packed, holding a packed struct: the inner members are misaligned.
struct __attribute__((packed)) Header {
  char tag;
  std::uint32_t len;
  Vec vec;
};
struct [[mmsb::page]] Message {
  double stamp;
  char gap[3];
  Header head;  // Header's alignment is 1: at offset 11
  Header heads[4];
};

// Stores the rewriter leaves as written, escaping the page instead (a warning says so).
struct Bits {
  unsigned level : 4;
  unsigned mode : 4;
};
struct [[mmsb::page]] __attribute__((packed)) Odd {
  char c;
  int i;
  Bits bits;  // a bit-field of an object at an odd offset
};

[[mmsb::page]] Wire g_wire;
[[mmsb::page]] Pragma g_pragma;

int g_calls = 0;
int Next() { return g_calls++ % 7; }

}  // namespace packed

using namespace packed;

int main() {
  auto* heap = new Wire();
  auto* msg = new Message();
  auto* odd = new Odd();
  e2e::Track("g_wire", &g_wire);
  e2e::Track("g_pragma", &g_pragma);
  e2e::Track("heap", heap);
  e2e::Track("msg", msg);
  e2e::Track("odd", odd);
  e2e::EndEpoch();

  // Plain stores.
  g_wire.i = -5;
  g_wire.d = 2.5;
  g_wire.u = 0x0102030405060708ULL;
  g_wire.s = 7;
  g_wire.straddle = 0xA1A2A3A4A5A6A7A8ULL;
  g_wire.ptr = nullptr;
  g_pragma.len = 1234567;
  g_pragma.x = -0.125;
  g_pragma.when = -99;
  heap->i = 11;
  heap->d = 1e300;
  heap->straddle = 42;
  e2e::EndEpoch();

  // Compound assignment, increment and decrement; results used as values.
  g_wire.i += 10;
  g_wire.i *= 3;
  g_wire.u ^= 0xFF00FF00FF00FF00ULL;
  g_wire.u >>= 3;
  g_wire.d /= 4;
  g_wire.s -= 100;
  ++g_wire.straddle;
  g_wire.straddle--;
  g_wire.straddle++;
  heap->i++;
  --heap->d;
  g_pragma.len <<= 2;
  g_pragma.when %= 7;
  g_wire.i += heap->i;  // misaligned members and bit-fields on the right are read by value
  const Bits local{3, 5};
  g_wire.s = local.mode;
  g_wire.s += local.level;
  const int seen = (g_wire.i -= 1);
  const std::uint64_t old = g_wire.u++;
  g_pragma.x = g_wire.d = 0.75;  // chained: the inner result is read as a value
  if ((heap->i += 1) > 0) heap->s = static_cast<short>(seen + static_cast<int>(old & 7));
  e2e::EndEpoch();

  // Arrays, arrays of packed structs, nested members, an index with a side effect.
  for (int k = 0; k < 5; ++k) g_wire.arr[k] = k * k - 3;
  g_wire.arr[2] += 100;
  g_wire.recs[3].value = 3.25;
  g_wire.recs[Next()].count += 5;
  g_wire.recs[Next()].count++;
  heap->recs[6].value *= 2;
  heap->recs[6].value = 6.5;
  g_wire.vec.b = 8.5;
  g_wire.vec.a = -8;
  g_wire.vec = Vec{9, 9.25};  // a whole aligned struct at an odd offset
  heap->vec = g_wire.vec;
  msg->head.len = 77;
  msg->head.vec.b = -1.5;
  msg->heads[2].vec.a += 3;
  msg->heads[Next() % 4].len = 5;
  msg->stamp = 1.0;
  e2e::EndEpoch();

  // The same value again: no delta.
  g_wire.i = g_wire.i;
  g_pragma.x = -0.125 + 0.875;
  g_pragma.x = 0.75;
  e2e::EndEpoch();

  // Left as written, the page escaped: the result used as an lvalue, and a bit-field.
  (odd->i = 4) += 1;
  odd->bits.level = 3;
  odd->bits.mode = 5;
  e2e::EndEpoch();
  odd->i = 9;  // a plain store on the escaped page still lands
  e2e::EndEpoch();

  e2e::ExpectEscaped(odd);
  e2e::ExpectField("packed::Wire", "straddle", offsetof(Wire, straddle), 8, "u64");
  e2e::ExpectField("packed::Wire", "recs", offsetof(Wire, recs), sizeof(Wire::recs), "record",
                   {7}, "packed::Rec");
  e2e::ExpectField("packed::Rec", "value", 1, 8, "f64");
  e2e::ExpectField("packed::Pragma", "len", 1, 4, "u32");
  return e2e::Finish();
}
