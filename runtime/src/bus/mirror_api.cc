// The free-function API of mmsb/mirror.h and the non-virtual conveniences of mmsb/device.h: thin
// forwarding to the current bus and its device hub.
#include <cstdio>

#include "bus/bus.h"
#include "device/device_hub.h"

namespace mmsb {
namespace {

Status NotStarted() {
  return FailedPrecondition("the MMSB bus is not started (call mmsb::start() first)");
}

}  // namespace

const char* ConflictPolicyName(ConflictPolicy p) {
  switch (p) {
    case ConflictPolicy::kError:
      return "error";
    case ConflictPolicy::kCpuWins:
      return "cpu-wins";
    case ConflictPolicy::kGpuWins:
      return "gpu-wins";
  }
  return "unknown";
}

Expected<void*> DeviceBackend::Clone(const void* device_src, std::size_t bytes) {
  auto dst = Allocate(bytes);
  if (!dst.ok()) return dst.status();
  if (Status s = Copy(*dst, device_src, bytes); !s.ok()) {
    Free(*dst);
    return s;
  }
  return dst;
}

Status AttachDevice(std::shared_ptr<DeviceBackend> backend, const DeviceOptions& options) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->AttachDevice(std::move(backend), options);
}

Status DetachDevice() {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->DetachDevice();
}

DeviceBackend* AttachedDevice() {
  Bus* bus = CurrentBus();
  return bus ? bus->AttachedDevice() : nullptr;
}

Expected<DeviceSpan> Mirror(Page* page) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->WithDevice<Expected<DeviceSpan>>(page,
                                               [&](DeviceHub& hub) { return hub.Mirror(page); });
}

Status Unmirror(Page* page) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->WithDevice<Status>(page, [&](DeviceHub& hub) { return hub.Unmirror(page); });
}

Expected<DeviceSpan> DeviceCopy(const Page* page) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->WithDevice<Expected<DeviceSpan>>(
      page, [&](DeviceHub& hub) { return hub.DeviceCopy(page); });
}

Expected<PullReport> Pull(Page* page, ConflictPolicy policy) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->WithDevice<Expected<PullReport>>(
      page, [&](DeviceHub& hub) { return hub.Pull(page, policy); });
}

Expected<PullReport> Pull(Page* page) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->WithDevice<Expected<PullReport>>(
      page, [&](DeviceHub& hub) { return hub.Pull(page, hub.default_policy()); });
}

Status Prefetch(Page* page, MemoryPlace place) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->WithDevice<Status>(page, [&](DeviceHub& hub) { return hub.Prefetch(page, place); });
}

DeviceStats GetDeviceStats() {
  Bus* bus = CurrentBus();
  return bus ? bus->GetDeviceStats() : DeviceStats{};
}

GpuWriteScope::GpuWriteScope(Page* page, ConflictPolicy policy) : page_(page), policy_(policy) {
  Bus* bus = CurrentBus();
  if (bus == nullptr) {
    open_status_ = NotStarted();
    return;
  }
  auto span = bus->WithDevice<Expected<DeviceSpan>>(
      page, [&](DeviceHub& hub) { return hub.BeginScope(page); });
  if (span.ok()) {
    span_ = *span;
  } else {
    open_status_ = span.status();
  }
}

GpuWriteScope::~GpuWriteScope() {
  if (ended_ || !open_status_.ok()) return;
  auto r = End();
  if (!r.ok())
    std::fprintf(stderr, "mmsb: GpuWriteScope ended with an error: %s\n",
                 r.status().ToString().c_str());
}

Expected<PullReport> GpuWriteScope::End() {
  if (!open_status_.ok()) return open_status_;
  if (ended_) return FailedPrecondition("the GpuWriteScope has already ended");
  ended_ = true;
  Bus* bus = CurrentBus();
  if (bus == nullptr) return NotStarted();
  return bus->WithDevice<Expected<PullReport>>(
      page_, [&](DeviceHub& hub) { return hub.EndScope(page_, policy_); });
}

}  // namespace mmsb
