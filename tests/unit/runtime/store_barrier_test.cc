// The store-then-mark barrier (mmsb/barrier.h, rt::ws): the rewritten store keeps the original's
// value, type, value category and evaluation order, and marks the granule after storing.
#include <cstddef>
#include <cstring>
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

// N bytes with alignment 1: a store of it may begin at any address.
template <std::size_t N>
struct Bytes {
  unsigned char b[N];
};

// Stores N bytes at every offset from 40 to 88 of a page (every position around the granule
// boundary at 64), each store with the store-then-mark form for a destination of unknown alignment
// (`wsu`, as the rewriter emits for a packed member) or with the mark-first form (`w`, then a
// memcpy), and commits after each: the delta must hold all N bytes, so a store that reaches into
// the next granule must have marked it too. The barrier tests the address for alignment and never
// assumes it (docs/PluginGuide.md, "The store-then-mark barrier's code"): a barrier that skipped
// the straddle test, or tested only the type's alignment, loses the bytes past the boundary here.
template <std::size_t N>
void ExpectEveryStoreAroundAGranuleBoundaryIsLoggedWhole(Page* page, testing::RecordingSink& sink) {
  auto* data = static_cast<unsigned char*>(page->data());
  for (std::size_t off = 40; off <= 88; ++off) {
    for (const bool mark_first : {false, true}) {
      Bytes<N> v;
      for (std::size_t i = 0; i < N; ++i) v.b[i] = data[off + i] + 1;  // every byte changes
      auto* dst = reinterpret_cast<Bytes<N>*>(data + off);
      if (mark_first) {
        std::memcpy(static_cast<void*>(rt::w(dst)), &v, N);
      } else {
        rt::wsu(dst) = v;
      }
      const std::uint64_t diffed = GetStats().granules_diffed;
      ASSERT_TRUE(commit().ok());
      const bool two = (off >> 6) != ((off + N - 1) >> 6);
      SCOPED_TRACE(::testing::Message() << "N=" << N << " offset " << off
                                        << (mark_first ? " mark-first" : " store-then-mark"));
      ASSERT_EQ(sink.batches.back().deltas.size(), 1u);
      EXPECT_EQ(sink.batches.back().deltas[0].changed_bytes(), N);
      EXPECT_EQ(GetStats().granules_diffed - diffed, two ? 2u : 1u);
    }
  }
}

TEST_F(StoreBarrierPageTest, MisalignedStoresThatCrossAGranuleMarkBothGranules) {
  Options o;
  o.sample_verify = 0;  // only the marked granules are diffed: a missed mark loses bytes
  StartBus(o);
  Page* page = NewPage(256);
  Commit();
  // Power-of-two sizes take the fast alignment test, the others the exact one.
  ExpectEveryStoreAroundAGranuleBoundaryIsLoggedWhole<2>(page, *sink);
  ExpectEveryStoreAroundAGranuleBoundaryIsLoggedWhole<3>(page, *sink);
  ExpectEveryStoreAroundAGranuleBoundaryIsLoggedWhole<4>(page, *sink);
  ExpectEveryStoreAroundAGranuleBoundaryIsLoggedWhole<8>(page, *sink);
  ExpectEveryStoreAroundAGranuleBoundaryIsLoggedWhole<12>(page, *sink);
  ExpectEveryStoreAroundAGranuleBoundaryIsLoggedWhole<16>(page, *sink);
  ExpectEveryStoreAroundAGranuleBoundaryIsLoggedWhole<64>(page, *sink);
}

// An aligned store of a scalar no larger than its alignment stays in its granule: one granule is
// diffed, at every aligned position of the page's first two granules.
TEST_F(StoreBarrierPageTest, AlignedScalarStoresMarkOnlyTheirGranule) {
  Options o;
  o.sample_verify = 0;
  StartBus(o);
  Page* page = NewPage(256);
  Commit();
  auto* words = reinterpret_cast<std::uint64_t*>(page->data());
  for (int i = 0; i < 16; ++i) {
    const std::uint64_t diffed = GetStats().granules_diffed;
    ws(&words[i]) = 0x0101010101010101u * static_cast<std::uint64_t>(i + 1);
    Commit();
    ASSERT_EQ(sink->batches.back().deltas.size(), 1u);
    EXPECT_EQ(sink->batches.back().deltas[0].changed_bytes(), 8u) << "word " << i;
    EXPECT_EQ(GetStats().granules_diffed - diffed, 1u) << "word " << i;
  }
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
