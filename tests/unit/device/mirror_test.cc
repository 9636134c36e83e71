// Mirrors, Gpu and Unified pages, pulls and conflicts, through the CPU reference backend (its
// "device" memory is host memory, so tests can write device copies the way a kernel would).
#include "mmsb/mirror.h"

#include <cstring>
#include <random>

#include <gtest/gtest.h>

#include "mmsb/kernels.h"

#include "bus_fixture.h"
#include "test_util.h"

namespace mmsb {
namespace {

using testing::Bytes;

class DeviceTest : public testing::BusTest {
 protected:
  void SetUp() override {
    BusTest::SetUp();
    Attach({});
  }
  void Attach(DeviceOptions o, CpuBackendOptions b = {}) {
    (void)DetachDevice();
    dev = std::make_shared<CpuBackend>(b);
    ASSERT_TRUE(AttachDevice(dev, o).ok());
  }
  static Bytes Host(const Page* p) { return {p->data(), p->data() + p->size()}; }
  Bytes Device(const Page* p) {
    auto span = DeviceCopy(p);
    EXPECT_TRUE(span.ok()) << span.status().ToString();
    if (!span.ok()) return {};
    Bytes b(span->size);
    EXPECT_TRUE(dev->CopyToHost(b.data(), span->data, span->size).ok());
    return b;
  }
  // A write by "device code" into the page's device copy.
  void DeviceWrite(const Page* p, std::size_t offset, const Bytes& bytes) {
    auto span = DeviceCopy(p);
    ASSERT_TRUE(span.ok()) << span.status().ToString();
    ASSERT_TRUE(dev->CopyToDevice(span->data + offset, bytes.data(), bytes.size()).ok());
  }
  static void HostWrite(Page* p, std::size_t offset, const Bytes& bytes) {
    std::memcpy(rt::w(p->data() + offset, bytes.size()), bytes.data(), bytes.size());
  }
  // Changed bytes of `id` in the last commit, as (offset, value) pairs.
  std::vector<std::pair<std::uint32_t, std::uint8_t>> LastChanges(PageId id) {
    std::vector<std::pair<std::uint32_t, std::uint8_t>> out;
    for (const Delta& d : sink->batches.back().deltas) {
      if (d.page() != id) continue;
      std::size_t k = 0;
      for (const ByteRun& r : d.Runs()) {
        for (std::uint32_t i = 0; i < r.length; ++i) out.push_back({r.offset + i, d.bytes()[k++]});
      }
    }
    return out;
  }
  std::shared_ptr<CpuBackend> dev;
};

TEST(DeviceLocations, GpuAndUnifiedPagesNeedADevice) {
  ASSERT_TRUE(start({.arena_bytes = std::size_t{1} << 30}).ok());
  auto g = CreatePage(100, {.location = Location::kGpu});
  EXPECT_EQ(g.status().code(), StatusCode::kUnsupported);
  auto u = CreatePage(100, {.location = Location::kUnified});
  EXPECT_EQ(u.status().code(), StatusCode::kUnsupported);
  auto c = CreatePage(100);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(Mirror(*c).status().code(), StatusCode::kFailedPrecondition) << "no device attached";
  EXPECT_EQ(PageCount(), 1u) << "failed creations leave nothing behind";
  stop();
}

TEST_F(DeviceTest, AttachTwiceIsAlreadyExists) {
  EXPECT_EQ(AttachDevice(std::make_shared<CpuBackend>()).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(AttachedDevice(), dev.get());
}

TEST_F(DeviceTest, MirrorHoldsTheCommittedBytesNotUncommittedWrites) {
  Page* p = NewPage(1000);
  HostWrite(p, 10, {1, 2, 3});
  Commit();
  HostWrite(p, 10, {9});  // not committed yet
  ASSERT_TRUE(Mirror(p).ok());
  Bytes expect(1000, 0);
  expect[10] = 1, expect[11] = 2, expect[12] = 3;
  EXPECT_EQ(Device(p), expect);
  Commit();
  EXPECT_EQ(Device(p), Host(p));
  EXPECT_EQ(Mirror(p)->data, DeviceCopy(p)->data) << "mirroring twice returns the same copy";
}

TEST_F(DeviceTest, CommitShipsEveryMirroredPageInOneCopyAndOneApply) {
  std::mt19937_64 rng(31);
  std::vector<Page*> pages;
  for (int i = 0; i < 100; ++i) {
    pages.push_back(NewPage(1 + rng() % 9000));
    ASSERT_TRUE(Mirror(pages.back()).ok());
  }
  Commit();
  const CpuBackendCounters before = dev->counters();
  for (std::size_t i = 0; i < pages.size(); ++i) {
    Page* p = pages[i];
    const Bytes next =
        i % 3 == 0 ? testing::Scatter(rng, Host(p)) : testing::Mutate(rng, Host(p), 8);
    HostWrite(p, 0, next);
  }
  Commit();
  const CpuBackendCounters& after = dev->counters();
  EXPECT_EQ(after.to_device_copies - before.to_device_copies, 1u);
  EXPECT_EQ(after.apply_batches - before.apply_batches, 1u);
  EXPECT_EQ(after.synchronizes - before.synchronizes, 1u);
  for (Page* p : pages) ASSERT_EQ(Device(p), Host(p)) << "page " << p->id();
  const DeviceStats s = GetDeviceStats();
  EXPECT_EQ(s.transfers, 1u);
  EXPECT_EQ(s.apply_launches, 1u);
  EXPECT_EQ(s.mirrors, 100u);
  EXPECT_GT(s.deltas_shipped, 90u);
}

TEST_F(DeviceTest, RandomCommitsKeepMirrorsExact) {
  std::mt19937_64 rng(32);
  std::vector<Page*> pages;
  for (int i = 0; i < 20; ++i) pages.push_back(NewPage(1 + rng() % 20000));
  for (int epoch = 0; epoch < 30; ++epoch) {
    for (Page* p : pages) {
      if (rng() % 4 == 0) ASSERT_TRUE(Mirror(p).ok());
      if (rng() % 2 == 0)
        HostWrite(
            p, 0,
            rng() % 5 == 0 ? testing::Scatter(rng, Host(p)) : testing::Mutate(rng, Host(p), 5));
    }
    Commit();
    for (Page* p : pages) {
      if (DeviceCopy(p).ok()) ASSERT_EQ(Device(p), Host(p)) << "epoch " << epoch;
    }
  }
}

TEST_F(DeviceTest, GpuBytesCountDeviceCopies) {
  Page* a = NewPage(4096);
  Page* b = NewPage(1000);
  ASSERT_TRUE(Mirror(a).ok());
  ASSERT_TRUE(Mirror(b).ok());
  EXPECT_EQ(GetStats().gpu_bytes, 5096u);
  auto g = CreatePage(300, {.location = Location::kGpu});
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(GetStats().gpu_bytes, 5096u + 600u) << "a Gpu page holds its copy and its base image";
  ASSERT_TRUE(Unmirror(a).ok());
  EXPECT_EQ(Unmirror(a).code(), StatusCode::kNotFound);
  ASSERT_TRUE(FreePage(b).ok());
  EXPECT_EQ(GetStats().gpu_bytes, 600u);
  EXPECT_EQ(GetDeviceStats().device_bytes, 600u);
}

TEST_F(DeviceTest, PullTurnsDeviceWritesIntoDeltas) {
  Page* p = NewPage(4096);
  ASSERT_TRUE(Mirror(p).ok());
  Commit();
  DeviceWrite(p, 100, {5, 6, 7});
  DeviceWrite(p, 3000, {8});
  auto r = Pull(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->runs, 2u);
  EXPECT_EQ(r->bytes, 4u);
  EXPECT_EQ(r->applied_bytes, 4u);
  EXPECT_EQ(r->conflict_bytes, 0u);
  EXPECT_EQ(p->data()[101], 6);
  const Epoch e = Commit();
  EXPECT_EQ(LastChanges(p->id()), (std::vector<std::pair<std::uint32_t, std::uint8_t>>{
                                      {100, 5}, {101, 6}, {102, 7}, {3000, 8}}));
  EXPECT_EQ(p->epoch(), e);
  EXPECT_EQ(Device(p), Host(p));
  auto again = Pull(p);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->bytes, 0u) << "after the commit the device and the host agree";
}

TEST_F(DeviceTest, ConflictIsAnErrorByDefaultAndWritesNothing) {
  Page* p = NewPage(256);
  ASSERT_TRUE(Mirror(p).ok());
  Commit();
  HostWrite(p, 10, {1});
  DeviceWrite(p, 10, {2});
  DeviceWrite(p, 20, {3});
  auto r = Pull(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("conflict"), std::string::npos) << r.status().ToString();
  EXPECT_EQ(p->data()[10], 1) << "the host keeps its write";
  EXPECT_EQ(p->data()[20], 0)
      << "nothing from the device was written, not even the bytes without conflict";
  EXPECT_EQ(Device(p)[10], 2) << "the device keeps its writes";
  EXPECT_EQ(Device(p)[20], 3);
  EXPECT_EQ(GetDeviceStats().conflicts, 1u);
  EXPECT_EQ(GetDeviceStats().conflict_bytes, 1u);
}

TEST_F(DeviceTest, CpuWinsKeepsTheHostBytesAndTheCommitOverwritesTheDevice) {
  Page* p = NewPage(256);
  ASSERT_TRUE(Mirror(p).ok());
  Commit();
  HostWrite(p, 10, {1});
  DeviceWrite(p, 10, {2});
  DeviceWrite(p, 20, {3});
  auto r = Pull(p, ConflictPolicy::kCpuWins);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->conflict_bytes, 1u);
  ASSERT_EQ(r->conflicts.size(), 1u);
  EXPECT_EQ(r->conflicts[0], (ByteRun{10, 1}));
  EXPECT_EQ(r->applied_bytes, 1u);
  EXPECT_EQ(p->data()[10], 1);
  EXPECT_EQ(p->data()[20], 3);
  Commit();
  EXPECT_EQ(Device(p), Host(p));
  EXPECT_EQ(Device(p)[10], 1);
}

TEST_F(DeviceTest, GpuWinsOverwritesTheHostsUncommittedBytes) {
  Page* p = NewPage(256);
  ASSERT_TRUE(Mirror(p).ok());
  Commit();
  HostWrite(p, 10, {1, 1});
  DeviceWrite(p, 10, {2});
  auto r = Pull(p, ConflictPolicy::kGpuWins);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->conflict_bytes, 1u);
  EXPECT_EQ(p->data()[10], 2);
  EXPECT_EQ(p->data()[11], 1) << "a host write the device did not touch stays";
  Commit();
  EXPECT_EQ(LastChanges(p->id()),
            (std::vector<std::pair<std::uint32_t, std::uint8_t>>{{10, 2}, {11, 1}}));
  EXPECT_EQ(Device(p), Host(p));
}

TEST_F(DeviceTest, SameValueOnBothSidesIsNoConflict) {
  Page* p = NewPage(64);
  ASSERT_TRUE(Mirror(p).ok());
  Commit();
  HostWrite(p, 5, {42});
  DeviceWrite(p, 5, {42});
  auto r = Pull(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->conflict_bytes, 0u);
  auto again = Pull(p);
  ASSERT_TRUE(again.ok()) << "pulling twice before the commit is harmless";
}

TEST_F(DeviceTest, GpuPagesArePulledAtEveryCommit) {
  auto g = CreatePage(5000, {.location = Location::kGpu, .name = "field"});
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  Page* p = *g;
  EXPECT_EQ(p->location(), Location::kGpu);
  EXPECT_EQ(Device(p), Bytes(5000, 0));
  DeviceWrite(p, 64, {1, 2, 3, 4});
  HostWrite(p, 4000, {9});
  const Epoch e = Commit();
  EXPECT_EQ(LastChanges(p->id()), (std::vector<std::pair<std::uint32_t, std::uint8_t>>{
                                      {64, 1}, {65, 2}, {66, 3}, {67, 4}, {4000, 9}}));
  EXPECT_EQ(p->epoch(), e);
  EXPECT_EQ(Host(p), Device(p));
  Commit();
  EXPECT_TRUE(sink->batches.back().deltas.empty()) << "nothing changed: nothing pulled";
  EXPECT_EQ(Unmirror(p).code(), StatusCode::kFailedPrecondition);
}

TEST_F(DeviceTest, GpuPageConflictFailsTheCommitAndLosesNothing) {
  auto g = CreatePage(128, {.location = Location::kGpu});
  ASSERT_TRUE(g.ok());
  Page* p = *g;
  Commit();
  const Epoch before = current_epoch();
  const std::size_t batches = sink->batches.size();
  HostWrite(p, 7, {1});
  DeviceWrite(p, 7, {2});
  auto e = commit();
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(current_epoch(), before);
  EXPECT_EQ(sink->batches.size(), batches) << "no sink saw a batch";
  EXPECT_EQ(p->data()[7], 1);
  EXPECT_EQ(Device(p)[7], 2);
  EXPECT_EQ(GetStats().failed_commits, 1u);
  // Resolve, then commit.
  ASSERT_TRUE(Pull(p, ConflictPolicy::kGpuWins).ok());
  Commit();
  EXPECT_EQ(p->data()[7], 2);
  EXPECT_EQ(Device(p), Host(p));
}

TEST_F(DeviceTest, CommitConflictPolicyComesFromTheOptions) {
  Attach({.conflict_policy = ConflictPolicy::kCpuWins});
  auto g = CreatePage(128, {.location = Location::kGpu});
  ASSERT_TRUE(g.ok());
  Page* p = *g;
  HostWrite(p, 7, {1});
  DeviceWrite(p, 7, {2});
  DeviceWrite(p, 8, {3});
  Commit();
  EXPECT_EQ(p->data()[7], 1);
  EXPECT_EQ(p->data()[8], 3);
  EXPECT_EQ(Device(p), Host(p));
}

TEST_F(DeviceTest, GpuWriteScopeTurnsDeviceWritesIntoDeltas) {
  Page* p = NewPage(2048);
  HostWrite(p, 0, {1, 1, 1});
  Commit();
  {
    GpuWriteScope scope(p);
    ASSERT_TRUE(scope.status().ok()) << scope.status().ToString();
    ASSERT_NE(scope.span().data, nullptr);
    DeviceWrite(p, 1000, {4, 4});
    auto r = scope.End();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->bytes, 2u);
    EXPECT_EQ(scope.End().status().code(), StatusCode::kFailedPrecondition) << "ends once";
  }
  Commit();
  EXPECT_EQ(LastChanges(p->id()),
            (std::vector<std::pair<std::uint32_t, std::uint8_t>>{{1000, 4}, {1001, 4}}));
  EXPECT_EQ(GetStats().gpu_bytes, 2048u) << "the scope's snapshot is gone, the mirror stays";
}

TEST_F(DeviceTest, CommitsDuringAScopeKeepItsSnapshotInStep) {
  Page* p = NewPage(512);
  GpuWriteScope scope(p);
  ASSERT_TRUE(scope.status().ok());
  HostWrite(p, 0, {7});
  Commit();  // ships to the copy and the snapshot
  DeviceWrite(p, 100, {8});
  auto r = scope.End();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->bytes, 1u) << "the host's committed write is not mistaken for a device write";
  EXPECT_EQ(p->data()[100], 8);
}

TEST_F(DeviceTest, UnifiedPageCommitsWritesFromEitherSide) {
  auto u = CreatePage(10000, {.location = Location::kUnified});
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  Page* p = *u;
  EXPECT_TRUE(p->escaped()) << "device code writes it without barriers";
  EXPECT_EQ(Host(p), Bytes(10000, 0));
  EXPECT_EQ(DeviceCopy(p)->data, p->data()) << "one memory for both";
  p->data()[5] = 1;     // a "device" write: no barrier
  p->data()[9000] = 2;  // another
  const std::uint64_t prefetches = dev->counters().prefetches;
  Commit();
  EXPECT_EQ(LastChanges(p->id()),
            (std::vector<std::pair<std::uint32_t, std::uint8_t>>{{5, 1}, {9000, 2}}));
  EXPECT_GE(dev->counters().prefetches - prefetches, 2u)
      << "to the host before the diff, back after";
  EXPECT_EQ(Pull(p).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Prefetch(p, MemoryPlace::kDevice).ok());
  EXPECT_EQ(GetStats().gpu_bytes, 0u);
  EXPECT_EQ(GetDeviceStats().managed_bytes, 10000u);
  ASSERT_TRUE(FreePage(p).ok());
  EXPECT_EQ(dev->counters().managed_bytes, 0u);
}

TEST_F(DeviceTest, UnifiedPagesAreBoundedSoManagedMemoryNeverOversubscribes) {
  Attach({.managed_limit_bytes = 1 << 20});
  auto a = CreatePage(600 << 10, {.location = Location::kUnified});
  ASSERT_TRUE(a.ok());
  auto b = CreatePage(600 << 10, {.location = Location::kUnified});
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kOutOfMemory);
  ASSERT_TRUE(FreePage(*a).ok());
  EXPECT_TRUE(CreatePage(600 << 10, {.location = Location::kUnified}).ok());
}

TEST_F(DeviceTest, UnifiedPageBeyondTheDevicesFreeMemoryIsGpuMemory) {
  Attach({.managed_limit_bytes = 1ull << 40}, {.capacity_bytes = 1 << 20});
  EXPECT_EQ(CreatePage(2 << 20, {.location = Location::kUnified}).status().code(),
            StatusCode::kOutOfMemory);
}

TEST_F(DeviceTest, DeviceWithoutManagedMemoryRefusesUnifiedPages) {
  Attach({}, {.managed_memory = false});
  EXPECT_EQ(CreatePage(64, {.location = Location::kUnified}).status().code(),
            StatusCode::kUnsupported);
}

TEST_F(DeviceTest, DeviceFailureDuringSyncKeepsTheHostAndResyncsLater) {
  Page* p = NewPage(3000);
  ASSERT_TRUE(Mirror(p).ok());
  HostWrite(p, 0, {1});
  Commit();  // staging exists from here on: a commit is one copy and one apply
  HostWrite(p, 10, {1, 2, 3});
  dev->FailNthOperation(1, OutOfMemory("copy failed (injected)"));
  auto e = commit();
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kOutOfMemory);
  EXPECT_EQ(current_epoch(), 2u) << "the host state advanced: it is authoritative";
  EXPECT_EQ(sink->batches.size(), 2u) << "other sinks still saw the commit";
  EXPECT_EQ(GetDeviceStats().device_errors, 1u);
  EXPECT_EQ(GetStats().sink_errors, 1u);
  EXPECT_EQ(Pull(p).status().code(), StatusCode::kFailedPrecondition)
      << "a stale copy cannot be pulled";
  Commit();  // nothing changed on the host: the stale copy is uploaded whole
  EXPECT_EQ(Device(p), Host(p));
  EXPECT_EQ(p->data()[11], 2);
  EXPECT_GE(GetDeviceStats().full_uploads, 2u);
}

TEST_F(DeviceTest, AsynchronousDeviceFaultIsCaughtAtTheSync) {
  Page* p = NewPage(3000);
  ASSERT_TRUE(Mirror(p).ok());
  HostWrite(p, 0, {1});
  Commit();  // staging exists from here on: a commit is one copy and one apply
  HostWrite(p, 10, {1});
  dev->FailNthOperation(2, OutOfMemory("illegal address (injected)"),
                        /*deferred=*/true);  // the apply
  EXPECT_EQ(commit().status().code(), StatusCode::kOutOfMemory);
  HostWrite(p, 20, {2});
  Commit();
  EXPECT_EQ(Device(p), Host(p));
}

TEST_F(DeviceTest, MirrorOutOfDeviceMemoryIsGpuMemoryAndThePageIsUnaffected) {
  Attach({}, {.capacity_bytes = 4096});
  Page* p = NewPage(8192);
  HostWrite(p, 0, {1});
  auto m = Mirror(p);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kOutOfMemory);
  EXPECT_EQ(DeviceCopy(p).status().code(), StatusCode::kNotFound);
  Commit();
  EXPECT_EQ(p->data()[0], 1);
  EXPECT_EQ(CreatePage(8192, {.location = Location::kGpu}).status().code(),
            StatusCode::kOutOfMemory);
  EXPECT_EQ(PageCount(), 1u);
}

TEST_F(DeviceTest, DetachNeedsDevicePagesGone) {
  auto g = CreatePage(64, {.location = Location::kGpu});
  ASSERT_TRUE(g.ok());
  Page* c = NewPage(64);
  ASSERT_TRUE(Mirror(c).ok());
  EXPECT_EQ(DetachDevice().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(FreePage(*g).ok());
  ASSERT_TRUE(DetachDevice().ok());
  EXPECT_EQ(AttachedDevice(), nullptr);
  EXPECT_EQ(dev->counters().allocated_bytes, 0u) << "mirrors and staging released";
  HostWrite(c, 0, {1});
  Commit();  // no device: commits go on
  EXPECT_EQ(DeviceCopy(c).status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(DeviceTest, StopReleasesEveryDeviceBuffer) {
  ASSERT_TRUE(Mirror(NewPage(1000)).ok());
  ASSERT_TRUE(CreatePage(1000, {.location = Location::kGpu}).ok());
  ASSERT_TRUE(CreatePage(1000, {.location = Location::kUnified}).ok());
  Commit();
  stop();
  EXPECT_EQ(dev->counters().allocated_bytes, 0u);
  EXPECT_EQ(dev->counters().managed_bytes, 0u);
  EXPECT_EQ(dev->counters().pinned_bytes, 0u);
}

// A stage writes the page after collection: the commit holds two deltas of it, composed on the
// way to the device.
class WritingStage : public CommitStage {
 public:
  explicit WritingStage(Page* p) : p_(p) {}
  const char* name() const override { return "writer"; }
  Status Process(const CommitBatch&) override {
    *rt::w(p_->data() + 1) = static_cast<std::uint8_t>(p_->data()[0] + 1);
    return Status::Ok();
  }

 private:
  Page* p_;
};

TEST_F(DeviceTest, SeveralDeltasOfOnePageInOneCommitAreComposed) {
  Page* p = NewPage(256);
  ASSERT_TRUE(Mirror(p).ok());
  ASSERT_TRUE(AddStage(std::make_shared<WritingStage>(p)).ok());
  HostWrite(p, 0, {5});
  Commit();
  EXPECT_EQ(sink->batches.back().deltas.size(), 2u);
  EXPECT_EQ(Device(p), Host(p));
  EXPECT_EQ(Device(p)[1], 6);
  EXPECT_EQ(GetDeviceStats().apply_launches, 1u);
}

TEST_F(DeviceTest, LargePullsGrowTheirBuffers) {
  std::mt19937_64 rng(33);
  Page* p = NewPage(1 << 20);
  ASSERT_TRUE(Mirror(p).ok());
  Commit();
  const Bytes scattered = testing::Scatter(rng, Bytes(1 << 20, 0));  // 512K runs, 512 KiB
  DeviceWrite(p, 0, scattered);
  auto r = Pull(p);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->runs, 1u << 19);
  EXPECT_EQ(Host(p), scattered);
  Commit();
  EXPECT_EQ(Device(p), Host(p));
}

}  // namespace
}  // namespace mmsb
