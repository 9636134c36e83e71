// The bus's device support: attaching a backend, unified pages, and the hooks bus.cc calls
// (AttachDeviceCopy, DeviceBeforeCommit). The device logic itself lives in device/device_hub.cc.
#include <fmt/format.h>

#include "bus/bus.h"
#include "device/device_hub.h"

namespace mmsb {

void Bus::DeviceHubDeleter::operator()(DeviceHub* hub) const { delete hub; }

Status Bus::AttachDevice(std::shared_ptr<DeviceBackend> backend, const DeviceOptions& options) {
  if (!backend) return InvalidArgument("null device backend");
  MutexLock lock(&mu_);
  if (device_ != nullptr) return AlreadyExists("a device is already attached");
  device_.reset(new DeviceHub(this, std::move(backend), options));
  device_sink_ = std::make_shared<MirrorSink>(device_.get());
  SinkList sinks = *sinks_;
  sinks.push_back(device_sink_);
  PublishSinks(std::move(sinks));
  return Status::Ok();
}

Status Bus::DetachDevice() {
  MutexLock lock(&mu_);
  if (device_ == nullptr) return NotFound("no device is attached");
  if (device_->HasDevicePages()) {
    return FailedPrecondition(
        "Gpu or Unified pages are live; free them before detaching the device");
  }
  SinkList sinks = *sinks_;
  std::erase(sinks, device_sink_);
  PublishSinks(std::move(sinks));
  device_sink_.reset();
  device_.reset();
  return Status::Ok();
}

DeviceBackend* Bus::AttachedDevice() {
  MutexLock lock(&mu_);
  return device_ != nullptr ? device_->backend() : nullptr;
}

DeviceStats Bus::GetDeviceStats() {
  MutexLock lock(&mu_);
  return device_ != nullptr ? device_->stats() : DeviceStats{};
}

Status Bus::CheckDevicePage(const Page* page) {
  if (device_ == nullptr)
    return FailedPrecondition("no device is attached (call mmsb::AttachDevice first)");
  if (page == nullptr) return InvalidArgument("null page");
  if (!Rec(page)->live) return NotFound("the page is not live");
  return Status::Ok();
}

std::span<const std::uint8_t> Bus::CommittedImage(const Page* p) const {
  if (Rec(p)->twin_valid) return {Rec(p)->twin, Rec(p)->size_};
  return {Zeros(Rec(p)->size_), Rec(p)->size_};  // the epoch-0 image of every page
}

Status Bus::AttachDeviceCopy(Page* p) {
  if (device_ == nullptr) {
    return Unsupported("page location 'gpu' needs a device backend, and none is attached");
  }
  return device_->OnCreateGpuPage(p);
}

Expected<Page*> Bus::CreateUnifiedPage(std::size_t size, const PageOptions& options) {
  MutexLock lock(&mu_);
  if (device_ == nullptr) {
    return Unsupported("page location 'unified' needs a device backend, and none is attached");
  }
  auto storage = device_->AllocateUnified(size, options.zeroed);
  if (!storage.ok()) return storage.status();
  Page* p = InitRecord(storage->data, storage->twin, size, options, Location::kUnified);
  // Device code writes managed memory without barriers: the page is diffed in full every commit.
  Rec(p)->escaped_ = true;
  Rec(p)->size_class = kExternalStorage;
  device_->AdoptUnified(p, *storage);
  Register(p);
  return p;
}

Status Bus::DeviceBeforeCommit() {
  return device_ != nullptr ? device_->BeforeCommit() : Status::Ok();
}

}  // namespace mmsb
