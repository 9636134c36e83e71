// The query index's life cycle (mmsb/query.h, LogIndex): built, loaded, extended when the log
// grows, rebuilt when the log changes under it or the index file is damaged; logs it refuses
// (damaged, not a log) and the tails and retired segments it starts or stops at.
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "mmsb/checkpoint.h"
#include "mmsb/mmsb.h"
#include "mmsb/query.h"

#include "query_test_util.h"

namespace mmsb {
namespace {

using testing::ExpectSame;
using testing::LogGen;
using testing::Oracle;
using testing::TempDir;

TEST(QueryIndex, IndexIsExtendedWhenTheLogGrowsAndRebuiltWhenItChanges) {
  TempDir dir;
  LogGen gen(dir.path(), 31);
  gen.Write(100);
  {
    auto a = query::LogIndex::Open(dir.path());
    ASSERT_TRUE(a.ok());
    EXPECT_EQ((*a)->how(), query::LogIndex::How::kBuilt);
    EXPECT_GT((*a)->index_bytes(), 0u);
  }
  {
    auto b = query::LogIndex::Open(dir.path());
    ASSERT_TRUE(b.ok());
    EXPECT_EQ((*b)->how(), query::LogIndex::How::kLoaded);
    EXPECT_EQ((*b)->last_epoch(), 100u);
  }
  gen.Write(80);  // a new writer session: recovery, then new segments
  {
    auto c = query::LogIndex::Open(dir.path());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ((*c)->how(), query::LogIndex::How::kExtended);
    EXPECT_EQ((*c)->last_epoch(), 180u);
    Oracle oracle(dir.path());
    auto h = query::FieldHistory(**c, "g_counters.hits[*]");
    ASSERT_TRUE(h.ok());
    ExpectSame(h->changes, oracle.History(h->fields, 0, kLatestEpoch), "extended");
  }
  // A damaged index file is rebuilt, never trusted. The byte is flipped, not overwritten: a
  // written constant left the file as it was whenever the byte already held it (the meta holds
  // hashes of timestamped records, so that happened about once in 256 runs).
  {
    const std::string idx = dir.Sub("query.idx");
    std::fstream f(idx, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(100);
    const int was = f.get();
    ASSERT_NE(was, EOF);
    f.seekp(100);
    f.put(static_cast<char>(was ^ 0x5a));
    f.close();
    auto d = query::LogIndex::Open(dir.path());
    ASSERT_TRUE(d.ok());
    EXPECT_EQ((*d)->how(), query::LogIndex::How::kBuilt);
  }
  // A segment the index covers replaced by another log's: rebuilt from the new segments.
  {
    TempDir other;
    LogGen(other.path(), 32).Write(60);
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
      if (e.path().extension() == ".seg") std::filesystem::remove(e.path());
    }
    for (const auto& e : std::filesystem::directory_iterator(other.path())) {
      if (e.path().extension() == ".seg") {
        std::filesystem::copy_file(e.path(), dir.path() / e.path().filename());
      }
    }
    auto g = query::LogIndex::Open(dir.path());
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    EXPECT_EQ((*g)->how(), query::LogIndex::How::kBuilt);
    EXPECT_EQ((*g)->last_epoch(), 60u);
    Oracle oracle(dir.path());
    auto h = query::FieldHistory(**g, "g_counters");
    ASSERT_TRUE(h.ok());
    ExpectSame(h->changes, oracle.History(h->fields, 0, kLatestEpoch), "replaced");
  }
}

// Open reads only the index's header and meta; a query reads and checks the blocks it needs. A
// block damaged on disk is therefore found by the query that reads it: the index rebuilds itself
// from the log, answers from that, says so (note()), and saves the rebuilt file.
TEST(QueryIndex, DamagedBlockIsFoundByTheQueryAndRebuiltFromTheLog) {
  TempDir dir;
  LogGen(dir.path(), 33).Write(150);
  ASSERT_TRUE(query::LogIndex::Open(dir.path()).ok());
  const std::string idx = dir.Sub("query.idx");
  const auto size = std::filesystem::file_size(idx);
  {
    // The last bytes of the file are the last page's change block, past the meta.
    std::fstream f(idx, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(size - 2));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(size - 2));
    f.put(static_cast<char>(c ^ 0x41));
  }
  Oracle oracle(dir.path());
  auto a = query::LogIndex::Open(dir.path());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ((*a)->how(), query::LogIndex::How::kLoaded);  // the damage is not read yet
  EXPECT_TRUE((*a)->note().empty());
  for (const query::IndexedPage& p : (*a)->pages()) {
    auto h = query::FieldHistory(**a, p.name.empty() ? fmt::format("{}", p.type_name) : p.name);
    if (!h.ok()) continue;  // e.g. a raw page without a name
    ExpectSame(h->changes, oracle.History(h->fields, 0, kLatestEpoch), "after a damaged block");
  }
  EXPECT_NE((*a)->note().find("rebuilt"), std::string::npos) << (*a)->note();
  EXPECT_TRUE((*a)->damage().ok());
  auto b = query::LogIndex::Open(dir.path());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)->how(), query::LogIndex::How::kLoaded);
  auto h = query::FieldHistory(**b, "g_counters");
  ASSERT_TRUE(h.ok());
  ExpectSame(h->changes, oracle.History(h->fields, 0, kLatestEpoch), "rebuilt file");
  EXPECT_TRUE((*b)->note().empty()) << (*b)->note();
}

TEST(QueryIndex, DamagedLogIsReportedNotIndexed) {
  TempDir dir;
  LogGen(dir.path(), 41).Write(200, 2048);
  // Flip a byte in the middle of the first (sealed) segment.
  const std::string seg = dir.Sub("00000001.seg");
  std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(300);
  char c = 0;
  f.get(c);
  f.seekp(300);
  f.put(static_cast<char>(c ^ 0x40));
  f.close();
  auto index = query::LogIndex::Open(dir.path());
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.status().code(), StatusCode::kCorruption);
  EXPECT_NE(index.status().message().find("00000001.seg"), std::string::npos);
}

TEST(QueryIndex, PlainDirectoryIsNotALog) {
  TempDir dir;
  std::ofstream(dir.Sub("notes.txt")) << "not a segment\n";
  auto index = query::LogIndex::Open(dir.path());
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.status().code(), StatusCode::kNotFound);
  EXPECT_NE(index.status().message().find("not an MMSB log"), std::string::npos)
      << index.status().ToString();
  EXPECT_NE(index.status().message().find(dir.path()), std::string::npos);
  // Refused before anything is written into it: no index file appears.
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("query.idx")));
}

TEST(QueryIndex, TornTailIsIgnored) {
  TempDir dir;
  LogGen(dir.path(), 42).Write(50, 1 << 20);
  const std::string seg = dir.Sub("00000001.seg");
  const auto size = std::filesystem::file_size(seg);
  std::filesystem::resize_file(seg, size - 10);  // cut into the last commit
  auto index = query::LogIndex::Open(dir.path());
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ((*index)->last_epoch(), 49u);
}

// A log whose first segments were retired starts at a checkpoint: the index starts there too,
// and values agree with replay.
TEST(QueryIndex, RetiredSegmentsStartFromTheCheckpoint) {
  TempDir dir;
  ASSERT_TRUE(start().ok());
  LogOptions lo;
  lo.durability = Durability::kNone;
  lo.segment_bytes = 4096;
  auto sink = AttachLog(dir.path(), lo);
  ASSERT_TRUE(sink.ok());
  PageOptions po;
  po.name = "blob";
  Page* p = *CreatePage(256, po);
  std::mt19937_64 rng(7);
  auto work = [&](int n) {
    for (int i = 0; i < n; ++i) {
      *rt::w(&p->data()[rng() % 256]) = static_cast<std::uint8_t>(rng());
      ASSERT_TRUE(commit().ok());
    }
  };
  work(80);
  ASSERT_TRUE((*sink)->Checkpoint().ok());
  work(80);
  ASSERT_TRUE((*sink)->Checkpoint().ok());
  work(40);
  ASSERT_TRUE((*sink)->Close().ok());
  stop();
  auto index = query::LogIndex::Open(dir.path());
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_GT((*index)->first_epoch(), 0u);
  auto f = query::ResolveFields(**index, "blob");
  ASSERT_TRUE(f.ok());
  for (Epoch e = (*index)->first_epoch(); e <= (*index)->last_epoch(); e += 7) {
    ReplayOptions ro;
    ro.epoch = e;
    auto st = Replay(dir.path(), ro);
    ASSERT_TRUE(st.ok());
    const ReplayedPage* rp = st->FindPageByName("blob");
    ASSERT_NE(rp, nullptr);
    auto v = query::ValuesAt(**index, *f, e);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ((*v)[0], FormatScalar(ScalarKind::kBytes, rp->bytes.data(), 256)) << e;
  }
}

}  // namespace
}  // namespace mmsb
