// Write-barrier overhead: the same store-heavy loop with and without a barrier per store, in the
// store-then-mark form the rewriter emits for stores (ws) and the mark-first form (w).
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <random>
#include <utility>
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
// Scatter assignment (x[idx[i]] = v[i]): one store per iteration and nothing else the store
// waits for; barrier.cycles_per_store's loops. Each comes in kCopies instances, each its own
// machine code at its own address (the copy number only keeps them apart): a loop's speed can
// depend on where its code lies and on predictor state kept per instruction address.
constexpr int kCopies = 8;
using ScatterFn = void (*)(float*, const float*, const std::uint32_t*, std::size_t);
template <int Copy>
[[gnu::noinline, gnu::aligned(64)]] void ScatterAssignPlain(float* x, const float* v,
                                                            const std::uint32_t* idx,
                                                            std::size_t n) {
  asm volatile("" ::"i"(Copy));
  for (std::size_t i = 0; i < n; ++i) x[idx[i]] = v[i];
}
template <int Copy>
[[gnu::noinline, gnu::aligned(64)]] void ScatterAssignStoreThenMark(float* x, const float* v,
                                                                    const std::uint32_t* idx,
                                                                    std::size_t n) {
  asm volatile("" ::"i"(Copy));
  for (std::size_t i = 0; i < n; ++i) mmsb::rt::ws(&x[idx[i]]) = v[i];
}
template <int... C>
constexpr std::array<ScatterFn, sizeof...(C)> PlainCopies(std::integer_sequence<int, C...>) {
  return {&ScatterAssignPlain<C>...};
}
template <int... C>
constexpr std::array<ScatterFn, sizeof...(C)> BarrierCopies(std::integer_sequence<int, C...>) {
  return {&ScatterAssignStoreThenMark<C>...};
}
constexpr auto kPlainCopies = PlainCopies(std::make_integer_sequence<int, kCopies>{});
constexpr auto kBarrierCopies = BarrierCopies(std::make_integer_sequence<int, kCopies>{});
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

// Added cycles per barriered store (barrier.cycles_per_store): a scatter of assignments
// (x[idx[i]] = v[i], 4,096 stores through a shuffled index into 16 KiB of a page, so page,
// values and indices stay in L1) with and without the store-then-mark barrier, timed with the
// time-stamp counter inside one iteration, in alternating order, so the baseline and the subject
// are always measured back to back on the same core. Nothing hides the barrier here: the loop is
// bound by issue and stores, not by memory, so the figure is the barrier's own cost. TSC ticks are
// reference cycles at the TSC's constant rate; with frequency boost the core runs more cycles per
// tick, so the figure is cycles at the nominal clock.
//
// On the shared AMD EPYC VM each loop runs in steady modes that last from milliseconds to whole
// processes and switch with nothing in the process changing (docs/Performance.md,
// "barrier.cycles_per_store"): a loop at 1.2 cycles per store may run at 2.5 or 8 for seconds,
// each loop independently of the other, and the barriered loop sometimes faster than the plain
// one. Interference only adds time, so each loop's cost is taken where it was least disturbed:
// the run is cut into windows of kWindow iterations, each on one of kPlacements pages and one of
// kCopies copies of the loops' code in turn; per window each loop's cost is the median over its
// iterations there (an iteration in which the thread was preempted is an outlier, not a shift);
// each loop's cost is its cheapest window's. The figure is the barriered loop's cost minus the
// plain loop's. Beside it: `added_as_run_cycles_per_store`, the median over windows of the
// per-window difference (what the run felt, modes included), and `disturbed_windows`, the windows
// in which either loop ran 25% over its own cost.
void BM_ScatterCyclesPerStore(benchmark::State& state) {
#if defined(__x86_64__)
  constexpr std::size_t kPlacements = 8;
  constexpr std::size_t kWindow = 256;   // iterations (pairs of loops) per window
  constexpr std::size_t kStores = 4096;  // 16 KiB of the page: page, values and indices in L1
  Fixture f;
  std::vector<std::uint32_t> idx(kStores);
  std::iota(idx.begin(), idx.end(), 0u);
  std::shuffle(idx.begin(), idx.end(), std::mt19937(7));
  std::vector<mmsb::Page*> pages{f.page};
  while (pages.size() < kPlacements) pages.push_back(*mmsb::CreatePage(kN * sizeof(float)));
  auto ticks = [] {
    _mm_lfence();  // nothing before the read still in flight
    const std::uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
  };
  auto median = [](std::vector<double>& v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  std::vector<double> plain_at, barriered_at;  // per window
  std::vector<double> plain, barriered;        // the current window's iterations
  std::size_t n = 0;
  for (auto _ : state) {
    float* x = reinterpret_cast<float*>(pages[(n / kWindow) % kPlacements]->data());
    const std::size_t copy = (n / kWindow / kPlacements) % kCopies;
    const bool plain_first = n % 2 == 0;
    for (int k = 0; k < 2; ++k) {
      const bool run_plain = (k == 0) == plain_first;
      const std::uint64_t t0 = ticks();
      if (run_plain) {
        kPlainCopies[copy](x, f.v.data(), idx.data(), kStores);
      } else {
        kBarrierCopies[copy](x, f.v.data(), idx.data(), kStores);
      }
      benchmark::ClobberMemory();
      (run_plain ? plain : barriered).push_back(static_cast<double>(ticks() - t0) / kStores);
    }
    if (++n % kWindow == 0) {
      plain_at.push_back(median(plain));
      barriered_at.push_back(median(barriered));
      plain.clear();
      barriered.clear();
    }
  }
  if (plain_at.empty() && !plain.empty()) {  // a run shorter than one window
    plain_at.push_back(median(plain));
    barriered_at.push_back(median(barriered));
  }
  for (std::size_t i = 1; i < pages.size(); ++i) (void)mmsb::FreePage(pages[i]);
  if (plain_at.empty()) return;
  const double plain_cost = *std::min_element(plain_at.begin(), plain_at.end());
  const double barriered_cost = *std::min_element(barriered_at.begin(), barriered_at.end());
  std::vector<double> added_at;
  double disturbed = 0;
  for (std::size_t i = 0; i < plain_at.size(); ++i) {
    added_at.push_back(barriered_at[i] - plain_at[i]);
    if (plain_at[i] > 1.25 * plain_cost || barriered_at[i] > 1.25 * barriered_cost) ++disturbed;
  }
  state.counters["added_cycles_per_store"] = barriered_cost - plain_cost;
  state.counters["plain_cycles_per_store"] = plain_cost;
  state.counters["added_as_run_cycles_per_store"] = median(added_at);
  state.counters["windows"] = static_cast<double>(plain_at.size());
  state.counters["disturbed_windows"] = disturbed;
  state.SetItemsProcessed(state.iterations() * kStores);
#else
  state.SkipWithError("needs the x86 time-stamp counter");
#endif
}
BENCHMARK(BM_ScatterCyclesPerStore)->MinTime(3.0);

}  // namespace

MMSB_BENCH_MAIN();
