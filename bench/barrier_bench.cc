// Write-barrier overhead: the same store-heavy loop with and without a barrier per store, in the
// store-then-mark form the rewriter emits for stores (ws) and the mark-first form (w).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include "mmsb/mmsb.h"

#include "bench_main.h"

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

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

// Added cycles per barriered store (barrier.cycles_per_store): the scatter loop with and without
// the store-then-mark barrier, timed with the time-stamp counter inside one iteration, in
// alternating order, so the baseline and the subject are always measured back to back on the same
// core. Per iteration: (TSC ticks of the barriered loop - ticks of the plain loop) / stores; the
// counter is the median over the iterations (an iteration in which the thread was preempted is an
// outlier, not a shift). TSC ticks are reference cycles at the TSC's constant rate; with frequency
// boost the core runs more cycles per tick, so the figure is cycles at the nominal clock.
void BM_ScatterCyclesPerStore(benchmark::State& state) {
#if defined(__x86_64__)
  Fixture f;
  std::vector<double> added;
  std::vector<double> plain;
  auto ticks = [] {
    _mm_lfence();  // nothing before the read still in flight
    const std::uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
  };
  bool plain_first = true;
  for (auto _ : state) {
    std::uint64_t tp = 0, tb = 0;
    for (int k = 0; k < 2; ++k) {
      const bool run_plain = (k == 0) == plain_first;
      const std::uint64_t t0 = ticks();
      if (run_plain) {
        ScatterPlain(f.x, f.v.data(), f.idx.data(), kN);
      } else {
        ScatterStoreThenMark(f.x, f.v.data(), f.idx.data(), kN);
      }
      benchmark::ClobberMemory();
      (run_plain ? tp : tb) = ticks() - t0;
    }
    plain_first = !plain_first;
    added.push_back((static_cast<double>(tb) - static_cast<double>(tp)) / kN);
    plain.push_back(static_cast<double>(tp) / kN);
  }
  auto median = [](std::vector<double>& v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  state.counters["added_cycles_per_store"] = median(added);
  state.counters["plain_cycles_per_store"] = median(plain);
  state.SetItemsProcessed(state.iterations() * kN);
#else
  state.SkipWithError("needs the x86 time-stamp counter");
#endif
}
BENCHMARK(BM_ScatterCyclesPerStore);

}  // namespace

MMSB_BENCH_MAIN();
