// Typed events: per-commit batches in a fixed order, filters, re-entrant subscribe/unsubscribe/
// commit from handlers, ordering under concurrent commits, and the batch codec.
#include <atomic>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "bus_fixture.h"

namespace mmsb {
namespace {

using testing::BusTest;

class EventsTest : public BusTest {
 protected:
  SubscriptionId Sub(EventBatchHandler h, EventMask m = kAllEvents) {
    auto id = Subscribe(std::move(h), m);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : 0;
  }
};

std::vector<EventType> Types(const std::vector<Event>& es) {
  std::vector<EventType> t;
  for (const Event& e : es) t.push_back(e.type);
  return t;
}

TEST_F(EventsTest, OneBatchPerCommitInFixedOrder) {
  std::vector<std::vector<Event>> got;
  Sub([&](std::span<const Event> b) { got.emplace_back(b.begin(), b.end()); });
  Page* a = NewPage(64);
  Page* b = NewPage(128);
  *rt::w(&a->data()[3]) = 9;
  *rt::w(&b->data()[100]) = 1;
  *rt::w(&b->data()[101]) = 2;
  Commit();
  ASSERT_EQ(got.size(), 1u);
  using T = EventType;
  EXPECT_EQ(Types(got[0]),
            (std::vector<T>{T::kPageCreated, T::kPageCreated, T::kDeltaApplied, T::kDeltaApplied,
                            T::kPageChanged, T::kPageChanged, T::kCommitDone}));
  EXPECT_EQ(got[0][0].page, a->id());
  EXPECT_EQ(got[0][0].bytes, 64u);
  EXPECT_EQ(got[0][3].page, b->id());
  EXPECT_EQ(got[0][3].bytes, 2u) << "changed bytes of b's delta";
  EXPECT_EQ(got[0].back().count, 2u);
  EXPECT_EQ(got[0].back().bytes, 3u);
  for (const Event& e : got[0]) EXPECT_EQ(e.epoch, 1u);

  ASSERT_TRUE(FreePage(a).ok());
  Commit();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(Types(got[1]), (std::vector<T>{T::kPageFreed, T::kCommitDone}));
}

TEST_F(EventsTest, TenThousandChangedPagesMakeOneBatchCall) {
  std::vector<Page*> pages;
  for (int i = 0; i < 10000; ++i) pages.push_back(NewPage(64));
  Commit();
  int batch_calls = 0, each_calls = 0;
  std::size_t changed = 0;
  Sub(
      [&](std::span<const Event> b) {
        ++batch_calls;
        changed += b.size();
      },
      EventBit(EventType::kPageChanged));
  ASSERT_TRUE(
      SubscribeEach([&](const Event&) { ++each_calls; }, EventBit(EventType::kPageChanged)).ok());
  for (Page* p : pages) *rt::w(&p->data()[0]) = 1;
  Commit();
  EXPECT_EQ(batch_calls, 1);
  EXPECT_EQ(changed, 10000u);
  EXPECT_EQ(each_calls, 10000) << "per-event delivery only for the subscriber that asked for it";
}

TEST_F(EventsTest, FilteredSubscriberIsSkippedWhenNothingMatches) {
  int calls = 0;
  Sub([&](std::span<const Event>) { ++calls; }, EventBit(EventType::kPropagationDone));
  NewPage(64);
  Commit();
  EXPECT_EQ(calls, 0);
}

TEST_F(EventsTest, UnsubscribeInsideHandlerStopsDeliveryAtOnce) {
  int first = 0, second = 0;
  SubscriptionId other = 0;
  SubscriptionId self = 0;
  self = *SubscribeEach([&](const Event&) {
    ++first;
    EXPECT_TRUE(Unsubscribe(self).ok());
    EXPECT_TRUE(Unsubscribe(other).ok());
  });
  other = Sub([&](std::span<const Event>) { ++second; });
  NewPage(64);
  NewPage(64);
  Commit();
  Commit();
  EXPECT_EQ(first, 1) << "no further events after unsubscribing itself, even within the batch";
  EXPECT_EQ(second, 0) << "unsubscribed before its turn";
  EXPECT_EQ(Unsubscribe(self).code(), StatusCode::kNotFound);
}

TEST_F(EventsTest, SubscribeInsideHandlerReceivesFromTheNextBatch) {
  std::vector<Epoch> late;
  bool added = false;
  Sub([&](std::span<const Event> b) {
    if (!added) {
      added = true;
      Sub([&](std::span<const Event> b2) { late.push_back(b2.front().epoch); });
    }
  });
  Commit();
  Commit();
  EXPECT_EQ(late, (std::vector<Epoch>{2}));
}

TEST_F(EventsTest, CommitInsideHandlerDoesNotDeadlockAndKeepsOrder) {
  Page* p = NewPage(64);
  std::vector<Epoch> seen;
  int nested = 0;
  Sub([&](std::span<const Event> b) {
    seen.push_back(b.back().epoch);
    if (nested++ == 0) {
      *rt::w(&p->data()[1]) = 5;
      auto e = commit();  // re-enters: its batch is delivered after this one
      EXPECT_TRUE(e.ok());
      EXPECT_EQ(seen.size(), 1u) << "the nested batch is not delivered inside this handler";
      EXPECT_NE(FindPage(p->id()), nullptr) << "pages are readable from handlers";
    }
  });
  Commit();
  EXPECT_EQ(seen, (std::vector<Epoch>{1, 2}));
}

TEST_F(EventsTest, ConcurrentCommitsDeliverBatchesInEpochOrder) {
  std::mutex mu;
  std::vector<Epoch> seen;
  Sub(
      [&](std::span<const Event> b) {
        std::lock_guard<std::mutex> lock(mu);
        seen.push_back(b.back().epoch);
      },
      EventBit(EventType::kCommitDone));
  std::vector<Page*> pages;
  for (int t = 0; t < 4; ++t) pages.push_back(NewPage(64));
  std::vector<std::thread> threads;
  std::mutex write_mu;  // commit() must run at a quiescent point: writers and commits alternate
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        std::lock_guard<std::mutex> lock(write_mu);
        *rt::w(&pages[t]->data()[i % 64]) = static_cast<std::uint8_t>(i + 1);
        ASSERT_TRUE(commit().ok());
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(seen.size(), 800u);
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i + 1);
}

TEST_F(EventsTest, NoEventsAreBuiltWithoutListeners) {
  NewPage(64);
  Commit();
  EXPECT_TRUE(sink->batches.back().deltas.empty());
  EXPECT_EQ(GetStats().commits, 1u);
  // The recording sink does not ask for events, and nobody subscribed.
  struct EventSink : CommitSink {
    const char* name() const override { return "events"; }
    bool wants_events() const override { return true; }
    Status OnCommit(const CommitBatch& b) override {
      count = b.events.size();
      return Status::Ok();
    }
    std::size_t count = 0;
  };
  auto es = std::make_shared<EventSink>();
  ASSERT_TRUE(AddSink(es).ok());
  Commit();
  EXPECT_EQ(es->count, 1u) << "a sink that wants events sees them in the batch (CommitDone)";
}

TEST_F(EventsTest, PropagationIsReported) {
  Page* a = NewPage(64);
  Page* b = NewPage(64);
  ASSERT_TRUE(AddPassthroughEdge(a->id(), b->id()).ok());
  Commit();
  std::vector<Event> got;
  Sub([&](std::span<const Event> batch) { got.assign(batch.begin(), batch.end()); });
  *rt::w(&a->data()[0]) = 7;
  Commit();
  using T = EventType;
  EXPECT_EQ(Types(got), (std::vector<T>{T::kDeltaApplied, T::kDeltaApplied, T::kPageChanged,
                                        T::kPageChanged, T::kPropagationDone, T::kCommitDone}));
  EXPECT_EQ(got[1].page, b->id()) << "the derived delta is part of the same epoch";
  EXPECT_EQ(got[4].count, 1u) << "one node recomputed";
}

TEST(EventCodec, RoundTripsAndRejectsCorruption) {
  std::vector<Event> es = {{EventType::kPageCreated, 1, 5, 4096, 0, 0, Location::kGpu},
                           {EventType::kDeltaApplied, 1, 5, 12, 0, 0},
                           {EventType::kCommitDone, 1, 0, 12, 1, 0},
                           {EventType::kCheckpoint, 1u << 31, 0, 1ull << 40, 3, 0}};
  const auto enc = EncodeEvents(es);
  std::size_t used = 0;
  auto back = DecodeEvents(enc, &used);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, es);
  EXPECT_EQ(used, enc.size());
  for (std::size_t i = 0; i < enc.size(); ++i) {
    auto bad = enc;
    bad[i] ^= 0x41;
    EXPECT_FALSE(DecodeEvents(bad).ok()) << "byte " << i;
  }
  for (std::size_t n = 0; n < enc.size(); ++n)
    EXPECT_FALSE(DecodeEvents(std::span(enc).first(n)).ok());
  EXPECT_TRUE(DecodeEvents(EncodeEvents({})).ok());
}

}  // namespace
}  // namespace mmsb
