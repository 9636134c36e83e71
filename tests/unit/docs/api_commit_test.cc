// The examples of docs/API.md on delta.h, commit.h (with verification), graph.h, events.h and
// stats.h, compiled and run. See docs_api_test.h for how docs/API.md is checked against these
// files.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mmsb/held_marks.h"
#include "mmsb/kernels.h"
#include "mmsb/mmsb.h"
#include "mmsb/query.h"

#include "docs_api_test.h"
#include "temp_dir.h"

namespace {

// ---- mmsb/delta.h
// --------------------------------------------------------------------------------

void PrintChange(const mmsb::Delta& d) {
  std::printf("page %llu since epoch %llu: %u byte(s), %s\n",
              static_cast<unsigned long long>(d.page()),
              static_cast<unsigned long long>(d.base_epoch()), d.changed_bytes(),
              d.form() == mmsb::Delta::Form::kSparse ? "sparse" : "dense");
  d.ForEachRun([](std::uint32_t offset, std::uint32_t length, const std::uint8_t* bytes) {
    std::printf("  [%u, +%u) first new byte 0x%02x\n", offset, length, bytes[0]);
  });
}

mmsb::Status DiffAndApply() {
  std::vector<std::uint8_t> before(256, 0);
  std::vector<std::uint8_t> now = before;
  now[10] = 1;
  now[11] = 2;
  now[200] = 9;
  now[201] = 0;  // unchanged: never part of a delta
  const mmsb::Delta d = mmsb::Diff(/*page=*/7, /*base_epoch=*/0, before, now);
  PrintChange(d);
  std::vector<std::uint8_t> replica = before;
  MMSB_RETURN_IF_ERROR(d.ApplyTo(replica));
  return replica == now ? mmsb::Status::Ok() : mmsb::Internal("apply went wrong");
}

mmsb::Expected<mmsb::Delta> TwoRuns() {
  // Runs sorted, non-overlapping, non-adjacent; bytes concatenated in run order.
  mmsb::Expected<mmsb::Delta> d = mmsb::Delta::FromRuns(
      /*page=*/3, /*base_epoch=*/0, /*page_size=*/128, {{4, 2}, {64, 1}}, {0xaa, 0xbb, 0xcc});
  if (!d.ok()) return d.status();
  // The builder takes changed bytes in increasing offset order and picks the smaller form.
  std::uint8_t now[128] = {};
  now[4] = 0xaa;
  now[5] = 0xbb;
  now[64] = 0xcc;
  mmsb::DeltaBuilder builder(/*page=*/3, /*base_epoch=*/0, /*page_size=*/128);
  builder.AddRun(4, &now[4], 2);
  builder.AddMask64(64, /*mask=*/0b1, &now[64]);  // bit i selects byte 64 + i
  const mmsb::Delta built = builder.Finish();
  if (!(built == *d)) return mmsb::Internal("builder and FromRuns disagree");
  d->ConvertTo(mmsb::Delta::Form::kDense);  // same change, one mask bit per page byte
  return d;
}

mmsb::Status UndoTwoCommits() {
  const std::vector<std::uint8_t> v0(64, 0);
  std::vector<std::uint8_t> v1 = v0, v2;
  v1[0] = 1;
  v2 = v1;
  v2[1] = 2;
  const mmsb::Delta d1 = mmsb::Diff(/*page=*/1, /*base_epoch=*/0, v0, v1);
  const mmsb::Delta d2 = mmsb::Diff(/*page=*/1, /*base_epoch=*/1, v1, v2);
  mmsb::Expected<mmsb::Delta> both = mmsb::Chain(d1, d2);  // d1, then d2: v0 -> v2
  if (!both.ok()) return both.status();
  mmsb::Expected<mmsb::Delta> undo = mmsb::Invert(*both, v0);  // v2 -> v0
  if (!undo.ok()) return undo.status();
  std::vector<std::uint8_t> page = v2;
  MMSB_RETURN_IF_ERROR(undo->ApplyTo(page));
  return page == v0 ? mmsb::Status::Ok() : mmsb::Internal("undo went wrong");
}

mmsb::Status ShipDelta(const mmsb::Delta& d) {
  std::vector<std::uint8_t> wire = mmsb::EncodeDelta(d);  // versioned, XXH3-checksummed
  mmsb::PageImage image{d.page(), /*epoch=*/5, mmsb::Location::kCpu,
                        std::vector<std::uint8_t>(d.page_size())};
  const std::vector<std::uint8_t> image_wire = mmsb::EncodePageImage(image);
  wire.insert(wire.end(), image_wire.begin(), image_wire.end());
  // The receiver treats the bytes as untrusted: a damaged record is an error, never a crash.
  std::size_t used = 0;
  mmsb::Expected<mmsb::Delta> back = mmsb::DecodeDelta(wire, &used, /*max_page_size=*/1 << 20);
  if (!back.ok()) return back.status().WithContext("delta");
  mmsb::Expected<mmsb::PageImage> img = mmsb::DecodePageImage(std::span(wire).subspan(used));
  if (!img.ok()) return img.status().WithContext("page image");
  MMSB_RETURN_IF_ERROR(back->ApplyTo(img->bytes));
  return *back == d ? mmsb::Status::Ok() : mmsb::Internal("round trip changed the delta");
}

std::size_t CountTouchedChanges(std::span<const std::uint8_t> twin,
                                std::span<const std::uint8_t> page) {
  // One shadow byte per 64-byte granule, as the barrier keeps them: only granule 1 was written.
  std::vector<std::uint8_t> touched(mmsb::GranuleCount(page.size()), 0);
  touched[1] = 1;
  const mmsb::Delta tracked = mmsb::DiffGranules(/*page=*/1, /*base_epoch=*/0, twin, page, touched);
  // The SIMD kernel underneath, and the scalar reference it is tested against.
  std::vector<std::uint64_t> masks(touched.size());
  const std::size_t differing = mmsb::DiffMask(twin, page, masks);
  const mmsb::Delta reference = mmsb::DiffScalar(/*page=*/1, /*base_epoch=*/0, twin, page);
  std::printf("%s: %u tracked, %zu differing, %u by the scalar diff\n", mmsb::DiffTargetName(),
              tracked.changed_bytes(), differing, reference.changed_bytes());
  return tracked.changed_bytes();
}

TEST(DocsApiDelta, DiffApplyComposeInvertEncode) {
  ::testing::internal::CaptureStdout();
  ASSERT_OK(DiffAndApply());
  EXPECT_EQ(::testing::internal::GetCapturedStdout(),
            "page 7 since epoch 0: 3 byte(s), sparse\n  [10, +2) first new byte 0x01\n  [200, +1) "
            "first new byte 0x09\n");

  mmsb::Expected<mmsb::Delta> d = TwoRuns();
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->form(), mmsb::Delta::Form::kDense);
  EXPECT_TRUE(d->sparse_runs().empty()) << "a dense delta stores a mask";
  EXPECT_EQ(d->Runs(), (std::vector<mmsb::ByteRun>{{4, 2}, {64, 1}}));
  const std::vector<std::uint8_t> mask = d->Mask();
  ASSERT_EQ(mask.size(), 16u);
  EXPECT_EQ(mask[0], 0b00110000);
  EXPECT_EQ(mask[8], 0b00000001);
  EXPECT_EQ(d->EncodedSize(), mmsb::EncodeDelta(*d).size());
  std::vector<std::uint8_t> appended = {0xff};
  mmsb::EncodeDeltaTo(*d, appended);
  EXPECT_EQ(appended.size(), 1 + d->EncodedSize());
  d->set_page(4);
  d->set_base_epoch(9);
  EXPECT_EQ(d->page(), 4u);
  EXPECT_EQ(d->base_epoch(), 9u);
  EXPECT_EQ(d->page_size(), 128u);
  EXPECT_FALSE(d->empty());
  EXPECT_EQ(mmsb::Delta::FromRuns(3, 0, 128, {{4, 2}, {5, 1}}, {1, 2, 3}).status().code(),
            mmsb::StatusCode::kInvalidDelta)
      << "overlapping runs";

  ASSERT_OK(UndoTwoCommits());
  ASSERT_OK(ShipDelta(*d));
  std::vector<std::uint8_t> wire = mmsb::EncodeDelta(*d);
  wire[wire.size() / 2] ^= 0x40;
  EXPECT_FALSE(mmsb::DecodeDelta(wire).ok()) << "a flipped bit fails the checksum";

  std::vector<std::uint8_t> twin(256, 0), page(256, 0);
  page[70] = 1;   // granule 1, touched
  page[200] = 1;  // granule 3: a write the barrier did not mark is not seen by DiffGranules
  ::testing::internal::CaptureStdout();
  EXPECT_EQ(CountTouchedChanges(twin, page), 1u);
  EXPECT_NE(::testing::internal::GetCapturedStdout().find(
                ": 1 tracked, 2 differing, 2 by the scalar diff"),
            std::string::npos);
}

// ---- mmsb/commit.h
// -------------------------------------------------------------------------------

// Observes every commit: counts created pages and changed bytes.
class ChangeCounter : public mmsb::CommitSink {
 public:
  const char* name() const override { return "change-counter"; }
  mmsb::Status OnCommit(const mmsb::CommitBatch& batch) override {
    // Everything the batch points at is valid only during this call: copy what you keep.
    for (const mmsb::PageCreatedRecord& created : batch.created) created_bytes += created.size;
    for (const mmsb::Delta& d : batch.deltas) changed_bytes += d.changed_bytes();
    freed += batch.freed.size();
    live_pages = batch.live_pages.size();
    last_epoch = batch.epoch;
    return mmsb::Status::Ok();
  }
  mmsb::Status AfterCommit(mmsb::Epoch epoch) override {  // outside the commit lock
    after_commit_epoch = epoch;
    return mmsb::Status::Ok();
  }
  std::uint64_t created_bytes = 0, changed_bytes = 0, freed = 0, live_pages = 0;
  mmsb::Epoch last_epoch = 0, after_commit_epoch = 0;
};

// Runs inside every commit before the sinks: keeps `sum` (8 bytes) equal to the byte sum of
// `data`. Its writes are diffed into the same epoch.
class ByteSumStage : public mmsb::CommitStage {
 public:
  ByteSumStage(const mmsb::Page* data, mmsb::Page* sum) : data_(data), sum_(sum) {}
  const char* name() const override { return "byte-sum"; }
  mmsb::Status Process(const mmsb::CommitBatch& batch) override {
    for (const mmsb::Delta& d : batch.deltas) {
      if (d.page() != data_->id()) continue;
      std::uint64_t total = 0;
      for (std::size_t i = 0; i < data_->size(); ++i) total += data_->data()[i];
      std::memcpy(mmsb::rt::w(sum_->data(), sizeof total), &total, sizeof total);
    }
    return mmsb::Status::Ok();
  }

 private:
  const mmsb::Page* data_;
  mmsb::Page* sum_;
};

mmsb::Status WatchCommits(std::shared_ptr<ChangeCounter> counter, mmsb::Page* data,
                          mmsb::Page* sum) {
  MMSB_RETURN_IF_ERROR(mmsb::AddStage(std::make_shared<ByteSumStage>(data, sum)));
  MMSB_RETURN_IF_ERROR(mmsb::AddSink(counter));  // the bus keeps a reference
  std::memset(mmsb::rt::w(data->data(), 10), 3, 10);
  if (auto e = mmsb::commit(); !e.ok()) return e.status();
  return mmsb::RemoveSink(counter.get());  // no further calls
}

TEST_F(DocsApi, SinksSeeEveryCommitAndStagesWriteIntoIt) {
  mmsb::Page* data = *mmsb::CreatePage(100);
  mmsb::Page* sum = *mmsb::CreatePage(8);
  auto counter = std::make_shared<ChangeCounter>();
  ASSERT_OK(WatchCommits(counter, data, sum));
  std::uint64_t total = 0;
  std::memcpy(&total, sum->data(), 8);
  EXPECT_EQ(total, 30u);
  EXPECT_EQ(sum->epoch(), 1u) << "the stage's write belongs to the same epoch";
  EXPECT_EQ(counter->created_bytes, 108u);
  EXPECT_EQ(counter->changed_bytes, 10u + 1u);
  EXPECT_EQ(counter->live_pages, 2u);
  EXPECT_EQ(counter->last_epoch, 1u);
  EXPECT_EQ(counter->after_commit_epoch, 1u);
  ASSERT_OK(mmsb::FreePage(data));
  ASSERT_TRUE(mmsb::commit().ok());
  EXPECT_EQ(counter->freed, 0u) << "removed sinks see nothing";
  EXPECT_EQ(mmsb::RemoveSink(counter.get()).code(), mmsb::StatusCode::kNotFound);
}

mmsb::Status StartVerifying(std::vector<mmsb::VerifyMiss>* misses) {
  mmsb::Options options;
  options.verify = true;  // or MMSB_VERIFY=1 in the environment
  options.on_verify_miss = [misses](const mmsb::VerifyMiss& miss) { misses->push_back(miss); };
  return mmsb::start(options);
}

TEST(DocsApiVerify, AStoreThatBypassesTheBarrierIsReportedWithItsField) {
  std::vector<mmsb::VerifyMiss> misses;
  ASSERT_OK(StartVerifying(&misses));
  ASSERT_TRUE(RegisterBodyType().ok());
  mmsb::PageOptions options;
  options.type = mmsb::FindType("Body");
  mmsb::Page* page = *mmsb::CreatePage(sizeof(Body), options);
  ASSERT_TRUE(mmsb::commit().ok());
  reinterpret_cast<Body*>(page->data())->hits[1] = 5;  // no barrier
  ASSERT_TRUE(mmsb::commit().ok());
  ASSERT_EQ(misses.size(), 1u);
  EXPECT_EQ(misses[0].field, "Body.hits[1]");
  EXPECT_EQ(misses[0].offset, offsetof(Body, hits) + 4);
  EXPECT_EQ(misses[0].length, 1u);
  EXPECT_EQ(mmsb::GetStats().verify_misses, 1u);
  EXPECT_EQ(page->epoch(), 2u) << "the committed delta is the full one";
  mmsb::stop();
}

// ---- mmsb/graph.h
// --------------------------------------------------------------------------------

// celsius: 4 floats. fahrenheit = f(celsius) (user edge); backup mirrors celsius (passthrough);
// first holds celsius[0] (projection of bytes [0, 4)).
mmsb::Status BuildTemperatureGraph(const mmsb::Page& celsius, const mmsb::Page& fahrenheit,
                                   const mmsb::Page& backup, const mmsb::Page& first) {
  const mmsb::PageId parents[] = {celsius.id()};
  MMSB_RETURN_IF_ERROR(mmsb::AddUserEdges(
      parents, fahrenheit.id(), [](std::span<const mmsb::Page* const> in, mmsb::Page& out) {
        const auto* c = reinterpret_cast<const float*>(in[0]->data());
        auto* f = reinterpret_cast<float*>(out.data());
        for (int i = 0; i < 4; ++i) f[i] = c[i] * 9 / 5 + 32;  // the child is diffed in full
        return mmsb::Status::Ok();
      }));
  MMSB_RETURN_IF_ERROR(mmsb::AddPassthroughEdge(celsius.id(), backup.id()));
  MMSB_RETURN_IF_ERROR(mmsb::AddProjectionEdge(celsius.id(), first.id(),
                                               {/*src_offset=*/0, /*length=*/4, /*dst_offset=*/0}));
  for (const mmsb::EdgeInfo& e : mmsb::ListEdges()) {
    std::printf("%llu -> %llu (kind %d), child height %d\n",
                static_cast<unsigned long long>(e.parent), static_cast<unsigned long long>(e.child),
                static_cast<int>(e.kind), mmsb::NodeHeight(e.child));
  }
  return mmsb::Status::Ok();
}

TEST_F(DocsApi, DerivedPagesAreRecomputedInsideTheCommit) {
  mmsb::Page* celsius = *mmsb::CreatePage(16);
  mmsb::Page* fahrenheit = *mmsb::CreatePage(16);
  mmsb::Page* backup = *mmsb::CreatePage(16);
  mmsb::Page* first = *mmsb::CreatePage(4);
  ::testing::internal::CaptureStdout();
  ASSERT_OK(BuildTemperatureGraph(*celsius, *fahrenheit, *backup, *first));
  EXPECT_EQ(::testing::internal::GetCapturedStdout(),
            "1 -> 2 (kind 2), child height 1\n1 -> 3 (kind 0), child height 1\n1 -> 4 (kind 1), "
            "child height 1\n");
  *mmsb::rt::w(reinterpret_cast<float*>(celsius->data()) + 0) = 100.0f;
  const mmsb::Epoch e = *mmsb::commit();
  EXPECT_EQ(reinterpret_cast<const float*>(fahrenheit->data())[0], 212.0f);
  EXPECT_EQ(reinterpret_cast<const float*>(fahrenheit->data())[1], 32.0f);
  EXPECT_EQ(std::memcmp(backup->data(), celsius->data(), 16), 0);
  EXPECT_EQ(reinterpret_cast<const float*>(first->data())[0], 100.0f);
  EXPECT_EQ(fahrenheit->epoch(), e);
  EXPECT_EQ(mmsb::GetStats().nodes_recomputed, 3u);
  EXPECT_EQ(mmsb::NodeHeight(celsius->id()), 0);
  EXPECT_EQ(mmsb::AddPassthroughEdge(backup->id(), celsius->id()).code(),
            mmsb::StatusCode::kGraphCycle);
  EXPECT_EQ(mmsb::AddPassthroughEdge(celsius->id(), backup->id()).code(),
            mmsb::StatusCode::kAlreadyExists);
  EXPECT_EQ(mmsb::AddPassthroughEdge(celsius->id(), first->id()).code(),
            mmsb::StatusCode::kInvalidArgument)
      << "sizes differ";
  ASSERT_OK(mmsb::RemoveEdge(celsius->id(), backup->id()));
  EXPECT_EQ(mmsb::RemoveEdge(celsius->id(), backup->id()).code(), mmsb::StatusCode::kNotFound);
  EXPECT_EQ(mmsb::ListEdges().size(), 2u);

  // A failing recompute rolls the whole commit back.
  const mmsb::PageId parents[] = {first->id()};
  ASSERT_OK(mmsb::AddUserEdges(parents, backup->id(),
                               [](std::span<const mmsb::Page* const>, mmsb::Page&) {
                                 return mmsb::Internal("sensor offline");
                               }));
  *mmsb::rt::w(reinterpret_cast<float*>(celsius->data()) + 0) = 20.0f;
  mmsb::Expected<mmsb::Epoch> failed = mmsb::commit();
  EXPECT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("sensor offline"), std::string::npos);
  EXPECT_EQ(mmsb::current_epoch(), e);
  EXPECT_EQ(reinterpret_cast<const float*>(celsius->data())[0], 20.0f)
      << "a failed commit never writes over the program's memory: the write stays pending";
  EXPECT_EQ(mmsb::GetStats().failed_commits, 1u);
}

// ---- mmsb/events.h
// -------------------------------------------------------------------------------

struct EventCounts {
  std::map<std::string, int> by_type;
  int batches = 0;
};

mmsb::Expected<std::vector<mmsb::SubscriptionId>> CountEvents(EventCounts* counts) {
  // One call per commit, with that commit's events of the selected types.
  mmsb::Expected<mmsb::SubscriptionId> batches = mmsb::Subscribe(
      [counts](std::span<const mmsb::Event>) { ++counts->batches; },
      mmsb::EventBit(mmsb::EventType::kPageChanged) | mmsb::EventBit(mmsb::EventType::kCommitDone));
  if (!batches.ok()) return batches.status();
  // One call per event, every type.
  mmsb::Expected<mmsb::SubscriptionId> each = mmsb::SubscribeEach(
      [counts](const mmsb::Event& e) { ++counts->by_type[mmsb::EventTypeName(e.type)]; });
  if (!each.ok()) return each.status();
  return std::vector<mmsb::SubscriptionId>{*batches, *each};
}

TEST_F(DocsApi, SubscribersGetOneBatchPerCommit) {
  EventCounts counts;
  auto ids = CountEvents(&counts);
  ASSERT_TRUE(ids.ok());
  mmsb::Page* a = *mmsb::CreatePage(64);
  mmsb::Page* b = *mmsb::CreatePage(64);
  ASSERT_OK(mmsb::AddPassthroughEdge(a->id(), b->id()));
  ASSERT_TRUE(mmsb::commit().ok());  // two PageCreated
  *mmsb::rt::w(&a->data()[0]) = 1;
  ASSERT_TRUE(mmsb::commit().ok());  // a changes, b is recomputed
  ASSERT_TRUE(mmsb::commit().ok());  // nothing changed
  EXPECT_EQ(counts.batches, 3);
  EXPECT_EQ(counts.by_type["PageCreated"], 2);
  EXPECT_EQ(counts.by_type["DeltaApplied"], 2);
  EXPECT_EQ(counts.by_type["PageChanged"], 2);
  EXPECT_EQ(counts.by_type["PropagationDone"], 1);
  EXPECT_EQ(counts.by_type["CommitDone"], 3);
  for (mmsb::SubscriptionId id : *ids) ASSERT_OK(mmsb::Unsubscribe(id));
  EXPECT_EQ(mmsb::Unsubscribe((*ids)[0]).code(), mmsb::StatusCode::kNotFound);
  ASSERT_TRUE(mmsb::commit().ok());
  EXPECT_EQ(counts.batches, 3);

  // The encoding the log records.
  const mmsb::Event events[] = {
      {mmsb::EventType::kCommitDone, 4, mmsb::kInvalidPageId, 10, 2, 0, mmsb::Location::kCpu}};
  const std::vector<std::uint8_t> wire = mmsb::EncodeEvents(events);
  mmsb::Expected<std::vector<mmsb::Event>> back = mmsb::DecodeEvents(wire);
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0], events[0]);
  EXPECT_EQ(mmsb::kEventTypeCount, 7);
  EXPECT_EQ(mmsb::kAllEvents & mmsb::EventBit(mmsb::EventType::kCheckpoint),
            mmsb::EventBit(mmsb::EventType::kCheckpoint));
}

// ---- mmsb/stats.h
// --------------------------------------------------------------------------------

std::string CommitLatencyLine() {
  const mmsb::Stats stats = mmsb::GetStats();  // a consistent snapshot
  const mmsb::LatencyHistogram& h = stats.commit_latency;
  char line[160];
  std::snprintf(line, sizeof line, "%llu commits, p50 <= %llu ns, p99 <= %llu ns, max %llu ns",
                static_cast<unsigned long long>(h.count()),
                static_cast<unsigned long long>(h.PercentileNs(50)),
                static_cast<unsigned long long>(h.PercentileNs(99)),
                static_cast<unsigned long long>(h.max_ns()));
  return line;
}

TEST_F(DocsApi, StatsSnapshotPrintsAndSerialises) {
  mmsb::Page* p = *mmsb::CreatePage(64);
  for (int i = 0; i < 3; ++i) {
    *mmsb::rt::w(&p->data()[i]) = 1;
    ASSERT_TRUE(mmsb::commit().ok());
  }
  EXPECT_EQ(CommitLatencyLine().rfind("3 commits, p50 <= ", 0), 0u);
  const mmsb::Stats s = mmsb::GetStats();
  EXPECT_EQ(s.commits, 3u);
  EXPECT_EQ(s.deltas, 3u);
  const std::string json = s.ToJson();
  for (const char* key :
       {"\"epoch\":3", "\"commits\":3", "\"deltas\":3", "\"commit_latency_ns\":{\"count\":3"}) {
    EXPECT_NE(json.find(key), std::string::npos) << key << " in " << json;
  }
  EXPECT_FALSE(s.ToString().empty());
  mmsb::LatencyHistogram h;
  h.Record(100);
  h.Record(3000);
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.sum_ns(), 3100u);
  EXPECT_EQ(h.min_ns(), 100u);
  EXPECT_EQ(h.mean_ns(), 1550.0);
  EXPECT_EQ(h.buckets()[6], 1u) << "100 is in [64, 128)";
  EXPECT_GE(h.PercentileNs(100), 3000u);
}

}  // namespace
