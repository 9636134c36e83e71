// Commits and transactions on many threads (docs/Runtime.md, "The commit protocol"): nothing is
// lost, a transaction is never split, commit() inside a transaction is an error, a throwing
// transaction commits what it wrote, a failed commit never writes over the program's memory, and
// verify mode stays exact under threads. Test names start with "Concurrent" where they run
// threads: scripts/dev runs those under ThreadSanitizer.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mmsb/commit.h"
#include "mmsb/instrument.h"
#include "mmsb/mmsb.h"
#include "mmsb/page.h"

#include "bus/tx_gate.h"
#include "bus_fixture.h"

namespace mmsb {
namespace {

using rt::ws;

// Applies every recorded delta of `page` to an image: what replay of the batches gives.
std::vector<std::uint8_t> Replayed(const testing::RecordingSink& sink, const Page* page) {
  std::vector<std::uint8_t> img(page->size(), 0);
  for (const auto& b : sink.batches) {
    for (const Delta& d : b.deltas) {
      if (d.page() == page->id()) EXPECT_TRUE(d.ApplyTo(img).ok());
    }
  }
  return img;
}

class ConcurrencyTest : public testing::BusTest {};

TEST_F(ConcurrencyTest, ConcurrentCommitsNeverLoseAWriterThreadsStores) {
  Page* page = NewPage(4096);
  auto* words = reinterpret_cast<std::uint64_t*>(page->data());
  std::atomic<bool> done{false};
  std::thread committer([&] {
    while (!done.load(std::memory_order_relaxed)) EXPECT_TRUE(commit().ok());
  });
  // Plain (non-transactional) stores racing with commits on the other thread.
  for (std::uint64_t i = 1; i <= 20000; ++i) ws(&words[(i * 7) % 512]) = i;
  done = true;
  committer.join();
  Commit();
  EXPECT_EQ(Replayed(*sink, page),
            std::vector<std::uint8_t>(page->data(), page->data() + page->size()))
      << "every store reached the log";
}

// Two threads run transactions on their own pages; a third commits in a loop. Every word of a
// page is written in each transaction: a split transaction shows as mixed words in some epoch.
TEST_F(ConcurrencyTest, ConcurrentTransactionsOnPrivatePagesAreNeverSplit) {
  constexpr int kThreads = 2, kTx = 2000, kWords = 64;
  std::vector<Page*> pages;
  for (int t = 0; t < kThreads; ++t) pages.push_back(NewPage(kWords * 8));
  std::atomic<bool> done{false};
  std::thread committer([&] {
    while (!done.load(std::memory_order_relaxed)) EXPECT_TRUE(commit().ok());
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      auto* w = reinterpret_cast<std::uint64_t*>(pages[t]->data());
      for (std::uint64_t k = 1; k <= kTx; ++k) {
        rt::TransactionScope tx;
        for (int i = 0; i < kWords; ++i) {
          ws(&w[i]) = k;
          if (i == kWords / 2) std::this_thread::yield();
        }
      }
    });
  }
  for (auto& w : writers) w.join();
  done = true;
  committer.join();
  Commit();
  for (Page* p : pages) {
    std::vector<std::uint64_t> img(kWords, 0);
    std::uint64_t last = 0;
    for (const auto& b : sink->batches) {
      for (const Delta& d : b.deltas) {
        if (d.page() != p->id()) continue;
        ASSERT_TRUE(d.ApplyTo({reinterpret_cast<std::uint8_t*>(img.data()), kWords * 8}).ok());
        for (int i = 1; i < kWords; ++i)
          ASSERT_EQ(img[i], img[0]) << "epoch " << b.epoch << " holds part of a transaction";
        EXPECT_GE(img[0], last);
        last = img[0];
      }
    }
    EXPECT_EQ(last, std::uint64_t{kTx});
  }
}

TEST_F(ConcurrencyTest, CommitInsideATransactionIsAnError) {
  Page* page = NewPage(64);
  Commit();
  const Epoch before = current_epoch();
  {
    rt::TransactionScope tx;
    ws(page->data()) = std::uint8_t{1};
    auto e = commit();
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(current_epoch(), before) << "nothing committed inside the transaction";
  }
  EXPECT_EQ(current_epoch(), before + 1) << "the transaction's exit committed";
  EXPECT_EQ(sink->batches.back().deltas.size(), 1u);
}

TEST_F(ConcurrencyTest, ThrowingTransactionCommitsWhatItWrote) {
  Page* page = NewPage(64);
  Commit();
  auto body = [&] {
    rt::TransactionScope tx;
    ws(page->data() + 3) = std::uint8_t{7};
    throw std::runtime_error("mid-transaction");
  };
  EXPECT_THROW(body(), std::runtime_error);
  ASSERT_EQ(sink->batches.back().deltas.size(), 1u);
  EXPECT_EQ(sink->batches.back().deltas[0].changed_bytes(), 1u);
}

// A commit stage that fails: the commit rolls back. The program's write stays in memory (nothing
// is written over it) and the next commit logs it.
class FailOnce : public CommitStage {
 public:
  const char* name() const override { return "fail-once"; }
  Status Process(const CommitBatch&) override {
    return failed_++ == 0 ? Internal("injected") : Status::Ok();
  }

 private:
  int failed_ = 0;
};

TEST_F(ConcurrencyTest, FailedCommitKeepsTheProgramsWritesForTheNextCommit) {
  Page* page = NewPage(64);
  Commit();
  ASSERT_TRUE(AddStage(std::make_shared<FailOnce>()).ok());
  ws(page->data() + 10) = std::uint8_t{42};
  ASSERT_FALSE(commit().ok());
  EXPECT_EQ(page->data()[10], 42) << "rollback never writes the program's memory";
  Commit();
  EXPECT_EQ(Replayed(*sink, page)[10], 42) << "the write was logged by the next commit";
}

TEST_F(ConcurrencyTest, ConcurrentVerifyReportsNoFalseMissesAndEveryRealOne) {
  StartBus({.verify = true});
  Page* page = NewPage(4096);
  Commit();
  std::atomic<bool> done{false};
  std::thread committer([&] {
    while (!done.load(std::memory_order_relaxed)) EXPECT_TRUE(commit().ok());
  });
  auto* words = reinterpret_cast<std::uint64_t*>(page->data());
  for (std::uint64_t i = 1; i <= 5000; ++i) {
    rt::TransactionScope tx;
    ws(&words[i % 256]) = i;
  }
  done = true;
  committer.join();
  Commit();
  EXPECT_TRUE(misses.empty()) << misses.size() << " false miss(es), first at offset "
                              << misses.front().offset;
  // A store without a barrier is reported once, with its epoch window.
  const Epoch before = current_epoch();
  page->data()[4000] = 9;
  Commit();
  // Reported by this commit when the process is single-threaded; while another thread exists
  // (TSan's own, here), settled by the next one with the window it was seen in.
  Commit();
  ASSERT_EQ(misses.size(), 1u);
  EXPECT_EQ(misses[0].offset, 4000u);
  EXPECT_EQ(misses[0].length, 1u);
  EXPECT_EQ(misses[0].after_epoch, before);
  EXPECT_EQ(misses[0].epoch, before + 1);
}

// A static page registering while another thread runs barriers on a registered one (a
// function-local static page's first use): the shadow barriers use never moves.
TEST_F(ConcurrencyTest, ConcurrentStaticRegistrationKeepsOtherThreadsBarriersValid) {
  alignas(64) static std::uint64_t first[64];
  alignas(64) static std::uint64_t later[8][64];
  ASSERT_TRUE(RegisterStaticPage(first, sizeof first, {.name = "first"}).ok());
  Commit();
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (std::uint64_t i = 1; !done.load(std::memory_order_relaxed); ++i) ws(&first[i % 64]) = i;
  });
  for (int i = 0; i < 8; ++i) {
    std::string name = "later" + std::to_string(i);
    ASSERT_TRUE(RegisterStaticPage(later[i], sizeof later[i], {.name = name}).ok());
    ws(&later[i][3]) = std::uint64_t(i + 1);
    Commit();
  }
  done = true;
  writer.join();
  Commit();
  Page* p = FindPageByName("first");
  ASSERT_NE(p, nullptr);
  EXPECT_FALSE(p->escaped());
  EXPECT_EQ(Replayed(*sink, p), std::vector<std::uint8_t>(p->data(), p->data() + p->size()));
}

TEST_F(ConcurrencyTest, ConcurrentWatchdogNamesATransactionThatBlocksACommit) {
  TxGate::SetWatchdogNanos(20'000'000);
  const std::uint64_t reports_before = TxGate::WatchdogReports();
  ::testing::internal::CaptureStderr();
  std::atomic<bool> inside{false}, release{false};
  std::thread blocker([&] {
    rt::TransactionScope tx;
    inside = true;
    while (!release.load()) std::this_thread::yield();  // waits on another thread: the misuse
  });
  while (!inside.load()) std::this_thread::yield();
  std::thread committer([&] { EXPECT_TRUE(commit().ok()); });
  while (TxGate::WatchdogReports() == reports_before) std::this_thread::yield();
  release = true;
  committer.join();
  blocker.join();
  const std::string err = ::testing::internal::GetCapturedStderr();
  TxGate::SetWatchdogNanos(TxGate::kWatchdogNanos);
  EXPECT_NE(err.find("watchdog"), std::string::npos) << err;
  EXPECT_NE(err.find("never wait on another thread"), std::string::npos) << err;
  EXPECT_GE(GetStats().tx_watchdog_reports, 1u);
}

// Sinks added and removed on one thread while two others commit in a loop (Bus::sinks_, a
// copy-on-write list; docs/Runtime.md, "Sinks added or removed during commits"). Every sink gets
// OnCommit for exactly the commits that took the bus lock while it was registered: all of those
// after AddSink returned and up to RemoveSink's call, none before AddSink's call or after
// RemoveSink returned; AfterCommit for exactly the epochs it got OnCommit for; and no call after
// it was destroyed (the test drops its own reference right after RemoveSink).
TEST_F(ConcurrencyTest, ConcurrentSinksAddedAndRemovedDuringCommitsSeeExactlyTheirCommits) {
  constexpr int kSinks = 150;
  struct Calls {
    std::mutex mu;
    std::vector<Epoch> on, after;
    std::atomic<bool> destroyed{false};
    std::atomic<int> calls_after_destruction{0};
  };
  std::vector<Calls> calls(kSinks);
  class Tracking : public CommitSink {
   public:
    explicit Tracking(Calls* c) : c_(c) {}
    ~Tracking() override { c_->destroyed.store(true); }
    const char* name() const override { return "tracking"; }
    Status OnCommit(const CommitBatch& batch) override {
      if (c_->destroyed.load()) c_->calls_after_destruction.fetch_add(1);
      std::lock_guard<std::mutex> lock(c_->mu);
      c_->on.push_back(batch.epoch);
      return Status::Ok();
    }
    Status AfterCommit(Epoch e) override {
      if (c_->destroyed.load()) c_->calls_after_destruction.fetch_add(1);
      std::lock_guard<std::mutex> lock(c_->mu);
      c_->after.push_back(e);
      return Status::Ok();
    }

   private:
    Calls* c_;
  };
  Page* page = NewPage(4096);
  auto* words = reinterpret_cast<std::uint64_t*>(page->data());
  std::atomic<bool> done{false};
  std::vector<std::thread> committers;
  for (int t = 0; t < 2; ++t) {
    committers.emplace_back([&, t] {
      for (std::uint64_t i = 1; !done.load(std::memory_order_relaxed); ++i) {
        ws(&words[t * 64 + i % 64]) = i;
        EXPECT_TRUE(commit().ok());
      }
    });
  }
  struct Window {
    Epoch add_before, add_after, remove_before, remove_after;
  };
  std::vector<Window> windows(kSinks);
  for (int k = 0; k < kSinks; ++k) {
    auto sink = std::make_shared<Tracking>(&calls[k]);
    Window& w = windows[k];
    w.add_before = current_epoch();
    EXPECT_TRUE(AddSink(sink).ok());
    w.add_after = current_epoch();
    // Let a few commits through (at least one: the window below must not be empty every time).
    while (current_epoch() < w.add_after + 1 + k % 3) std::this_thread::yield();
    const CommitSink* raw = sink.get();
    sink.reset();  // the bus's reference, and in-flight commits', are the only ones left
    w.remove_before = current_epoch();
    EXPECT_TRUE(RemoveSink(raw).ok());
    w.remove_after = current_epoch();
  }
  done = true;
  for (std::thread& t : committers) t.join();
  int checked = 0;
  for (int k = 0; k < kSinks; ++k) {
    const Window& w = windows[k];
    Calls& c = calls[k];
    EXPECT_TRUE(c.destroyed.load()) << "sink " << k << " outlived every commit";
    EXPECT_EQ(c.calls_after_destruction.load(), 0) << "sink " << k;
    std::sort(c.on.begin(), c.on.end());
    std::sort(c.after.begin(), c.after.end());
    EXPECT_EQ(c.on, c.after) << "sink " << k << ": AfterCommit for exactly its OnCommit epochs";
    EXPECT_EQ(std::adjacent_find(c.on.begin(), c.on.end()), c.on.end()) << "sink " << k;
    for (Epoch e : c.on) {
      EXPECT_GT(e, w.add_before) << "sink " << k << " called before it was added";
      EXPECT_LE(e, w.remove_after) << "sink " << k << " called after it was removed";
    }
    for (Epoch e = w.add_after + 1; e <= w.remove_before; ++e, ++checked) {
      EXPECT_TRUE(std::binary_search(c.on.begin(), c.on.end(), e))
          << "sink " << k << " missed epoch " << e;
    }
  }
  EXPECT_GE(checked, kSinks) << "every sink was registered across at least one commit";
}

}  // namespace
}  // namespace mmsb
