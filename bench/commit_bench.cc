// Commit latency for sparse changes, no log attached.
#include <cstdlib>
#include <cstring>
#include <random>

#include <benchmark/benchmark.h>

#include "mmsb/mmsb.h"

#include "bench_main.h"

namespace {

// One 4 KiB page, ~1% of its bytes changed per commit: ten 4-byte stores at random offsets.
void BM_SparseCommit4k1pct(benchmark::State& state) {
  mmsb::Options o;
  o.arena_bytes = std::size_t{1} << 30;
  if (!mmsb::start(o).ok()) std::abort();
  mmsb::Page* page = *mmsb::CreatePage(4096);
  auto* f = reinterpret_cast<float*>(page->data());
  std::mt19937 rng(1);
  std::uint32_t offs[64][10];
  for (auto& row : offs)
    for (auto& v : row) v = rng() % 1024;
  if (!mmsb::commit().ok()) std::abort();
  std::size_t round = 0;
  float value = 1.0f;
  for (auto _ : state) {
    const auto& row = offs[round++ % 64];
    value += 1.0f;
    for (std::uint32_t off : row) *mmsb::rt::w(&f[off]) = value;
    auto e = mmsb::commit();
    benchmark::DoNotOptimize(e);
  }
  mmsb::stop();
}
BENCHMARK(BM_SparseCommit4k1pct);

// Many idle pages and one hot one: what an idle page costs a commit.
void BM_SparseCommitAmong10kPages(benchmark::State& state) {
  mmsb::Options o;
  o.arena_bytes = std::size_t{1} << 30;
  if (!mmsb::start(o).ok()) std::abort();
  for (int i = 0; i < 10000; ++i) (void)mmsb::CreatePage(4096);
  mmsb::Page* page = *mmsb::CreatePage(4096);
  auto* f = reinterpret_cast<float*>(page->data());
  if (!mmsb::commit().ok()) std::abort();
  float value = 1.0f;
  for (auto _ : state) {
    value += 1.0f;
    for (int k = 0; k < 10; ++k) *mmsb::rt::w(&f[k * 97]) = value;
    auto e = mmsb::commit();
    benchmark::DoNotOptimize(e);
  }
  mmsb::stop();
}
BENCHMARK(BM_SparseCommitAmong10kPages);

}  // namespace

MMSB_BENCH_MAIN();
