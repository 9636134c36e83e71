// Checkpoint files (runtime/src/log/checkpoint.cc, mmsb/checkpoint.h): written atomically, loaded
// whole or not at all. Every damaged byte is Corruption naming the file and offset; a checkpoint
// of another log or over the limits is refused. (A checkpoint inside a running log, its retention
// and replay from it are tested with the writer and the replayer: log_lifecycle_test,
// replay_test.)
#include "mmsb/checkpoint.h"

#include <cstdio>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "fault_env.h"
#include "log_test_util.h"

namespace mmsb {
namespace {

using testing::FaultEnv;

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

}  // namespace
}  // namespace mmsb
