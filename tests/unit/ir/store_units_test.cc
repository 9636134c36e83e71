// Store::MatchBuild: a run's build, named by its units' content hashes, mapped to the generation
// it was made from (docs/IRStore.md, "Which build ran").
#include <sqlite3.h>

#include <gtest/gtest.h>

#include "mmsb/ir/store.h"

#include "ir_test_util.h"

namespace mmsb::ir {
namespace {

using testing::Fn;
using testing::Scalar;
using testing::TempDir;

std::unique_ptr<Store> OpenOrDie(const std::string& path) {
  auto s = Store::Open(path, Store::Mode::kReadWrite);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

// A capture of `source` whose content hash is `hash` (its body follows the hash, as a real
// capture's text follows the TU's content).
std::int64_t Add(Store& store, const std::string& source, std::uint64_t hash) {
  TuCapture c = testing::Tu(source, {Fn("f_" + std::to_string(hash), "ret")});
  c.unit_hash = hash;
  auto g = store.AddCapture(c, GenerationRequest{});
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? *g : -1;
}

BuildMatch Match(Store& store, std::vector<UnitRef> units) {
  auto m = store.MatchBuild(units);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : BuildMatch{};
}

TEST(IrStoreUnits, BuildMapsToTheGenerationItsUnitsCameFrom) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("ir.db"));
  EXPECT_EQ(Add(*store, "/p/src/a.cc", 0xa1), 1);
  EXPECT_EQ(Add(*store, "/p/src/b.cc", 0xb1), 1);
  EXPECT_EQ(Add(*store, "/p/src/b.cc", 0xb2), 2);  // b edited: generation 2 inherits a

  BuildMatch first = Match(*store, {{"src/a.cc", 0xa1}, {"src/b.cc", 0xb1}});
  EXPECT_EQ(first.known, 2);
  EXPECT_EQ(first.generation, 1);
  EXPECT_EQ(first.last_generation, 1);
  EXPECT_EQ(first.units[1].captured_in, 1);
  EXPECT_EQ(first.units[1].tu_source, "/p/src/b.cc");

  BuildMatch second = Match(*store, {{"src/a.cc", 0xa1}, {"src/b.cc", 0xb2}});
  EXPECT_EQ(second.generation, 2);
  EXPECT_EQ(second.units[0].captured_in, 1);  // a came from generation 1's capture
  EXPECT_EQ(second.units[1].captured_in, 2);

  // A rebuild that recompiles b unchanged adds generation 3 with the same code: the build still
  // came from 2, the first generation with it (its predecessor holds the code change).
  EXPECT_EQ(Add(*store, "/p/src/b.cc", 0xb2), 3);
  second = Match(*store, {{"src/a.cc", 0xa1}, {"src/b.cc", 0xb2}});
  EXPECT_EQ(second.generation, 2);
  EXPECT_EQ(second.last_generation, 3);
  first = Match(*store, {{"src/a.cc", 0xa1}, {"src/b.cc", 0xb1}});
  EXPECT_EQ(first.generation, 1);
}

TEST(IrStoreUnits, UnknownUnitsAreListedAndMismatchedBuildsNameNoGeneration) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("ir.db"));
  Add(*store, "/p/a.cc", 0xa1);
  Add(*store, "/p/b.cc", 0xb1);
  Add(*store, "/p/a.cc", 0xa2);  // generation 2
  Add(*store, "/p/b.cc", 0xb2);  // joins 2
  // A unit the store never captured does not decide the generation.
  BuildMatch m = Match(*store, {{"a.cc", 0xa2}, {"other.cc", 0x99}});
  EXPECT_EQ(m.known, 1);
  EXPECT_EQ(m.generation, 2);
  EXPECT_EQ(m.units[1].captured_in, 0);
  EXPECT_EQ(m.units[1].tu_source, "");
  // a from generation 2 with b from generation 1: no generation saw both.
  m = Match(*store, {{"a.cc", 0xa2}, {"b.cc", 0xb1}});
  EXPECT_EQ(m.known, 2);
  EXPECT_EQ(m.generation, 0);
  EXPECT_EQ(m.units[0].captured_in, 2);  // each unit still names its capture
  EXPECT_EQ(m.units[1].captured_in, 1);
  EXPECT_EQ(Match(*store, {}).generation, 0);
}

TEST(IrStoreUnits, SameContentInTwoTusPrefersTheNamedSource) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("ir.db"));
  Add(*store, "/p/one/x.cc", 0x77);
  Add(*store, "/p/two/x.cc", 0x77);
  BuildMatch m = Match(*store, {{"./two/x.cc", 0x77}});
  EXPECT_EQ(m.generation, 1);
  EXPECT_EQ(m.units[0].tu_source, "/p/two/x.cc");
}

TEST(IrStoreUnits, StoreWithoutUnitHashesReadsAndGainsThemWithTheFirstCapture) {
  TempDir dir;
  const std::string path = dir.Sub("ir.db");
  Add(*OpenOrDie(path), "/p/a.cc", 0);
  {
    // The layout of a store made before unit hashes.
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    ASSERT_EQ(
        sqlite3_exec(db, "DROP INDEX captures_unit; ALTER TABLE captures DROP COLUMN unit_hash",
                     nullptr, nullptr, nullptr),
        SQLITE_OK);
    sqlite3_close(db);
  }
  auto store = OpenOrDie(path);
  BuildMatch m = Match(*store, {{"a.cc", 0xa1}});
  EXPECT_EQ(m.known, 0);
  EXPECT_EQ(m.generation, 0);
  Add(*store, "/p/b.cc", 0);  // no hash: the layout stays as it is
  EXPECT_EQ(Scalar(path,
                   "SELECT count(*) FROM pragma_table_info('captures') WHERE "
                   "name='unit_hash'"),
            0);
  Add(*store, "/p/a.cc", 0xa1);  // generation 2, with a hash
  EXPECT_EQ(Scalar(path,
                   "SELECT count(*) FROM pragma_table_info('captures') WHERE "
                   "name='unit_hash'"),
            1);
  m = Match(*store, {{"a.cc", 0xa1}});
  EXPECT_EQ(m.generation, 2);
  EXPECT_EQ(Scalar(path, "SELECT value FROM meta WHERE key='schema'"), 2);
}

TEST(IrStoreUnits, GcKeepsTheHashWithTheCaptureItMoves) {
  TempDir dir;
  auto store = OpenOrDie(dir.Sub("ir.db"));
  Add(*store, "/p/a.cc", 0xa1);  // 1
  Add(*store, "/p/b.cc", 0xb1);  // 1
  Add(*store, "/p/b.cc", 0xb2);  // 2
  Add(*store, "/p/b.cc", 0xb3);  // 3
  ASSERT_TRUE(store->BeginGeneration("").ok());
  Add(*store, "/p/b.cc", 0xb4);  // 4
  auto gc = store->Gc(2);        // keeps 3 and 4; 3 takes over a's capture
  ASSERT_TRUE(gc.ok()) << gc.status().ToString();
  BuildMatch m = Match(*store, {{"a.cc", 0xa1}, {"b.cc", 0xb3}});
  EXPECT_EQ(m.generation, 3);
  EXPECT_EQ(m.units[0].captured_in, 3);
}

}  // namespace
}  // namespace mmsb::ir
