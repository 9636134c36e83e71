// Checkpoints, in one place: the files (runtime/src/log/checkpoint.cc, mmsb/checkpoint.h) are
// written atomically and loaded whole or not at all, every damaged byte is Corruption naming the
// file and offset, and a checkpoint of another log, over the limits or with an edge that cannot
// hold is refused; inside a running log (the bus's sink), checkpoints shorten replay, retire the
// segments they cover, replay alone, are passed over when damaged, and the half-written file of
// a crash is removed. (Retention, which checkpoints a log keeps, and compaction are
// log_lifecycle_test's; the CLI's handling of checkpoint files is cli_bad_input_test's.)
#include "mmsb/checkpoint.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "mmsb/mmsb.h"

#include "fault_env.h"
#include "log_test_util.h"
#include "replay_fixture.h"

namespace mmsb {
namespace {

namespace fs = std::filesystem;

using testing::FaultEnv;
using testing::Live;
using testing::Of;
using testing::TempDir;

// Two 8-byte pages of type Pair at epoch 3, and an edge between them.
LogState TwoPairs() {
  LogState st;
  st.epoch = 3;
  auto type = std::make_shared<TypeDescriptor>();
  type->name = "Pair";
  type->size = 8;
  type->align = 4;
  type->fields = {{"a", 0, 4, ScalarKind::kU32, 4, {}, ""},
                  {"b", 4, 4, ScalarKind::kU32, 4, {}, ""}};
  st.types["Pair"] = type;
  for (PageId id : {1, 2}) {
    ReplayedPage& p = st.pages[id];
    p.id = id;
    p.name = "p" + std::to_string(id);
    p.type_name = "Pair";
    p.epoch = 2;
    p.bytes = {1, 2, 3, 4, 5, 6, 7, static_cast<std::uint8_t>(id)};
  }
  st.edges.push_back({1, 2, EdgeKind::kPassthrough, {}, DerivedPolicy::kLog});
  return st;
}

TEST(CheckpointCorruption, EveryDamagedByteMakesTheCheckpointUnusable) {
  FaultEnv env;
  ASSERT_TRUE(env.CreateDir("/c").ok());
  const LogState st = TwoPairs();
  CheckpointOptions co;
  co.env = &env;
  ASSERT_TRUE(WriteCheckpointFile("/c/x.ckpt", ContentsOf(st, 99), co).ok());
  const auto clean = env.Contents("/c/x.ckpt");
  CheckpointLoadOptions lo;
  lo.env = &env;
  auto back = LoadCheckpoint("/c/x.ckpt", lo);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->Hash(), st.Hash());
  int cases = 0;
  for (std::size_t i = 0; i < clean.size(); ++i) {
    for (std::uint8_t mask : {0x01, 0x80}) {
      auto bad = clean;
      bad[i] ^= mask;
      env.SetContents("/c/x.ckpt", bad);
      auto r = LoadCheckpoint("/c/x.ckpt", lo);
      ++cases;
      ASSERT_FALSE(r.ok()) << "flip at " << i << " loaded";
      EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << r.status().ToString();
      EXPECT_NE(r.status().message().find("/c/x.ckpt:"), std::string::npos) << r.status().message();
    }
  }
  for (std::size_t n = 0; n < clean.size(); ++n) {
    env.SetContents("/c/x.ckpt", {clean.begin(), clean.begin() + static_cast<std::ptrdiff_t>(n)});
    ++cases;
    EXPECT_FALSE(LoadCheckpoint("/c/x.ckpt", lo).ok()) << "truncated to " << n << " loaded";
  }
  std::printf("checkpoint corruption cases: %d over %zu bytes\n", cases, clean.size());
}

TEST(Checkpoint, ACheckpointOfAnotherLogIsRefused) {
  FaultEnv env;
  ASSERT_TRUE(env.CreateDir("/c").ok());
  const LogState st = TwoPairs();
  CheckpointOptions co;
  co.env = &env;
  ASSERT_TRUE(WriteCheckpointFile("/c/x.ckpt", ContentsOf(st, 99), co).ok());
  CheckpointLoadOptions lo;
  lo.env = &env;
  lo.expect_log_id = 99;
  auto same = LoadCheckpoint("/c/x.ckpt", lo);
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_EQ(same->Hash(), st.Hash());
  EXPECT_EQ(same->edges.size(), 1u);
  lo.expect_log_id = 98;
  auto other = LoadCheckpoint("/c/x.ckpt", lo);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), StatusCode::kCorruption);
  EXPECT_NE(other.status().message().find("another log"), std::string::npos)
      << other.status().message();
}

TEST(Checkpoint, APageOverTheLimitIsRefusedNamingIt) {
  FaultEnv env;
  ASSERT_TRUE(env.CreateDir("/c").ok());
  CheckpointOptions co;
  co.env = &env;
  ASSERT_TRUE(WriteCheckpointFile("/c/x.ckpt", ContentsOf(TwoPairs(), 7), co).ok());
  CheckpointLoadOptions lo;
  lo.env = &env;
  lo.max_page_bytes = 4;
  auto r = LoadCheckpoint("/c/x.ckpt", lo);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("exceeds the limit"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("/c/x.ckpt"), std::string::npos) << r.status().message();
}

TEST(Checkpoint, ACheckpointWithARecomputeEdgeThatDoesNotFitIsCorrupt) {
  TempDir dir;
  LogState st;
  st.epoch = 4;
  for (PageId id : {1, 2}) {
    ReplayedPage& p = st.pages[id];
    p.id = id;
    p.epoch = 3;
    p.bytes.assign(id == 1 ? 32 : 16, static_cast<std::uint8_t>(id));
  }
  st.edges.push_back(
      {1, 2, EdgeKind::kPassthrough, {}, DerivedPolicy::kLog});  // never copied along
  CheckpointOptions co;
  co.sync = false;
  ASSERT_TRUE(WriteCheckpointFile(dir.Sub("ok.ckpt"), ContentsOf(st, 7), co).ok());
  EXPECT_TRUE(LoadCheckpoint(dir.Sub("ok.ckpt")).ok());
  st.edges[0].policy = DerivedPolicy::kRecomputeOnReplay;  // a 32-byte page cannot mirror into 16
  ASSERT_TRUE(WriteCheckpointFile(dir.Sub("bad.ckpt"), ContentsOf(st, 7), co).ok());
  auto r = LoadCheckpoint(dir.Sub("bad.ckpt"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("passthrough"), std::string::npos) << r.status().ToString();
}

// A bus whose commits go to a log (the replay tests' fixture: a random workload and the live
// state after every epoch).
class CheckpointInALogTest : public testing::ReplayTest {};

TEST_F(CheckpointInALogTest, CheckpointsShortenReplayAndRetireCoveredSegments) {
  LogOptions lo;
  lo.durability = Durability::kNone;
  lo.segment_bytes = 64 << 10;
  Attach(lo);
  RandomWorkload(60, 2);
  auto c1 = sink_->Checkpoint();
  ASSERT_TRUE(c1.ok()) << c1.status().ToString();
  EXPECT_EQ(*c1, 61u);
  live_.push_back(Live());
  RandomWorkload(60, 3);
  auto c2 = sink_->Checkpoint();
  ASSERT_TRUE(c2.ok()) << c2.status().ToString();
  live_.push_back(Live());
  RandomWorkload(30, 4);
  ASSERT_TRUE(sink_->Close().ok());
  const Epoch last = live_.size() - 1;

  // Segments wholly before the older checkpoint are gone; both checkpoints are kept.
  auto names = *Env::Default()->GetChildren(log_);
  int ckpts = 0;
  bool first_segment = false;
  for (const auto& n : names) {
    ckpts += n.ends_with(".ckpt");
    first_segment |= n == "00000001.seg";
  }
  EXPECT_EQ(ckpts, 2);
  EXPECT_FALSE(first_segment) << "segments covered by the checkpoint are retired";

  ReplayReport rep;
  ReplayOptions o;
  auto st = Replay(log_, o, &rep);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(rep.checkpoint_epoch, *c2);
  EXPECT_EQ(st->epoch, last);
  EXPECT_TRUE(Of(*st) == live_[last]);
  o.epoch = *c1 + 10;
  st = Replay(log_, o, &rep);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(rep.checkpoint_epoch, *c1);
  EXPECT_TRUE(Of(*st) == live_[*c1 + 10]);
  o.epoch = 5;
  st = Replay(log_, o);
  ASSERT_FALSE(st.ok()) << "epoch 5's segments were retired";
  EXPECT_EQ(st.status().code(), StatusCode::kNotFound);
  EXPECT_NE(st.status().message().find("retired"), std::string::npos) << st.status().message();

  // A damaged newest checkpoint is passed over for the older one plus the log.
  const std::string newest = log_ + "/ckpt-" + fmt::format("{:020d}", *c2) + ".ckpt";
  {
    std::FILE* f = std::fopen(newest.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fseek(f, 200, SEEK_SET);
    std::fputc(0x5a, f);
    std::fclose(f);
  }
  o.epoch = kLatestEpoch;
  st = Replay(log_, o, &rep);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(rep.checkpoint_epoch, *c1);
  EXPECT_TRUE(Of(*st) == live_[last]);
  ASSERT_FALSE(rep.problems.empty());
  EXPECT_NE(rep.problems[0].message.find("checkpoint unusable"), std::string::npos);
}

TEST_F(CheckpointInALogTest, ACheckpointFileAloneReplaysItsEpoch) {
  Attach();
  RandomWorkload(20, 6);
  auto c = sink_->Checkpoint();
  ASSERT_TRUE(c.ok());
  live_.push_back(Live());
  ASSERT_TRUE(sink_->Close().ok());
  auto st = Replay(log_ + "/ckpt-" + fmt::format("{:020d}", *c) + ".ckpt");
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->epoch, *c);
  EXPECT_TRUE(Of(*st) == live_[*c]);
}

TEST_F(CheckpointInALogTest, CheckpointTempFileOfACrashIsRemovedByTheNextWriter) {
  Attach();
  Page* p = *CreatePage(256);
  *rt::w(&p->data()[1]) = 1;
  ASSERT_TRUE(commit().ok());
  ASSERT_TRUE(sink_->Close().ok());
  // A crash in the middle of writing a checkpoint leaves this behind.
  const std::string tmp = log_ + "/ckpt-00000000000000000001.ckpt.tmp";
  std::ofstream(tmp) << "half a checkpoint";
  ASSERT_TRUE(fs::exists(tmp));
  auto w = LogWriter::Open(log_);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_FALSE(fs::exists(tmp)) << "the next writer removes it";
  ASSERT_TRUE((*w)->Close().ok());
  // compaction removes one too.
  std::ofstream(tmp) << "half a checkpoint";
  auto c = CompactLog(log_);
  EXPECT_EQ(c.status().code(), StatusCode::kFailedPrecondition) << "no checkpoint to keep";
  EXPECT_FALSE(fs::exists(tmp));
}

}  // namespace
}  // namespace mmsb
