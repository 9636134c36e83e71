// The examples of docs/API.md on mirror.h, device.h and kernels.h, compiled and run.
// See docs_api_test.h for how docs/API.md is checked against these files.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mmsb/held_marks.h"
#include "mmsb/kernels.h"
#include "mmsb/mmsb.h"
#include "mmsb/query.h"

#include "docs_api_test.h"
#include "temp_dir.h"

namespace {

// ---- mmsb/mirror.h, mmsb/device.h, mmsb/kernels.h -----------------------------------------------

// Mirrors a page on the best device there is; every commit then updates the device copy.
mmsb::Status MirrorOnDevice(mmsb::Page* page) {
  std::unique_ptr<mmsb::DeviceBackend> backend =
      mmsb::MakeDefaultBackend();  // CUDA, else the CPU reference
  std::printf("device: %s\n",
              backend->info().is_reference ? "CPU reference" : backend->info().name.c_str());
  MMSB_RETURN_IF_ERROR(mmsb::AttachDevice(std::move(backend)));
  mmsb::Expected<mmsb::DeviceSpan> copy = mmsb::Mirror(page);  // holds the last committed bytes
  if (!copy.ok()) return copy.status();  // OutOfMemory: the page is unaffected
  *mmsb::rt::w(&page->data()[5]) = 42;
  if (auto e = mmsb::commit(); !e.ok()) return e.status();  // one staging copy, one apply
  std::uint8_t on_device = 0;
  MMSB_RETURN_IF_ERROR(mmsb::AttachedDevice()->CopyToHost(&on_device, copy->data + 5, 1));
  MMSB_RETURN_IF_ERROR(mmsb::AttachedDevice()->Synchronize());
  return on_device == 42 ? mmsb::Status::Ok() : mmsb::Internal("mirror is behind");
}

// Device code wrote the mirror; bring its writes back as host writes, logged at the next commit.
mmsb::Expected<mmsb::PullReport> AfterKernel(mmsb::Page* page) {
  mmsb::Expected<mmsb::PullReport> report = mmsb::Pull(page, mmsb::ConflictPolicy::kGpuWins);
  if (!report.ok()) return report.status();  // FailedPrecondition on a conflict under kError
  if (auto e = mmsb::commit(); !e.ok()) return e.status();
  return report;
}

// The same with a scope: its snapshot separates the kernel's writes from everything before.
mmsb::Status ScopedKernel(mmsb::Page* page, std::uint8_t value) {
  mmsb::GpuWriteScope scope(page);
  MMSB_RETURN_IF_ERROR(scope.status());
  mmsb::DeviceBackend* device = mmsb::AttachedDevice();
  MMSB_RETURN_IF_ERROR(device->CopyToDevice(scope.span().data + 7, &value, 1));  // "the kernel"
  MMSB_RETURN_IF_ERROR(device->Synchronize());
  mmsb::Expected<mmsb::PullReport> pulled = scope.End();
  return pulled.ok() ? mmsb::Status::Ok() : pulled.status();
}

TEST_F(DocsApi, MirrorsPullsAndWriteScopes) {
  mmsb::Page* page = *mmsb::CreatePage(256);
  ::testing::internal::CaptureStdout();
  ASSERT_OK(MirrorOnDevice(page));
  EXPECT_EQ(::testing::internal::GetCapturedStdout().rfind("device: ", 0), 0u);
  EXPECT_EQ(mmsb::AttachDevice(std::make_shared<mmsb::CpuBackend>()).code(),
            mmsb::StatusCode::kAlreadyExists);
  mmsb::DeviceStats ds = mmsb::GetDeviceStats();
  EXPECT_EQ(ds.mirrors, 1u);
  EXPECT_EQ(ds.syncs, 1u);
  EXPECT_EQ(ds.deltas_shipped, 1u);

  // A "kernel" writes the device copy; a pull makes it a host write.
  mmsb::DeviceSpan copy = *mmsb::DeviceCopy(page);
  const std::uint8_t nine = 9;
  ASSERT_OK(mmsb::AttachedDevice()->CopyToDevice(copy.data + 100, &nine, 1));
  ASSERT_OK(mmsb::AttachedDevice()->Synchronize());
  auto report = AfterKernel(page);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->bytes, 1u);
  EXPECT_EQ(report->applied_bytes, 1u);
  EXPECT_EQ(page->data()[100], 9);
  EXPECT_EQ(page->epoch(), mmsb::current_epoch()) << "the pulled byte was committed";

  // Both sides change byte 7 to different values: a conflict; kError writes nothing.
  *mmsb::rt::w(&page->data()[7]) = 1;
  {
    mmsb::GpuWriteScope scope(page);
    ASSERT_OK(scope.status());
    const std::uint8_t two = 2;
    ASSERT_OK(mmsb::AttachedDevice()->CopyToDevice(scope.span().data + 7, &two, 1));
    ASSERT_OK(mmsb::AttachedDevice()->Synchronize());
    auto ended = scope.End();
    EXPECT_EQ(ended.status().code(), mmsb::StatusCode::kFailedPrecondition);
  }
  EXPECT_EQ(page->data()[7], 1);
  ASSERT_TRUE(mmsb::commit().ok());
  ASSERT_OK(ScopedKernel(page, 3));
  EXPECT_EQ(page->data()[7], 3);
  EXPECT_EQ(std::string(mmsb::ConflictPolicyName(mmsb::ConflictPolicy::kGpuWins)), "gpu-wins");

  ASSERT_OK(mmsb::Unmirror(page));
  EXPECT_EQ(mmsb::DeviceCopy(page).status().code(), mmsb::StatusCode::kNotFound);
  ASSERT_OK(mmsb::DetachDevice());
  EXPECT_EQ(mmsb::AttachedDevice(), nullptr);
  EXPECT_EQ(mmsb::GetDeviceStats().mirrors, 0u);
}

// Pages that live on the device, or in memory both sides address.
mmsb::Status DevicePages(mmsb::Page** on_gpu, mmsb::Page** unified) {
  mmsb::DeviceOptions options;
  options.conflict_policy = mmsb::ConflictPolicy::kCpuWins;  // for commits and default pulls
  options.managed_limit_bytes = std::uint64_t{64} << 20;     // at most 64 MiB of unified pages
  MMSB_RETURN_IF_ERROR(mmsb::AttachDevice(std::make_shared<mmsb::CpuBackend>(), options));
  mmsb::PageOptions gpu;
  gpu.location = mmsb::Location::kGpu;  // device code writes it; commits pull the changes
  mmsb::Expected<mmsb::Page*> g = mmsb::CreatePage(4096, gpu);
  if (!g.ok()) return g.status();
  mmsb::PageOptions managed;
  managed.location = mmsb::Location::kUnified;  // one copy; every commit diffs it in full
  mmsb::Expected<mmsb::Page*> u = mmsb::CreatePage(4096, managed);
  if (!u.ok()) return u.status();  // Unsupported without managed memory
  MMSB_RETURN_IF_ERROR(mmsb::Prefetch(*u, mmsb::MemoryPlace::kDevice));
  *on_gpu = *g;
  *unified = *u;
  return mmsb::Status::Ok();
}

TEST_F(DocsApi, GpuAndUnifiedPages) {
  mmsb::Page* on_gpu = nullptr;
  mmsb::Page* unified = nullptr;
  ASSERT_OK(DevicePages(&on_gpu, &unified));
  ASSERT_TRUE(mmsb::commit().ok());
  const std::uint8_t five = 5;
  ASSERT_OK(mmsb::AttachedDevice()->CopyToDevice(mmsb::DeviceCopy(on_gpu)->data + 10, &five, 1));
  ASSERT_OK(mmsb::AttachedDevice()->Synchronize());
  unified->data()[20] = 6;  // no barrier needed
  ASSERT_TRUE(mmsb::commit().ok());
  EXPECT_EQ(on_gpu->data()[10], 5) << "pulled before the commit";
  EXPECT_EQ(on_gpu->epoch(), 2u);
  EXPECT_EQ(unified->epoch(), 2u);
  EXPECT_EQ(mmsb::DeviceCopy(unified)->data, unified->data()) << "the managed storage itself";
  EXPECT_EQ(mmsb::Prefetch(on_gpu, mmsb::MemoryPlace::kHost).code(),
            mmsb::StatusCode::kFailedPrecondition);
  EXPECT_EQ(mmsb::DetachDevice().code(), mmsb::StatusCode::kFailedPrecondition)
      << "device pages are live";
  EXPECT_EQ(mmsb::Unmirror(on_gpu).code(), mmsb::StatusCode::kFailedPrecondition);
  EXPECT_EQ(mmsb::Pull(unified).status().code(), mmsb::StatusCode::kFailedPrecondition);
  ASSERT_OK(mmsb::FreePage(on_gpu));
  ASSERT_OK(mmsb::FreePage(unified));
  ASSERT_OK(mmsb::DetachDevice());
}

// The backend's primitives, driven directly (as the runtime does). Device pointers are opaque.
mmsb::Status MergeOnDevice(mmsb::DeviceBackend& device) {
  constexpr std::size_t kBytes = 256;
  std::vector<std::uint8_t> page(kBytes, 1), delta(kBytes, 2), mask(kBytes, 0);
  mask[3] = 0xff;                                          // take byte 3 from the delta
  mmsb::Expected<void*> d_page = device.Allocate(kBytes);  // 256-byte aligned
  mmsb::Expected<void*> d_delta = device.Allocate(kBytes);
  mmsb::Expected<void*> d_mask = device.Allocate(kBytes);
  if (!d_page.ok() || !d_delta.ok() || !d_mask.ok()) return mmsb::OutOfMemory("allocation failed");
  MMSB_RETURN_IF_ERROR(device.CopyToDevice(*d_page, page.data(), kBytes));
  MMSB_RETURN_IF_ERROR(device.CopyToDevice(*d_delta, delta.data(), kBytes));
  MMSB_RETURN_IF_ERROR(device.CopyToDevice(*d_mask, mask.data(), kBytes));
  MMSB_RETURN_IF_ERROR(device.MaskedMerge(*d_page, *d_page, *d_delta, *d_mask, kBytes));
  mmsb::Expected<void*> before = device.Clone(*d_delta, kBytes);  // enqueued copy
  if (!before.ok()) return before.status();
  MMSB_RETURN_IF_ERROR(device.Zero(*d_delta, kBytes));
  MMSB_RETURN_IF_ERROR(device.CopyRange(*d_delta, 0, *d_page, 0, 8));
  std::uint64_t masks[kBytes / 64];
  MMSB_RETURN_IF_ERROR(device.CompareMask(*d_delta, *before, kBytes, masks));
  MMSB_RETURN_IF_ERROR(device.CopyToHost(page.data(), *d_page, kBytes));
  MMSB_RETURN_IF_ERROR(device.Synchronize());  // the first error since the last Synchronize
  std::printf("byte 3 = %u, byte 4 = %u, first granule mask %016llx\n", page[3], page[4],
              static_cast<unsigned long long>(masks[0]));
  for (void* p : {*d_page, *d_delta, *d_mask, *before}) device.Free(p);
  return mmsb::Status::Ok();
}

// Changed runs between two device buffers, then a gather and a scatter of them.
mmsb::Status RunsOnDevice(mmsb::DeviceBackend& device) {
  std::vector<std::uint8_t> base(128, 0), now(128, 0);
  now[5] = now[6] = 7;
  now[90] = 8;
  auto* d_base = static_cast<std::uint8_t*>(*device.Allocate(128));
  auto* d_now = static_cast<std::uint8_t*>(*device.Allocate(128));
  MMSB_RETURN_IF_ERROR(device.CopyToDevice(d_base, base.data(), 128));
  MMSB_RETURN_IF_ERROR(device.CopyToDevice(d_now, now.data(), 128));
  const mmsb::DiffTarget target{d_now, d_base, /*size=*/128, /*first_granule=*/0};
  auto* d_target = static_cast<mmsb::DiffTarget*>(*device.Allocate(sizeof target));
  auto* d_runs = static_cast<mmsb::DiffRun*>(*device.Allocate(8 * sizeof(mmsb::DiffRun)));
  auto* d_packed = static_cast<std::uint8_t*>(*device.Allocate(128));
  auto* d_totals = static_cast<mmsb::DiffTotals*>(*device.Allocate(sizeof(mmsb::DiffTotals)));
  MMSB_RETURN_IF_ERROR(device.CopyToDevice(d_target, &target, sizeof target));
  MMSB_RETURN_IF_ERROR(
      device.DiffToRuns(d_target, 1, /*num_granules=*/2, d_runs, 8, d_packed, 128, d_totals));
  mmsb::DiffTotals totals;
  mmsb::DiffRun runs[8];
  MMSB_RETURN_IF_ERROR(device.CopyToHost(&totals, d_totals, sizeof totals));
  MMSB_RETURN_IF_ERROR(device.CopyToHost(runs, d_runs, sizeof runs));
  MMSB_RETURN_IF_ERROR(device.Synchronize());
  std::printf("%llu runs, %llu bytes:", static_cast<unsigned long long>(totals.runs),
              static_cast<unsigned long long>(totals.bytes));
  for (std::uint64_t i = 0; i < totals.runs && i < 8; ++i)
    std::printf(" [%u, %u)", runs[i].begin, runs[i].end);
  std::printf("\n");
  // Gather the changed runs of `now` into a packed buffer, scatter them into `base`.
  const mmsb::PackedRun packed[] = {{5, 2, 0}, {90, 1, 2}};
  auto* d_packed_runs = static_cast<mmsb::PackedRun*>(*device.Allocate(sizeof packed));
  MMSB_RETURN_IF_ERROR(device.CopyToDevice(d_packed_runs, packed, sizeof packed));
  MMSB_RETURN_IF_ERROR(device.Gather(d_packed, d_now, d_packed_runs, 2));
  MMSB_RETURN_IF_ERROR(device.Scatter(d_base, d_packed, d_packed_runs, 2));
  MMSB_RETURN_IF_ERROR(device.CopyToHost(base.data(), d_base, 128));
  MMSB_RETURN_IF_ERROR(device.Synchronize());
  for (void* p : std::initializer_list<void*>{d_base, d_now, d_target, d_runs, d_packed, d_totals,
                                              d_packed_runs}) {
    device.Free(p);
  }
  return base == now ? mmsb::Status::Ok() : mmsb::Internal("scatter went wrong");
}

// One batched apply: a sparse run into one page (the runtime packs whole commits this way).
mmsb::Status ApplyOneRun(mmsb::DeviceBackend& device) {
  auto* d_page = static_cast<std::uint8_t*>(*device.Allocate(64));
  MMSB_RETURN_IF_ERROR(device.Zero(d_page, 64));
  const mmsb::ApplyTarget target{d_page, /*secondary=*/nullptr, /*size=*/64};
  const mmsb::SparseSegment segments[] = {{/*target=*/0, /*offset=*/10, /*src=*/0},
                                          {0, 0, /*src=*/3}};  // + sentinel
  const std::uint8_t payload[] = {'a', 'b', 'c'};
  auto* d_target = static_cast<mmsb::ApplyTarget*>(*device.Allocate(sizeof target));
  auto* d_segments = static_cast<mmsb::SparseSegment*>(*device.Allocate(sizeof segments));
  auto* d_payload = static_cast<std::uint8_t*>(*device.Allocate(sizeof payload));
  MMSB_RETURN_IF_ERROR(device.CopyToDevice(d_target, &target, sizeof target));
  MMSB_RETURN_IF_ERROR(device.CopyToDevice(d_segments, segments, sizeof segments));
  MMSB_RETURN_IF_ERROR(device.CopyToDevice(d_payload, payload, sizeof payload));
  mmsb::ApplyBatchView batch;
  batch.targets = d_target;
  batch.num_targets = 1;
  batch.sparse = d_segments;
  batch.num_sparse = 1;
  batch.payload = d_payload;
  batch.payload_bytes = sizeof payload;
  MMSB_RETURN_IF_ERROR(device.ApplyBatch(batch));
  char back[4] = {};
  MMSB_RETURN_IF_ERROR(device.CopyToHost(back, d_page + 10, 3));
  MMSB_RETURN_IF_ERROR(device.Synchronize());
  for (void* p : std::initializer_list<void*>{d_page, d_target, d_segments, d_payload})
    device.Free(p);
  return std::string(back) == "abc" ? mmsb::Status::Ok() : mmsb::Internal("apply went wrong");
}

// Pinned staging and managed memory.
mmsb::Status HostSideMemory(mmsb::DeviceBackend& device) {
  std::uint64_t free_bytes = 0, total_bytes = 0;
  MMSB_RETURN_IF_ERROR(device.MemoryInfo(&free_bytes, &total_bytes));
  mmsb::Expected<void*> pinned = device.AllocatePinned(1 << 20);  // host-accessible
  if (!pinned.ok()) return pinned.status();
  std::memset(*pinned, 0, 1 << 20);
  device.FreePinned(*pinned);
  if (!device.info().managed_memory) return mmsb::Status::Ok();
  mmsb::Expected<void*> managed = device.AllocateManaged(1 << 20);
  if (!managed.ok()) return managed.status();
  static_cast<std::uint8_t*>(*managed)[0] = 1;  // host and device address the same bytes
  MMSB_RETURN_IF_ERROR(device.Prefetch(*managed, 1 << 20, mmsb::MemoryPlace::kDevice));
  MMSB_RETURN_IF_ERROR(device.Synchronize());
  device.FreeManaged(*managed);
  return mmsb::Status::Ok();
}

TEST(DocsApiDevice, BackendPrimitivesOnTheDefaultBackend) {
  std::unique_ptr<mmsb::DeviceBackend> device = mmsb::MakeDefaultBackend();
  ::testing::internal::CaptureStdout();
  ASSERT_OK(MergeOnDevice(*device));
  ASSERT_OK(RunsOnDevice(*device));
  EXPECT_EQ(::testing::internal::GetCapturedStdout(),
            "byte 3 = 2, byte 4 = 1, first granule mask fffffffffffffff7\n2 runs, 3 bytes: [5, 7) "
            "[90, 91)\n");
  ASSERT_OK(ApplyOneRun(*device));
  ASSERT_OK(HostSideMemory(*device));
  if (device->info().is_reference) EXPECT_EQ(device->native_stream(), nullptr);
}

// The CPU reference as a fake device that fails on demand.
mmsb::Status SurviveADeviceFault(mmsb::Page* page) {
  mmsb::CpuBackendOptions options;
  options.capacity_bytes = std::uint64_t{256} << 20;  // a 256 MiB "device"
  auto device = std::make_shared<mmsb::CpuBackend>(options);
  MMSB_RETURN_IF_ERROR(mmsb::AttachDevice(device));
  if (auto m = mmsb::Mirror(page); !m.ok()) return m.status();
  device->FailNthOperation(1, mmsb::OutOfMemory("injected fault"), /*deferred=*/true);
  *mmsb::rt::w(&page->data()[0]) = 1;
  mmsb::Expected<mmsb::Epoch> e = mmsb::commit();  // the sync fails; the host state goes on
  std::printf("commit: %s; device errors: %llu\n", e.status().ToString().c_str(),
              static_cast<unsigned long long>(mmsb::GetDeviceStats().device_errors));
  return mmsb::Status::Ok();
}

TEST_F(DocsApi, TheCpuReferenceInjectsFaults) {
  mmsb::Page* page = *mmsb::CreatePage(64);
  ::testing::internal::CaptureStdout();
  ASSERT_OK(SurviveADeviceFault(page));
  const std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("injected fault"), std::string::npos) << out;
  EXPECT_NE(out.find("device errors: 1"), std::string::npos) << out;
  EXPECT_EQ(page->data()[0], 1);
  EXPECT_EQ(mmsb::current_epoch(), 1u) << "the epoch advanced; the device copy is stale";
  *mmsb::rt::w(&page->data()[1]) = 2;
  auto next = mmsb::commit();
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  std::uint8_t back[2] = {};
  ASSERT_OK(mmsb::AttachedDevice()->CopyToHost(back, mmsb::DeviceCopy(page)->data, 2));
  EXPECT_EQ(back[0], 1);
  EXPECT_EQ(back[1], 2);
  auto* cpu = static_cast<mmsb::CpuBackend*>(mmsb::AttachedDevice());
  EXPECT_GE(cpu->counters().apply_batches + mmsb::GetDeviceStats().full_uploads, 1u);
  cpu->set_capacity(0);
  mmsb::Page* other = *mmsb::CreatePage(64);
  EXPECT_EQ(mmsb::Mirror(other).status().code(), mmsb::StatusCode::kOutOfMemory);
}

TEST(DocsApiKernels, CudaBackendOrAClearReason) {
  mmsb::Expected<std::unique_ptr<mmsb::DeviceBackend>> cuda = mmsb::MakeCudaBackend({/*device=*/0});
  if (!mmsb::CudaBuilt()) {
    EXPECT_EQ(cuda.status().code(), mmsb::StatusCode::kUnsupported);
  } else if (cuda.ok()) {
    EXPECT_FALSE((*cuda)->info().is_reference);
    EXPECT_GT((*cuda)->info().compute_capability, 0);
  } else {
    EXPECT_EQ(cuda.status().code(), mmsb::StatusCode::kUnsupported) << cuda.status().ToString();
  }
}

}  // namespace
