// ThreadPool (runtime/src/graph/thread_pool.h): every index runs exactly once, on the workers and
// the caller, and ParallelFor returns only when all of them are done.
#include "graph/thread_pool.h"

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace mmsb {
namespace {

TEST(ThreadPool, SizeCountsTheCallingThread) {
  ThreadPool none(0);
  EXPECT_EQ(none.size(), 1u);
  ThreadPool three(3);
  EXPECT_EQ(three.size(), 4u);
}

TEST(ThreadPool, EveryIndexRunsExactlyOnce) {
  ThreadPool pool(3);
  constexpr std::size_t kN = 10000;
  std::vector<std::atomic<int>> hits(kN);
  pool.ParallelFor(kN, [&](std::size_t i) { hits[i].fetch_add(1, std::memory_order_relaxed); });
  for (std::size_t i = 0; i < kN; ++i) ASSERT_EQ(hits[i].load(), 1) << "index " << i;
}

TEST(ThreadPool, ZeroItemsReturnsWithoutCallingTheFunction) {
  ThreadPool pool(2);
  bool called = false;
  pool.ParallelFor(0, [&](std::size_t) { called = true; });
  EXPECT_FALSE(called);
}

TEST(ThreadPool, WithoutWorkersTheCallerRunsEverythingInOrder) {
  ThreadPool pool(0);
  std::vector<std::size_t> order;
  const auto caller = std::this_thread::get_id();
  pool.ParallelFor(5, [&](std::size_t i) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    order.push_back(i);
  });
  EXPECT_EQ(order, (std::vector<std::size_t>{0, 1, 2, 3, 4}));
}

// The function object may be a temporary that dies right after ParallelFor: no worker may still
// be inside it (or about to read it) when the call returns.
TEST(ThreadPool, ReturnsOnlyAfterEveryWorkerLeftTheJob) {
  ThreadPool pool(3);
  for (int round = 0; round < 200; ++round) {
    std::atomic<int> inside{0};
    std::atomic<int> done{0};
    pool.ParallelFor(8, [&](std::size_t) {
      inside.fetch_add(1);
      std::this_thread::yield();
      done.fetch_add(1);
      inside.fetch_sub(1);
    });
    ASSERT_EQ(inside.load(), 0) << "round " << round;
    ASSERT_EQ(done.load(), 8) << "round " << round;
  }
}

TEST(ThreadPool, WorkersTakePartWhenTheJobIsLong) {
  ThreadPool pool(2);
  std::mutex mu;
  std::set<std::thread::id> ids;
  // Each item waits until at least two threads have joined (bounded, so a loaded machine that
  // never schedules a worker still finishes: the test then only checks completeness).
  std::atomic<int> started{0};
  pool.ParallelFor(64, [&](std::size_t) {
    started.fetch_add(1);
    {
      std::lock_guard<std::mutex> lock(mu);
      ids.insert(std::this_thread::get_id());
    }
    for (int spin = 0; spin < 1000 && ids.size() < 2; ++spin) std::this_thread::yield();
  });
  EXPECT_EQ(started.load(), 64);
  EXPECT_GE(ids.size(), 1u);
  EXPECT_LE(ids.size(), pool.size());
}

TEST(ThreadPool, ManyJobsInARowReuseTheWorkers) {
  ThreadPool pool(2);
  std::atomic<std::uint64_t> sum{0};
  for (int job = 0; job < 1000; ++job)
    pool.ParallelFor(7, [&](std::size_t i) { sum.fetch_add(i + 1, std::memory_order_relaxed); });
  EXPECT_EQ(sum.load(), 1000u * 28u);
}

}  // namespace
}  // namespace mmsb
