// Field history, value lookup and blame (mmsb/query.h) against a replay oracle: random logs of
// typed pages, random field patterns; every answer is compared with what replaying epoch by epoch
// says. Also how field patterns resolve to names and what a bad one reports.
#include <random>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "mmsb/query.h"

#include "query_test_util.h"

namespace mmsb {
namespace {

using testing::ExpectSame;
using testing::LogGen;
using testing::Oracle;
using testing::Patterns;
using testing::TempDir;

TEST(QueryIndex, HistoryMatchesReplayForRandomFields) {
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    TempDir dir;
    LogGen gen(dir.path(), seed);
    gen.Write(300);
    Oracle oracle(dir.path());
    auto index = query::LogIndex::Open(dir.path());
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    EXPECT_EQ((*index)->how(), query::LogIndex::How::kBuilt);
    EXPECT_EQ((*index)->last_epoch(), oracle.last());
    std::mt19937_64 rng(seed * 77);
    for (int q = 0; q < 40; ++q) {
      const std::string pat = Patterns(rng);
      query::HistoryOptions o;
      o.from = rng() % 2 ? 0 : rng() % 300;
      o.to = rng() % 2 ? kLatestEpoch : o.from + rng() % 200;
      auto h = query::FieldHistory(**index, pat, o);
      ASSERT_TRUE(h.ok()) << pat << ": " << h.status().ToString();
      ASSERT_FALSE(h->fields.empty());
      ExpectSame(h->changes, oracle.History(h->fields, o.from, o.to),
                 fmt::format("seed {} {} ({}, {}]", seed, pat, o.from, o.to));
      const Epoch at = rng() % (oracle.last() + 1);
      auto v = query::ValuesAt(**index, h->fields, at);
      ASSERT_TRUE(v.ok());
      for (std::size_t i = 0; i < h->fields.size(); ++i) {
        EXPECT_EQ((*v)[i], oracle.Value(h->fields[i], at)) << pat << " at " << at;
      }
    }
  }
}

TEST(QueryIndex, FieldNamesFollowDiffPaths) {
  TempDir dir;
  LogGen(dir.path(), 5).Write(20);
  auto index = query::LogIndex::Open(dir.path());
  ASSERT_TRUE(index.ok());
  auto f = query::ResolveFields(**index, "g_counters.pos[2].y");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_EQ(f->size(), 1u);
  EXPECT_EQ((*f)[0].label, "Counters.pos[2].y");
  EXPECT_EQ((*f)[0].offset, 48u + 2 * 8 + 4);
  EXPECT_EQ((*f)[0].kind, ScalarKind::kF32);
  auto all = query::ResolveFields(**index, "g_counters.hits");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 8u);
  auto multi = query::ResolveFields(**index, "Counters[*].total");  // the 4-record heap page
  ASSERT_TRUE(multi.ok()) << multi.status().ToString();
  EXPECT_EQ(multi->size(), 4u);
  EXPECT_EQ((*multi)[3].label, "Counters[3].total");
  // Errors say what exists.
  auto bad = query::ResolveFields(**index, "g_counters.nope");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("has no field 'nope'"), std::string::npos);
  auto none = query::ResolveFields(**index, "Nothing.x");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("g_counters"), std::string::npos);
  EXPECT_FALSE(query::ResolveFields(**index, "g_counters.hits[8]").ok());
  EXPECT_FALSE(query::ResolveFields(**index, "g_counters.hits[").ok());
}

TEST(QueryIndex, BlameNamesTheLastChangeAndItsCommit) {
  TempDir dir;
  LogGen(dir.path(), 21).Write(200);
  Oracle oracle(dir.path());
  auto index = query::LogIndex::Open(dir.path());
  ASSERT_TRUE(index.ok());
  for (Epoch at : {Epoch{50}, Epoch{120}, Epoch{200}}) {
    auto f = query::ResolveFields(**index, "g_counters.total");
    ASSERT_TRUE(f.ok());
    auto hist = oracle.History(*f, 0, at);
    auto b = query::BlameField(**index, "g_counters.total", at);
    if (hist.empty()) {
      EXPECT_EQ(b.status().code(), StatusCode::kNotFound);
      continue;
    }
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_EQ(b->change.epoch, hist.back().epoch);
    EXPECT_EQ(b->change.new_value, hist.back().new_value);
    EXPECT_EQ(b->commit.epoch, b->change.epoch);
    // Everything else that changed in that epoch, checked against the oracle.
    for (const auto& t : b->together) {
      EXPECT_EQ(t.new_value, oracle.Value(t.field, t.epoch)) << t.field.label;
      EXPECT_NE(t.old_value, t.new_value);
    }
  }
}

}  // namespace
}  // namespace mmsb
