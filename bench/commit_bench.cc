// Commit latency for sparse changes, no log attached (with no sinks, or four that do nothing:
// what the bus's handling of its sink list costs a commit).
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>

#include <benchmark/benchmark.h>

#include "mmsb/mmsb.h"

#include "bench_main.h"

namespace {

class NoOpSink : public mmsb::CommitSink {
 public:
  const char* name() const override { return "no-op"; }
  mmsb::Status OnCommit(const mmsb::CommitBatch&) override { return mmsb::Status::Ok(); }
};

// One 4 KiB page, ~1% of its bytes changed per commit: ten 4-byte stores at random offsets.
void SparseCommit4k1pct(benchmark::State& state, int sinks) {
  mmsb::Options o;
  o.arena_bytes = std::size_t{1} << 30;
  if (!mmsb::start(o).ok()) std::abort();
  for (int i = 0; i < sinks; ++i) {
    if (!mmsb::AddSink(std::make_shared<NoOpSink>()).ok()) std::abort();
  }
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
void BM_SparseCommit4k1pct(benchmark::State& state) { SparseCommit4k1pct(state, 0); }
BENCHMARK(BM_SparseCommit4k1pct);
void BM_SparseCommit4k1pctFourSinks(benchmark::State& state) { SparseCommit4k1pct(state, 4); }
BENCHMARK(BM_SparseCommit4k1pctFourSinks);

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
