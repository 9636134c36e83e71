// The CUDA backend against the CPU reference on random inputs: byte-identical results for every
// operation, typed errors, and the whole mirror path on a real device. Label `gpu`; without a
// device every test reports "skipped: no CUDA device".
#include <cstring>
#include <random>

#include <gtest/gtest.h>

#include "mmsb/kernels.h"
#include "mmsb/mirror.h"
#include "mmsb/mmsb.h"

#include "device/apply_batch.h"
#include "test_util.h"

namespace mmsb {
namespace {

using testing::Bytes;
using testing::Mutate;
using testing::RandomBytes;

class CudaBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto b = MakeCudaBackend();
    if (!b.ok()) GTEST_SKIP() << "skipped: no CUDA device (" << b.status().ToString() << ")";
    gpu_ = std::shared_ptr<DeviceBackend>(std::move(*b));
  }
  void TearDown() override {
    if (gpu_ == nullptr) return;
    EXPECT_TRUE(gpu_->Synchronize().ok());
    for (void* p : owned_) gpu_->Free(p);
  }
  std::uint8_t* Alloc(std::size_t n) {
    auto p = gpu_->Allocate(n);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    if (!p.ok()) return nullptr;
    owned_.push_back(*p);
    return static_cast<std::uint8_t*>(*p);
  }
  std::uint8_t* Upload(const Bytes& b) {
    std::uint8_t* d = Alloc(b.size() + 16);
    EXPECT_TRUE(gpu_->CopyToDevice(d, b.data(), b.size()).ok());
    return d;
  }
  Bytes Download(const void* d, std::size_t n) {
    Bytes b(n);
    EXPECT_TRUE(gpu_->CopyToHost(b.data(), d, n).ok());
    EXPECT_TRUE(gpu_->Synchronize().ok());
    return b;
  }
  std::shared_ptr<DeviceBackend> gpu_;
  CpuBackend ref_;
  std::vector<void*> owned_;
};

TEST_F(CudaBackendTest, InfoDescribesTheDevice) {
  EXPECT_FALSE(gpu_->info().is_reference);
  EXPECT_GT(gpu_->info().total_bytes, 0u);
  EXPECT_GE(gpu_->info().compute_capability, 75);
  EXPECT_NE(gpu_->native_stream(), nullptr);
}

TEST_F(CudaBackendTest, MaskedMergeIsByteIdentical) {
  std::mt19937_64 rng(11);
  for (std::size_t n : {1, 15, 16, 17, 4096, 65536 + 7, 8 << 20}) {
    for (std::size_t shift : {0, 1, 16}) {
      for (bool in_place : {false, true}) {
        const Bytes p = RandomBytes(rng, n), d = RandomBytes(rng, n), m = RandomBytes(rng, n);
        Bytes expect(n);
        ASSERT_TRUE(ref_.MaskedMerge(expect.data(), p.data(), d.data(), m.data(), n).ok());
        std::uint8_t* dp = Alloc(n + shift) + shift;
        ASSERT_TRUE(gpu_->CopyToDevice(dp, p.data(), n).ok());
        std::uint8_t* dd = Upload(d);
        std::uint8_t* dm = Upload(m);
        std::uint8_t* out = in_place ? dp : Alloc(n + shift) + shift;
        ASSERT_TRUE(gpu_->MaskedMerge(out, dp, dd, dm, n).ok());
        ASSERT_EQ(Download(out, n), expect)
            << "n=" << n << " shift=" << shift << " in_place=" << in_place;
      }
    }
  }
}

TEST_F(CudaBackendTest, CompareMaskIsByteIdentical) {
  std::mt19937_64 rng(12);
  for (std::size_t n : {1, 64, 65, 100000, 1 << 20}) {
    const Bytes a = RandomBytes(rng, n), b = Mutate(rng, a, 200);
    const std::size_t g = (n + 63) / 64;
    std::vector<std::uint64_t> expect(g), got(g);
    ASSERT_TRUE(ref_.CompareMask(a.data(), b.data(), n, expect.data()).ok());
    auto* dmask = reinterpret_cast<std::uint64_t*>(Alloc(g * 8));
    ASSERT_TRUE(gpu_->CompareMask(Upload(a), Upload(b), n, dmask).ok());
    ASSERT_TRUE(gpu_->CopyToHost(got.data(), dmask, g * 8).ok());
    ASSERT_TRUE(gpu_->Synchronize().ok());
    ASSERT_EQ(got, expect) << "n=" << n;
  }
}

TEST_F(CudaBackendTest, DiffToRunsIsByteIdentical) {
  std::mt19937_64 rng(13);
  for (int round = 0; round < 10; ++round) {
    const int pages = 1 + static_cast<int>(rng() % 50);
    std::vector<Bytes> now, base;
    std::vector<DiffTarget> host_targets, dev_targets;
    std::uint64_t granules = 0;
    for (int i = 0; i < pages; ++i) {
      const std::size_t size = 1 + rng() % 100000;
      base.push_back(RandomBytes(rng, size));
      now.push_back(rng() % 4 == 0 ? testing::Scatter(rng, base.back())
                                   : Mutate(rng, base.back(), 50));
      host_targets.push_back({now[i].data(), base[i].data(), static_cast<std::uint32_t>(size),
                              static_cast<std::uint32_t>(granules)});
      dev_targets.push_back({Upload(now[i]), Upload(base[i]), static_cast<std::uint32_t>(size),
                             static_cast<std::uint32_t>(granules)});
      granules += (size + 63) / 64;
    }
    DiffTotals expect;
    std::vector<DiffRun> expect_runs(granules * 32);  // at most one run per two bytes
    Bytes expect_bytes(granules * 64);
    ASSERT_TRUE(ref_.DiffToRuns(host_targets.data(), pages, static_cast<std::uint32_t>(granules),
                                expect_runs.data(), expect_runs.size(), expect_bytes.data(),
                                expect_bytes.size(), &expect)
                    .ok());
    auto* table = reinterpret_cast<DiffTarget*>(Alloc(pages * sizeof(DiffTarget)));
    ASSERT_TRUE(gpu_->CopyToDevice(table, dev_targets.data(), pages * sizeof(DiffTarget)).ok());
    auto* totals = reinterpret_cast<DiffTotals*>(Alloc(sizeof(DiffTotals)));
    // First with outputs too small (the totals must still be right), then with enough room.
    auto* runs = reinterpret_cast<DiffRun*>(Alloc(expect.runs * sizeof(DiffRun) + 16));
    std::uint8_t* packed = Alloc(expect.bytes + 16);
    ASSERT_TRUE(gpu_->DiffToRuns(table, pages, static_cast<std::uint32_t>(granules), runs,
                                 expect.runs / 2, packed, expect.bytes / 2, totals)
                    .ok());
    DiffTotals got;
    ASSERT_TRUE(gpu_->CopyToHost(&got, totals, sizeof got).ok());
    ASSERT_TRUE(gpu_->Synchronize().ok());
    EXPECT_EQ(got.runs, expect.runs);
    EXPECT_EQ(got.bytes, expect.bytes);
    ASSERT_TRUE(gpu_->DiffToRuns(table, pages, static_cast<std::uint32_t>(granules), runs,
                                 expect.runs, packed, expect.bytes, totals)
                    .ok());
    std::vector<DiffRun> got_runs(expect.runs);
    ASSERT_TRUE(gpu_->CopyToHost(got_runs.data(), runs, expect.runs * sizeof(DiffRun)).ok());
    const Bytes got_bytes = Download(packed, expect.bytes);
    for (std::size_t r = 0; r < expect.runs; ++r) {
      ASSERT_EQ(got_runs[r].target, expect_runs[r].target) << "run " << r;
      ASSERT_EQ(got_runs[r].begin, expect_runs[r].begin) << "run " << r;
      ASSERT_EQ(got_runs[r].end, expect_runs[r].end) << "run " << r;
      ASSERT_EQ(got_runs[r].packed, expect_runs[r].packed) << "run " << r;
    }
    ASSERT_EQ(got_bytes, Bytes(expect_bytes.begin(), expect_bytes.begin() + expect.bytes));
  }
}

TEST_F(CudaBackendTest, ApplyBatchIsByteIdentical) {
  std::mt19937_64 rng(14);
  for (int round = 0; round < 8; ++round) {
    const int pages = 1 + static_cast<int>(rng() % 300);
    std::vector<Bytes> before, after;
    std::vector<Delta> deltas;
    ApplyBatchBuilder host_batch, dev_batch;
    std::vector<Bytes> host_primary, host_secondary;
    std::vector<std::uint8_t*> dev_primary, dev_secondary;
    for (int i = 0; i < pages; ++i) {
      const std::size_t size = 1 + rng() % 70000;
      before.push_back(RandomBytes(rng, size));
      const int kind = static_cast<int>(rng() % 3);
      after.push_back(kind == 0 ? testing::Scatter(rng, before.back())
                                : Mutate(rng, before.back(), 1 + rng() % 40));
      deltas.push_back(Diff(static_cast<PageId>(i + 1), 0, before.back(), after.back()));
    }
    host_primary = before;
    host_secondary = before;
    for (int i = 0; i < pages; ++i) {
      const bool secondary = rng() % 2 == 0;
      dev_primary.push_back(Upload(before[i]));
      dev_secondary.push_back(secondary ? Upload(before[i]) : nullptr);
      host_batch.AddTarget(host_primary[i].data(), secondary ? host_secondary[i].data() : nullptr,
                           before[i].size());
      dev_batch.AddTarget(dev_primary[i], dev_secondary[i], before[i].size());
      if (i % 17 == 5) {  // a whole image, as for a stale copy
        ASSERT_TRUE(host_batch.AddImage(i, after[i].data(), after[i].size()).ok());
        ASSERT_TRUE(dev_batch.AddImage(i, after[i].data(), after[i].size()).ok());
      } else {
        ASSERT_TRUE(host_batch.AddDelta(i, deltas[i]).ok());
        ASSERT_TRUE(dev_batch.AddDelta(i, deltas[i]).ok());
      }
    }
    Bytes host_staging(host_batch.PackedSize() + 16);
    auto* hs = reinterpret_cast<std::uint8_t*>(
        (reinterpret_cast<std::uintptr_t>(host_staging.data()) + 15) & ~std::uintptr_t{15});
    ASSERT_TRUE(ref_.ApplyBatch(host_batch.Pack(hs, hs)).ok());
    auto pinned = gpu_->AllocatePinned(dev_batch.PackedSize());
    ASSERT_TRUE(pinned.ok());
    std::uint8_t* dev_staging = Alloc(dev_batch.PackedSize());
    const ApplyBatchView v = dev_batch.Pack(static_cast<std::uint8_t*>(*pinned), dev_staging);
    ASSERT_TRUE(gpu_->CopyToDevice(dev_staging, *pinned, dev_batch.PackedSize()).ok());
    ASSERT_TRUE(gpu_->ApplyBatch(v).ok());
    ASSERT_TRUE(gpu_->Synchronize().ok());
    gpu_->FreePinned(*pinned);
    for (int i = 0; i < pages; ++i) {
      ASSERT_EQ(host_primary[i], after[i]) << "reference, page " << i;
      ASSERT_EQ(Download(dev_primary[i], after[i].size()), after[i])
          << "round " << round << " page " << i;
      if (dev_secondary[i] != nullptr)
        ASSERT_EQ(Download(dev_secondary[i], after[i].size()), after[i]);
    }
  }
}

TEST_F(CudaBackendTest, GatherAndScatterAreByteIdentical) {
  std::mt19937_64 rng(15);
  const std::size_t n = 1 << 20;
  const Bytes page = RandomBytes(rng, n);
  std::vector<PackedRun> runs;
  std::uint64_t packed_at = 0;
  for (std::uint32_t off = 0; off < n;) {
    const std::uint32_t len = static_cast<std::uint32_t>(
        std::min<std::uint64_t>(1 + rng() % (rng() % 8 == 0 ? 20000 : 40), n - off));
    runs.push_back({off, len, packed_at});
    packed_at += len;
    off += len + static_cast<std::uint32_t>(rng() % 100);
  }
  Bytes expect(packed_at);
  ASSERT_TRUE(
      ref_.Gather(expect.data(), page.data(), runs.data(), static_cast<std::uint32_t>(runs.size()))
          .ok());
  auto* druns = reinterpret_cast<PackedRun*>(Alloc(runs.size() * sizeof(PackedRun)));
  ASSERT_TRUE(gpu_->CopyToDevice(druns, runs.data(), runs.size() * sizeof(PackedRun)).ok());
  std::uint8_t* dpage = Upload(page);
  std::uint8_t* dpacked = Alloc(packed_at);
  ASSERT_TRUE(gpu_->Gather(dpacked, dpage, druns, static_cast<std::uint32_t>(runs.size())).ok());
  ASSERT_EQ(Download(dpacked, packed_at), expect);
  Bytes zeros(n, 0), expect_page(n, 0);
  ASSERT_TRUE(ref_.Scatter(expect_page.data(), expect.data(), runs.data(),
                           static_cast<std::uint32_t>(runs.size()))
                  .ok());
  std::uint8_t* dother = Upload(zeros);
  ASSERT_TRUE(gpu_->Scatter(dother, dpacked, druns, static_cast<std::uint32_t>(runs.size())).ok());
  ASSERT_EQ(Download(dother, n), expect_page);
}

TEST_F(CudaBackendTest, CopyZeroCloneAndCopyRange) {
  std::mt19937_64 rng(16);
  const Bytes a = RandomBytes(rng, 100000);
  std::uint8_t* d = Upload(a);
  auto clone = gpu_->Clone(d, a.size());
  ASSERT_TRUE(clone.ok());
  owned_.push_back(*clone);
  ASSERT_TRUE(gpu_->Zero(d + 10, 1000).ok());
  ASSERT_TRUE(gpu_->CopyRange(d, 5000, *clone, 77, 333).ok());
  Bytes expect = a;
  std::fill(expect.begin() + 10, expect.begin() + 1010, 0);
  std::memcpy(expect.data() + 5000, a.data() + 77, 333);
  EXPECT_EQ(Download(d, a.size()), expect);
  EXPECT_EQ(Download(*clone, a.size()), a);
}

TEST_F(CudaBackendTest, OutOfMemoryIsGpuMemoryAndTheDeviceStaysUsable) {
  auto huge = gpu_->Allocate(gpu_->info().total_bytes * 4);
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), StatusCode::kOutOfMemory) << huge.status().ToString();
  EXPECT_TRUE(gpu_->Synchronize().ok());
  EXPECT_NE(Alloc(4096), nullptr);
}

TEST_F(CudaBackendTest, ManagedMemoryIsReachableFromBothSides) {
  if (!gpu_->info().managed_memory) GTEST_SKIP() << "the device has no managed memory";
  auto m = gpu_->AllocateManaged(1 << 20);
  ASSERT_TRUE(m.ok());
  auto* p = static_cast<std::uint8_t*>(*m);
  std::memset(p, 7, 1 << 20);
  ASSERT_TRUE(gpu_->Prefetch(p, 1 << 20, MemoryPlace::kDevice).ok());
  ASSERT_TRUE(gpu_->Zero(p + 100, 50).ok());
  ASSERT_TRUE(gpu_->Prefetch(p, 1 << 20, MemoryPlace::kHost).ok());
  ASSERT_TRUE(gpu_->Synchronize().ok());
  EXPECT_EQ(p[99], 7);
  EXPECT_EQ(p[100], 0);
  EXPECT_EQ(p[149], 0);
  EXPECT_EQ(p[150], 7);
  gpu_->FreeManaged(p);
}

// The runtime on a real device: mirrors stay exact over random commits, Gpu pages are pulled.
TEST_F(CudaBackendTest, MirrorsStayExactThroughCommits) {
  stop();
  ASSERT_TRUE(start({.arena_bytes = std::size_t{1} << 32}).ok());
  ASSERT_TRUE(AttachDevice(gpu_).ok());
  std::mt19937_64 rng(17);
  std::vector<Page*> pages;
  for (int i = 0; i < 200; ++i) {
    auto p = CreatePage(1 + rng() % 70000);
    ASSERT_TRUE(p.ok());
    pages.push_back(*p);
    ASSERT_TRUE(Mirror(*p).ok());
  }
  auto gpu_page = CreatePage(10000, {.location = Location::kGpu});
  ASSERT_TRUE(gpu_page.ok()) << gpu_page.status().ToString();
  for (int epoch = 0; epoch < 10; ++epoch) {
    for (Page* p : pages) {
      if (rng() % 3 != 0) continue;
      const Bytes next = epoch % 4 == 3
                             ? testing::Scatter(rng, Bytes(p->data(), p->data() + p->size()))
                             : Mutate(rng, Bytes(p->data(), p->data() + p->size()), 10);
      std::memcpy(rt::w(p->data(), p->size()), next.data(), p->size());
    }
    const Bytes device_write = RandomBytes(rng, 100);
    auto span = DeviceCopy(*gpu_page);
    ASSERT_TRUE(span.ok());
    ASSERT_TRUE(gpu_->CopyToDevice(span->data + 500 + epoch, device_write.data(), 100).ok());
    ASSERT_TRUE(gpu_->Synchronize().ok());
    auto e = commit();
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    for (Page* p : pages) {
      auto copy = DeviceCopy(p);
      ASSERT_TRUE(copy.ok());
      ASSERT_EQ(Download(copy->data, p->size()), Bytes(p->data(), p->data() + p->size()))
          << "epoch " << epoch;
    }
    EXPECT_EQ(0, std::memcmp((*gpu_page)->data() + 500 + epoch, device_write.data(), 100))
        << "pulled at commit";
  }
  stop();
}

}  // namespace
}  // namespace mmsb
