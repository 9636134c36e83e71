// Page creation and free vs the allocator baseline (malloc + memset + free), same run.
#include <cstdlib>
#include <cstring>

#include <benchmark/benchmark.h>

#include "mmsb/mmsb.h"

#include "bench_main.h"

namespace {

struct Bus {
  Bus() {
    mmsb::Options o;
    o.arena_bytes = std::size_t{4} << 30;
    if (!mmsb::start(o).ok()) std::abort();
  }
  ~Bus() { mmsb::stop(); }
};

void BM_MallocMemsetFree4k(benchmark::State& state) {
  for (auto _ : state) {
    void* p = std::malloc(4096);
    benchmark::DoNotOptimize(p);
    std::memset(p, 0, 4096);
    benchmark::ClobberMemory();
    std::free(p);
  }
}
BENCHMARK(BM_MallocMemsetFree4k);

void BM_PageCreateFree4k(benchmark::State& state) {
  Bus bus;
  for (auto _ : state) {
    auto p = mmsb::CreatePage(4096);
    benchmark::DoNotOptimize(p);
    if (!mmsb::FreePage(*p).ok()) state.SkipWithError("free failed");
  }
}
BENCHMARK(BM_PageCreateFree4k);

// The same with one barriered write per page, so every reused slot is dirty and must be zeroed.
void BM_PageCreateWriteFree4k(benchmark::State& state) {
  Bus bus;
  for (auto _ : state) {
    auto p = mmsb::CreatePage(4096);
    *mmsb::rt::w(&(*p)->data()[100]) = 1;
    if (!mmsb::FreePage(*p).ok()) state.SkipWithError("free failed");
  }
}
BENCHMARK(BM_PageCreateWriteFree4k);

void BM_MallocMemsetWriteFree4k(benchmark::State& state) {
  for (auto _ : state) {
    auto* p = static_cast<std::uint8_t*>(std::malloc(4096));
    benchmark::DoNotOptimize(p);
    std::memset(p, 0, 4096);
    p[100] = 1;
    benchmark::ClobberMemory();
    std::free(p);
  }
}
BENCHMARK(BM_MallocMemsetWriteFree4k);

}  // namespace

MMSB_BENCH_MAIN();
