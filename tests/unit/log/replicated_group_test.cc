// What replication relies on in the runtime: a LogGroupObserver sees each epoch group exactly as
// the log has it, with a state hash computed from the live pages that equals the hash of the
// replayed state at that epoch, and Replayer::ApplyGroup rebuilds the log's state from those
// groups alone, refusing damaged or incomplete ones without changing anything.
#include <algorithm>

#include <gtest/gtest.h>

#include "mmsb/mmsb.h"

#include "bus_workload.h"
#include "log_test_util.h"

namespace mmsb {
namespace {

using testing::BusWorkload;
using testing::TempDir;

struct Seen {
  Epoch epoch;
  std::uint64_t log_id;
  std::uint64_t hash;
  std::vector<std::uint8_t> records;
};

class Recorder : public LogGroupObserver {
 public:
  Status OnGroup(const LoggedGroup& g) override {
    groups.push_back({g.epoch, g.log_id, g.state_hash, {g.records.begin(), g.records.end()}});
    return Status::Ok();
  }
  void OnCheckpoint(Epoch epoch, const std::string&) override { checkpoints.push_back(epoch); }
  std::vector<Seen> groups;
  std::vector<Epoch> checkpoints;
};

class ReplicatedGroupTest : public ::testing::Test {
 protected:
  void TearDown() override { stop(); }

  // Runs `epochs` commits of the workload in one bus session on the log at `dir`.
  void Session(const std::string& dir, std::uint32_t seed, int epochs, Recorder* rec,
               bool checkpoint_midway = false) {
    ASSERT_TRUE(start().ok());
    LogOptions lo;
    lo.retire_segments = false;  // replayed from epoch 1 afterwards
    auto log = AttachLog(dir, lo);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    auto observer = std::shared_ptr<Recorder>(rec, [](Recorder*) {});
    (*log)->SetGroupObserver(observer, true);
    BusWorkload w(seed);
    w.Setup();
    for (int i = 0; i < epochs; ++i) {
      if (checkpoint_midway && i == epochs / 2) ASSERT_TRUE((*log)->Checkpoint().ok());
      ASSERT_TRUE(w.Step().ok());
    }
    ASSERT_TRUE((*log)->Close().ok());
    stop();
  }
};

TEST_F(ReplicatedGroupTest, LiveStateHashEqualsReplayedHashAtEveryEpoch) {
  TempDir dir;
  Recorder rec;
  Session(dir.path(), 1, 120, &rec);
  Session(dir.path(), 2, 80, &rec, true);  // a continued log: page ids and epochs are offset
  ASSERT_EQ(rec.groups.size(), 201u);      // + the checkpoint's own commit
  ASSERT_EQ(rec.checkpoints.size(), 1u);
  ReplayOptions ro;
  ro.use_checkpoints = false;
  auto r = Replayer::Open(dir.path(), ro);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (const Seen& g : rec.groups) {
    auto e = (*r)->AdvanceTo(g.epoch);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    ASSERT_EQ(*e, g.epoch);
    ASSERT_EQ((*r)->state().ReplicaHash(), g.hash) << "epoch " << g.epoch;  // a full pass
    ASSERT_EQ((*r)->ReplicaHash(), g.hash) << "epoch " << g.epoch;          // kept from the changes
  }
}

// The observer's bytes are the log's own: each group equals the records the log holds for that
// epoch, commit record included (a replica and the leader hold the same records).
TEST_F(ReplicatedGroupTest, ObservedGroupIsByteIdenticalToTheLogsRecords) {
  TempDir dir;
  Recorder rec;
  Session(dir.path(), 8, 60, &rec);
  Session(dir.path(), 9, 20, &rec);
  auto r = LogReader::Open(dir.path());
  ASSERT_TRUE(r.ok());
  LogBatch batch(rec.groups.front().log_id);
  std::size_t next = 0;
  LogEntry e;
  for (;;) {
    auto n = (*r)->Next(&e);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    if (!*n) break;
    batch.AddRaw(e.raw_type, e.payload);  // same log id, type and payload: the same frame
    if (e.type != LogRecordType::kCommit) continue;
    ASSERT_LT(next, rec.groups.size());
    const Seen& g = rec.groups[next++];
    EXPECT_EQ(g.epoch, e.commit.epoch);
    EXPECT_TRUE(
        std::equal(g.records.begin(), g.records.end(), batch.bytes().begin(), batch.bytes().end()))
        << "epoch " << g.epoch;
    batch.Clear();
  }
  EXPECT_EQ(next, rec.groups.size());
}

TEST_F(ReplicatedGroupTest, ApplyGroupRebuildsTheLoggedStateFromGroupsAlone) {
  TempDir dir;
  Recorder rec;
  Session(dir.path(), 3, 150, &rec);
  Session(dir.path(), 4, 50, &rec);
  auto follower = Replayer::FromState(LogState{});
  for (const Seen& g : rec.groups) {
    auto e = follower->ApplyGroup(g.records, g.log_id);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    ASSERT_EQ(*e, g.epoch);
    ASSERT_EQ(follower->ReplicaHash(), g.hash) << "epoch " << g.epoch;  // incremental
    ASSERT_EQ(follower->state().ReplicaHash(), g.hash) << "epoch " << g.epoch;
  }
  auto replayed = Replay(dir.path());
  ASSERT_TRUE(replayed.ok());
  EXPECT_EQ(follower->state().Hash(), replayed->Hash());  // types too
  EXPECT_EQ(follower->report().epochs_applied, rec.groups.size());
}

// The state hash covers every byte of every page (whatever block it falls in), each page's epoch,
// name and id, and the edges; the incremental form (Replayer::ReplicaHash) agrees with a full pass
// after each of those changes arrives as an epoch group.
TEST(ReplicaHashTest, EveryByteEpochNameAndEdgeChangesIt) {
  LogState s;
  s.epoch = 7;
  s.page_id_high = 3;
  for (PageId id : {1, 2}) {
    ReplayedPage& p = s.pages[id];
    p.id = id;
    p.name = "p" + std::to_string(id);
    p.epoch = 5;
    p.bytes.assign(1000, 0);  // four blocks, the last one partial
  }
  const std::uint64_t base = s.ReplicaHash();
  for (std::size_t at : {0u, 255u, 256u, 600u, 999u}) {
    LogState t = s;
    t.pages[1].bytes[at] ^= 1;
    EXPECT_NE(t.ReplicaHash(), base) << "byte " << at;
  }
  {
    LogState t = s;  // two pages' contents swapped: ids are in the hash
    t.pages[1].bytes[10] = 1;
    LogState u = s;
    u.pages[2].bytes[10] = 1;
    EXPECT_NE(t.ReplicaHash(), u.ReplicaHash());
  }
  {
    LogState t = s;  // the same bytes in another block
    t.pages[1].bytes[10] = 1;
    LogState u = s;
    u.pages[1].bytes[266] = 1;
    EXPECT_NE(t.ReplicaHash(), u.ReplicaHash());
  }
  LogState t = s;
  t.pages[2].epoch = 6;
  EXPECT_NE(t.ReplicaHash(), base);
  t = s;
  t.pages[2].name = "q2";
  EXPECT_NE(t.ReplicaHash(), base);
  t = s;
  t.epoch = 8;
  EXPECT_NE(t.ReplicaHash(), base);
  t = s;
  t.edges.push_back({1, 2, EdgeKind::kPassthrough, {}, DerivedPolicy::kLog});
  EXPECT_NE(t.ReplicaHash(), base);
  t = s;
  t.pages.erase(2);
  EXPECT_NE(t.ReplicaHash(), base);
}

TEST_F(ReplicatedGroupTest, ApplyGroupContinuesAReplayedLog) {
  TempDir dir;
  Recorder rec;
  Session(dir.path(), 5, 60, &rec);
  ReplayOptions ro;
  ro.epoch = 30;
  auto r = Replayer::Open(dir.path(), ro);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(*(*r)->AdvanceTo(30), 30u);
  // Not at the end of its log: it must read the log, not take groups.
  EXPECT_EQ((*r)->ApplyGroup(rec.groups[30].records, rec.groups[30].log_id).status().code(),
            StatusCode::kFailedPrecondition);
  auto to_end = Replayer::Open(dir.path());
  ASSERT_TRUE(to_end.ok());
  ASSERT_EQ(*(*to_end)->AdvanceTo(kLatestEpoch), 60u);
  // Groups it already has are skipped.
  EXPECT_EQ(*(*to_end)->ApplyGroup(rec.groups[59].records, rec.groups[59].log_id), 60u);
  EXPECT_EQ((*to_end)->report().epochs_applied, 60u);
}

TEST_F(ReplicatedGroupTest, IncompleteOrDamagedGroupIsNotApplied) {
  TempDir dir;
  Recorder rec;
  Session(dir.path(), 6, 10, &rec);
  auto f = Replayer::FromState(LogState{});
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(f->ApplyGroup(rec.groups[i].records, rec.groups[i].log_id).ok());
  const std::uint64_t before = f->state().Hash();
  const Seen& g = rec.groups[5];
  // Without its last 24+ bytes (the commit record cut): incomplete, nothing applied.
  std::vector<std::uint8_t> cut(g.records.begin(), g.records.end() - 30);
  auto e = f->ApplyGroup(cut, g.log_id);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(*e, 5u);
  EXPECT_EQ(f->state().Hash(), before);
  // A flipped byte: corruption, nothing applied.
  std::vector<std::uint8_t> bad = g.records;
  bad[bad.size() / 2] ^= 0x40;
  EXPECT_EQ(f->ApplyGroup(bad, g.log_id).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(f->state().Hash(), before);
  // Another log's id: no record passes its checks (read as a torn tail): nothing applied.
  auto other = f->ApplyGroup(g.records, g.log_id ^ 1);
  EXPECT_TRUE(!other.ok() || *other == 5u);
  EXPECT_EQ(f->state().Hash(), before);
  // The intact group still applies afterwards.
  EXPECT_EQ(*f->ApplyGroup(g.records, g.log_id), 6u);
  EXPECT_EQ(f->state().ReplicaHash(), g.hash);
}

TEST_F(ReplicatedGroupTest, OpenBufferReadsAGroupsRecords) {
  TempDir dir;
  Recorder rec;
  Session(dir.path(), 7, 3, &rec);
  auto r = LogReader::OpenBuffer(rec.groups[2].records, rec.groups[2].log_id, 2);
  ASSERT_TRUE(r.ok());
  LogEntry e;
  int records = 0;
  Epoch commit = 0;
  for (;;) {
    auto n = (*r)->Next(&e);
    ASSERT_TRUE(n.ok());
    if (!*n) break;
    ++records;
    if (e.type == LogRecordType::kCommit) commit = e.commit.epoch;
  }
  EXPECT_EQ(commit, 3u);
  EXPECT_GE(records, 2);
  EXPECT_TRUE((*r)->problems().empty());
}

}  // namespace
}  // namespace mmsb
