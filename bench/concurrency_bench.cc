// Commits and transactions on many threads (docs/Runtime.md, "The commit protocol"):
//   - BM_TxOneThread, BM_TxTwoThreads: a transaction of >= 2 us of work on a private page,
//   committing at its
//     exit, with 1 and 2 threads: the per-transaction cost ratio (concurrency.tx_cost_2t_vs_1t);
//   - BM_CommitUnderWriter: commit() while one other thread runs transactions: median (and p99,
//     printed, not gated: scheduler noise on 2 cores) in microseconds;
//   - BM_LostBytesCampaign: 10^6 transactions on 2 threads plus commits from a third; a sink
//     replays every delta, and the bytes where the replay differs from live memory are counted.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "mmsb/commit.h"
#include "mmsb/instrument.h"
#include "mmsb/mmsb.h"
#include "mmsb/page.h"

#include "bench_main.h"

namespace {

constexpr int kWords = 64;

void StartBus() {
  mmsb::Options o;
  o.arena_bytes = std::size_t{1} << 30;
  if (!mmsb::start(o).ok()) std::abort();
}

mmsb::Page* NewPage(std::size_t size) {
  auto p = mmsb::CreatePage(size);
  if (!p.ok()) std::abort();
  return *p;
}

// About 2 us of arithmetic, then its results stored into the page.
[[gnu::noinline]] void Work(std::uint64_t* words, std::uint64_t seed) {
  std::uint64_t x = seed | 1;
  std::uint64_t acc[kWords] = {};
  for (int r = 0; r < 96; ++r) {
    for (int i = 0; i < kWords; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      acc[i] += x;
    }
  }
  mmsb::rt::TransactionScope tx;
  for (int i = 0; i < kWords; ++i) mmsb::rt::ws(&words[i]) = acc[i];
}

mmsb::Page* g_tx_pages[2];

// Each run starts its own bus and stops it, so the benchmarks of one binary can run in any order
// and any number of rounds (bench/run interleaves them). Google Benchmark's threads meet at a
// barrier when the timed loop starts and ends, so thread 0's set-up and stop bracket every thread.
void BM_TxPrivate(benchmark::State& state) {
  if (state.thread_index() == 0) {
    StartBus();
    for (auto*& p : g_tx_pages) p = NewPage(kWords * 8);
  }
  std::uint64_t seed = 1;
  for (auto _ : state) {
    Work(reinterpret_cast<std::uint64_t*>(g_tx_pages[state.thread_index()]->data()), ++seed);
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) mmsb::stop();
}
void BM_TxOneThread(benchmark::State& state) { BM_TxPrivate(state); }
void BM_TxTwoThreads(benchmark::State& state) { BM_TxPrivate(state); }
BENCHMARK(BM_TxOneThread)->Threads(1)->UseRealTime();
BENCHMARK(BM_TxTwoThreads)->Threads(2)->UseRealTime();

void BM_CommitUnderWriter(benchmark::State& state) {
  StartBus();
  mmsb::Page* writer_page = NewPage(kWords * 8);
  mmsb::Page* own = NewPage(4096);
  std::atomic<bool> done{false};
  std::thread writer([&] {
    auto* words = reinterpret_cast<std::uint64_t*>(writer_page->data());
    for (std::uint64_t s = 1; !done.load(std::memory_order_relaxed); ++s) Work(words, s);
  });
  std::vector<double> ns;
  auto* bytes = own->data();
  std::uint8_t v = 0;
  for (auto _ : state) {
    mmsb::rt::ws(&bytes[(v * 64) % 4096]) = ++v;
    const auto t0 = std::chrono::steady_clock::now();
    if (!mmsb::commit().ok()) std::abort();
    ns.push_back(
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count());
  }
  done = true;
  writer.join();
  mmsb::stop();
  std::sort(ns.begin(), ns.end());
  if (!ns.empty()) {
    state.counters["p50_ns"] = ns[ns.size() / 2];
    state.counters["p99_ns"] = ns[std::min(ns.size() - 1, ns.size() * 99 / 100)];
  }
}
BENCHMARK(BM_CommitUnderWriter)->Iterations(20000)->UseRealTime();

// Replays every committed delta into its own images.
class ReplaySink : public mmsb::CommitSink {
 public:
  const char* name() const override { return "replay"; }
  mmsb::Status OnCommit(const mmsb::CommitBatch& b) override {
    for (const mmsb::Delta& d : b.deltas) {
      auto& img = images[d.page()];
      if (img.empty()) img.resize(sizes.at(d.page()), 0);
      if (mmsb::Status s = d.ApplyTo(img); !s.ok()) return s;
    }
    return mmsb::Status::Ok();
  }
  std::map<mmsb::PageId, std::size_t> sizes;
  std::map<mmsb::PageId, std::vector<std::uint8_t>> images;
};

void BM_LostBytesCampaign(benchmark::State& state) {
  const std::uint64_t per_thread = static_cast<std::uint64_t>(state.range(0)) / 2;
  double lost = 0;
  for (auto _ : state) {
    StartBus();
    auto sink = std::make_shared<ReplaySink>();
    mmsb::Page* pages[2] = {NewPage(kWords * 8), NewPage(kWords * 8)};
    for (mmsb::Page* p : pages) sink->sizes[p->id()] = p->size();
    if (!mmsb::AddSink(sink).ok()) std::abort();
    std::atomic<bool> done{false};
    std::thread committer([&] {
      while (!done.load(std::memory_order_relaxed)) (void)mmsb::commit();
    });
    std::vector<std::thread> writers;
    for (int t = 0; t < 2; ++t) {
      writers.emplace_back([&, t] {
        auto* w = reinterpret_cast<std::uint64_t*>(pages[t]->data());
        for (std::uint64_t k = 1; k <= per_thread; ++k) {
          mmsb::rt::TransactionScope tx;
          for (int i = 0; i < kWords; ++i) mmsb::rt::ws(&w[i]) = k * 31 + i;
        }
      });
    }
    for (auto& th : writers) th.join();
    done = true;
    committer.join();
    if (!mmsb::commit().ok()) std::abort();
    for (mmsb::Page* p : pages) {
      const auto& img = sink->images[p->id()];
      for (std::size_t i = 0; i < p->size(); ++i) lost += img.size() <= i || img[i] != p->data()[i];
    }
    mmsb::stop();
  }
  state.counters["lost_bytes"] = lost;
  state.counters["transactions"] = static_cast<double>(per_thread * 2);
}
BENCHMARK(BM_LostBytesCampaign)
    ->Arg(1'000'000)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kSecond);

}  // namespace

MMSB_BENCH_MAIN();
