// DeviceHub: the bus's side of an attached device: device copies of pages, unified-page storage,
// the commit-time sync (MirrorSink) and pulls. See mmsb/mirror.h for the user-facing contract and
// docs/DeviceMemoryModel.md for the model.
//
// Every method runs under the bus lock: the bus calls the hooks from CreatePage/FreePage/commit
// while holding it, and the public functions reach the hub through Bus::WithDevice. So the hub has
// no lock of its own, and it may read a page's committed image (through CommittedImages, which
// the bus implements: the device layer sits below the bus and never includes it).
//
// Ownership: the bus owns the hub (Bus::device_); the hub owns every device buffer, pinned buffer
// and managed allocation it made, and frees them in its destructor. It shares the backend.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "mmsb/commit.h"
#include "mmsb/mirror.h"
#include "mmsb/page.h"

#include "device/apply_batch.h"
#include "device/committed_images.h"

namespace mmsb {

class DeviceHub {
 public:
  // `images` must outlive the hub.
  DeviceHub(const CommittedImages* images, std::shared_ptr<DeviceBackend> backend,
            const DeviceOptions& options);
  ~DeviceHub();
  DeviceHub(const DeviceHub&) = delete;
  DeviceHub& operator=(const DeviceHub&) = delete;

  DeviceBackend* backend() const { return backend_.get(); }
  std::uint64_t device_bytes() const { return device_bytes_; }
  // Whether Gpu or Unified pages are live (they need the device: no detach).
  bool HasDevicePages() const;

  // ---- Bus hooks.
  // A Gpu page was created (not yet registered): allocate its copy and base, both zero (the
  // page's epoch-0 image).
  Status OnCreateGpuPage(Page* p);
  // Storage for a Unified page: managed bytes and a host twin, owned by the hub from here on;
  // AdoptUnified ties it to the page before the page is registered.
  struct UnifiedStorage {
    std::uint8_t* data = nullptr;
    std::uint8_t* twin = nullptr;
    std::size_t size = 0;
  };
  Expected<UnifiedStorage> AllocateUnified(std::size_t size, bool zeroed);
  void AdoptUnified(Page* p, const UnifiedStorage& storage);
  // Forgets the page's copy or storage (the page is being freed).
  void OnFreePage(Page* p);
  // Before a commit collects deltas: prefetch unified pages to the host, pull Gpu pages. A
  // conflict under kError fails the commit with nothing changed; a device error marks the copies
  // stale and is reported by the sync (the commit goes on with the host state).
  Status BeforeCommit();
  // The MirrorSink's work: ship the batch's deltas of every device copy.
  Status SyncCommit(const CommitBatch& batch);

  // ---- mmsb/mirror.h, with a live page.
  Expected<DeviceSpan> Mirror(Page* p);
  Status Unmirror(Page* p);
  Expected<DeviceSpan> DeviceCopy(const Page* p) const;
  Expected<PullReport> Pull(Page* p, ConflictPolicy policy);
  Expected<DeviceSpan> BeginScope(Page* p);
  Expected<PullReport> EndScope(Page* p, ConflictPolicy policy);
  Status Prefetch(Page* p, MemoryPlace place);
  ConflictPolicy default_policy() const { return options_.conflict_policy; }
  DeviceStats stats() const;

 private:
  // A page mirrored on the device: its device copy, the image it was last synchronised from, and
  // the deltas waiting to be shipped.
  struct MirrorState {
    Page* page = nullptr;
    std::uint8_t* data = nullptr;       // the device copy
    std::uint8_t* base = nullptr;       // its last synchronised image (Gpu pages, open scopes)
    bool gpu_page = false;              // Location::kGpu: pulled at every commit, never unmirrored
    bool stale = false;                 // re-upload from the committed image at the next sync
    int scopes = 0;                     // open GpuWriteScopes
    std::vector<const Delta*> pending;  // per-commit scratch: this page's deltas, in batch order
  };
  struct Unified {
    std::uint8_t* data = nullptr;
    std::unique_ptr<std::uint8_t[]> twin;
    std::size_t size = 0;
  };
  // Host copy of one pull's results.
  struct Pulled {
    std::vector<MirrorState*> copies;  // DiffRun::target indexes this
    std::vector<DiffRun> runs;
    std::vector<std::uint8_t> bytes;
  };

  Expected<std::uint8_t*> AllocateDevice(std::size_t bytes);
  void FreeDevice(std::uint8_t* p, std::size_t bytes);
  Status EnsurePinned(std::size_t bytes);
  Status EnsureDeviceStaging(std::size_t bytes);
  // Uploads the committed image into `dst` (and synchronises).
  Status UploadCommitted(const Page* p, std::uint8_t* dst);
  // Records a device error: the copies named are stale, the error is counted and kept.
  Status DeviceError(Status s, const std::vector<MirrorState*>& copies);
  // Ships the builder's batch (one copy, one apply, one synchronise).
  Status Ship(const std::vector<MirrorState*>& copies, std::uint64_t deltas);
  // Compares the copies with their bases on the device (or, without a base, with the committed
  // image uploaded for the purpose), checks conflicts against the host's uncommitted changes and
  // writes the device's changes into the host pages through the barrier. `reports` gets one entry
  // per copy. *conflict tells a conflict (under kError, nothing written) from a device error.
  Status PullCopies(const std::vector<MirrorState*>& copies, ConflictPolicy policy,
                    std::vector<PullReport>* reports, bool* conflict);
  // Runs the device diff of copies [first, last) into `out` (one DiffToRuns call).
  Status DiffOnDevice(const std::vector<MirrorState*>& copies, std::size_t first, std::size_t last,
                      Pulled* out);
  MirrorState* FindCopy(const Page* p);
  void RebuildIndex();

  const CommittedImages* const images_;
  std::shared_ptr<DeviceBackend> backend_;
  const DeviceOptions options_;
  std::uint64_t managed_limit_ = 0;

  std::unordered_map<const Page*, MirrorState> copies_;
  std::unordered_map<const Page*, Unified> unified_;
  std::unordered_map<PageId, MirrorState*>
      by_id_;  // index of copies_, rebuilt when copies_ changed
  bool index_dirty_ = true;
  std::uint64_t device_bytes_ = 0;
  std::uint64_t managed_bytes_ = 0;

  // Staging: pinned host bytes and their device twin, reused across commits and pulls.
  std::uint8_t* pinned_ = nullptr;
  std::size_t pinned_bytes_ = 0;
  std::uint8_t* device_staging_ = nullptr;
  std::size_t device_staging_bytes_ = 0;
  // Pull outputs on the device: totals, then runs, then packed bytes.
  std::uint8_t* pull_out_ = nullptr;
  std::uint64_t pull_max_runs_ = 0;
  std::uint64_t pull_max_bytes_ = 0;

  ApplyBatchBuilder builder_;
  std::deque<Delta> composed_;  // per-commit scratch: pages with several deltas, composed
  Status pending_error_;        // a device error from BeforeCommit, reported by the sync
  DeviceStats stats_;
};

// The sink the bus registers on AttachDevice: hands each commit's batch to the hub.
// Invariant: `hub_` is used only in OnCommit, which runs under the bus lock that DetachDevice
// takes before it frees the hub. A commit's list of sinks may keep this sink alive past the
// detach, for AfterCommit/TakeEvents/Flush outside the lock: those stay the defaults, which do
// not touch the hub (overriding one needs the hub's lifetime tied to the sink's).
class MirrorSink : public CommitSink {
 public:
  explicit MirrorSink(DeviceHub* hub) : hub_(hub) {}
  const char* name() const override { return "gpu-mirror"; }
  Status OnCommit(const CommitBatch& batch) override { return hub_->SyncCommit(batch); }

 private:
  DeviceHub* hub_;
};

}  // namespace mmsb
