// Combined commits name every transaction they carry (issue 14): a transaction that ends while a
// commit on another thread waits for it joins that commit, and the commit-info record lists its
// site, thread and sequence number beside the committing thread's own.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "mmsb/mmsb.h"

namespace mmsb {
namespace {

struct LoggedCommit {
  Epoch epoch = 0;
  std::vector<LogCommitTransaction> transactions;
};

struct ReadBack {
  std::map<std::uint32_t, LogSite> sites;
  std::vector<LoggedCommit> commits;
};

ReadBack ReadLog(const std::string& dir) {
  ReadBack r;
  auto reader = LogReader::Open(dir);
  EXPECT_TRUE(reader.ok()) << reader.status().ToString();
  if (!reader.ok()) return r;
  LogEntry e;
  for (;;) {
    auto more = (*reader)->Next(&e);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    if (e.type == LogRecordType::kSite) r.sites[e.site.id] = e.site;
    if (e.type == LogRecordType::kCommitInfo)
      r.commits.push_back({e.epoch, e.commit_info.transactions});
  }
  return r;
}

class JoinedProvenanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stop();
    dir_ = (std::filesystem::temp_directory_path() /
            ("mmsb_joined_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    std::filesystem::remove_all(dir_);
    Options o;
    o.arena_bytes = std::size_t{1} << 28;
    ASSERT_TRUE(start(o).ok());
    auto sink = AttachLog(dir_);
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    sink_ = *sink;
  }
  void TearDown() override {
    stop();
    std::filesystem::remove_all(dir_);
  }
  std::string dir_;
  std::shared_ptr<LogSink> sink_;
};

void SlowTransaction(std::uint8_t* data, std::atomic<int>* phase) {
  rt::TransactionScope tx;
  rt::ws(&data[0]) = 7;
  phase->store(1);
  // Long enough for the main thread's commit to close the gate and wait for this transaction.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

TEST_F(JoinedProvenanceTest, CommitRecordListsTheTransactionThatJoinedIt) {
  auto page = CreatePage(64);
  ASSERT_TRUE(page.ok());
  ASSERT_TRUE(commit().ok());
  std::atomic<int> phase{0};
  std::thread writer(SlowTransaction, (*page)->data(), &phase);
  while (phase.load() == 0) std::this_thread::yield();
  auto e = commit();  // waits for the transaction, which then joins it
  ASSERT_TRUE(e.ok());
  writer.join();
  ASSERT_TRUE(sink_->Close().ok());
  ReadBack log = ReadLog(dir_);
  const Epoch joined_epoch = e.ok() ? sink_->LogEpoch(*e) : 0;
  const LoggedCommit* c = nullptr;
  for (const LoggedCommit& lc : log.commits) {
    if (lc.epoch == joined_epoch) c = &lc;
  }
  ASSERT_NE(c, nullptr);
  ASSERT_EQ(c->transactions.size(), 2u);
  const LogSite& own = log.sites[c->transactions[0].site];
  const LogSite& joined = log.sites[c->transactions[1].site];
  EXPECT_EQ(own.kind, LogSite::Kind::kCommitCall);
  EXPECT_EQ(joined.kind, LogSite::Kind::kTransaction);
  EXPECT_NE(joined.function.find("SlowTransaction"), std::string::npos) << joined.function;
  EXPECT_NE(joined.file.find("joined_provenance_test.cc"), std::string::npos) << joined.file;
  EXPECT_GT(joined.line, 0u);
  EXPECT_NE(c->transactions[0].thread, c->transactions[1].thread);
  EXPECT_NE(c->transactions[0].sequence, c->transactions[1].sequence);
  // The transaction's write is in that epoch.
  auto state = Replay(dir_, {.epoch = joined_epoch});
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  const ReplayedPage* p = state->FindPage(sink_->LogPageId((*page)->id()));
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->bytes[0], 7);
}

void CountedTransaction(std::uint8_t* data, int i) {
  rt::TransactionScope tx;
  rt::ws(&data[i % 64]) = static_cast<std::uint8_t>(i + 1);
  if (i % 8 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
}

TEST_F(JoinedProvenanceTest, ConcurrentEveryTransactionIsNamedByExactlyOneCommit) {
  constexpr int kThreads = 3;
  constexpr int kPerThread = 300;
  std::vector<Page*> pages;
  for (int t = 0; t < kThreads; ++t) {
    auto p = CreatePage(64);
    ASSERT_TRUE(p.ok());
    pages.push_back(*p);
  }
  std::atomic<bool> done{false};
  std::thread committer([&] {
    while (!done.load()) (void)commit();
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) CountedTransaction(pages[t]->data(), i);
    });
  }
  for (auto& w : writers) w.join();
  done = true;
  committer.join();
  ASSERT_TRUE(sink_->Close().ok());
  ReadBack log = ReadLog(dir_);
  std::set<std::uint64_t> sequences;
  std::map<std::uint32_t, int> per_thread;
  int combined = 0;
  for (const LoggedCommit& c : log.commits) {
    int tx_here = 0;
    for (const LogCommitTransaction& t : c.transactions) {
      EXPECT_TRUE(sequences.insert(t.sequence).second) << "sequence " << t.sequence << " twice";
      auto it = log.sites.find(t.site);
      if (it == log.sites.end() || it->second.kind != LogSite::Kind::kTransaction) continue;
      EXPECT_NE(it->second.function.find("CountedTransaction"), std::string::npos);
      ++per_thread[t.thread];
      ++tx_here;
    }
    if (tx_here > 1 || (tx_here == 1 && c.transactions.size() > 1)) ++combined;
  }
  // Every transaction appears once, whether it committed itself or joined a commit.
  ASSERT_EQ(per_thread.size(), static_cast<std::size_t>(kThreads));
  for (const auto& [thread, n] : per_thread) EXPECT_EQ(n, kPerThread) << "thread " << thread;
  std::printf("%d of %zu commits carried a joined transaction\n", combined, log.commits.size());
}

}  // namespace
}  // namespace mmsb
