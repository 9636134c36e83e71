#include <algorithm>
#include <cstring>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "bus_fixture.h"

namespace mmsb {
namespace {

using testing::BusTest;

std::vector<std::uint8_t> Bytes(const Page* p) { return {p->data(), p->data() + p->size()}; }

// Applies every recorded delta for `id` in order to a zero image, as a log replay would.
std::vector<std::uint8_t> Replay(const testing::RecordingSink& sink, PageId id, std::size_t size) {
  std::vector<std::uint8_t> img(size, 0);
  for (const auto& b : sink.batches) {
    for (const auto& d : b.deltas) {
      if (d.page() == id) EXPECT_TRUE(d.ApplyTo(img).ok());
    }
  }
  return img;
}

TEST_F(BusTest, CommitProducesExactDeltaOfBarrieredStores) {
  Page* p = NewPage(4096);
  Commit();  // epoch 1: nothing yet (zero page)
  ASSERT_EQ(sink->batches.size(), 1u);
  EXPECT_TRUE(sink->batches[0].deltas.empty());
  ASSERT_EQ(sink->batches[0].created.size(), 1u);
  EXPECT_EQ(sink->batches[0].created[0].id, p->id());

  auto* f = reinterpret_cast<float*>(p->data());
  *rt::w(&f[12]) = 1.5f;
  *rt::w(&f[1000]) = -2.0f;
  const Epoch e = Commit();
  EXPECT_EQ(e, 2u);
  ASSERT_EQ(sink->batches.back().deltas.size(), 1u);
  const Delta& d = sink->batches.back().deltas[0];
  EXPECT_EQ(d.page(), p->id());
  EXPECT_EQ(d.base_epoch(), 0u) << "base epoch is the page's previous change (none yet)";
  // 1.5f = 0x3FC00000: only the two high bytes differ from zero; -2.0f = 0xC0000000: one byte.
  EXPECT_EQ(d.changed_bytes(), 3u);
  EXPECT_EQ(p->epoch(), 2u);
  EXPECT_EQ(Replay(*sink, p->id(), 4096), Bytes(p));
  *rt::w(&f[13]) = 1.0f;
  Commit();
  EXPECT_EQ(sink->batches.back().deltas.at(0).base_epoch(), 2u);
}

TEST_F(BusTest, StoreOfUnchangedValueYieldsNoDelta) {
  Page* p = NewPage(256);
  *rt::w(&p->data()[5]) = 7;
  Commit();
  *rt::w(&p->data()[5]) = 7;  // same value again
  *rt::w(&p->data()[200]) = 0;
  Commit();
  EXPECT_TRUE(sink->batches.back().deltas.empty());
  EXPECT_EQ(p->epoch(), 1u);
}

TEST_F(BusTest, UntouchedPagesAreNotDiffed) {
  for (int i = 0; i < 100; ++i) NewPage(4096);
  Page* hot = NewPage(4096);
  Commit();
  const auto before = GetStats().granules_diffed;
  *rt::w(&hot->data()[100]) = 1;
  Commit();
  EXPECT_EQ(GetStats().granules_diffed - before, 1u);
  ASSERT_EQ(sink->batches.back().deltas.size(), 1u);
  EXPECT_EQ(sink->batches.back().deltas[0].page(), hot->id());
}

TEST_F(BusTest, StoreStraddlingGranulesIsCaptured) {
  Page* p = NewPage(256);
  struct Bytes8 {  // alignment 1, so an object may start anywhere (like a packed member)
    std::uint8_t b[8];
  };
  std::uint8_t* at = p->data() + 60;  // crosses the 64-byte granule boundary
  *rt::w(reinterpret_cast<Bytes8*>(at)) = Bytes8{{1, 2, 3, 4, 5, 6, 7, 8}};
  Commit();
  ASSERT_EQ(sink->batches.back().deltas.size(), 1u);
  EXPECT_EQ(sink->batches.back().deltas[0].changed_bytes(), 8u);
  EXPECT_EQ(Replay(*sink, p->id(), 256), Bytes(p));
}

TEST_F(BusTest, RangeBarrierCoversMemset) {
  Page* p = NewPage(10000);
  std::memset(rt::w(p->data() + 100, 5000), 0xEE, 5000);
  Commit();
  ASSERT_EQ(sink->batches.back().deltas.size(), 1u);
  EXPECT_EQ(sink->batches.back().deltas[0].changed_bytes(), 5000u);
}

TEST_F(BusTest, EscapedPageIsFullyDiffed) {
  Page* p = NewPage(4096);
  Commit();
  MarkEscaped(p);
  p->data()[3000] = 9;  // no barrier
  Commit();
  ASSERT_EQ(sink->batches.back().deltas.size(), 1u);
  EXPECT_EQ(Replay(*sink, p->id(), 4096), Bytes(p));
  EXPECT_EQ(GetStats().pages_escaped, 1u);
}

TEST_F(BusTest, UnzeroedStorageIsCapturedAtFirstCommit) {
  // The plugin's operator new asks for unzeroed storage and constructs into it without barriers.
  Page* p = NewPage(128, {.zeroed = false});
  std::memset(p->data(), 0, 128);
  p->data()[0] = 1;
  p->data()[127] = 2;
  Commit();
  ASSERT_EQ(sink->batches.back().deltas.size(), 1u);
  EXPECT_EQ(sink->batches.back().deltas[0].changed_bytes(), 2u);
}

TEST_F(BusTest, StaticPageChangesBecomeDeltas) {
  alignas(64) static float storage[64] = {1.0f, 2.0f};
  auto page = RegisterStaticPage(storage, sizeof storage, {.name = "_Z7storage"});
  ASSERT_TRUE(page.ok());
  Commit();  // first commit captures the initial image against zeros
  ASSERT_EQ(sink->batches.back().deltas.size(), 1u);
  *rt::w(&storage[40]) = 3.0f;
  Commit();
  ASSERT_EQ(sink->batches.back().deltas.size(), 1u);
  EXPECT_EQ(Replay(*sink, (*page)->id(), sizeof storage), Bytes(*page));
}

// A static page's twin starts as zeros, its epoch-0 image, whatever the heap held before: the
// page is not arena storage, so the large-page path (twin left unwritten, memory read only where
// the page table shows data) must not apply to it. (Regression: static pages were filed under the
// large class, their twin was a fresh `new[]` never zeroed, and a store of a value the heap's old
// bytes already held was lost.)
TEST_F(BusTest, StaticPageTwinStartsAsZerosWhateverTheHeapHeld) {
  constexpr std::size_t kSize = 4096;
  alignas(64) static std::uint8_t storage[kSize];
  for (int i = 0; i < 8; ++i) {  // leave freed heap chunks of the twin's size full of 0xA5
    auto* junk = new std::uint8_t[kSize];
    std::memset(junk, 0xA5, kSize);
    asm volatile("" : : "r"(junk) : "memory");  // the writes are not dead
    delete[] junk;
  }
  auto page = RegisterStaticPage(storage, kSize, {.name = "_Z7storage_twin"});
  ASSERT_TRUE(page.ok());
  Commit();
  const std::span<const std::uint8_t> image = CommittedImage(*page);
  ASSERT_EQ(image.size(), kSize);
  EXPECT_TRUE(std::all_of(image.begin(), image.end(), [](std::uint8_t v) { return v == 0; }));
  *rt::w(&storage[100]) = 0xA5;
  Commit();
  EXPECT_EQ(Replay(*sink, (*page)->id(), kSize), Bytes(*page));
}

TEST_F(BusTest, CreatedAndFreedPagesAppearInTheBatch) {
  Page* a = NewPage(64);
  Page* b = NewPage(64);
  const PageId bid = b->id();
  Commit();
  EXPECT_EQ(sink->batches.back().created.size(), 2u);
  EXPECT_TRUE(sink->batches.back().freed.empty());
  ASSERT_TRUE(FreePage(b).ok());
  *rt::w(&a->data()[0]) = 1;
  Commit();
  EXPECT_TRUE(sink->batches.back().created.empty());
  EXPECT_EQ(sink->batches.back().freed, (std::vector<PageId>{bid}));
  Commit();
  EXPECT_TRUE(sink->batches.back().freed.empty());
}

// The commit's scan keeps a per-slot entry (shadow, granules, idle) beside live_; freeing a page
// moves the last page into its slot, and the entry must move with it: a stale entry would check
// the freed page's shadow and skip the moved page's stores.
TEST_F(BusTest, PageMovedIntoAFreedSlotIsStillCollected) {
  Options o;
  o.sample_verify = 0;  // no sampled slice: only the scan's entries decide what is collected
  StartBus(o);
  Page* a = NewPage(64);
  Page* b = NewPage(4096);
  Page* c = NewPage(256);
  Commit();
  Commit();  // every page idle now
  ASSERT_TRUE(FreePage(a).ok());
  *rt::w(&c->data()[200]) = 7;  // c now sits in a's slot
  Commit();
  ASSERT_EQ(sink->batches.back().deltas.size(), 1u);
  EXPECT_EQ(Replay(*sink, c->id(), 256), Bytes(c));
  Page* d = NewPage(64);  // a new page in the last slot (on a's storage, most likely)
  *rt::w(&d->data()[1]) = 5;
  *rt::w(&c->data()[3]) = 8;
  Commit();
  ASSERT_EQ(sink->batches.back().deltas.size(), 2u);
  EXPECT_EQ(Replay(*sink, c->id(), 256), Bytes(c));
  EXPECT_EQ(Replay(*sink, d->id(), 64), Bytes(d));
  *rt::w(&b->data()[4000]) = 1;
  Commit();
  ASSERT_EQ(sink->batches.back().deltas.size(), 1u);
  EXPECT_EQ(Replay(*sink, b->id(), 4096), Bytes(b));
}

// An idle page the scan skips without reading its record must be diffed in full once escaped
// (its stores carry no marks from then on). Sampling off: only the scan decides.
TEST_F(BusTest, EscapingAnIdlePageMakesTheScanDiffItInFull) {
  Options o;
  o.sample_verify = 0;
  StartBus(o);
  std::vector<Page*> pages;
  for (int i = 0; i < 8; ++i) pages.push_back(NewPage(1024));
  Commit();
  Commit();  // every page idle now
  MarkEscaped(pages[5]);
  pages[5]->data()[700] = 3;  // no barrier
  Commit();
  ASSERT_EQ(sink->batches.back().deltas.size(), 1u);
  EXPECT_EQ(Replay(*sink, pages[5]->id(), 1024), Bytes(pages[5]));
}

// A page created and freed between two commits was never seen by a commit: it leaves no record.
// (Regression: a create/free loop without commits accumulated records without bound.)
TEST_F(BusTest, PageCreatedAndFreedWithinOneEpochLeavesNoRecord) {
  Page* kept = NewPage(64);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(FreePage(NewPage(4096)).ok());
  Page* a = NewPage(128);
  Page* b = NewPage(128);
  ASSERT_TRUE(FreePage(a).ok());  // cancelled in the middle of the pending list
  Page* c = NewPage(128);
  Commit();
  const auto& batch = sink->batches.back();
  ASSERT_EQ(batch.created.size(), 3u);
  EXPECT_EQ(batch.created[0].id, kept->id());
  EXPECT_EQ(batch.created[1].id, b->id());
  EXPECT_EQ(batch.created[2].id, c->id());
  EXPECT_TRUE(batch.freed.empty());
  EXPECT_EQ(GetStats().pages_created, 1004u) << "stats still count every creation";
}

TEST_F(BusTest, RandomWorkloadReplaysBitForBit) {
  std::mt19937_64 rng(42);
  std::vector<Page*> pages;
  for (int i = 0; i < 20; ++i) pages.push_back(NewPage(64 + rng() % 9000));
  for (int epoch = 0; epoch < 200; ++epoch) {
    const int writes = static_cast<int>(rng() % 50);
    for (int k = 0; k < writes; ++k) {
      Page* p = pages[rng() % pages.size()];
      const std::size_t off = rng() % p->size();
      const std::size_t len = std::min<std::size_t>(1 + rng() % 24, p->size() - off);
      std::uint8_t* dst = rt::w(p->data() + off, len);
      for (std::size_t i = 0; i < len; ++i) dst[i] = static_cast<std::uint8_t>(rng() % 4);
    }
    Commit();
  }
  for (Page* p : pages)
    EXPECT_EQ(Replay(*sink, p->id(), p->size()), Bytes(p)) << "page " << p->id();
}

class AddOneStage : public CommitStage {
 public:
  explicit AddOneStage(Page* src, Page* dst) : src_(src), dst_(dst) {}
  const char* name() const override { return "add-one"; }
  Status Process(const CommitBatch& batch) override {
    for (const Delta& d : batch.deltas) {
      if (d.page() == src_->id())
        *rt::w(&dst_->data()[0]) = static_cast<std::uint8_t>(src_->data()[0] + 1);
    }
    return fail ? Internal("recompute failed") : Status::Ok();
  }
  bool fail = false;

 private:
  Page* src_;
  Page* dst_;
};

TEST_F(BusTest, StageWritesBecomeDeltasOfTheSameEpoch) {
  Page* src = NewPage(64);
  Page* dst = NewPage(64);
  auto stage = std::make_shared<AddOneStage>(src, dst);
  ASSERT_TRUE(AddStage(stage).ok());
  *rt::w(&src->data()[0]) = 41;
  const Epoch e = Commit();
  ASSERT_EQ(sink->batches.back().deltas.size(), 2u);
  EXPECT_EQ(dst->data()[0], 42);
  EXPECT_EQ(dst->epoch(), e);
}

TEST_F(BusTest, FailingStageFailsCommitAndSkipsSinks) {
  Page* src = NewPage(64);
  Page* dst = NewPage(64);
  auto stage = std::make_shared<AddOneStage>(src, dst);
  stage->fail = true;
  ASSERT_TRUE(AddStage(stage).ok());
  *rt::w(&src->data()[0]) = 1;
  auto e = commit();
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("add-one"), std::string::npos);
  EXPECT_TRUE(sink->batches.empty());
  ASSERT_TRUE(RemoveStage(stage.get()).ok());
  EXPECT_EQ(RemoveStage(stage.get()).code(), StatusCode::kNotFound);
}

TEST_F(BusTest, SinkErrorIsReturnedAndCounted) {
  sink->next_status = IOError("disk full");
  Page* p = NewPage(64);
  *rt::w(&p->data()[0]) = 1;
  auto e = commit();
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kIO);
  EXPECT_EQ(GetStats().sink_errors, 1u);
  EXPECT_EQ(current_epoch(), 1u) << "in-memory state still advanced";
}

TEST_F(BusTest, BarriersFromManyThreadsAreAllCaptured) {
  constexpr int kThreads = 4;
  Page* p = NewPage(kThreads * 4096);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([p, t] {
      auto* words = reinterpret_cast<std::uint32_t*>(p->data() + t * 4096);
      for (int i = 0; i < 1024; i += 3) *rt::w(&words[i]) = static_cast<std::uint32_t>(i + 1);
    });
  }
  for (auto& th : threads) th.join();
  Commit();
  EXPECT_EQ(Replay(*sink, p->id(), p->size()), Bytes(p));
}

TEST_F(BusTest, StatsReportCommitsAndLatency) {
  Page* p = NewPage(64);
  for (int i = 1; i <= 5; ++i) {
    *rt::w(&p->data()[0]) = static_cast<std::uint8_t>(i);
    Commit();
  }
  Stats s = GetStats();
  EXPECT_EQ(s.commits, 5u);
  EXPECT_EQ(s.deltas, 5u);
  EXPECT_EQ(s.commit_latency.count(), 5u);
  EXPECT_NE(s.ToString().find("commits"), std::string::npos);
  EXPECT_NE(s.ToJson().find("\"commit_latency_ns\""), std::string::npos);
}

TEST(Barrier, UntrackedAddressesAreIgnored) {
  int local = 0;
  EXPECT_EQ(rt::w(&local), &local);
  EXPECT_FALSE(rt::IsTracked(&local));
  rt::MarkRange(&local, sizeof local);  // must not crash
}

}  // namespace
}  // namespace mmsb
