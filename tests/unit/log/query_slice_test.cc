// Slices (query::Slice): an epoch range cut out of a log replays bit for bit and is a log the
// index and history read like any other.
#include <string>

#include <gtest/gtest.h>

#include "mmsb/query.h"

#include "query_test_util.h"

namespace mmsb {
namespace {

using testing::ExpectSame;
using testing::LogGen;
using testing::TempDir;

TEST(QuerySlice, SliceReplaysBitForBit) {
  TempDir dir;
  LogGen(dir.path(), 51).Write(150);
  TempDir out;
  const std::string sliced = out.Sub("slice.tlog");
  auto r = query::Slice(dir.path(), 40, 110, sliced);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->groups, 70u);
  for (Epoch e : {Epoch{40}, Epoch{41}, Epoch{77}, Epoch{110}}) {
    ReplayOptions o;
    o.epoch = e;
    auto a = Replay(dir.path(), o);
    auto b = Replay(sliced, o);
    ASSERT_TRUE(a.ok() && b.ok()) << e << ": " << b.status().ToString();
    EXPECT_EQ(a->epoch, b->epoch);
    EXPECT_EQ(a->Hash(), b->Hash()) << "epoch " << e;
  }
  // The slice is a log like any other: the index and history work on it.
  auto idx = query::LogIndex::Open(sliced);
  ASSERT_TRUE(idx.ok()) << idx.status().ToString();
  EXPECT_EQ((*idx)->first_epoch(), 40u);
  EXPECT_EQ((*idx)->last_epoch(), 110u);
  auto full = query::LogIndex::Open(dir.path());
  ASSERT_TRUE(full.ok());
  query::HistoryOptions ho;
  ho.from = 40;
  ho.to = 110;
  auto a = query::FieldHistory(**full, "g_counters", ho);
  auto b = query::FieldHistory(**idx, "g_counters", ho);
  ASSERT_TRUE(a.ok() && b.ok()) << b.status().ToString();
  ExpectSame(b->changes, a->changes, "slice history");
  // Refuses to write over something.
  EXPECT_EQ(query::Slice(dir.path(), 40, 110, sliced).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(query::Slice(dir.path(), 40, 999, out.Sub("x")).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace mmsb
