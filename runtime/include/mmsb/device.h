// The device interface: what libmmsb needs from an accelerator, without depending on one.
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

// ---- Packed batches ----------------------------------------------------------------------------
// Layouts shared by the runtime (which packs them into one staging buffer, see
// runtime/src/device/apply_batch.h) and the backends (which apply them). All pointers in a view
// are device pointers. See docs/DeviceMemoryModel.md, "The sync".

// A page a batch writes. Every segment that names it is applied to `primary` and, when set, to
// `secondary` (a mirror's base image), each read-modify-written independently.
struct ApplyTarget {
  std::uint8_t* primary = nullptr;
  std::uint8_t* secondary = nullptr;
  std::uint64_t size = 0;  // bytes of the page
};

// Sparse run: payload[src, next.src) lands at target byte `offset`. Segments are in payload order
// and the array has one sentinel entry whose `src` is the end of the sparse payload.
struct SparseSegment {
  std::uint32_t target = 0;
  std::uint32_t offset = 0;
  std::uint32_t src = 0;
};

// Dense delta: mask bit j of word (first_granule + g) selects target byte g*64 + j; the selected
// bytes come from the payload in offset order, starting at tile_prefix[first_granule / 32].
// first_granule is a multiple of kTileGranules.
struct DenseSegment {
  std::uint32_t target = 0;
  std::uint32_t size = 0;           // bytes of the target covered (the page size)
  std::uint32_t first_granule = 0;  // index into masks
  std::uint32_t reserved = 0;
};

inline constexpr std::uint32_t kTileGranules = 32;  // granules per tile_prefix entry

struct ApplyBatchView {
  const ApplyTarget* targets = nullptr;
  std::uint32_t num_targets = 0;
  bool any_secondary = false;  // some target has a secondary
  const SparseSegment* sparse = nullptr;
  std::uint32_t num_sparse = 0;  // segments, not counting the sentinel
  const DenseSegment* dense = nullptr;
  std::uint32_t num_dense = 0;
  const std::uint64_t* masks = nullptr;        // one word per granule, num_granules of them
  const std::uint32_t* tile_prefix = nullptr;  // payload offset of each tile's first changed byte
  std::uint32_t num_granules = 0;              // a multiple of kTileGranules
  const std::uint8_t* payload = nullptr;
  std::uint64_t payload_bytes = 0;
};

// A byte range of a page and where its bytes sit in a packed buffer (gather and scatter).
struct PackedRun {
  std::uint32_t offset = 0;  // in the page
  std::uint32_t length = 0;
  std::uint64_t packed = 0;  // in the packed buffer
};

// One page of a device-side diff: `now` compared with `base`, both `size` bytes. The pages'
// granules are numbered consecutively: page i owns granules [first_granule, first_granule +
// ceil(size / 64)), and first_granule of page i+1 follows on.
struct DiffTarget {
  const std::uint8_t* now = nullptr;
  const std::uint8_t* base = nullptr;
  std::uint32_t size = 0;
  std::uint32_t first_granule = 0;
};

// A changed run found on the device: bytes [begin, end) of target `target` differ; their new
// values are at `packed` in the packed output. Runs are sorted by (target, begin), maximal, and
// never span two targets.
struct DiffRun {
  std::uint32_t target = 0;
  std::uint32_t begin = 0;
  std::uint32_t end = 0;
  std::uint32_t packed = 0;
};

struct DiffTotals {
  std::uint64_t runs = 0;   // runs found (may exceed the output capacity)
  std::uint64_t bytes = 0;  // changed bytes found
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
