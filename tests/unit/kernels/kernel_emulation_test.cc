// The custom CUDA kernels' bodies (kernels/src/kernel_bodies.h) run on the host, thread after
// thread over an emulated grid, against the CPU reference backend on random inputs: byte-identical
// results. Each body only writes its own outputs, so a sequential run computes what the device
// computes in parallel; this checks the index arithmetic, tails, alignment paths, partial granules
// and page boundaries of the kernels without a GPU. (The GPU itself: cuda_backend_test.cc.)
#include <cstring>
#include <random>

#include <gtest/gtest.h>

#include "mmsb/kernels.h"

#include "device/apply_batch.h"
#include "kernel_bodies.h"
#include "test_util.h"

namespace mmsb {
namespace {

using testing::Bytes;
using testing::Mutate;
using testing::RandomBytes;

constexpr std::uint64_t kGrids[] = {1, 7, 64, 1000};  // threads in the emulated grid

template <class Body>
void RunGrid(std::uint64_t nthreads, Body body) {
  for (std::uint64_t tid = 0; tid < nthreads; ++tid) body(tid, nthreads);
}

// 16-byte aligned storage with `shift` bytes of misalignment at the front.
struct Buffer {
  Buffer(std::size_t n, std::size_t shift) : storage(n + shift + 16), shift(shift) {}
  std::uint8_t* data() {
    auto a = reinterpret_cast<std::uintptr_t>(storage.data());
    return reinterpret_cast<std::uint8_t*>((a + 15) & ~std::uintptr_t{15}) + shift;
  }
  Bytes storage;
  std::size_t shift;
};

TEST(KernelEmulation, MaskedMergeMatchesReference) {
  std::mt19937_64 rng(1);
  CpuBackend ref;
  for (std::size_t n : {0, 1, 15, 16, 17, 63, 64, 65, 1000, 4096 + 13}) {
    for (std::size_t shift : {0, 1, 8}) {
      for (std::uint64_t grid : kGrids) {
        for (bool in_place : {false, true}) {
          Buffer page(n, shift), delta(n, 0), mask(n, 0), out(n, shift), expect(n, shift);
          const Bytes p = RandomBytes(rng, n), d = RandomBytes(rng, n), m = RandomBytes(rng, n);
          if (n != 0) {  // memcpy of nothing from an empty vector's null data() is UB
            std::memcpy(page.data(), p.data(), n);
            std::memcpy(delta.data(), d.data(), n);
            std::memcpy(mask.data(), m.data(), n);
          }
          ASSERT_TRUE(ref.MaskedMerge(expect.data(), p.data(), d.data(), m.data(), n).ok());
          std::uint8_t* o = in_place ? page.data() : out.data();
          RunGrid(grid, [&](std::uint64_t t, std::uint64_t nt) {
            kernels::MaskedMergeAll<4>(o, page.data(), delta.data(), mask.data(), n, t, nt);
          });
          ASSERT_EQ(0, std::memcmp(o, expect.data(), n))
              << "n=" << n << " shift=" << shift << " grid=" << grid << " in_place=" << in_place;
        }
      }
    }
  }
}

TEST(KernelEmulation, NonZeroBytesFindsEveryByte) {
  for (int bits = 0; bits < 16; ++bits) {
    std::uint32_t x = 0;
    for (int i = 0; i < 4; ++i) {
      if (bits & (1 << i)) x |= std::uint32_t{0x80u | static_cast<unsigned>(i + 1)} << (8 * i);
    }
    EXPECT_EQ(kernels::NonZeroBytes4(x), static_cast<std::uint32_t>(bits)) << std::hex << x;
  }
  for (std::uint32_t v : {0x01u, 0x7fu, 0x80u, 0xffu}) {
    for (int i = 0; i < 4; ++i)
      EXPECT_EQ(kernels::NonZeroBytes4(v << (8 * i)), 1u << i) << v << " " << i;
  }
}

TEST(KernelEmulation, CompareMaskMatchesReference) {
  std::mt19937_64 rng(2);
  CpuBackend ref;
  for (std::size_t n : {1, 63, 64, 65, 127, 128, 4096, 5000}) {
    for (std::size_t shift : {0, 4}) {
      for (std::uint64_t grid : kGrids) {
        Buffer a(n, shift), b(n, shift);
        const Bytes x = RandomBytes(rng, n), y = Mutate(rng, x, 20);
        std::memcpy(a.data(), x.data(), n);
        std::memcpy(b.data(), y.data(), n);
        const std::size_t g = (n + 63) / 64;
        std::vector<std::uint64_t> expect(g), got(g, ~0ull);
        ASSERT_TRUE(ref.CompareMask(x.data(), y.data(), n, expect.data()).ok());
        RunGrid(grid, [&](std::uint64_t t, std::uint64_t nt) {
          kernels::CompareMaskGranules(a.data(), b.data(), n, got.data(), t, nt);
        });
        ASSERT_EQ(got, expect) << "n=" << n << " shift=" << shift << " grid=" << grid;
      }
    }
  }
}

// The three steps of the device diff, as CudaBackend::DiffToRuns runs them.
void EmulateDiffToRuns(const std::vector<DiffTarget>& t, std::uint64_t granules,
                       std::vector<DiffRun>& runs, Bytes& packed, DiffTotals* totals,
                       std::uint64_t grid) {
  std::vector<std::uint64_t> masks(granules), counts(granules + 1), prefix(granules + 1);
  RunGrid(grid, [&](std::uint64_t tid, std::uint64_t nt) {
    if (tid == 0) counts[granules] = 0;
    kernels::DiffCountGranules(t.data(), static_cast<std::uint32_t>(t.size()), granules,
                               masks.data(), counts.data(), tid, nt);
  });
  std::uint64_t sum = 0;
  for (std::uint64_t g = 0; g <= granules; ++g) {
    prefix[g] = sum;
    sum += counts[g];
  }
  RunGrid(grid, [&](std::uint64_t tid, std::uint64_t nt) {
    kernels::DiffEmitGranules(t.data(), static_cast<std::uint32_t>(t.size()), granules,
                              masks.data(), prefix.data(), runs.data(), runs.size(), packed.data(),
                              packed.size(), totals, tid, nt);
  });
}

TEST(KernelEmulation, DiffToRunsMatchesReference) {
  std::mt19937_64 rng(3);
  CpuBackend ref;
  for (int round = 0; round < 40; ++round) {
    // Pages of awkward sizes, some unchanged, some changed everywhere, runs across granules and
    // across page boundaries in the concatenated granule space.
    const int pages = 1 + static_cast<int>(rng() % 6);
    std::vector<Bytes> now, base;
    std::vector<DiffTarget> targets;
    std::uint64_t granules = 0;
    for (int i = 0; i < pages; ++i) {
      const std::size_t size = 1 + rng() % (round % 2 ? 300 : 5000);
      base.push_back(RandomBytes(rng, size));
      const int kind = static_cast<int>(rng() % 4);
      Bytes n = kind == 0   ? base.back()
                : kind == 1 ? testing::Scatter(rng, base.back())
                            : Mutate(rng, base.back(), 30);
      if (kind == 3) {
        for (auto& x : n) x = static_cast<std::uint8_t>(~x);  // every byte
      }
      now.push_back(std::move(n));
    }
    for (int i = 0; i < pages; ++i) {
      targets.push_back({now[i].data(), base[i].data(), static_cast<std::uint32_t>(now[i].size()),
                         static_cast<std::uint32_t>(granules)});
      granules += (now[i].size() + 63) / 64;
    }
    std::vector<DiffRun> expect_runs(20000);
    Bytes expect_bytes(40000);
    DiffTotals expect;
    ASSERT_TRUE(ref.DiffToRuns(targets.data(), pages, static_cast<std::uint32_t>(granules),
                               expect_runs.data(), expect_runs.size(), expect_bytes.data(),
                               expect_bytes.size(), &expect)
                    .ok());
    for (std::uint64_t grid : kGrids) {
      std::vector<DiffRun> runs(expect.runs);
      Bytes packed(expect.bytes);
      DiffTotals got;
      EmulateDiffToRuns(targets, granules, runs, packed, &got, grid);
      ASSERT_EQ(got.runs, expect.runs) << "round " << round << " grid " << grid;
      ASSERT_EQ(got.bytes, expect.bytes);
      for (std::size_t r = 0; r < expect.runs; ++r) {
        ASSERT_EQ(runs[r].target, expect_runs[r].target) << "run " << r;
        ASSERT_EQ(runs[r].begin, expect_runs[r].begin) << "run " << r;
        ASSERT_EQ(runs[r].end, expect_runs[r].end) << "run " << r;
        ASSERT_EQ(runs[r].packed, expect_runs[r].packed) << "run " << r;
      }
      ASSERT_EQ(packed, Bytes(expect_bytes.begin(), expect_bytes.begin() + expect.bytes));
    }
  }
}

TEST(KernelEmulation, DiffToRunsReportsTotalsWhenOutputsAreTooSmall) {
  std::mt19937_64 rng(4);
  Bytes base = RandomBytes(rng, 3000), now = testing::Scatter(rng, base);
  std::vector<DiffTarget> t = {{now.data(), base.data(), 3000, 0}};
  std::vector<DiffRun> runs(10);
  Bytes packed(100);
  DiffTotals got;
  EmulateDiffToRuns(t, (3000 + 63) / 64, runs, packed, &got, 64);
  EXPECT_EQ(got.runs, 1500u);
  EXPECT_EQ(got.bytes, 1500u);
}

// Dense deltas (every other byte changed) of several pages, some with a secondary copy, packed by
// the runtime's ApplyBatchBuilder exactly as the mirror sync packs them.
TEST(KernelEmulation, DenseApplyMatchesReference) {
  std::mt19937_64 rng(5);
  CpuBackend ref;
  for (int round = 0; round < 20; ++round) {
    const int pages = 1 + static_cast<int>(rng() % 5);
    std::vector<Bytes> before, after;
    std::vector<Delta> deltas;
    for (int i = 0; i < pages; ++i) {
      const std::size_t size = 1 + rng() % 9000;
      before.push_back(RandomBytes(rng, size));
      after.push_back(rng() % 3 == 0 ? Mutate(rng, before.back(), 40)
                                     : testing::Scatter(rng, before.back()));
      Delta d = Diff(static_cast<PageId>(i + 1), 0, before.back(), after.back());
      d.ConvertTo(Delta::Form::kDense);
      deltas.push_back(std::move(d));
    }
    for (std::uint64_t grid : kGrids) {
      // Two sets of targets: the reference applies to one, the emulated kernel to the other.
      std::vector<Bytes> ref_primary = before, ref_secondary = before, emu_primary = before,
                         emu_secondary = before;
      ApplyBatchBuilder ref_batch, emu_batch;
      for (int i = 0; i < pages; ++i) {
        const bool secondary = i % 2 == 1;
        ref_batch.AddTarget(ref_primary[i].data(), secondary ? ref_secondary[i].data() : nullptr,
                            before[i].size());
        emu_batch.AddTarget(emu_primary[i].data(), secondary ? emu_secondary[i].data() : nullptr,
                            before[i].size());
        ASSERT_TRUE(ref_batch.AddDelta(i, deltas[i]).ok());
        ASSERT_TRUE(emu_batch.AddDelta(i, deltas[i]).ok());
      }
      // "Device" staging is host memory here, as for the CPU reference backend.
      Buffer ref_staging(ref_batch.PackedSize(), 0), emu_staging(emu_batch.PackedSize(), 0);
      const ApplyBatchView rv = ref_batch.Pack(ref_staging.data(), ref_staging.data());
      const ApplyBatchView ev = emu_batch.Pack(emu_staging.data(), emu_staging.data());
      ASSERT_EQ(ev.num_sparse, 0u);
      ASSERT_EQ(ev.num_dense, static_cast<std::uint32_t>(pages));
      ASSERT_TRUE(ref.ApplyBatch(rv).ok());
      RunGrid(grid,
              [&](std::uint64_t t, std::uint64_t nt) { kernels::DenseApplyGranules(ev, t, nt); });
      for (int i = 0; i < pages; ++i) {
        ASSERT_EQ(ref_primary[i], after[i]) << "reference, page " << i;
        ASSERT_EQ(emu_primary[i], after[i])
            << "emulated kernel, page " << i << " round " << round << " grid " << grid;
        ASSERT_EQ(emu_secondary[i], i % 2 == 1 ? after[i] : before[i]) << "secondary of page " << i;
      }
    }
  }
}

}  // namespace
}  // namespace mmsb
