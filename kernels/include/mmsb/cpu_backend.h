// The CPU reference backend (libmmsb_kernels): "device" memory is host memory and every
// operation runs at once, byte by byte where that is the plainest statement of the semantics. It
// is the oracle the CUDA kernels are tested against, the fallback when there is no device, and a
// fake that can inject out-of-memory and device failures for tests.
//
// Ownership: the caller owns a CpuBackend; hand it to mmsb::AttachDevice as a shared_ptr.
// Thread-safety: see mmsb/device.h (a backend is not thread-safe).
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>

#include "mmsb/device.h"
#include "mmsb/status.h"

namespace mmsb {

struct CpuBackendOptions {
  std::uint64_t capacity_bytes = std::uint64_t{1} << 32;  // "device" memory; beyond it: OutOfMemory
  bool managed_memory = true;                             // AllocateManaged supported
};

// Counters of the CPU reference backend, for tests that check how the runtime drives a device.
struct CpuBackendCounters {
  std::uint64_t to_device_copies = 0;
  std::uint64_t to_host_copies = 0;
  std::uint64_t apply_batches = 0;
  std::uint64_t diff_calls = 0;
  std::uint64_t synchronizes = 0;
  std::uint64_t prefetches = 0;
  std::uint64_t allocated_bytes = 0;  // device bytes live
  std::uint64_t pinned_bytes = 0;
  std::uint64_t managed_bytes = 0;
};

class CpuBackend : public DeviceBackend {
 public:
  explicit CpuBackend(CpuBackendOptions options = {});
  ~CpuBackend() override;

  const DeviceInfo& info() const override { return info_; }
  Status MemoryInfo(std::uint64_t* free_bytes, std::uint64_t* total_bytes) override;
  void* native_stream() const override { return nullptr; }

  Expected<void*> Allocate(std::size_t bytes) override;
  void Free(void* device_ptr) override;
  Expected<void*> AllocatePinned(std::size_t bytes) override;
  void FreePinned(void* host_ptr) override;
  Expected<void*> AllocateManaged(std::size_t bytes) override;
  void FreeManaged(void* ptr) override;
  Status Prefetch(const void* managed_ptr, std::size_t bytes, MemoryPlace place) override;

  Status CopyToDevice(void* device_dst, const void* host_src, std::size_t bytes) override;
  Status CopyToHost(void* host_dst, const void* device_src, std::size_t bytes) override;

  Status Copy(void* dst, const void* src, std::size_t bytes) override;
  Status Zero(void* dst, std::size_t bytes) override;
  Status MaskedMerge(void* out, const void* page, const void* delta, const void* mask,
                     std::size_t bytes) override;
  Status ApplyBatch(const ApplyBatchView& batch) override;
  Status Gather(std::uint8_t* packed, const std::uint8_t* page, const PackedRun* runs,
                std::uint32_t count) override;
  Status Scatter(std::uint8_t* page, const std::uint8_t* packed, const PackedRun* runs,
                 std::uint32_t count) override;
  Status CompareMask(const void* a, const void* b, std::size_t bytes,
                     std::uint64_t* mask64) override;
  Status DiffToRuns(const DiffTarget* targets, std::uint32_t num_targets,
                    std::uint32_t num_granules, DiffRun* runs, std::uint64_t max_runs,
                    std::uint8_t* packed, std::uint64_t max_bytes, DiffTotals* totals) override;
  Status Synchronize() override;

  // -- Fault injection. The failure is reported like a device's: the failing operation (or, for
  // asynchronous ones, the next Synchronize) returns it, and the bytes it should have written are
  // left unspecified (here: untouched).
  // Fail the n-th (1-based) device operation from now (transfers, kernels, allocations) with `s`:
  // returned by the operation itself, or, when `deferred`, by the next Synchronize (the way an
  // asynchronous kernel fault surfaces).
  void FailNthOperation(std::uint64_t n, Status s, bool deferred = false);
  // Change the capacity (to provoke OutOfMemory).
  void set_capacity(std::uint64_t bytes) { options_.capacity_bytes = bytes; }
  const CpuBackendCounters& counters() const { return counters_; }

 private:
  enum class Fault : std::uint8_t { kNone, kNow, kDeferred };
  // Counts an operation; says whether the injected failure is due, and whether it is deferred to
  // the next Synchronize (only operations that would run asynchronously on a device defer).
  Fault Tick(bool can_defer);

  enum class Kind : std::uint8_t { kDevice, kPinned, kManaged };
  struct Allocation {
    std::size_t bytes = 0;
    Kind kind = Kind::kDevice;
  };
  Expected<void*> AllocateKind(std::size_t bytes, Kind kind);
  void FreeKind(void* ptr, Kind kind);

  CpuBackendOptions options_;
  DeviceInfo info_;
  CpuBackendCounters counters_;
  std::uint64_t fail_countdown_ = 0;  // 0: no failure armed
  Status injected_;
  bool injected_deferred_ = false;
  Status pending_;  // deferred failure for the next Synchronize
  std::unordered_map<const void*, Allocation> allocations_;
};

}  // namespace mmsb
