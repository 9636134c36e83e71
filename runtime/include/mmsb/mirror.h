// GPU mirrors, device pages and unified pages: how pages reach a device and come back.
//
// A device backend (mmsb/device.h; libmmsb_kernels makes the CUDA one and the CPU reference) is
// attached to the started bus with AttachDevice. From then on:
//   - Mirror(page) keeps a device copy of a CPU page. Every commit ships the deltas of all mirrored
//     pages to the device: packed into one pinned staging buffer, one asynchronous copy, one
//     batched apply, one synchronisation per commit, whatever the number of pages.
//   - CreatePage with Location::kGpu makes a page whose device copy is written by device code; at
//     every commit the device copy is compared with its last-synchronised image on the device and
//     the changed runs are pulled into the host copy before the epoch's deltas are computed, so
//     device writes become deltas like any other.
//   - CreatePage with Location::kUnified makes a page in managed memory (cudaMallocManaged), one
//     copy addressed by host and device; it is fully diffed at every commit.
//   - Pull(page) (or a GpuWriteScope) brings device-side writes to a mirror back as host writes,
//     logged at the next commit.
// The host copy of every page stays authoritative: device errors leave it untouched and mark the
// device copies stale, to be re-uploaded at the next commit.
//
// Conflicts: when the device and the host both changed the same byte since the last commit, to
// different values, the ConflictPolicy decides. The default, kError, fails the pull (or the commit
// that pulls) with FailedPrecondition before anything is written on either side. See
// docs/DeviceMemoryModel.md.
//
// Device code must not write a device copy while commit(), Pull() or Unmirror() runs on its page:
// synchronise your streams first (they are quiescent points, like barriers on the host). When
// commit() returns, the mirrors hold the new epoch.
//
// Thread-safety: every function may be called from any thread; they serialise with commit() on the
// bus lock. A DeviceSpan stays valid until the page is unmirrored or freed, or the device detached.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mmsb/delta.h"
#include "mmsb/device.h"
#include "mmsb/status.h"
#include "mmsb/types.h"

namespace mmsb {

class Page;

enum class ConflictPolicy : std::uint8_t {
  kError = 0,    // fail; nothing is written on either side (the default)
  kCpuWins = 1,  // keep the host's bytes; the next commit overwrites the device's
  kGpuWins = 2,  // the device's bytes overwrite the host's uncommitted ones
};

const char* ConflictPolicyName(ConflictPolicy p);

struct DeviceOptions {
  ConflictPolicy conflict_policy = ConflictPolicy::kError;  // for commits and default pulls
  // Upper bound on managed memory for unified pages; 0 picks half the device's memory. Creating a
  // unified page beyond it, or beyond the device's free memory, fails with OutOfMemory, so managed
  // memory never oversubscribes the device.
  std::uint64_t managed_limit_bytes = 0;
  // After each commit's diff, prefetch unified pages back to the device (they are prefetched to the
  // host before the diff, which reads them in full).
  bool prefetch_unified_after_commit = true;
  // Initial pinned staging size; it grows as commits need.
  std::size_t staging_bytes = std::size_t{1} << 20;
};

// Attaches `backend` to the started bus. FailedPrecondition when not started, AlreadyExists when a
// device is attached. The bus keeps a reference until DetachDevice() or stop().
Status AttachDevice(std::shared_ptr<DeviceBackend> backend, const DeviceOptions& options = {});
// Drops every mirror. FailedPrecondition while Gpu or Unified pages are live.
Status DetachDevice();
// The attached backend, or null.
DeviceBackend* AttachedDevice();

// A page's device copy. For unified pages `data` is the managed storage itself.
struct DeviceSpan {
  std::uint8_t* data = nullptr;  // device pointer
  std::size_t size = 0;
};

// Creates (or returns the existing) device copy of `page`, holding the page's last committed bytes.
// OutOfMemory when the device is out of memory (the page is unaffected).
Expected<DeviceSpan> Mirror(Page* page);
// Drops the device copy of a CPU page. FailedPrecondition for Gpu/Unified pages, NotFound when the
// page is not mirrored.
Status Unmirror(Page* page);
// The device copy of a mirrored, Gpu or Unified page; NotFound when it has none.
Expected<DeviceSpan> DeviceCopy(const Page* page);

struct PullReport {
  std::uint64_t runs = 0;            // changed runs found on the device
  std::uint64_t bytes = 0;           // changed bytes found on the device
  std::uint64_t applied_bytes = 0;   // bytes written into the host page
  std::uint64_t conflict_bytes = 0;  // bytes both sides changed, to different values
  std::vector<ByteRun> conflicts;    // where (runs of conflicting bytes)
};

// Turns device-side writes to the page's device copy into host writes (through the barrier), so the
// next commit logs them. Compares on the device, copies back only the changed runs. Conflicting
// bytes are resolved by `policy` (FailedPrecondition for kError, with nothing written).
// FailedPrecondition for unified pages (the commit diffs them in full).
Expected<PullReport> Pull(Page* page, ConflictPolicy policy);
Expected<PullReport> Pull(Page* page);  // with the attached device's conflict_policy

// A scope in which device code writes a mirrored CPU page. Begin snapshots the device copy on the
// device; End() pulls the device's writes against that snapshot. For Gpu pages it is a plain Pull.
class GpuWriteScope {
 public:
  explicit GpuWriteScope(Page* page, ConflictPolicy policy = ConflictPolicy::kError);
  ~GpuWriteScope();  // calls End() if not ended; an error is printed, so prefer End()
  GpuWriteScope(const GpuWriteScope&) = delete;
  GpuWriteScope& operator=(const GpuWriteScope&) = delete;

  // Whether the scope opened (the page is mirrored or mirrorable and the snapshot succeeded).
  const Status& status() const { return open_status_; }
  DeviceSpan span() const { return span_; }
  Expected<PullReport> End();

 private:
  Page* page_;
  ConflictPolicy policy_;
  Status open_status_;
  DeviceSpan span_;
  bool ended_ = false;
};

// Hints where a unified page's bytes should live next (asynchronous). FailedPrecondition for other
// pages.
Status Prefetch(Page* page, MemoryPlace place);

struct DeviceStats {
  std::uint64_t mirrors = 0;         // live device copies (mirrors and Gpu pages)
  std::uint64_t device_bytes = 0;    // device memory held for pages (copies and base images)
  std::uint64_t managed_bytes = 0;   // managed memory held by unified pages
  std::uint64_t staging_bytes = 0;   // pinned staging held
  std::uint64_t syncs = 0;           // commits that shipped deltas
  std::uint64_t transfers = 0;       // host-to-device staging copies issued by syncs
  std::uint64_t apply_launches = 0;  // ApplyBatch calls issued by syncs
  std::uint64_t deltas_shipped = 0;
  std::uint64_t bytes_shipped = 0;  // staging bytes copied to the device
  std::uint64_t full_uploads = 0;   // stale or new device copies uploaded whole
  std::uint64_t pulls = 0;
  std::uint64_t pulled_bytes = 0;  // changed bytes found on the device
  std::uint64_t conflicts = 0;     // pulls that met a conflict
  std::uint64_t conflict_bytes = 0;
  std::uint64_t device_errors = 0;  // failed device operations (copies were marked stale)
  std::string last_error;           // the last device error, or empty
};

// Zeros when no device is attached.
DeviceStats GetDeviceStats();

}  // namespace mmsb
