// The log directory (runtime/src/log/segments.h): file names, the listing, the removal of
// interrupted checkpoint writes, and the recovery of a last segment whose header never reached
// the disk. See docs/SerializationSpec.md, "Log directory".
#include "log/segments.h"

#include <cstdint>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "mmsb/env.h"

#include "log_test_util.h"

namespace mmsb::log {
namespace {

using mmsb::testing::TempDir;

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out << contents;
}

TEST(SegmentNames, SegmentFileNamesRoundTripAndOthersAreRejected) {
  EXPECT_EQ(SegmentFileName(1), "00000001.seg");
  EXPECT_EQ(SegmentFileName(123456789), "123456789.seg");
  std::uint64_t seq = 0;
  ASSERT_TRUE(ParseSegmentFileName("00000042.seg", &seq));
  EXPECT_EQ(seq, 42u);
  ASSERT_TRUE(ParseSegmentFileName(SegmentFileName(123456789), &seq));
  EXPECT_EQ(seq, 123456789u);
  for (const char* bad : {"00000000.seg", "1.seg", "0000001a.seg", "00000001.seg.tmp",
                          "00000001.ckpt", "-0000001.seg", ""}) {
    EXPECT_FALSE(ParseSegmentFileName(bad, &seq)) << bad;
  }
}

TEST(SegmentNames, CheckpointFileNamesRoundTripAndOthersAreRejected) {
  EXPECT_EQ(CheckpointFileName(42), "ckpt-00000000000000000042.ckpt");
  Epoch epoch = 0;
  ASSERT_TRUE(ParseCheckpointFileName(CheckpointFileName(7), &epoch));
  EXPECT_EQ(epoch, 7u);
  ASSERT_TRUE(ParseCheckpointFileName(CheckpointFileName(~Epoch{0}), &epoch));
  EXPECT_EQ(epoch, ~Epoch{0});
  for (const char* bad : {"ckpt-.ckpt", "ckpt-12x.ckpt", "ckpt-00000000000000000042.ckpt.tmp",
                          "00000000000000000042.ckpt", "ckpt-99999999999999999999999.ckpt"}) {
    EXPECT_FALSE(ParseCheckpointFileName(bad, &epoch)) << bad;
  }
}

TEST(LogDirectory, SegmentsAndCheckpointsAreSortedAndLeftoversFound) {
  TempDir tmp;
  const std::string dir = tmp.path();
  for (const char* name : {"00000010.seg", "00000002.seg", "00000009.seg", "LOCK", "notes.txt",
                           "ckpt-00000000000000000030.ckpt", "ckpt-00000000000000000004.ckpt",
                           "ckpt-00000000000000000031.ckpt.tmp"}) {
    WriteFile(dir + "/" + name, "x");
  }
  auto listing = ListLogDir(Env::Default(), dir);
  ASSERT_TRUE(listing.ok()) << listing.status().ToString();
  ASSERT_EQ(listing->segments.size(), 3u);
  EXPECT_EQ(listing->segments[0].seq, 2u);
  EXPECT_EQ(listing->segments[1].seq, 9u);
  EXPECT_EQ(listing->segments[2].seq, 10u);
  EXPECT_EQ(listing->segments[2].path, dir + "/00000010.seg");
  ASSERT_EQ(listing->checkpoints.size(), 2u);
  EXPECT_EQ(listing->checkpoints[0].epoch, 4u);
  EXPECT_EQ(listing->checkpoints[1].epoch, 30u);
  ASSERT_EQ(listing->temp_files.size(), 1u);
  EXPECT_EQ(listing->temp_files[0], dir + "/ckpt-00000000000000000031.ckpt.tmp");
  EXPECT_TRUE(listing->has_lock);

  ASSERT_TRUE(RemoveTempFiles(Env::Default(), dir, *listing).ok());
  auto after = ListLogDir(Env::Default(), dir);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->temp_files.empty());
  EXPECT_EQ(after->segments.size(), 3u) << "only the leftovers go";
  EXPECT_EQ(after->checkpoints.size(), 2u);
}

TEST(LogDirectory, AMissingDirectoryIsAnError) {
  TempDir tmp;
  EXPECT_FALSE(ListLogDir(Env::Default(), tmp.Sub("absent")).ok());
}

TEST(TailRecovery, AnEmptyDirectoryHasNoTail) {
  TempDir tmp;
  auto listing = ListLogDir(Env::Default(), tmp.path());
  ASSERT_TRUE(listing.ok());
  auto tail = RecoverTail(Env::Default(), tmp.path(), *listing, RecoveryMode::kStrict);
  ASSERT_TRUE(tail.ok()) << tail.status().ToString();
  EXPECT_FALSE(tail->found);
  EXPECT_EQ(tail->last_seq, 0u);
}

TEST(TailRecovery, ALastSegmentWithATornHeaderIsRemoved) {
  TempDir tmp;
  const std::string torn = tmp.Sub(SegmentFileName(1));
  WriteFile(torn, "MMS");  // a crash while the header was being written
  auto listing = ListLogDir(Env::Default(), tmp.path());
  ASSERT_TRUE(listing.ok());
  auto tail = RecoverTail(Env::Default(), tmp.path(), *listing, RecoveryMode::kStrict);
  ASSERT_TRUE(tail.ok()) << tail.status().ToString();
  EXPECT_FALSE(tail->found);
  EXPECT_EQ(tail->last_seq, 0u) << "the next segment reuses the torn one's number";
  ASSERT_EQ(tail->problems.size(), 1u);
  EXPECT_EQ(tail->problems[0].kind, LogProblem::Kind::kTornTail);
  EXPECT_FALSE(Env::Default()->FileExists(torn));
}

}  // namespace
}  // namespace mmsb::log
