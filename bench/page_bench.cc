// Page creation and free vs the allocator baseline (malloc + memset + free), same run.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

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

// A 1 GiB page, 1% of it written between commits (one 64-byte granule in every 100, through the
// barrier): a commit costs what was written, not the page (the first commit, a full diff against
// zeros, is made before timing starts). Default options, so sampled verification's slice is in
// the commit. Manual time: the commit only, not the writes.
constexpr std::size_t kHugePage = std::size_t{1} << 30;
constexpr std::size_t kHugeStride = 100 * 64;

void WriteOnePercent(std::uint8_t* d, std::uint8_t v) {
  for (std::size_t off = 0; off + 64 <= kHugePage; off += kHugeStride) {
    std::memset(d + off, v, 64);
    mmsb::rt::MarkRange(d + off, 64);
  }
}

void BM_Commit1GiB1pct(benchmark::State& state) {
  Bus bus;
  auto p = mmsb::CreatePage(kHugePage);
  if (!p.ok()) {
    state.SkipWithError("cannot create a 1 GiB page");
    return;
  }
  std::uint8_t* d = (*p)->data();
  WriteOnePercent(d, 1);
  if (!mmsb::commit().ok()) state.SkipWithError("first commit failed");
  std::uint8_t v = 2;
  double total_ms = 0;
  for (auto _ : state) {
    WriteOnePercent(d, v);
    v = static_cast<std::uint8_t>(v == 255 ? 1 : v + 1);
    const auto t0 = std::chrono::steady_clock::now();
    auto e = mmsb::commit();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!e.ok()) state.SkipWithError("commit failed");
    state.SetIterationTime(s);
    total_ms += s * 1e3;
  }
  state.counters["commit_ms"] = total_ms / static_cast<double>(state.iterations());
  (void)mmsb::FreePage(*p);
}
BENCHMARK(BM_Commit1GiB1pct)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(8);

// Baseline: what a full diff of the page would at least cost, one memcmp of 1 GiB against its
// copy (equal, so it reads to the end).
void BM_Memcmp1GiB(benchmark::State& state) {
  std::vector<std::uint8_t> a(kHugePage, 1), b(kHugePage, 1);
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(std::memcmp(a.data(), b.data(), kHugePage));
    state.SetIterationTime(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
}
BENCHMARK(BM_Memcmp1GiB)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(4);

}  // namespace

MMSB_BENCH_MAIN();
