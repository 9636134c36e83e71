// The query index file, version 3 (docs/SerializationSpec.md, "The query index"): small delta
// records are copied into their page's change block, so a query applies them without reading the
// log; a file of another version is rebuilt, not misread; a damaged file is found and rebuilt,
// wherever the damage lies.
#include <xxhash.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "mmsb/env.h"
#include "mmsb/mmsb.h"
#include "mmsb/query.h"

#include "log/log_format.h"
#include "query/index_format.h"
#include "query_test_util.h"

namespace mmsb {
namespace {

using testing::ExpectSame;
using testing::LogGen;
using testing::Oracle;
using testing::TempDir;

// The default Env, counting the reads of segment files made through NewRandomAccessFile.
class CountingEnv final : public Env {
 public:
  std::atomic<std::uint64_t> segment_reads{0};

  Expected<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    return base_->NewWritableFile(path);
  }
  Expected<std::unique_ptr<RandomAccessFile>> NewRandomAccessFile(
      const std::string& path) override {
    auto f = base_->NewRandomAccessFile(path);
    if (!f.ok() || !path.ends_with(".seg")) return f;
    return std::unique_ptr<RandomAccessFile>(new Counted(std::move(*f), &segment_reads));
  }
  Expected<std::unique_ptr<RandomAccessFile>> NewMappedFile(const std::string& path) override {
    return base_->NewMappedFile(path);
  }
  bool FileExists(const std::string& path) override { return base_->FileExists(path); }
  bool IsDirectory(const std::string& path) override { return base_->IsDirectory(path); }
  Expected<std::vector<std::string>> GetChildren(const std::string& dir) override {
    return base_->GetChildren(dir);
  }
  Expected<std::uint64_t> GetFileSize(const std::string& path) override {
    return base_->GetFileSize(path);
  }
  Status CreateDir(const std::string& dir) override { return base_->CreateDir(dir); }
  Status RemoveFile(const std::string& path) override { return base_->RemoveFile(path); }
  Status RenameFile(const std::string& from, const std::string& to) override {
    return base_->RenameFile(from, to);
  }
  Status TruncateFile(const std::string& path, std::uint64_t size) override {
    return base_->TruncateFile(path, size);
  }
  Status SyncDir(const std::string& dir) override { return base_->SyncDir(dir); }
  Expected<std::unique_ptr<FileLock>> LockFile(const std::string& path) override {
    return base_->LockFile(path);
  }

 private:
  class Counted final : public RandomAccessFile {
   public:
    Counted(std::unique_ptr<RandomAccessFile> f, std::atomic<std::uint64_t>* n)
        : f_(std::move(f)), n_(n) {}
    Status Read(std::uint64_t offset, std::size_t n, std::uint8_t* scratch,
                std::size_t* got) const override {
      ++*n_;
      return f_->Read(offset, n, scratch, got);
    }
    std::uint64_t Size() const override { return f_->Size(); }

   private:
    std::unique_ptr<RandomAccessFile> f_;
    std::atomic<std::uint64_t>* n_;
  };
  Env* base_ = Env::Default();
};

// A raw 4 KiB page "blob": epoch e writes 8 bytes (a delta of a few dozen bytes, copied into the
// index) when e is odd, 1 KiB (left in the log) when e is even.
void WriteSmallAndLargeDeltas(const std::string& dir, int epochs) {
  LogOptions o;
  o.durability = Durability::kNone;
  auto w = LogWriter::Open(dir, o);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  LogBatch b = (*w)->NewBatch();
  std::vector<std::uint8_t> page(4096, 0), before;
  Epoch last = 0;
  for (int i = 1; i <= epochs; ++i) {
    b.Clear();
    if (i == 1) b.AddPageCreate({1, 4096, Location::kCpu, false, "blob", ""});
    before = page;
    const std::size_t len = i % 2 == 1 ? 8 : 1024;
    const std::size_t off = (static_cast<std::size_t>(i) * 136) % (4096 - len);
    for (std::size_t k = 0; k < len; ++k) page[off + k] = static_cast<std::uint8_t>(i + k + 1);
    Delta d = Diff(1, last, before, page);
    ASSERT_TRUE(b.AddDelta(d).ok());
    last = static_cast<Epoch>(i);
    ASSERT_TRUE((*w)->Commit(b).ok());
  }
  ASSERT_TRUE((*w)->Close().ok());
}

std::vector<std::uint8_t> ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void WriteAll(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

TEST(QueryIndexFormat, SmallDeltasRoundTripThroughTheIndexFile) {
  TempDir dir;
  constexpr int kEpochs = 60;
  WriteSmallAndLargeDeltas(dir.path(), kEpochs);
  Oracle oracle(dir.path());
  CountingEnv env;
  query::IndexOptions io;
  io.env = &env;
  auto built = query::LogIndex::Open(dir.path(), io);
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  ASSERT_EQ((*built)->how(), query::LogIndex::How::kBuilt);
  auto h_built = query::FieldHistory(**built, "blob");
  ASSERT_TRUE(h_built.ok()) << h_built.status().ToString();
  built->reset();

  const std::vector<std::uint8_t> file = ReadAll(dir.Sub("query.idx"));
  ASSERT_GE(file.size(), query::kIndexHeader);
  EXPECT_EQ(log::Get32(file.data() + 8), query::kIndexVersion);
  EXPECT_EQ(query::kIndexVersion, 3u);

  auto loaded = query::LogIndex::Open(dir.path(), io);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  ASSERT_EQ((*loaded)->how(), query::LogIndex::How::kLoaded);
  env.segment_reads = 0;
  auto h = query::FieldHistory(**loaded, "blob");
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_EQ(h->changes.size(), static_cast<std::size_t>(kEpochs));
  ExpectSame(h->changes, oracle.History(h->fields, 0, kLatestEpoch), "loaded");
  ExpectSame(h->changes, h_built->changes, "loaded vs built");
  // The 30 large deltas are read from the log (one or two reads each); the 30 small ones are not.
  const std::uint64_t reads = env.segment_reads;
  EXPECT_GE(reads, kEpochs / 2u);
  EXPECT_LE(reads, kEpochs);

  // Only the small ones, counted per change: a query over epochs with small deltas reads nothing.
  env.segment_reads = 0;
  const query::IndexedPage* p = (*loaded)->FindPage(1);
  ASSERT_NE(p, nullptr);
  std::vector<std::uint8_t> bytes(p->size, 0);
  for (const query::IndexedChange& c : (*loaded)->ChangesOf(1)) {
    if (c.epoch % 2 == 1) ASSERT_TRUE((*loaded)->ApplyChange(c, bytes).ok());
  }
  EXPECT_EQ(env.segment_reads.load(), 0u);
}

// An index file of another version (an older build's) with every check intact is rebuilt from
// the log, never read as if it were this version's.
TEST(QueryIndexFormat, OtherVersionIsRebuiltNotMisread) {
  TempDir dir;
  LogGen(dir.path(), 51).Write(120);
  ASSERT_TRUE(query::LogIndex::Open(dir.path()).ok());
  const std::string idx = dir.Sub("query.idx");
  std::vector<std::uint8_t> file = ReadAll(idx);
  ASSERT_GE(file.size(), query::kIndexHeader);
  for (std::uint32_t version : {2u, 1u, 4u}) {
    std::vector<std::uint8_t> other = file;
    log::Put32(other.data() + 8, version);
    log::Put64(other.data() + 48, XXH3_64bits(other.data(), 48));  // a valid header of it
    WriteAll(idx, other);
    auto index = query::LogIndex::Open(dir.path());
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    EXPECT_EQ((*index)->how(), query::LogIndex::How::kBuilt) << version;
    EXPECT_NE((*index)->note().find("another version"), std::string::npos) << (*index)->note();
    Oracle oracle(dir.path());
    auto h = query::FieldHistory(**index, "g_counters");
    ASSERT_TRUE(h.ok());
    ExpectSame(h->changes, oracle.History(h->fields, 0, kLatestEpoch), "after another version");
    // The rebuilt file is this version's and is loaded next time.
    EXPECT_EQ(log::Get32(ReadAll(idx).data() + 8), query::kIndexVersion);
    auto again = query::LogIndex::Open(dir.path());
    ASSERT_TRUE(again.ok());
    EXPECT_EQ((*again)->how(), query::LogIndex::How::kLoaded);
  }
}

// A byte flipped anywhere in the file (header, meta, a commit block, a change block, a copied
// delta) is found, when the index is opened or when a query reads the block, and every query
// answers as replay does, from the index rebuilt from the log.
TEST(QueryIndexFormat, DamageAnywhereIsFoundAndRebuilt) {
  TempDir dir;
  LogGen(dir.path(), 52).Write(150);
  Oracle oracle(dir.path());
  ASSERT_TRUE(query::LogIndex::Open(dir.path()).ok());
  const std::string idx = dir.Sub("query.idx");
  const std::vector<std::uint8_t> good = ReadAll(idx);
  constexpr int kPlaces = 24;
  for (int k = 0; k < kPlaces; ++k) {
    const std::size_t at = good.size() * k / kPlaces + 3;
    std::vector<std::uint8_t> bad = good;
    bad[at] ^= 0x24;
    WriteAll(idx, bad);
    auto index = query::LogIndex::Open(dir.path());
    ASSERT_TRUE(index.ok()) << index.status().ToString();
    for (const char* field : {"g_counters", "Counters", "raw_blob", "late"}) {
      auto h = query::FieldHistory(**index, field);
      ASSERT_TRUE(h.ok()) << field << " byte " << at << ": " << h.status().ToString();
      ExpectSame(h->changes, oracle.History(h->fields, 0, kLatestEpoch),
                 "byte " + std::to_string(at) + " flipped");
    }
    for (Epoch e = 1; e <= (*index)->last_epoch(); ++e) {  // every commit block
      ASSERT_TRUE((*index)->Commit(e).ok()) << e;
    }
    EXPECT_TRUE((*index)->damage().ok());
    EXPECT_NE((*index)->note().find("rebuilt"), std::string::npos)
        << "byte " << at << " of " << good.size() << ": " << (*index)->note();
  }
}

// Records larger than the segment reader's read window (1 MiB: the build reads segments with
// positioned reads into a reused buffer, not a mapping) are checked and indexed whole, in every
// segment of a log of several, and answer as replay does.
TEST(QueryIndexFormat, RecordsLargerThanTheReadWindowAreIndexedAsReplayAppliesThem) {
  TempDir dir;
  constexpr std::size_t kPage = (std::size_t{3} << 20) / 2;  // 1.5 MiB
  constexpr int kEpochs = 6;
  {
    LogOptions o;
    o.durability = Durability::kNone;
    o.segment_bytes = std::uint64_t{2} << 20;  // a segment every epoch or two
    auto w = LogWriter::Open(dir.path(), o);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    LogBatch b = (*w)->NewBatch();
    std::vector<std::uint8_t> page(kPage, 0), before;
    std::mt19937_64 rng(11);
    for (int i = 1; i <= kEpochs; ++i) {
      b.Clear();
      if (i == 1) b.AddPageCreate({1, kPage, Location::kCpu, false, "big", ""});
      before = page;
      if (i % 3 == 0) {
        page[rng() % kPage] ^= 0x5A;  // a small delta between the large ones
      } else {
        for (auto& x : page) x = static_cast<std::uint8_t>(rng());  // every byte: > 1 MiB
      }
      ASSERT_TRUE(b.AddDelta(Diff(1, i - 1, before, page)).ok());
      ASSERT_TRUE((*w)->Commit(b).ok());
    }
    ASSERT_TRUE((*w)->Close().ok());
  }
  std::size_t segments = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
    segments += f.path().extension() == ".seg" ? 1 : 0;
  }
  ASSERT_GE(segments, 3u);
  Oracle oracle(dir.path());
  ASSERT_EQ(oracle.last(), static_cast<Epoch>(kEpochs));
  auto index = query::LogIndex::Open(dir.path());
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ((*index)->last_epoch(), static_cast<Epoch>(kEpochs));
  auto h = query::FieldHistory(**index, "big");
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->changes.size(), static_cast<std::size_t>(kEpochs));
  ExpectSame(h->changes, oracle.History(h->fields, 0, kLatestEpoch), "large records");
}

// A payload byte flipped in a segment that is not the log's last is a corrupt record to the
// index build exactly as it is to replay: both refuse the log, neither skips the record.
TEST(QueryIndexFormat, CorruptRecordInAnEarlierSegmentIsRefusedAsReplayRefusesIt) {
  TempDir dir;
  {
    LogOptions o;
    o.durability = Durability::kNone;
    o.segment_bytes = 4096;
    auto w = LogWriter::Open(dir.path(), o);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    LogBatch b = (*w)->NewBatch();
    std::vector<std::uint8_t> page(4096, 0), before;
    for (int i = 1; i <= 40; ++i) {
      b.Clear();
      if (i == 1) b.AddPageCreate({1, 4096, Location::kCpu, false, "blob", ""});
      before = page;
      for (std::size_t k = 0; k < 200; ++k) page[(i * 211 + k) % 4096] ^= 0x33;
      ASSERT_TRUE(b.AddDelta(Diff(1, i - 1, before, page)).ok());
      ASSERT_TRUE((*w)->Commit(b).ok());
    }
    ASSERT_TRUE((*w)->Close().ok());
  }
  const std::string seg = dir.Sub("00000002.seg");
  ASSERT_TRUE(std::filesystem::exists(dir.Sub("00000004.seg")));
  std::vector<std::uint8_t> bytes = ReadAll(seg);
  ASSERT_GT(bytes.size(), log::kFileHeaderSize + log::kRecordHeaderSize + 40);
  bytes[log::kFileHeaderSize + log::kRecordHeaderSize + 30] ^= 0x01;  // the first record's payload
  WriteAll(seg, bytes);

  auto index = query::LogIndex::Open(dir.path());
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.status().code(), StatusCode::kCorruption) << index.status().ToString();
  EXPECT_NE(index.status().message().find("00000002.seg"), std::string::npos)
      << index.status().ToString();
  auto r = Replayer::Open(dir.path());
  Status replayed = r.status();
  while (replayed.ok()) {
    auto more = (*r)->Step();
    replayed = more.status();
    if (replayed.ok() && !*more) break;
  }
  EXPECT_FALSE(replayed.ok()) << "replay applied every epoch of a log with a corrupt record";
}

}  // namespace
}  // namespace mmsb
