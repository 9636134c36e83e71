// The examples of docs/API.md on provenance.h and query.h, compiled and run.
// See docs_api_test.h for how docs/API.md is checked against these files.
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

// ---- mmsb/provenance.h
// ---------------------------------------------------------------------------

// A sink that prints what committed each epoch.
class WhoCommitted : public mmsb::CommitSink {
 public:
  const char* name() const override { return "who"; }
  mmsb::Status OnCommit(const mmsb::CommitBatch& batch) override {
    for (const mmsb::CommitProvenance& p : batch.transactions) {
      std::printf("epoch %llu: %s:%u (thread %u, #%llu)\n",
                  static_cast<unsigned long long>(batch.epoch), p.file ? p.file : "?", p.line,
                  p.thread, static_cast<unsigned long long>(p.sequence));
    }
    return mmsb::Status::Ok();
  }
};

TEST(DocsApiProvenance, SinksSeeWhatCommitted) {
  ASSERT_TRUE(mmsb::start().ok());
  ASSERT_TRUE(mmsb::AddSink(std::make_shared<WhoCommitted>()).ok());
  ::testing::internal::CaptureStdout();
  const int line = __LINE__ + 1;
  ASSERT_TRUE(mmsb::commit().ok());
  const std::string out = ::testing::internal::GetCapturedStdout();
  mmsb::stop();
  EXPECT_NE(out.find("api_provenance_test.cc:" + std::to_string(line)), std::string::npos) << out;
}

// ---- mmsb/query.h
// --------------------------------------------------------------------------------

// When did the hits counter first reach 3, and what committed that epoch?
mmsb::Status FirstThirdHit(const std::string& log) {
  auto index = mmsb::query::LogIndex::Open(log);
  if (!index.ok()) return index.status();
  auto p = mmsb::query::Predicate::Parse(**index, "Counters.hits[0] >= 3");
  if (!p.ok()) return p.status();
  auto r = mmsb::query::Bisect(**index, *p);
  if (!r.ok()) return r.status();
  if (!r->found) return mmsb::NotFound("never");
  auto history = mmsb::query::FieldHistory(**index, "Counters.hits[0]");
  if (!history.ok()) return history.status();
  for (const mmsb::query::FieldChangeAt& c : history->changes) {
    std::printf("epoch %llu: %s -> %s\n", static_cast<unsigned long long>(c.epoch),
                c.old_value.c_str(), c.new_value.c_str());
  }
  auto commit = (*index)->Commit(r->epoch);
  if (!commit.ok()) return commit.status();
  std::printf("first at epoch %llu, by %s\n", static_cast<unsigned long long>(r->epoch),
              commit->transactions.empty() ? "?" : commit->transactions[0].site.ToString().c_str());
  return mmsb::Status::Ok();
}

TEST(DocsApiQuery, BisectAndHistory) {
  TempDir tmp;
  const std::string dir = tmp.Sub("run.tlog");
  {
    auto w = mmsb::LogWriter::Open(dir);
    ASSERT_TRUE(w.ok());
    mmsb::TypeDescriptor t;
    t.name = "Counters";
    t.size = 16;
    t.align = 4;
    mmsb::FieldDescriptor f;
    f.name = "hits";
    f.size = 16;
    f.kind = mmsb::ScalarKind::kI32;
    f.elem_size = 4;
    f.extents = {4};
    t.fields = {f};
    std::vector<std::uint8_t> bytes(16, 0);
    for (std::int32_t v = 1; v <= 5; ++v) {
      mmsb::LogBatch b = (*w)->NewBatch();
      if (v == 1) {
        b.AddTypeDescriptor(t);
        b.AddPageCreate({1, 16, mmsb::Location::kCpu, true, "g_counters", "Counters"});
      }
      std::vector<std::uint8_t> before = bytes;
      std::memcpy(bytes.data(), &v, 4);
      ASSERT_TRUE(b.AddDelta(mmsb::Diff(1, v == 1 ? 0 : v - 1, before, bytes)).ok());
      ASSERT_TRUE((*w)->Commit(b).ok());
    }
    ASSERT_TRUE((*w)->Close().ok());
  }
  ::testing::internal::CaptureStdout();
  ASSERT_TRUE(FirstThirdHit(dir).ok());
  const std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("epoch 2: 1 -> 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("first at epoch 3, by ?"), std::string::npos) << out;
}
