// GPU benchmarks (bench/run gpu): the device kernels and the mirror sync against copy baselines
// measured in the same run on the same device.
//
//   gpu.dense_merge_vs_d2d   in-place dense masked merge of 1 GiB (reads page, delta and mask,
//                            writes the page: 4 GiB moved) vs cudaMemcpy device-to-device of 1 GiB
//                            (2 GiB moved), both as bytes moved per second
//   gpu.sparse_apply_vs_d2d  one batched apply of 10,000 pages x 64 KiB with 1% of each changed in
//                            runs, bytes written per second, vs a device-to-device copy of the same
//                            number of bytes
//   gpu.h2d_delta_vs_pinned  shipping that batch (one async copy of the packed staging buffer, the
//                            apply, a synchronise), changed bytes per second, vs a pinned
//                            host-to-device copy of the changed bytes alone
//   gpu.commit_mirror_us     mmsb::commit() of 1,000 mirrored 64 KiB pages with 1% changed: diff,
//                            pack, ship, apply and synchronise, end to end
//
// Every operation is timed by the wall clock around the operation and Synchronize(). Without a
// CUDA device the binary writes a result file that marks it skipped and exits 0 (bench/run prints
// the figures as skipped).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "mmsb/kernels.h"
#include "mmsb/mirror.h"
#include "mmsb/mmsb.h"

#include "bench_main.h"
#include "device/apply_batch.h"

namespace {

using Clock = std::chrono::steady_clock;

std::shared_ptr<mmsb::DeviceBackend> g_gpu;

void Check(const mmsb::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "gpu_bench: %s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

template <class T>
T Check(mmsb::Expected<T> e, const char* what) {
  Check(e.status(), what);
  return std::move(*e);
}

std::uint8_t* DeviceAlloc(std::size_t n) {
  return static_cast<std::uint8_t*>(Check(g_gpu->Allocate(n), "device allocation"));
}

// Times fn() + Synchronize() by the wall clock.
template <class F>
void Timed(benchmark::State& state, F fn) {
  const auto t0 = Clock::now();
  Check(fn(), "device operation");
  Check(g_gpu->Synchronize(), "synchronize");
  state.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
}

constexpr std::size_t kBig = std::size_t{1} << 30;

void BM_D2DCopy1GiB(benchmark::State& state) {
  std::uint8_t* a = DeviceAlloc(kBig);
  std::uint8_t* b = DeviceAlloc(kBig);
  Check(g_gpu->Zero(a, kBig), "zero");
  for (auto _ : state) Timed(state, [&] { return g_gpu->Copy(b, a, kBig); });
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 2 * kBig));
  g_gpu->Free(a);
  g_gpu->Free(b);
}
BENCHMARK(BM_D2DCopy1GiB)->UseManualTime()->Unit(benchmark::kMillisecond);

void BM_DenseMerge1GiB(benchmark::State& state) {
  std::uint8_t* page = DeviceAlloc(kBig);
  std::uint8_t* delta = DeviceAlloc(kBig);
  std::uint8_t* mask = DeviceAlloc(kBig);
  for (std::uint8_t* p : {page, delta, mask}) Check(g_gpu->Zero(p, kBig), "zero");
  for (auto _ : state)
    Timed(state, [&] { return g_gpu->MaskedMerge(page, page, delta, mask, kBig); });
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * 4 * kBig));
  for (std::uint8_t* p : {page, delta, mask}) g_gpu->Free(p);
}
BENCHMARK(BM_DenseMerge1GiB)->UseManualTime()->Unit(benchmark::kMillisecond);

// ---- 10,000 pages x 64 KiB, 1% changed in runs of 64 bytes -------------------------------------

constexpr std::size_t kPages = 10000;
constexpr std::uint32_t kPageBytes = 64 * 1024;
constexpr int kRunsPerPage = 10;  // 640 bytes: ~1%
constexpr std::uint32_t kRunBytes = 64;

std::vector<mmsb::Delta> SparseDeltas(std::size_t pages) {
  std::mt19937_64 rng(7);
  std::vector<mmsb::Delta> out;
  out.reserve(pages);
  for (std::size_t i = 0; i < pages; ++i) {
    std::vector<mmsb::ByteRun> runs;
    const std::uint32_t slot = kPageBytes / kRunsPerPage;  // one run per slot, at a random offset
    for (int r = 0; r < kRunsPerPage; ++r) {
      runs.push_back(
          {static_cast<std::uint32_t>(r * slot + rng() % (slot - kRunBytes)), kRunBytes});
    }
    std::vector<std::uint8_t> bytes(kRunsPerPage * kRunBytes);
    for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
    out.push_back(Check(
        mmsb::Delta::FromRuns(i + 1, 0, kPageBytes, std::move(runs), std::move(bytes)), "delta"));
  }
  return out;
}

struct SparseFixture {
  SparseFixture() {
    deltas = SparseDeltas(kPages);
    pages = DeviceAlloc(kPages * kPageBytes);
    Check(g_gpu->Zero(pages, kPages * kPageBytes), "zero");
    for (std::size_t i = 0; i < kPages; ++i) {
      builder.AddTarget(pages + i * kPageBytes, nullptr, kPageBytes);
      Check(builder.AddDelta(static_cast<std::uint32_t>(i), deltas[i]), "pack");
      changed += deltas[i].changed_bytes();
    }
    size = builder.PackedSize();
    pinned = static_cast<std::uint8_t*>(Check(g_gpu->AllocatePinned(size), "pinned"));
    staging = DeviceAlloc(size);
    view = builder.Pack(pinned, staging);
    Check(g_gpu->CopyToDevice(staging, pinned, size), "upload");
    Check(g_gpu->Synchronize(), "synchronize");
  }
  ~SparseFixture() {
    g_gpu->Free(pages);
    g_gpu->Free(staging);
    g_gpu->FreePinned(pinned);
  }
  std::vector<mmsb::Delta> deltas;
  mmsb::ApplyBatchBuilder builder;
  std::uint8_t* pages = nullptr;
  std::uint8_t* pinned = nullptr;
  std::uint8_t* staging = nullptr;
  std::size_t size = 0;
  std::uint64_t changed = 0;
  mmsb::ApplyBatchView view;
};

void BM_SparseApply10kPages(benchmark::State& state) {
  SparseFixture f;
  for (auto _ : state) Timed(state, [&] { return g_gpu->ApplyBatch(f.view); });
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * f.changed));
  state.counters["segments"] = f.view.num_sparse;
}
BENCHMARK(BM_SparseApply10kPages)->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_D2DCopySparseBytes(benchmark::State& state) {
  const std::size_t n = kPages * kRunsPerPage * kRunBytes;
  std::uint8_t* a = DeviceAlloc(n);
  std::uint8_t* b = DeviceAlloc(n);
  Check(g_gpu->Zero(a, n), "zero");
  for (auto _ : state) Timed(state, [&] { return g_gpu->Copy(b, a, n); });
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n));
  g_gpu->Free(a);
  g_gpu->Free(b);
}
BENCHMARK(BM_D2DCopySparseBytes)->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_ShipDeltas10kPages(benchmark::State& state) {
  SparseFixture f;
  for (auto _ : state) {
    Timed(state, [&] {
      mmsb::Status s = g_gpu->CopyToDevice(f.staging, f.pinned, f.size);
      return s.ok() ? g_gpu->ApplyBatch(f.view) : s;
    });
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * f.changed));
  state.counters["staging_bytes"] = static_cast<double>(f.size);
  state.counters["changed_bytes"] = static_cast<double>(f.changed);
}
BENCHMARK(BM_ShipDeltas10kPages)->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_PinnedH2DSparseBytes(benchmark::State& state) {
  const std::size_t n = kPages * kRunsPerPage * kRunBytes;
  auto* host = static_cast<std::uint8_t*>(Check(g_gpu->AllocatePinned(n), "pinned"));
  std::memset(host, 1, n);
  std::uint8_t* dev = DeviceAlloc(n);
  for (auto _ : state) Timed(state, [&] { return g_gpu->CopyToDevice(dev, host, n); });
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * n));
  g_gpu->Free(dev);
  g_gpu->FreePinned(host);
}
BENCHMARK(BM_PinnedH2DSparseBytes)->UseManualTime()->Unit(benchmark::kMicrosecond);

// Packing the same batch into pinned memory on the host (not a figure: where the host time goes).
void BM_PackDeltas10kPages(benchmark::State& state) {
  SparseFixture f;
  for (auto _ : state) {
    mmsb::ApplyBatchView v = f.builder.Pack(f.pinned, f.staging);
    benchmark::DoNotOptimize(v);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * f.changed));
}
BENCHMARK(BM_PackDeltas10kPages)->Unit(benchmark::kMicrosecond);

// ---- End to end: commit of 1,000 mirrored 64 KiB pages, 1% changed
// --------------------------------

void BM_CommitMirror1kPages(benchmark::State& state) {
  mmsb::Options o;
  o.arena_bytes = std::size_t{1} << 32;
  Check(mmsb::start(o), "start");
  Check(mmsb::AttachDevice(g_gpu), "attach");
  constexpr int kCommitPages = 1000;
  std::vector<mmsb::Page*> pages;
  for (int i = 0; i < kCommitPages; ++i) {
    pages.push_back(Check(mmsb::CreatePage(kPageBytes), "page"));
    Check(mmsb::Mirror(pages.back()).status(), "mirror");
  }
  Check(mmsb::commit().status(), "commit");
  std::mt19937_64 rng(9);
  std::vector<std::uint32_t> offsets(kCommitPages * kRunsPerPage);
  const std::uint32_t slot = kPageBytes / kRunsPerPage;
  for (std::size_t i = 0; i < offsets.size(); ++i) {
    offsets[i] = static_cast<std::uint32_t>((i % kRunsPerPage) * slot + rng() % (slot - kRunBytes));
  }
  std::uint8_t value = 0;
  for (auto _ : state) {
    ++value;
    for (int p = 0; p < kCommitPages; ++p) {
      for (int r = 0; r < kRunsPerPage; ++r) {
        std::memset(mmsb::rt::w(pages[p]->data() + offsets[p * kRunsPerPage + r], kRunBytes), value,
                    kRunBytes);
      }
    }
    const auto t0 = Clock::now();
    Check(mmsb::commit().status(), "commit");
    state.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  const mmsb::DeviceStats s = mmsb::GetDeviceStats();
  state.counters["transfers_per_commit"] =
      static_cast<double>(s.transfers) / static_cast<double>(s.syncs);
  mmsb::stop();
}
BENCHMARK(BM_CommitMirror1kPages)->UseManualTime()->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  auto gpu = mmsb::MakeCudaBackend();
  if (!gpu.ok()) {
    const std::string reason = "skipped: no CUDA device (" + gpu.status().ToString() + ")";
    std::printf("gpu_bench: %s\n", reason.c_str());
    mmsb::bench::WriteSkipped(argc, argv, reason);
    return 0;
  }
  g_gpu = std::move(*gpu);
  benchmark::AddCustomContext("mmsb_device", g_gpu->info().name);
  const int rc = mmsb::bench::Main(argc, argv);
  g_gpu.reset();
  return rc;
}
