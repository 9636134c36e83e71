// Propagation: cost of derived pages inside commit(), against the commit alone and against
// calling the same recompute functions directly in topological order.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <benchmark/benchmark.h>

#include "mmsb/mmsb.h"

#include "bench_main.h"

namespace {

struct Bus {
  explicit Bus(unsigned threads = 0) {
    mmsb::Options o;
    o.arena_bytes = std::size_t{4} << 30;
    o.propagation_threads = threads;
    if (!mmsb::start(o).ok()) std::abort();
  }
  ~Bus() { mmsb::stop(); }
};

mmsb::Page* MustCreate(std::size_t size) {
  auto p = mmsb::CreatePage(size);
  if (!p.ok()) std::abort();
  return *p;
}

void Must(const mmsb::Status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    std::abort();
  }
}

// Writes 8 bytes of a 1 KiB page and commits; `hops` passthrough pages hang below it in a chain.
void CommitWithChain(benchmark::State& state, int hops) {
  Bus bus;
  mmsb::Page* root = MustCreate(1024);
  mmsb::Page* prev = root;
  for (int i = 0; i < hops; ++i) {
    mmsb::Page* next = MustCreate(1024);
    Must(mmsb::AddPassthroughEdge(prev->id(), next->id()));
    prev = next;
  }
  (void)mmsb::commit();
  std::uint64_t v = 0;
  for (auto _ : state) {
    ++v;
    std::memcpy(mmsb::rt::w(reinterpret_cast<std::uint64_t*>(root->data() + 128)), &v, 8);
    auto e = mmsb::commit();
    benchmark::DoNotOptimize(e);
  }
}

void BM_CommitOnly1k(benchmark::State& state) { CommitWithChain(state, 0); }
void BM_SingleHop1k(benchmark::State& state) { CommitWithChain(state, 1); }
void BM_Chain10_1k(benchmark::State& state) { CommitWithChain(state, 10); }
BENCHMARK(BM_CommitOnly1k);
BENCHMARK(BM_SingleHop1k);
BENCHMARK(BM_Chain10_1k);

// A 100k-node DAG (a binary-ish tree of 64-byte pages under one root) where a change reaches every
// node; each recompute is trivial (child = parent + 1).
constexpr int kDagNodes = 100000;

mmsb::Status AddOne(std::span<const mmsb::Page* const> parents, mmsb::Page& child) {
  std::uint64_t v;
  std::memcpy(&v, parents[0]->data(), 8);
  ++v;
  std::memcpy(mmsb::rt::w(reinterpret_cast<std::uint64_t*>(child.data())), &v, 8);
  return mmsb::Status::Ok();
}

std::vector<mmsb::Page*> BuildTree(bool register_edges) {
  std::vector<mmsb::Page*> pages;
  pages.reserve(kDagNodes);
  for (int i = 0; i < kDagNodes; ++i) {
    pages.push_back(MustCreate(64));
    if (i > 0 && register_edges) {
      const mmsb::PageId parent[] = {pages[(i - 1) / 2]->id()};
      Must(mmsb::AddUserEdges(parent, pages[i]->id(), AddOne));
    }
  }
  return pages;
}

void BM_Dag100kEngine(benchmark::State& state) {
  Bus bus(1);  // serial, for a per-node cost
  std::vector<mmsb::Page*> pages = BuildTree(true);
  (void)mmsb::commit();
  std::uint64_t v = 0;
  double total_ns = 0;
  for (auto _ : state) {
    ++v;
    std::memcpy(mmsb::rt::w(reinterpret_cast<std::uint64_t*>(pages[0]->data())), &v, 8);
    const auto t0 = std::chrono::steady_clock::now();
    auto e = mmsb::commit();
    total_ns +=
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    benchmark::DoNotOptimize(e);
  }
  state.counters["per_node_ns"] = total_ns / static_cast<double>(state.iterations()) / kDagNodes;
}
BENCHMARK(BM_Dag100kEngine)->Unit(benchmark::kMillisecond);

// The physical floor: the same recompute functions called directly in topological order.
void BM_Dag100kDirectCalls(benchmark::State& state) {
  Bus bus(1);
  std::vector<mmsb::Page*> pages = BuildTree(false);
  std::uint64_t v = 0;
  for (auto _ : state) {
    ++v;
    std::memcpy(mmsb::rt::w(reinterpret_cast<std::uint64_t*>(pages[0]->data())), &v, 8);
    for (int i = 1; i < kDagNodes; ++i) {
      const mmsb::Page* parent[] = {pages[(i - 1) / 2]};
      benchmark::DoNotOptimize(AddOne(parent, *pages[i]));
    }
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_Dag100kDirectCalls)->Unit(benchmark::kMillisecond);

// The fair floor for an engine that records what it propagates: the same direct calls, each
// followed by what makes its change a delta by hand (an exact diff of the page against a copy of
// its last image, the delta kept in the epoch's batch, the copy brought up to date).
void BM_Dag100kDirectCallsWithDeltas(benchmark::State& state) {
  Bus bus(1);
  std::vector<mmsb::Page*> pages = BuildTree(false);
  std::vector<std::uint8_t> twins(std::size_t{kDagNodes} * 64);
  for (int i = 0; i < kDagNodes; ++i)
    std::memcpy(&twins[std::size_t(i) * 64], pages[i]->data(), 64);
  std::vector<mmsb::Delta> batch;
  batch.reserve(kDagNodes);
  std::uint64_t v = 0;
  mmsb::Epoch epoch = 0;
  for (auto _ : state) {
    ++v;
    ++epoch;
    batch.clear();
    std::memcpy(mmsb::rt::w(reinterpret_cast<std::uint64_t*>(pages[0]->data())), &v, 8);
    for (int i = 0; i < kDagNodes; ++i) {
      if (i > 0) {
        const mmsb::Page* parent[] = {pages[(i - 1) / 2]};
        benchmark::DoNotOptimize(AddOne(parent, *pages[i]));
      }
      const std::span<std::uint8_t> twin(&twins[std::size_t(i) * 64], 64);
      const std::span<const std::uint8_t> now(pages[i]->data(), 64);
      batch.push_back(mmsb::Diff(pages[i]->id(), epoch - 1, twin, now));
      std::memcpy(twin.data(), now.data(), 64);
    }
    benchmark::DoNotOptimize(batch.data());
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_Dag100kDirectCallsWithDeltas)->Unit(benchmark::kMillisecond);

// 1,000 children of one root, each recompute ~20 us of work: parallel vs serial.
mmsb::Status Busy20us(std::span<const mmsb::Page* const> parents, mmsb::Page& child) {
  std::uint64_t x;
  std::memcpy(&x, parents[0]->data(), 8);
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
  while (std::chrono::steady_clock::now() < until)
    x = x * 6364136223846793005ull + 1442695040888963407ull;
  std::memcpy(mmsb::rt::w(reinterpret_cast<std::uint64_t*>(child.data())), &x, 8);
  return mmsb::Status::Ok();
}

void FanOut(benchmark::State& state, unsigned threads) {
  Bus bus(threads);
  mmsb::Page* root = MustCreate(64);
  for (int i = 0; i < 1000; ++i) {
    mmsb::Page* child = MustCreate(64);
    const mmsb::PageId parent[] = {root->id()};
    Must(mmsb::AddUserEdges(parent, child->id(), Busy20us));
  }
  (void)mmsb::commit();
  std::uint64_t v = 0;
  for (auto _ : state) {
    ++v;
    std::memcpy(mmsb::rt::w(reinterpret_cast<std::uint64_t*>(root->data())), &v, 8);
    auto e = mmsb::commit();
    benchmark::DoNotOptimize(e);
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}
void BM_FanOut1000Serial(benchmark::State& state) { FanOut(state, 1); }
void BM_FanOut1000Parallel(benchmark::State& state) { FanOut(state, 0); }
BENCHMARK(BM_FanOut1000Serial)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_FanOut1000Parallel)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

MMSB_BENCH_MAIN();
