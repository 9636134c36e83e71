// The CPU reference backend: the semantics every backend must match, stated on small cases whose
// answers are worked out by hand, plus its fault injection.
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "mmsb/kernels.h"

namespace mmsb {
namespace {

using Bytes = std::vector<std::uint8_t>;

TEST(CpuBackend, AllocationBeyondCapacityIsGpuMemory) {
  CpuBackend b({.capacity_bytes = 1000});
  auto a = b.Allocate(600);
  ASSERT_TRUE(a.ok());
  auto c = b.Allocate(600);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kOutOfMemory);
  b.Free(*a);
  EXPECT_TRUE(b.Allocate(600).ok()) << "freeing returns capacity";
  std::uint64_t free_bytes = 0, total = 0;
  ASSERT_TRUE(b.MemoryInfo(&free_bytes, &total).ok());
  EXPECT_EQ(total, 1000u);
  EXPECT_EQ(free_bytes, 400u);
}

TEST(CpuBackend, ManagedMemoryCountsAgainstTheDeviceAndCanBeUnsupported) {
  CpuBackend b({.capacity_bytes = 1000});
  auto m = b.AllocateManaged(800);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(b.Allocate(300).status().code(), StatusCode::kOutOfMemory);
  b.FreeManaged(*m);
  CpuBackend none({.managed_memory = false});
  EXPECT_EQ(none.AllocateManaged(64).status().code(), StatusCode::kUnsupported);
  EXPECT_FALSE(none.info().managed_memory);
}

TEST(CpuBackend, DevicePointersAreSixteenByteAligned) {
  CpuBackend b;
  for (std::size_t n : {1, 3, 17, 100}) {
    auto p = b.Allocate(n);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(*p) % 256, 0u);
    b.Free(*p);
  }
}

TEST(CpuBackend, MaskedMergeTakesMaskedBitsFromTheDelta) {
  CpuBackend b;
  Bytes page = {0x00, 0xff, 0x0f, 0xaa};
  Bytes delta = {0xff, 0x00, 0xf0, 0x55};
  Bytes mask = {0x0f, 0xf0, 0xff, 0x00};
  Bytes out(4);
  ASSERT_TRUE(b.MaskedMerge(out.data(), page.data(), delta.data(), mask.data(), 4).ok());
  EXPECT_EQ(out, (Bytes{0x0f, 0x0f, 0xf0, 0xaa}));
  ASSERT_TRUE(b.MaskedMerge(page.data(), page.data(), delta.data(), mask.data(), 4).ok());
  EXPECT_EQ(page, out) << "in place";
}

TEST(CpuBackend, CompareMaskSetsOneBitPerDifferingByte) {
  CpuBackend b;
  Bytes x(130, 7), y(130, 7);
  y[0] = 1;
  y[63] = 1;
  y[64] = 1;
  y[129] = 1;
  std::vector<std::uint64_t> mask(3, ~0ull);
  ASSERT_TRUE(b.CompareMask(x.data(), y.data(), 130, mask.data()).ok());
  EXPECT_EQ(mask[0], (1ull << 0) | (1ull << 63));
  EXPECT_EQ(mask[1], 1ull);
  EXPECT_EQ(mask[2], 1ull << 1) << "bits past the end stay clear";
}

TEST(CpuBackend, DiffToRunsFindsMaximalRunsPerTarget) {
  CpuBackend b;
  Bytes base1 = {'a', 'b', 'c', 'd', 'e', 'f'};
  Bytes now1 = {'a', 'b', 'X', 'Y', 'e', 'Z'};
  Bytes base2 = {'q', 'r'};
  Bytes now2 = {'Q', 'R'};
  DiffTarget t[2] = {{now1.data(), base1.data(), 6, 0}, {now2.data(), base2.data(), 2, 1}};
  std::vector<DiffRun> runs(8);
  Bytes packed(16);
  DiffTotals totals;
  ASSERT_TRUE(
      b.DiffToRuns(t, 2, 2, runs.data(), runs.size(), packed.data(), packed.size(), &totals).ok());
  EXPECT_EQ(totals.runs, 3u);
  EXPECT_EQ(totals.bytes, 5u);
  EXPECT_EQ(runs[0].target, 0u);
  EXPECT_EQ(runs[0].begin, 2u);
  EXPECT_EQ(runs[0].end, 4u);
  EXPECT_EQ(runs[1].begin, 5u);
  EXPECT_EQ(runs[1].end, 6u);
  EXPECT_EQ(runs[1].packed, 2u);
  EXPECT_EQ(runs[2].target, 1u) << "runs never span two targets";
  EXPECT_EQ(runs[2].begin, 0u);
  EXPECT_EQ(runs[2].end, 2u);
  EXPECT_EQ(Bytes(packed.begin(), packed.begin() + 5), (Bytes{'X', 'Y', 'Z', 'Q', 'R'}));

  // Outputs too small: the totals still tell how much room a retry needs.
  DiffTotals small;
  ASSERT_TRUE(b.DiffToRuns(t, 2, 2, runs.data(), 1, packed.data(), 2, &small).ok());
  EXPECT_EQ(small.runs, 3u);
  EXPECT_EQ(small.bytes, 5u);
}

TEST(CpuBackend, DiffToRunsRejectsInconsistentGranules) {
  CpuBackend b;
  Bytes x(100), y(100);
  DiffTarget t = {x.data(), y.data(), 100, 0};
  DiffTotals totals;
  EXPECT_EQ(b.DiffToRuns(&t, 1, 1, nullptr, 0, nullptr, 0, &totals).code(),
            StatusCode::kInvalidArgument);
}

TEST(CpuBackend, GatherThenScatterRestoresTheRuns) {
  CpuBackend b;
  Bytes page(100);
  for (int i = 0; i < 100; ++i) page[i] = static_cast<std::uint8_t>(i);
  PackedRun runs[2] = {{10, 5, 0}, {50, 3, 5}};
  Bytes packed(8);
  ASSERT_TRUE(b.Gather(packed.data(), page.data(), runs, 2).ok());
  EXPECT_EQ(packed, (Bytes{10, 11, 12, 13, 14, 50, 51, 52}));
  Bytes other(100, 0);
  ASSERT_TRUE(b.Scatter(other.data(), packed.data(), runs, 2).ok());
  EXPECT_EQ(other[12], 12);
  EXPECT_EQ(other[52], 52);
  EXPECT_EQ(other[15], 0);
}

TEST(CpuBackend, CloneAndCopyRange) {
  CpuBackend b;
  auto src = b.Allocate(64);
  ASSERT_TRUE(src.ok());
  Bytes host(64);
  for (int i = 0; i < 64; ++i) host[i] = static_cast<std::uint8_t>(i + 1);
  ASSERT_TRUE(b.CopyToDevice(*src, host.data(), 64).ok());
  auto clone = b.Clone(*src, 64);
  ASSERT_TRUE(clone.ok());
  ASSERT_TRUE(b.Zero(*src, 64).ok());
  ASSERT_TRUE(b.CopyRange(*src, 8, *clone, 32, 4).ok());
  Bytes back(64), cl(64);
  ASSERT_TRUE(b.CopyToHost(back.data(), *src, 64).ok());
  ASSERT_TRUE(b.CopyToHost(cl.data(), *clone, 64).ok());
  EXPECT_EQ(cl, host);
  EXPECT_EQ(back[8], 33);
  EXPECT_EQ(back[11], 36);
  EXPECT_EQ(back[12], 0);
  b.Free(*src);
  b.Free(*clone);
  EXPECT_EQ(b.counters().allocated_bytes, 0u);
}

TEST(CpuBackend, InjectedFailureHitsTheNthOperationOnce) {
  CpuBackend b;
  Bytes x(8, 1), y(8, 2);
  b.FailNthOperation(2, OutOfMemory("launch failure (injected)"));
  EXPECT_TRUE(b.Copy(x.data(), y.data(), 8).ok());
  x.assign(8, 1);
  Status s = b.Copy(x.data(), y.data(), 8);
  EXPECT_EQ(s.code(), StatusCode::kOutOfMemory);
  EXPECT_EQ(x, Bytes(8, 1)) << "a failed operation writes nothing";
  EXPECT_TRUE(b.Copy(x.data(), y.data(), 8).ok());
  EXPECT_TRUE(b.Synchronize().ok());
}

TEST(CpuBackend, DeferredFailureSurfacesAtSynchronize) {
  CpuBackend b;
  Bytes x(8, 1), y(8, 2);
  b.FailNthOperation(1, OutOfMemory("illegal address (injected)"), /*deferred=*/true);
  EXPECT_TRUE(b.Copy(x.data(), y.data(), 8).ok());
  EXPECT_EQ(x, Bytes(8, 1));
  EXPECT_EQ(b.Synchronize().code(), StatusCode::kOutOfMemory);
  EXPECT_TRUE(b.Synchronize().ok()) << "reported once";
}

TEST(CpuBackend, ApplyBatchRejectsSegmentsOutsideTheirTarget) {
  CpuBackend b;
  Bytes page(16), payload(8, 9);
  ApplyTarget target{page.data(), nullptr, 16};
  SparseSegment seg[2] = {{0, 12, 0}, {0, 0, 8}};  // 8 bytes at offset 12 of a 16-byte page
  ApplyBatchView v;
  v.targets = &target;
  v.num_targets = 1;
  v.sparse = seg;
  v.num_sparse = 1;
  v.payload = payload.data();
  v.payload_bytes = 8;
  EXPECT_EQ(b.ApplyBatch(v).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(page, Bytes(16, 0));
}

TEST(Backends, CudaBackendIsUnsupportedLocationWhenItCannotBeMade) {
  auto cuda = MakeCudaBackend();
  if (cuda.ok()) {
    EXPECT_FALSE((*cuda)->info().is_reference);
    GTEST_SKIP() << "a CUDA device is present; this checks the no-device path";
  }
  EXPECT_EQ(cuda.status().code(), StatusCode::kUnsupported) << cuda.status().ToString();
  auto fallback = MakeDefaultBackend();
  ASSERT_NE(fallback, nullptr);
  EXPECT_TRUE(fallback->info().is_reference) << "no device: the CPU reference is the fallback";
}

}  // namespace
}  // namespace mmsb
