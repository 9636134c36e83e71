// Test fixture: a fresh process-wide bus per test, plus a sink that records every batch.
#pragma once

#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "mmsb/mmsb.h"

namespace mmsb::testing {

// Copies what a CommitBatch points at, since the batch is valid only during OnCommit.
struct RecordedBatch {
  Epoch epoch = 0;
  std::vector<PageCreatedRecord> created;
  std::vector<PageId> freed;
  std::vector<Delta> deltas;
  std::vector<VerifyMiss> misses;
};

class RecordingSink : public CommitSink {
 public:
  const char* name() const override { return "recording"; }
  Status OnCommit(const CommitBatch& b) override {
    batches.push_back({b.epoch,
                       {b.created.begin(), b.created.end()},
                       {b.freed.begin(), b.freed.end()},
                       {b.deltas.begin(), b.deltas.end()},
                       {b.verify_misses.begin(), b.verify_misses.end()}});
    return next_status;
  }
  std::vector<RecordedBatch> batches;
  Status next_status;
};

class BusTest : public ::testing::Test {
 protected:
  void SetUp() override { StartBus({}); }
  void TearDown() override { stop(); }
  void StartBus(Options o) {
    stop();
    o.arena_bytes = std::size_t{1} << 30;
    if (!o.on_verify_miss) o.on_verify_miss = [this](const VerifyMiss& m) { misses.push_back(m); };
    ASSERT_TRUE(start(o).ok());
    sink = std::make_shared<RecordingSink>();
    ASSERT_TRUE(AddSink(sink).ok());
  }
  Page* NewPage(std::size_t size, PageOptions o = {}) {
    auto p = CreatePage(size, o);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? *p : nullptr;
  }
  Epoch Commit() {
    auto e = commit();
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? *e : 0;
  }
  std::shared_ptr<RecordingSink> sink;
  std::vector<VerifyMiss> misses;
};

}  // namespace mmsb::testing
