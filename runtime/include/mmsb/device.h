// The device interface: what libmmsb needs from an accelerator, without depending on one. The
// layouts of the batches it takes are in mmsb/device_layout.h.
//
// A DeviceBackend owns one device (or the CPU reference implementation that stands in for one,
// see mmsb/kernels.h) and one in-order work queue, its stream. Operations on device memory are
// enqueued and may run asynchronously, in issue order. Synchronize() waits for all of them and
// returns the first error raised since the previous Synchronize(). An enqueue call may also fail
// at once (bad arguments, launch failure). After an error the device bytes an operation wrote are
// unspecified; the runtime re-uploads them from the CPU state, which stays authoritative.
//
// Pointers: "device" pointers (Allocate, and pointers into device buffers) are opaque on the
// host: never dereference them outside the backend. Pinned and managed memory is host-accessible.
// Device buffers are 256-byte aligned; kernels take a 16-byte vector path when their pointers are
// 16-byte aligned and a byte path otherwise. Pointer arithmetic on device pointers is allowed, so a
// copy of a range is Copy(dst + a, src + b, n).
//
// Errors never abort: OutOfMemory for out-of-memory and device faults (launch failure, illegal
// address, a lost device), Unsupported when there is no device, no driver or no managed
// memory, InvalidArgument for arguments the backend can check.
//
// Thread-safety: a backend is not thread-safe. The runtime calls the backend it owns under its bus
// lock; code that drives a backend itself must serialise its calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "mmsb/device_layout.h"
#include "mmsb/status.h"

namespace mmsb {

// Where managed (unified) memory should live.
enum class MemoryPlace : std::uint8_t { kDevice = 0, kHost = 1 };

struct DeviceInfo {
  std::string name;            // "NVIDIA H100 80GB HBM3", or "cpu-reference"
  bool is_reference = false;   // the CPU reference backend (no accelerator)
  int ordinal = 0;             // device number
  int compute_capability = 0;  // 90 for sm_90; 0 for the CPU reference
  int multiprocessors = 0;
  std::uint64_t total_bytes = 0;    // device memory
  bool managed_memory = false;      // AllocateManaged is supported
  bool concurrent_managed = false;  // host and device may touch managed memory concurrently
};

// ---- The backend -------------------------------------------------------------------------------

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;

  virtual const DeviceInfo& info() const = 0;
  // Free and total device bytes now (the CPU reference reports its configured capacity).
  virtual Status MemoryInfo(std::uint64_t* free_bytes, std::uint64_t* total_bytes) = 0;
  // The native stream (cudaStream_t) so callers can order their own work after the backend's;
  // null for the CPU reference.
  virtual void* native_stream() const = 0;

  // -- Memory. Free functions accept null. Freeing waits for the queue to drain.
  virtual Expected<void*> Allocate(std::size_t bytes) = 0;
  virtual void Free(void* device_ptr) = 0;
  // Page-locked host memory for staging transfers.
  virtual Expected<void*> AllocatePinned(std::size_t bytes) = 0;
  virtual void FreePinned(void* host_ptr) = 0;
  // Memory both the host and the device can address (cudaMallocManaged), advised to prefer the
  // device. Unsupported when the device has no managed memory.
  virtual Expected<void*> AllocateManaged(std::size_t bytes) = 0;
  virtual void FreeManaged(void* ptr) = 0;
  // Migrates managed memory ahead of use (asynchronous, a hint: never changes the bytes).
  virtual Status Prefetch(const void* managed_ptr, std::size_t bytes, MemoryPlace place) = 0;

  // -- Transfers. The host side may be pageable or pinned; pinned copies run asynchronously.
  virtual Status CopyToDevice(void* device_dst, const void* host_src, std::size_t bytes) = 0;
  virtual Status CopyToHost(void* host_dst, const void* device_src, std::size_t bytes) = 0;

  // -- Kernels on device memory.
  // dst = src for `bytes` bytes; the ranges must not overlap.
  virtual Status Copy(void* dst, const void* src, std::size_t bytes) = 0;
  virtual Status Zero(void* dst, std::size_t bytes) = 0;
  // Dense masked merge, bitwise: out = (page & ~mask) | (delta & mask). `out` may equal `page`.
  virtual Status MaskedMerge(void* out, const void* page, const void* delta, const void* mask,
                             std::size_t bytes) = 0;
  // Applies a packed batch of many pages' deltas (sparse runs and dense masks) in one go.
  virtual Status ApplyBatch(const ApplyBatchView& batch) = 0;
  // packed[r.packed, +r.length) = page[r.offset, +r.length) for each of `count` runs (device
  // array).
  virtual Status Gather(std::uint8_t* packed, const std::uint8_t* page, const PackedRun* runs,
                        std::uint32_t count) = 0;
  // page[r.offset, +r.length) = packed[r.packed, +r.length) for each run; runs must not overlap.
  virtual Status Scatter(std::uint8_t* page, const std::uint8_t* packed, const PackedRun* runs,
                         std::uint32_t count) = 0;
  // mask64[g] bit j = (a[g*64+j] != b[g*64+j]) for g < ceil(bytes/64); bits past `bytes` are 0.
  // The same format as mmsb::DiffMask.
  virtual Status CompareMask(const void* a, const void* b, std::size_t bytes,
                             std::uint64_t* mask64) = 0;
  // Compares each target's now/base on the device and writes its changed runs (up to max_runs)
  // and their new bytes (up to max_bytes) plus the totals. When the totals exceed a capacity the
  // outputs are truncated; the caller grows its buffers and calls again. `targets` and every
  // output pointer are device pointers; num_granules is the sum of the targets' granules.
  virtual Status DiffToRuns(const DiffTarget* targets, std::uint32_t num_targets,
                            std::uint32_t num_granules, DiffRun* runs, std::uint64_t max_runs,
                            std::uint8_t* packed, std::uint64_t max_bytes, DiffTotals* totals) = 0;

  // Waits for the queue; returns the first error since the previous Synchronize().
  virtual Status Synchronize() = 0;

  // -- Conveniences over the primitives above.
  // A new device buffer holding a copy of `bytes` bytes at `device_src` (enqueued copy).
  Expected<void*> Clone(const void* device_src, std::size_t bytes);
  // Copy of a range between two device buffers.
  Status CopyRange(void* dst, std::size_t dst_offset, const void* src, std::size_t src_offset,
                   std::size_t bytes) {
    return Copy(static_cast<std::uint8_t*>(dst) + dst_offset,
                static_cast<const std::uint8_t*>(src) + src_offset, bytes);
  }
};

}  // namespace mmsb
