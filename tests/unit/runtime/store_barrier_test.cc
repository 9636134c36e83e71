// The store-then-mark barrier (mmsb/barrier.h, rt::ws): the rewritten store keeps the original's
// value, type, value category and evaluation order, and marks the granule after storing.
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "mmsb/instrument.h"
#include "mmsb/mmsb.h"
#include "mmsb/page.h"

#include "bus_fixture.h"

namespace mmsb {
namespace {

using rt::ws;
using rt::wst;

struct Pair {
  int a, b;
};

constexpr int ConstexprStores() {
  int x = 1;
  ws(&x) = 5;
  ws(&x) += 2;
  ++ws(&x);
  ws(&x)++;
  return x;
}
static_assert(ConstexprStores() == 9, "ws() works during constant evaluation");

TEST(StoreBarrier, ResultTypesAndValueCategoriesMatchTheBuiltInOperators) {
  int x = 0;
  int* p = &x;
  static_assert(std::is_same_v<decltype(ws(&x) = 1), int&>);
  static_assert(std::is_same_v<decltype(ws(&x) += 1), int&>);
  static_assert(std::is_same_v<decltype(ws(&x) <<= 1), int&>);
  static_assert(std::is_same_v<decltype(++ws(&x)), int&>);
  static_assert(std::is_same_v<decltype(ws(&x)++), int>);
  static_assert(std::is_same_v<decltype(ws(&x)--), int>);
  static_assert(std::is_same_v<decltype(ws(&p) = nullptr), int*&>);
  static_assert(std::is_same_v<decltype(wst(x) = 1), int&>);
  EXPECT_EQ(&(ws(&x) = 3), &x) << "the result is the stored object itself";
  EXPECT_EQ(ws(&x)++, 3);
  EXPECT_EQ(x, 4);
  EXPECT_EQ(--ws(&x), 3);
}

TEST(StoreBarrier, NullPointerConstantsBracedListsAndConversionsStillWork) {
  int x = 0;
  int* p = &x;
  ws(&p) = 0;
  EXPECT_EQ(p, nullptr);
  ws(&p) = &x;
  ws(&p) = NULL;
  EXPECT_EQ(p, nullptr);
  Pair s{};
  ws(&s) = {1, 2};
  EXPECT_EQ(s.b, 2);
  ws(&x) = 2.75;  // converts as the built-in assignment does
  EXPECT_EQ(x, 2);
  int y = 0;
  ws(&x) = ws(&y) = 7;
  EXPECT_EQ(x, 7);
  EXPECT_EQ(y, 7);
}

// C++17: in `a = b` and `a @= b`, b is sequenced before a; the wrapper must not change that.
TEST(StoreBarrier, RightOperandIsEvaluatedBeforeTheLeftOne) {
  std::vector<char> order;
  int slots[2] = {0, 0};
  auto lhs = [&]() -> int& {
    order.push_back('L');
    return slots[0];
  };
  auto rhs = [&] {
    order.push_back('R');
    return 5;
  };
  ws(&lhs()) = rhs();
  ws(&lhs()) += rhs();
  EXPECT_EQ(std::string(order.begin(), order.end()), "RLRL");
  EXPECT_EQ(slots[0], 10);
}

class StoreBarrierPageTest : public testing::BusTest {};

TEST_F(StoreBarrierPageTest, StoreMarksItsGranulesAfterStoring) {
  // Sampled verification would diff the only page in full at every commit: this test looks at
  // the tracked path, which diffs only the marked granules.
  Options o;
  o.sample_verify = 0;
  StartBus(o);
  Page* page = NewPage(256);
  Commit();
  auto* words = reinterpret_cast<std::uint64_t*>(page->data());
  ws(&words[20]) = 0x1122334455667788u;  // granule 2
  ++ws(&words[1]);                       // granule 0
  Commit();
  ASSERT_EQ(sink->batches.back().deltas.size(), 1u);
  EXPECT_EQ(sink->batches.back().deltas[0].changed_bytes(), 9u);
  EXPECT_EQ(GetStats().granules_diffed, 2u);
}

struct Throwing {
  int v[4];
  Throwing& operator=(int x) {
    v[0] = x;  // writes part of the object, then fails
    throw std::runtime_error("half done");
  }
};

TEST_F(StoreBarrierPageTest, ClassAssignmentThatThrowsStillMarksWhatItWrote) {
  Page* page = NewPage(64);
  Commit();
  auto* t = reinterpret_cast<Throwing*>(page->data());
  EXPECT_THROW(ws(t) = 9, std::runtime_error);
  Commit();
  ASSERT_EQ(sink->batches.back().deltas.size(), 1u);
  EXPECT_EQ(sink->batches.back().deltas[0].changed_bytes(), 1u);
}

}  // namespace
}  // namespace mmsb
