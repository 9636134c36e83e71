// Diff engine throughput against memcmp on the same buffers, and the size of encoded deltas.
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include <benchmark/benchmark.h>

#include "mmsb/delta.h"

#include "bench_main.h"

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kHotPages = 16;  // 64 KiB per image: stays in L2
constexpr std::size_t kStream = std::size_t{256} << 20;

std::uint8_t* MapBytes(std::size_t n) {
  void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::abort();
  std::memset(p, 0x5a, n);  // fault in, identical content
  return static_cast<std::uint8_t*>(p);
}

// Full-diff mask generation over cache-hot, unchanged 4 KiB pages (the verify/escaped path).
void BM_DiffMaskHot4k(benchmark::State& state) {
  std::vector<std::uint8_t> a(kPage * kHotPages, 7), b = a;
  std::vector<std::uint64_t> mask(kPage / 64);
  std::size_t i = 0;
  for (auto _ : state) {
    const std::size_t off = (i++ % kHotPages) * kPage;
    benchmark::DoNotOptimize(
        mmsb::DiffMask({a.data() + off, kPage}, {b.data() + off, kPage}, mask));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kPage));
}
BENCHMARK(BM_DiffMaskHot4k);

void BM_MemcmpHot4k(benchmark::State& state) {
  std::vector<std::uint8_t> a(kPage * kHotPages, 7), b = a;
  std::size_t i = 0;
  for (auto _ : state) {
    const std::size_t off = (i++ % kHotPages) * kPage;
    benchmark::DoNotOptimize(std::memcmp(a.data() + off, b.data() + off, kPage));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kPage));
}
BENCHMARK(BM_MemcmpHot4k);

// The same on 256 MiB images: memory-bound.
void BM_DiffMaskStream256M(benchmark::State& state) {
  static std::uint8_t* a = MapBytes(kStream);
  static std::uint8_t* b = MapBytes(kStream);
  std::vector<std::uint64_t> mask(kStream / 64);
  for (auto _ : state) {
    benchmark::DoNotOptimize(mmsb::DiffMask({a, kStream}, {b, kStream}, mask));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kStream));
}
BENCHMARK(BM_DiffMaskStream256M)->Unit(benchmark::kMillisecond)->MinTime(1.0);

void BM_MemcmpStream256M(benchmark::State& state) {
  static std::uint8_t* a = MapBytes(kStream);
  static std::uint8_t* b = MapBytes(kStream);
  for (auto _ : state) {
    benchmark::DoNotOptimize(std::memcmp(a, b, kStream));
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kStream));
}
BENCHMARK(BM_MemcmpStream256M)->Unit(benchmark::kMillisecond)->MinTime(1.0);

// Diff to a Delta of a hot 4 KiB page with ~1% of its bytes changed (scattered 4-byte stores).
void BM_Diff4k1pct(benchmark::State& state) {
  std::mt19937 rng(1);
  std::vector<std::uint8_t> a(kPage), b(kPage);
  for (auto& x : a) x = static_cast<std::uint8_t>(rng());
  b = a;
  for (int k = 0; k < 10; ++k) {
    const std::size_t off = (rng() % (kPage / 4)) * 4;
    for (int j = 0; j < 4; ++j) b[off + j] ^= 0xff;
  }
  std::size_t encoded = 0;
  for (auto _ : state) {
    mmsb::Delta d = mmsb::Diff(1, 0, a, b);
    encoded = d.EncodedSize();
    benchmark::DoNotOptimize(d);
  }
  state.counters["encoded_bytes"] = static_cast<double>(encoded);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kPage));
}
BENCHMARK(BM_Diff4k1pct);

// Page size / encoded size of a sparse delta with 1% of a 4 KiB page's bytes changed
// (41 single bytes at random offsets: the worst case for runs), as a counter.
void BM_EncodeSparse4k1pct(benchmark::State& state) {
  std::mt19937 rng(2);
  std::vector<std::uint8_t> a(kPage), b;
  for (auto& x : a) x = static_cast<std::uint8_t>(rng());
  b = a;
  for (int k = 0; k < 41; ++k) b[rng() % kPage] ^= 0x5a;
  const mmsb::Delta d = mmsb::Diff(1, 1000, a, b);
  std::vector<std::uint8_t> out;
  for (auto _ : state) {
    out.clear();
    mmsb::EncodeDeltaTo(d, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["ratio"] = static_cast<double>(kPage) / static_cast<double>(out.size());
  state.counters["changed_bytes"] = d.changed_bytes();
}
BENCHMARK(BM_EncodeSparse4k1pct);

void BM_DecodeSparse4k1pct(benchmark::State& state) {
  std::mt19937 rng(2);
  std::vector<std::uint8_t> a(kPage), b;
  for (auto& x : a) x = static_cast<std::uint8_t>(rng());
  b = a;
  for (int k = 0; k < 41; ++k) b[rng() % kPage] ^= 0x5a;
  const std::vector<std::uint8_t> enc = mmsb::EncodeDelta(mmsb::Diff(1, 1000, a, b));
  for (auto _ : state) {
    auto d = mmsb::DecodeDelta(enc);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_DecodeSparse4k1pct);

}  // namespace

MMSB_BENCH_MAIN();
