// Write-barrier overhead: the same store-heavy loop with and without a barrier per store, in the
// store-then-mark form the rewriter emits for stores (ws) and the mark-first form (w).
#include <cstdlib>
#include <numeric>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include "mmsb/mmsb.h"

#include "bench_main.h"

namespace {

constexpr std::size_t kN = 16384;  // floats per page (64 KiB)

struct Fixture {
  Fixture() {
    mmsb::Options o;
    o.arena_bytes = std::size_t{1} << 30;
    if (!mmsb::start(o).ok()) std::abort();
    page = *mmsb::CreatePage(kN * sizeof(float));
    x = reinterpret_cast<float*>(page->data());
    v.resize(kN, 0.5f);
    idx.resize(kN);
    std::iota(idx.begin(), idx.end(), 0u);
    std::shuffle(idx.begin(), idx.end(), std::mt19937(7));
  }
  ~Fixture() { mmsb::stop(); }
  mmsb::Page* page;
  float* x;
  std::vector<float> v;
  std::vector<std::uint32_t> idx;
};

// Scatter updates (x[idx[i]] += v[i]): stores whose addresses the compiler cannot predict, the
// case a per-store barrier exists for.
[[gnu::noinline]] void ScatterPlain(float* x, const float* v, const std::uint32_t* idx,
                                    std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) x[idx[i]] += v[i];
}
[[gnu::noinline]] void ScatterBarrier(float* x, const float* v, const std::uint32_t* idx,
                                      std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) *mmsb::rt::w(&x[idx[i]]) += v[i];
}
// The same with the store-then-mark barrier the rewriter emits for stores (`ws(&x) += v`).
[[gnu::noinline]] void ScatterStoreThenMark(float* x, const float* v, const std::uint32_t* idx,
                                            std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) mmsb::rt::ws(&x[idx[i]]) += v[i];
}
// Streaming update (x[i] += v[i] * dt): the plain loop vectorises, the barriered one cannot.
[[gnu::noinline]] void StreamPlain(float* x, const float* v, std::size_t n, float dt) {
  for (std::size_t i = 0; i < n; ++i) x[i] += v[i] * dt;
}
[[gnu::noinline]] void StreamBarrier(float* x, const float* v, std::size_t n, float dt) {
  for (std::size_t i = 0; i < n; ++i) *mmsb::rt::w(&x[i]) += v[i] * dt;
}
[[gnu::noinline]] void StreamStoreThenMark(float* x, const float* v, std::size_t n, float dt) {
  for (std::size_t i = 0; i < n; ++i) mmsb::rt::ws(&x[i]) += v[i] * dt;
}

void BM_ScatterPlain(benchmark::State& state) {
  Fixture f;
  for (auto _ : state) {
    ScatterPlain(f.x, f.v.data(), f.idx.data(), kN);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kN);
}
BENCHMARK(BM_ScatterPlain);

void BM_ScatterBarrier(benchmark::State& state) {
  Fixture f;
  for (auto _ : state) {
    ScatterBarrier(f.x, f.v.data(), f.idx.data(), kN);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kN);
}
BENCHMARK(BM_ScatterBarrier);

void BM_ScatterStoreThenMark(benchmark::State& state) {
  Fixture f;
  for (auto _ : state) {
    ScatterStoreThenMark(f.x, f.v.data(), f.idx.data(), kN);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kN);
}
BENCHMARK(BM_ScatterStoreThenMark);

void BM_StreamPlain(benchmark::State& state) {
  Fixture f;
  for (auto _ : state) {
    StreamPlain(f.x, f.v.data(), kN, 0.01f);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kN);
}
BENCHMARK(BM_StreamPlain);

void BM_StreamBarrier(benchmark::State& state) {
  Fixture f;
  for (auto _ : state) {
    StreamBarrier(f.x, f.v.data(), kN, 0.01f);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kN);
}
BENCHMARK(BM_StreamBarrier);

void BM_StreamStoreThenMark(benchmark::State& state) {
  Fixture f;
  for (auto _ : state) {
    StreamStoreThenMark(f.x, f.v.data(), kN, 0.01f);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kN);
}
BENCHMARK(BM_StreamStoreThenMark);

// A barrier on memory outside the arena: the cost an untracked object pays.
void BM_UntrackedBarrier(benchmark::State& state) {
  Fixture f;
  std::vector<float> heap(kN);
  for (auto _ : state) {
    ScatterBarrier(heap.data(), f.v.data(), f.idx.data(), kN);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * kN);
}
BENCHMARK(BM_UntrackedBarrier);

}  // namespace

MMSB_BENCH_MAIN();
