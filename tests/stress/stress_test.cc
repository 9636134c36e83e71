// The stress suite of the commit protocol (docs/Runtime.md, "The commit protocol"): N threads run
// transactions on private pages and on a shared page guarded by a mutex, commit from any thread
// and sleep at random; the log, replayed at every epoch, must match what the test knows:
//   - a private page holds one transaction's value in every word (no transaction is split);
//   - transaction k of a thread is absent from every epoch a commit had reached before it began,
//     and present in every epoch from the one a commit had reached when it ended (a store is
//     logged no later than the first commit whose cut it happens-before, and never earlier);
//   - the shared page is consistent at every epoch (sum of 1..counter, ring slot = counter);
//   - the last epoch equals live memory (nothing lost).
// Sizes come from the environment: MMSB_STRESS_THREADS, MMSB_STRESS_TX (transactions per thread),
// MMSB_STRESS_SEED (also turns on schedule exploration: yields at the gate and collector's race
// points, see bus/tx_gate.h). ctest runs a short form by default and a long one under `slow`.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mmsb/instrument.h"
#include "mmsb/log.h"
#include "mmsb/mmsb.h"
#include "mmsb/page.h"
#include "mmsb/replay.h"

#include "bus/tx_gate.h"

namespace mmsb {
namespace {

using rt::ws;

constexpr int kWords = 24;  // a private page: 192 bytes, three granules
constexpr int kRing = 16;

struct Shared {
  std::uint64_t counter;
  std::uint64_t sum;
  std::uint64_t ring[kRing];
};

std::uint64_t EnvOr(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

// Epoch bounds of one transaction: a commit had reached `before` when it began and `after` when
// its exit returned.
struct TxBounds {
  std::uint64_t value;
  Epoch before, after;
};

class StressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mmsb_stress_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    Options o;
    o.arena_bytes = std::size_t{1} << 30;
    ASSERT_TRUE(start(o).ok());
    LogOptions lo;
    lo.durability = Durability::kNone;  // replay is what is checked here, not fsync
    auto log = AttachLog(dir_.string(), lo);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    log_ = *log;
  }
  // Hands the buffered log to the OS so it can be replayed.
  void CloseLog() { ASSERT_TRUE(log_->Close().ok()); }
  void TearDown() override {
    TxGate::SetScheduleSeed(0);
    stop();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  std::shared_ptr<LogSink> log_;
};

TEST_F(StressTest, ManyThreadsTransactionsAndCommitsLoseNothingAndSplitNothing) {
  const int threads = static_cast<int>(EnvOr("MMSB_STRESS_THREADS", 3));
  const std::uint64_t txs = EnvOr("MMSB_STRESS_TX", 400);
  const std::uint32_t seed = static_cast<std::uint32_t>(EnvOr("MMSB_STRESS_SEED", 0));
  TxGate::SetScheduleSeed(seed);

  std::vector<Page*> priv;
  for (int t = 0; t < threads; ++t) {
    PageOptions o;
    o.name = "private" + std::to_string(t);
    auto p = CreatePage(kWords * 8, o);
    ASSERT_TRUE(p.ok());
    priv.push_back(*p);
  }
  PageOptions so;
  so.name = "shared";
  auto sp = CreatePage(sizeof(Shared), so);
  ASSERT_TRUE(sp.ok());
  auto* shared = reinterpret_cast<Shared*>((*sp)->data());
  std::mutex shared_mu;  // the program's own lock for the shared page
  ASSERT_TRUE(commit().ok());

  std::vector<std::vector<TxBounds>> bounds(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937 rng(seed * 7919u + static_cast<std::uint32_t>(t));
      auto* w = reinterpret_cast<std::uint64_t*>(priv[t]->data());
      for (std::uint64_t k = 1; k <= txs; ++k) {
        const Epoch before = current_epoch();
        {
          rt::TransactionScope tx;
          for (int i = 0; i < kWords; ++i) {
            ws(&w[i]) = k;
            if (rng() % 16 == 0) std::this_thread::yield();
          }
          if (rng() % 4 == 0) {
            std::lock_guard<std::mutex> lock(shared_mu);
            const std::uint64_t c = shared->counter + 1;
            ws(&shared->counter) = c;
            ws(&shared->sum) += c;
            ws(&shared->ring[c % kRing]) = c;
          }
          if (rng() % 64 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));
        }
        bounds[t].push_back({k, before, current_epoch()});
        // Commits from any thread, outside transactions.
        if (rng() % 8 == 0) EXPECT_TRUE(commit().ok());
      }
    });
  }
  for (auto& th : workers) th.join();
  ASSERT_TRUE(commit().ok());
  const Epoch last = current_epoch();
  CloseLog();

  auto replayer = Replayer::Open(dir_.string());
  ASSERT_TRUE(replayer.ok()) << replayer.status().ToString();
  // Per thread: transactions [0, present) ended before a commit reached this epoch; transactions
  // from `absent` on began after it.
  std::vector<std::size_t> present(threads, 0), absent(threads, 0);
  for (;;) {
    auto stepped = (*replayer)->Step();
    ASSERT_TRUE(stepped.ok()) << stepped.status().ToString();
    if (!*stepped) break;
    const LogState& state = (*replayer)->state();
    const Epoch e = state.epoch;
    for (int t = 0; t < threads; ++t) {
      const ReplayedPage* p = state.FindPageByName("private" + std::to_string(t));
      ASSERT_NE(p, nullptr);
      const auto* words = reinterpret_cast<const std::uint64_t*>(p->bytes.data());
      for (int i = 1; i < kWords; ++i)
        ASSERT_EQ(words[i], words[0]) << "epoch " << e << " splits a transaction of thread " << t;
      const std::uint64_t v = words[0];
      // Both bounds grow with k, and epochs are replayed in order: two cursors per thread.
      const std::vector<TxBounds>& b = bounds[t];
      while (present[t] < b.size() && b[present[t]].after <= e) ++present[t];
      while (absent[t] < b.size() && b[absent[t]].before < e) ++absent[t];
      if (present[t] > 0)
        ASSERT_GE(v, b[present[t] - 1].value) << "epoch " << e << " lost a transaction";
      if (absent[t] < b.size())
        ASSERT_LT(v, b[absent[t]].value) << "epoch " << e << " holds a later transaction";
    }
    const ReplayedPage* s = state.FindPageByName("shared");
    ASSERT_NE(s, nullptr);
    Shared img;
    std::memcpy(&img, s->bytes.data(), sizeof img);
    ASSERT_EQ(img.sum, img.counter * (img.counter + 1) / 2) << "epoch " << e;
    if (img.counter != 0) ASSERT_EQ(img.ring[img.counter % kRing], img.counter) << "epoch " << e;
    if (e == last) {
      for (int t = 0; t < threads; ++t) {
        const ReplayedPage* p = state.FindPageByName("private" + std::to_string(t));
        ASSERT_EQ(std::memcmp(p->bytes.data(), priv[t]->data(), priv[t]->size()), 0);
      }
      ASSERT_EQ(std::memcmp(s->bytes.data(), shared, sizeof(Shared)), 0) << "nothing lost";
    }
  }
  EXPECT_EQ((*replayer)->state().epoch, last);
}

// Plain stores outside transactions on one thread, commits in a loop on another: the latest
// epoch equals live memory once the writer stops.
TEST_F(StressTest, ConcurrentPlainStoresAndCommitsLoseNothing) {
  const std::uint32_t seed = static_cast<std::uint32_t>(EnvOr("MMSB_STRESS_SEED", 0));
  TxGate::SetScheduleSeed(seed);
  PageOptions o;
  o.name = "plain";
  auto page = CreatePage(16384, o);
  ASSERT_TRUE(page.ok());
  auto* words = reinterpret_cast<std::uint64_t*>((*page)->data());
  std::atomic<bool> done{false};
  std::thread committer([&] {
    while (!done.load(std::memory_order_relaxed)) EXPECT_TRUE(commit().ok());
  });
  std::mt19937 rng(seed);
  const std::uint64_t n = EnvOr("MMSB_STRESS_TX", 400) * 100;
  for (std::uint64_t i = 1; i <= n; ++i) ws(&words[rng() % 2048]) = i;
  done = true;
  committer.join();
  ASSERT_TRUE(commit().ok());
  CloseLog();
  auto state = Replay(dir_.string());
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  const ReplayedPage* p = state->FindPageByName("plain");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(std::memcmp(p->bytes.data(), words, 16384), 0) << "a store was lost";
}

}  // namespace
}  // namespace mmsb
