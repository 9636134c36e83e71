// Bisect and its predicates (mmsb/query.h): the first epoch where a predicate holds, checked
// against a linear scan of replay over random logs, the monotone search against the linear one,
// and the predicate language's arithmetic against C's.
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "mmsb/query.h"

#include "query_test_util.h"

namespace mmsb {
namespace {

using testing::LogGen;
using testing::Oracle;
using testing::OracleHolds;
using testing::TempDir;

TEST(QueryIndex, BisectMatchesLinearScanOfReplay) {
  static const char* kPreds[] = {"g_counters.total > 20",
                                 "g_counters.hits[2] == 3 && g_counters.flag == 1",
                                 "g_counters.avg * 2 >= 40 || g_counters.pos[1].x < 0.5",
                                 "g_counters.hits[1] - g_counters.hits[2] == 6",
                                 "late.total >= 2",
                                 "g_counters.total % 7 == 3",
                                 "!(g_counters.flag == 0)",
                                 "g_counters.total / 4 == 3",
                                 "-g_counters.hits[0] > 2"};
  for (std::uint64_t seed : {11u, 12u}) {
    TempDir dir;
    LogGen(dir.path(), seed).Write(400);
    Oracle oracle(dir.path());
    auto index = query::LogIndex::Open(dir.path());
    ASSERT_TRUE(index.ok());
    std::mt19937_64 rng(seed);
    for (const char* text : kPreds) {
      auto p = query::Predicate::Parse(**index, text);
      ASSERT_TRUE(p.ok()) << text << ": " << p.status().ToString();
      for (int q = 0; q < 4; ++q) {
        query::BisectOptions o;
        o.from = q == 0 ? 0 : rng() % 300;
        Epoch want = 0;
        bool found = false;
        for (Epoch e = o.from; e <= oracle.last(); ++e) {
          if (OracleHolds(*p, oracle, e)) {
            want = e;
            found = true;
            break;
          }
        }
        auto r = query::Bisect(**index, *p, o);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        EXPECT_EQ(r->found, found) << text << " from " << o.from;
        if (found) EXPECT_EQ(r->epoch, want) << text << " from " << o.from;
        EXPECT_LE(r->epochs_evaluated, oracle.last() + 1);
        if (!found || r->epoch != want) continue;
        // The values at the epoch found and the fields that changed there, as replay has them.
        const auto& fs = p->fields();
        ASSERT_EQ(r->values.size(), fs.size());
        std::size_t changed = 0;
        for (std::size_t i = 0; i < fs.size(); ++i) {
          EXPECT_EQ(r->values[i], oracle.Value(fs[i], want)) << text << " " << fs[i].label;
          const std::string before = want > 0 ? oracle.Value(fs[i], want - 1) : "";
          if (before == r->values[i]) continue;
          ASSERT_LT(changed, r->changes.size()) << text << " misses " << fs[i].label;
          EXPECT_EQ(r->changes[changed].field.label, fs[i].label) << text;
          EXPECT_EQ(r->changes[changed].old_value, before) << text << " " << fs[i].label;
          EXPECT_EQ(r->changes[changed].new_value, r->values[i]) << text;
          ++changed;
        }
        EXPECT_EQ(changed, r->changes.size()) << text << " from " << o.from;
      }
    }
    // Monotone: total only grows, so "total >= k" is monotone and binary search must agree.
    for (int k : {1, 5, 30, 1000}) {
      auto p = query::Predicate::Parse(**index, fmt::format("g_counters.total >= {}", k));
      ASSERT_TRUE(p.ok());
      query::BisectOptions lin, mono;
      mono.monotone = true;
      auto a = query::Bisect(**index, *p, lin);
      auto b = query::Bisect(**index, *p, mono);
      ASSERT_TRUE(a.ok() && b.ok());
      EXPECT_EQ(a->found, b->found) << k;
      EXPECT_EQ(a->epoch, b->epoch) << k;
    }
  }
}

TEST(QueryIndex, ArithmeticFollowsC) {
  TempDir dir;
  LogGen(dir.path(), 9).Write(5);
  auto index = query::LogIndex::Open(dir.path());
  ASSERT_TRUE(index.ok());
  auto eval = [&](const char* text) {
    auto p = query::Predicate::Parse(**index, text);
    EXPECT_TRUE(p.ok()) << text << ": " << p.status().ToString();
    return p.ok() && p->Eval({});
  };
  EXPECT_TRUE(eval("7 / 2 == 3"));
  EXPECT_TRUE(eval("7.0 / 2 == 3.5"));
  EXPECT_TRUE(eval("-7 % 3 == -1"));
  EXPECT_TRUE(eval("1 + 2 * 3 == 7 && (1 + 2) * 3 == 9"));
  EXPECT_TRUE(eval("0x10 == 16 || false"));
  EXPECT_FALSE(eval("1 / 0 == 0"));  // no value
  EXPECT_FALSE(eval("1 / 0 != 0"));
  EXPECT_TRUE(eval("18446744073709551615 > 18446744073709551614"));  // exact 64-bit
  EXPECT_FALSE(query::Predicate::Parse(**index, "g_counters.total >").ok());
  EXPECT_FALSE(query::Predicate::Parse(**index, "g_counters.hits > 1").ok());  // 8 fields
  EXPECT_FALSE(query::Predicate::Parse(**index, "(1 < 2").ok());
}

}  // namespace
}  // namespace mmsb
