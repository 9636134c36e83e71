// The examples of docs/API.md on instrument.h, threads and transactions, and held_marks.h, compiled
// and run. See docs_api_test.h for how docs/API.md is checked against these files.
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

// ---- mmsb/instrument.h
// --------------------------------------------------------------------------- What plugin-generated
// code calls. Shown here as the rewriter emits it, for readers of `mmsb-rewrite` output; programs
// do not write these calls themselves.

struct Tally {
  std::uint64_t n;
  static void* operator new(std::size_t size) {  // what the plugin adds to a page type
    void* p = ::mmsb::rt::AllocPageStorage(size, alignof(Tally), nullptr);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  static void operator delete(void* p) { ::mmsb::rt::FreePageStorage(p); }
};

alignas(64) Tally g_tally;  // the plugin also puts it in the `mmsb_pages` section

void RegisterTally() {  // the plugin emits a namespace-scope registrar instead
  static const ::mmsb::TypeDescriptor* type =
      ::mmsb::rt::InternType({"Tally", 8, 8, {{"n", 0, 8, ::mmsb::ScalarKind::kU64, 8, {}, ""}}});
  ::mmsb::rt::StaticPageRegistrar registrar(&g_tally, sizeof g_tally, "_Z7g_tally", type);
}

void CountTwice() {  // [[mmsb::transaction]] void CountTwice() { ++g_tally.n; ++g_tally.n; }
  ::mmsb::rt::TransactionScope _mmsb_tx;
  ++::mmsb::rt::ws(&(g_tally.n));
  ++::mmsb::rt::ws(&(g_tally.n));
}  // commits here: one epoch

// ---- Threads: commits and transactions

std::mutex g_tally_mu;  // guards g_tally: MMSB does not serialise the program's writes

void CountOnThreads() {  // each transaction commits whole, whichever thread commits
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 100; ++i) {
        ::mmsb::rt::TransactionScope tx;               // what [[mmsb::transaction]] inserts
        std::lock_guard<std::mutex> lock(g_tally_mu);  // released before the commit at tx's end
        ++::mmsb::rt::ws(&g_tally.n);
        ++::mmsb::rt::ws(&g_tally.n);
      }
    });
  }
  for (auto& th : threads) th.join();
}

TEST(DocsApiInstrument, GeneratedCodeStartsTheBusRegistersAndCommits) {
  ASSERT_FALSE(mmsb::started());
  g_tally.n = 0;
  ::mmsb::rt::EnsureStarted();  // what the registrar and operator new do first
  ASSERT_TRUE(mmsb::started());
  RegisterTally();
  CountTwice();
  EXPECT_EQ(mmsb::current_epoch(), 1u);
  EXPECT_EQ(g_tally.n, 2u);
  mmsb::Page* page = mmsb::FindPageByName("_Z7g_tally");
  ASSERT_NE(page, nullptr);
  EXPECT_EQ(page->type()->name, "Tally");
  EXPECT_EQ(page->epoch(), 1u);
  auto* heap = new Tally{5};
  EXPECT_NE(mmsb::PageOf(heap), nullptr) << "a page of its own";
  ::mmsb::rt::MarkEscapedAt(&heap->n);
  EXPECT_TRUE(mmsb::PageOf(heap)->escaped());
  heap->n = 6;  // no barrier: the escaped page is diffed in full
  ASSERT_TRUE(mmsb::commit().ok());
  EXPECT_EQ(mmsb::PageOf(heap)->epoch(), 2u);
  delete heap;
  EXPECT_EQ(mmsb::PageCount(), 1u);
  mmsb::stop();
}

// ---- mmsb/held_marks.h
// ---------------------------------------------------------------------------

void FillRow(float* row, int n, float v) {  // for (int i = 0; i < n; ++i) row[i] = v;
  {
    ::mmsb::rt::ScopedMark mark(row, static_cast<std::size_t>(n) * sizeof(float));
    for (int i = 0; i < n; ++i) row[i] = v;  // no barrier per store: the loop stays vectorisable
  }  // marked again here, after the stores
}

void ClearRow(float* row,
              int n) {  // std::memset(row, 0, n * sizeof(float)), as the plugin emits it
  std::memset(::mmsb::rt::MarkFromHeld(row), 0, static_cast<std::size_t>(n) * sizeof(float));
}

TEST(DocsApiHeldMarks, LoopAndCallMarksMakeExactDeltas) {
  ASSERT_FALSE(mmsb::started());
  ASSERT_TRUE(mmsb::start().ok());
  auto page = mmsb::CreatePage(4096);
  ASSERT_TRUE(page.ok());
  auto* row = reinterpret_cast<float*>((*page)->data() + 1024);
  ASSERT_TRUE(mmsb::commit().ok());
  const mmsb::Stats before = mmsb::GetStats();
  FillRow(row, 64, 1.5f);
  ASSERT_TRUE(mmsb::commit().ok());
  const mmsb::Stats filled = mmsb::GetStats();
  EXPECT_EQ(filled.delta_bytes - before.delta_bytes, 64 * sizeof(float) / 2)
      << "1.5f is 0x3fc00000: two of its four bytes change from zero";
  ClearRow(row, 64);
  ASSERT_TRUE(mmsb::commit().ok());
  EXPECT_EQ(mmsb::GetStats().delta_bytes - filled.delta_bytes, 64 * sizeof(float) / 2);
  EXPECT_EQ((*page)->epoch(), mmsb::current_epoch());
  mmsb::stop();
}

// Records a page's first 8 bytes as committed, at every commit.
class DocsRecordingSink : public mmsb::CommitSink {
 public:
  DocsRecordingSink(std::vector<std::uint64_t>* seen, const mmsb::Page* page)
      : seen_(seen), page_(page) {}
  const char* name() const override { return "docs-recording"; }
  mmsb::Status OnCommit(const mmsb::CommitBatch&) override {
    std::uint64_t n = 0;
    std::memcpy(&n, mmsb::CommittedImage(page_).data(), sizeof n);
    seen_->push_back(n);
    return mmsb::Status::Ok();
  }

 private:
  std::vector<std::uint64_t>* seen_;
  const mmsb::Page* page_;
};

TEST(DocsApiThreads, TransactionsOnTwoThreadsEachCommitWhole) {
  ASSERT_OK(mmsb::start());
  g_tally.n = 0;
  mmsb::PageOptions po;  // RegisterTally's descriptor belongs to the previous bus
  po.name = "_Z7g_tally";
  ASSERT_TRUE(mmsb::RegisterStaticPage(&g_tally, sizeof g_tally, po).ok());
  ASSERT_TRUE(mmsb::commit().ok());
  std::vector<std::uint64_t> seen;
  ASSERT_OK(mmsb::AddSink(
      std::make_shared<DocsRecordingSink>(&seen, mmsb::FindPageByName("_Z7g_tally"))));
  CountOnThreads();
  ASSERT_FALSE(seen.empty());
  // Every epoch holds an even count: no commit split a transaction's two increments.
  for (std::uint64_t n : seen) EXPECT_EQ(n % 2, 0u) << "a transaction was split";
  EXPECT_EQ(seen.back(), 400u);
  mmsb::stop();
}

}  // namespace
