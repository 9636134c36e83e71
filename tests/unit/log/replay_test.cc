// Replay through the bus's log sink: a randomised workload (writes, creates, frees, graph edges
// with propagation) is logged; replay must equal the live state at every epoch, be deterministic,
// rebuild edges, carry events, and continue across bus runs. (Replay from checkpoints and past
// retired segments: checkpoint_test.)
#include <xxhash.h>

#include <atomic>
#include <map>
#include <random>
#include <shared_mutex>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "mmsb/checkpoint.h"
#include "mmsb/mmsb.h"

#include "log_test_util.h"
#include "replay_fixture.h"

namespace mmsb {
namespace {

using testing::Fingerprint;
using testing::Live;
using testing::Of;
using testing::ReplayTest;
using testing::TempDir;

TEST_F(ReplayTest, ReplayEqualsLiveStateAtEveryEpochOfARandomWorkload) {
  LogOptions lo;
  lo.durability = Durability::kNone;
  lo.segment_bytes = 256 << 10;
  Attach(lo);
  std::uint64_t deltas = 0;
  RandomWorkload(400, 1, &deltas);
  ASSERT_TRUE(sink_->Close().ok());
  EXPECT_GE(deltas, 10000u) << "the issue asks for at least 10,000 deltas";
  auto r = Replayer::Open(log_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::size_t max_pages = 0;
  for (Epoch e = 1; e < live_.size(); ++e) {
    auto reached = (*r)->AdvanceTo(e);
    ASSERT_TRUE(reached.ok()) << reached.status().ToString();
    ASSERT_EQ(*reached, e);
    ASSERT_TRUE(Of((*r)->state()) == live_[e])
        << "replayed state differs from the live state at epoch " << e;
    max_pages = std::max(max_pages, (*r)->state().pages.size());
  }
  EXPECT_EQ((*r)->report().deltas_applied, deltas);
  EXPECT_GE(max_pages, 150u);
  EXPECT_FALSE((*r)->report().has_errors());
  // From scratch to random epochs, twice: bit-identical and deterministic.
  std::mt19937_64 rng(5);
  for (int i = 0; i < 6; ++i) {
    ReplayOptions o;
    o.epoch = 1 + rng() % (live_.size() - 1);
    auto a = Replay(log_, o);
    auto b = Replay(log_, o);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_TRUE(Of(*a) == live_[o.epoch]) << "epoch " << o.epoch;
    EXPECT_EQ(a->Hash(), b->Hash());
  }
}

// Replay applies a large group's deltas on a second thread while it reads the next group
// (log/apply_worker.h). Whatever the threshold, the state must be the one the log describes, at
// every epoch a replay stops at: across sealed (mapped) segments and the last one (read through
// retained windows), with large dense deltas cut into parts, pages with two deltas in one group,
// and creates and frees between them, stepping, advancing and replaying whole. The name carries
// "Concurrent" so that the ThreadSanitizer pass runs it.
TEST(ReplayApplyThread, ConcurrentApplyGivesTheLoggedStateAtEveryEpoch) {
  testing::TempDir dir;
  const std::string log = dir.Sub("run.tlog");
  std::mt19937_64 rng(11);
  std::map<PageId, std::vector<std::uint8_t>> model;
  std::map<PageId, Epoch> changed_at;                         // 0: never changed
  std::vector<std::map<PageId, std::uint64_t>> expected{{}};  // [epoch]: xxh3 of each page
  PageId next_id = 1;
  constexpr std::size_t kSizes[] = {65536, 100000, 20000, 4096, 70001, 200000, 131136};
  Epoch epoch = 0;
  for (int run = 0; run < 2; ++run) {
    LogOptions lo;
    lo.durability = Durability::kNone;
    lo.segment_bytes = 1 << 20;
    auto w = LogWriter::Open(log, lo);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (int i = 0; i < 150; ++i) {
      ++epoch;
      LogBatch b = (*w)->NewBatch();
      if (model.size() < 6 || rng() % 8 == 0) {
        const PageId id = next_id++;
        const std::size_t size = kSizes[rng() % std::size(kSizes)];
        b.AddPageCreate({id, size, Location::kCpu, false, "", ""});
        model[id].assign(size, 0);
        changed_at[id] = 0;
      }
      const int deltas = 1 + static_cast<int>(rng() % 6);
      for (int k = 0; k < deltas; ++k) {
        auto it = model.begin();
        std::advance(it, static_cast<std::ptrdiff_t>(rng() % model.size()));
        std::vector<std::uint8_t> next = it->second;
        const int density = static_cast<int>(rng() % 3);  // a few bytes, a third, most
        for (std::size_t j = 0; j < next.size(); ++j) {
          const bool hit = density == 0   ? rng() % 997 == 0
                           : density == 1 ? rng() % 3 == 0
                                          : rng() % 8 != 0;
          if (hit) next[j] = static_cast<std::uint8_t>(rng());
        }
        // A page's second delta in the group follows the group's own epoch.
        Delta d = Diff(it->first, changed_at[it->first], it->second, next);
        if (d.empty()) continue;
        if (rng() % 3 == 0) d.ConvertTo(Delta::Form::kSparse);
        ASSERT_TRUE(b.AddDelta(d).ok());
        it->second = std::move(next);
        changed_at[it->first] = epoch;
      }
      if (model.size() > 8 && rng() % 6 == 0) {
        auto it = model.begin();
        std::advance(it, static_cast<std::ptrdiff_t>(rng() % model.size()));
        b.AddPageFree(it->first);
        changed_at.erase(it->first);
        model.erase(it);
      }
      auto committed = (*w)->Commit(b, epoch);
      ASSERT_TRUE(committed.ok()) << committed.status().ToString();
      std::map<PageId, std::uint64_t> hashes;
      for (const auto& [id, bytes] : model) hashes[id] = XXH3_64bits(bytes.data(), bytes.size());
      expected.push_back(std::move(hashes));
    }
    ASSERT_TRUE((*w)->Close().ok());
  }
  const auto hashes = [](const LogState& st) {
    std::map<PageId, std::uint64_t> h;
    for (const auto& [id, p] : st.pages) h[id] = XXH3_64bits(p.bytes.data(), p.bytes.size());
    return h;
  };
  for (const std::uint64_t threshold :
       {std::uint64_t{0}, std::uint64_t{100000}, ~std::uint64_t{0}}) {
    SCOPED_TRACE(fmt::format("apply_thread_min_bytes {}", threshold));
    ReplayOptions o;
    o.apply_thread_min_bytes = threshold;
    auto whole = Replay(log, o);
    ASSERT_TRUE(whole.ok()) << whole.status().ToString();
    EXPECT_EQ(whole->epoch, epoch);
    EXPECT_EQ(hashes(*whole), expected.back());
    auto r = Replayer::Open(log, o);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    for (Epoch e = 1; e <= epoch; e += 1 + rng() % 3) {
      auto reached = (*r)->AdvanceTo(e);
      ASSERT_TRUE(reached.ok()) << reached.status().ToString();
      ASSERT_EQ(*reached, e);
      ASSERT_EQ(hashes((*r)->state()), expected[e]) << "epoch " << e;
    }
    auto s = Replayer::Open(log, o);
    ASSERT_TRUE(s.ok());
    for (Epoch e = 1;; ++e) {
      auto stepped = (*s)->Step();
      ASSERT_TRUE(stepped.ok()) << stepped.status().ToString();
      if (!*stepped) break;
      ASSERT_EQ(hashes((*s)->state()), expected[e]) << "step to epoch " << e;
    }
    EXPECT_EQ((*s)->state().epoch, epoch);
    EXPECT_FALSE((*s)->report().has_errors());
  }
}

// Regression: a closed sink stayed registered, so every later commit failed with "log is closed".
TEST_F(ReplayTest, ClosingTheSinkDetachesItFromTheBus) {
  Attach();
  Page* p = *CreatePage(64);
  *rt::w(&p->data()[0]) = 1;
  Commit();
  ASSERT_TRUE(sink_->Close().ok());
  *rt::w(&p->data()[0]) = 2;
  auto e = commit();
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(GetStats().sink_errors, 0u);
  EXPECT_TRUE(sink_->Close().ok()) << "closing twice is harmless";
}

TEST_F(ReplayTest, TypedEventsReplayAsTheSameSequenceSubscribersSaw) {
  std::vector<std::vector<Event>> seen;
  auto sub = Subscribe(
      [&](std::span<const Event> batch) { seen.emplace_back(batch.begin(), batch.end()); });
  ASSERT_TRUE(sub.ok());
  Attach();
  RandomWorkload(30, 8);
  ASSERT_TRUE(sink_->Checkpoint().ok());
  live_.push_back(Live());
  RandomWorkload(5, 9);
  ASSERT_TRUE(sink_->Close().ok());
  ASSERT_TRUE(Unsubscribe(*sub).ok());
  ReplayOptions o;
  o.collect_events = true;
  o.use_checkpoints = false;  // events before a checkpoint live only in the segments
  ReplayReport rep;
  ASSERT_TRUE(Replay(log_, o, &rep).ok());
  std::vector<std::vector<Event>> replayed;
  for (const ReplayedEvent& re : rep.events) {
    auto batch = DecodeEvents(re.bytes);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    replayed.push_back(*batch);
  }
  ASSERT_EQ(replayed.size(), seen.size());
  EXPECT_TRUE(replayed == seen);
  ASSERT_GE(seen.size(), 32u);
  EXPECT_EQ(seen[31].size(), 1u);
  EXPECT_EQ(seen[31][0].type, EventType::kCheckpoint)
      << "the checkpoint's batch follows its commit's";
}

TEST_F(ReplayTest, EventsAppendedThroughTheSinkReplayInOrderWithTheirEpochs) {
  LogOptions lo;
  lo.log_events = false;  // only the program's own events
  Attach(lo);
  Page* p = *CreatePage(64);
  const std::uint8_t before_commit[] = {1};
  ASSERT_TRUE(sink_->AppendEvent(1, before_commit).ok());  // epoch 1 is not logged yet
  *rt::w(&p->data()[0]) = 1;
  Commit();
  const std::uint8_t after_commit[] = {2};
  ASSERT_TRUE(sink_->AppendEvent(1, after_commit).ok());
  *rt::w(&p->data()[0]) = 2;
  Commit();
  const std::uint8_t third[] = {3};
  ASSERT_TRUE(sink_->AppendEvent(2, third).ok());
  ASSERT_TRUE(sink_->Close().ok());
  ReplayOptions o;
  o.collect_events = true;
  ReplayReport rep;
  ASSERT_TRUE(Replay(log_, o, &rep).ok());
  ASSERT_EQ(rep.events.size(), 3u);
  EXPECT_EQ(rep.events[0].epoch, 1u);
  EXPECT_EQ(rep.events[0].bytes[0], 1);
  EXPECT_EQ(rep.events[1].epoch, 1u);
  EXPECT_EQ(rep.events[1].bytes[0], 2);
  EXPECT_EQ(rep.events[2].epoch, 2u);
  o.epoch = 1;
  rep = {};
  ASSERT_TRUE(Replay(log_, o, &rep).ok());
  EXPECT_EQ(rep.events.size(), 2u) << "events of later epochs are not part of epoch 1";
}

TEST_F(ReplayTest, PagesThatExistBeforeTheSinkAreLoggedWithTheirContents) {
  Page* a = *CreatePage(256);
  Page* b = *CreatePage(256);
  *rt::w(&a->data()[10]) = 7;
  Commit();
  *rt::w(&b->data()[20]) = 8;  // uncommitted when the sink attaches
  ASSERT_TRUE(AddPassthroughEdge(a->id(), b->id()).ok());
  Attach();
  live_.resize(current_epoch() + 1);
  Commit();
  live_.push_back(Live());
  *rt::w(&a->data()[11]) = 9;
  Commit();
  live_.push_back(Live());
  ASSERT_TRUE(sink_->Close().ok());
  ReplayReport rep;
  auto r = Replayer::Open(log_);
  ASSERT_TRUE(r.ok());
  // The log's first epoch is the sink's first commit.
  ASSERT_TRUE((*r)->Step().ok());
  EXPECT_TRUE(Of((*r)->state()) == live_[2]);
  ASSERT_TRUE((*r)->Step().ok());
  EXPECT_TRUE(Of((*r)->state()) == live_[3]);
  EXPECT_FALSE((*r)->report().has_errors()) << (*r)->report().problems[0].ToString();
  EXPECT_EQ((*r)->state().edges.size(), 1u);
}

TEST_F(ReplayTest, ALogContinuedByALaterRunKeepsEpochsAndIdsIncreasing) {
  Attach();
  Page* p = *CreatePage(128);
  *rt::w(&p->data()[0]) = 1;
  Commit();
  Commit();
  sink_.reset();
  stop();
  StartBus();
  Attach();
  EXPECT_EQ(sink_->LogEpoch(1), 3u);
  EXPECT_EQ(sink_->LogPageId(1), 2u);
  Page* q = *CreatePage(128);
  *rt::w(&q->data()[5]) = 5;
  Commit();
  ASSERT_TRUE(sink_->Close().ok());
  ReplayOptions o;
  o.epoch = 2;
  auto first = Replay(log_, o);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->pages.size(), 1u);
  EXPECT_EQ(first->pages.begin()->second.bytes[0], 1);
  o.epoch = 3;
  auto second = Replay(log_, o);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  ASSERT_EQ(second->pages.size(), 1u) << "the first run's page is gone at the run start";
  EXPECT_EQ(second->pages.begin()->first, 2u);
  EXPECT_EQ(second->pages.begin()->second.bytes[5], 5);
}

TEST_F(ReplayTest, RestoreBringsStaticPagesBackByNameFromALogOrACheckpoint) {
  alignas(64) static std::uint8_t counters[256];
  alignas(64) static std::uint8_t other[64];
  std::memset(counters, 0, sizeof counters);
  PageOptions po;
  po.name = "_ZN3app8countersE";
  ASSERT_TRUE(RegisterStaticPage(counters, sizeof counters, po).ok());
  Attach();
  *rt::w(&counters[3]) = 33;
  Commit();
  auto c = sink_->Checkpoint();
  ASSERT_TRUE(c.ok());
  *rt::w(&counters[4]) = 44;
  Commit();
  sink_.reset();
  stop();

  for (bool from_checkpoint : {false, true}) {
    StartBus();
    std::memset(counters, 0, sizeof counters);
    ASSERT_TRUE(RegisterStaticPage(counters, sizeof counters, po).ok());
    PageOptions po2;
    po2.name = "_ZN3app5otherE";
    ASSERT_TRUE(RegisterStaticPage(other, sizeof other, po2).ok());
    const std::string from =
        from_checkpoint ? log_ + "/ckpt-" + fmt::format("{:020d}", *c) + ".ckpt" : log_;
    auto r = RestoreStaticPages(from);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(counters[3], 33);
    EXPECT_EQ(counters[4], from_checkpoint ? 0 : 44);
    ASSERT_EQ(r->restored.size(), 1u);
    ASSERT_EQ(r->not_in_log.size(), 1u);
    EXPECT_EQ(r->not_in_log[0], "_ZN3app5otherE");
    // The restored bytes are committed like any write, so a log attached now records them.
    TempDir again;
    auto s = AttachLog(again.Sub("run.tlog"));
    ASSERT_TRUE(s.ok());
    Commit();
    ASSERT_TRUE((*s)->Close().ok());
    auto st = Replay(again.Sub("run.tlog"));
    ASSERT_TRUE(st.ok());
    ASSERT_NE(st->FindPageByName("_ZN3app8countersE"), nullptr);
    EXPECT_EQ(st->FindPageByName("_ZN3app8countersE")->bytes[3], 33);
    stop();
  }
  StartBus();
}

// commit() from several threads with group durability: writes never overlap a commit (the bus's
// quiescence rule, kept with a reader-writer lock), commits overlap each other, so their waits for
// the disk overlap and share fsyncs. Every acknowledged epoch is in the log and replays exactly.
TEST_F(ReplayTest, ConcurrentCommitsThroughTheSinkShareFsyncs) {
  LogOptions lo;
  lo.durability = Durability::kGroup;
  Attach(lo);
  constexpr int kThreads = 4, kCommits = 30;
  std::vector<Page*> pages;
  pages.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) pages.push_back(*CreatePage(256));
  std::shared_mutex quiesce;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 1; i <= kCommits; ++i) {
        {
          std::unique_lock<std::shared_mutex> w(quiesce);
          *rt::w(&pages[t]->data()[i]) = static_cast<std::uint8_t>(i);
        }
        std::shared_lock<std::shared_mutex> c(quiesce);
        if (!commit().ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  const auto counters = sink_->writer().counters();
  EXPECT_EQ(counters.commits, static_cast<std::uint64_t>(kThreads * kCommits));
  EXPECT_LE(counters.syncs, counters.commits);
  const Fingerprint live = Live();
  const Epoch last = current_epoch();
  ASSERT_TRUE(sink_->Close().ok());
  auto st = Replay(log_);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->epoch, last);
  EXPECT_TRUE(Of(*st) == live);
}

TEST_F(ReplayTest, ReplayPastTheEndOfTheLogIsNotFound) {
  Attach();
  Commit();
  ASSERT_TRUE(sink_->Close().ok());
  ReplayOptions o;
  o.epoch = 9;
  auto st = Replay(log_, o);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), StatusCode::kNotFound);
  EXPECT_NE(st.status().message().find("last committed epoch 1"), std::string::npos)
      << st.status().message();
}

}  // namespace
}  // namespace mmsb
