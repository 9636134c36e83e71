// The CUDA backend: mmsb/device.h on one NVIDIA GPU, with one non-blocking stream.
//
// Which work is CUB's and which is ours (see docs/DeviceMemoryModel.md, "Kernels"):
//   - copy, clone, copy of a range, zero: the copy engines (cudaMemcpyAsync / cudaMemsetAsync);
//   - sparse runs of a batched apply, gather and scatter: cub::DeviceMemcpy::Batched, which
//     load-balances buffers of very uneven sizes (tiny runs per warp, large ones per block) and
//     vectorises aligned copies; our iterators compute each buffer's pointers from the packed
//     12-byte segments on the fly, so nothing is expanded in memory first;
//   - the scan in the device-side diff: cub::DeviceScan::ExclusiveSum;
//   - dense masked merge, dense apply, compare and diff-to-runs: our kernels (kernel_bodies.h).
//     The merge writes in place, which cub::DeviceTransform does not promise to allow, and is the
//     textbook streaming kernel; dense apply expands packed bytes by a bit mask and the diff
//     compacts by one, operations CUB has no primitive for, and fusing the mask, the run edges and
//     the byte compaction saves passes over the page.
//
// Errors map to Status (FromCuda) and never abort. A sticky device fault makes every later call
// fail with OutOfMemory; the runtime keeps its CPU state and marks device copies stale.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>

#include <cub/device/device_memcpy.cuh>
#include <cub/device/device_scan.cuh>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>

#include "mmsb/kernels.h"
#include "mmsb/types.h"

#include "kernel_bodies.h"

namespace mmsb::cuda {
namespace {

using kernels::Word16;

constexpr int kBlock = 256;
constexpr int kMergeUnroll = 4;
constexpr std::uint64_t kMaxDiffGranules = std::uint64_t{1} << 26;  // 4 GiB compared per call

Status FromCuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status::Ok();
  (void)cudaGetLastError();  // clear a non-sticky error so later calls are not blamed for it
  std::string m =
      std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
  switch (e) {
    case cudaErrorMemoryAllocation:
      return OutOfMemory("out of device memory: " + m);
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInvalidDevice:
    case cudaErrorDevicesUnavailable:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorUnsupportedPtxVersion:
    case cudaErrorCallRequiresNewerDriver:
    case cudaErrorSystemDriverMismatch:
    case cudaErrorNotSupported:
      return Unsupported("no usable CUDA device: " + m);
    case cudaErrorInvalidValue:
    case cudaErrorInvalidDevicePointer:
    case cudaErrorInvalidConfiguration:
      return InvalidArgument(m);
    default:
      return OutOfMemory("device failure: " + m);
  }
}

__device__ __forceinline__ std::uint64_t ThreadId() {
  return static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ std::uint64_t ThreadCount() {
  return static_cast<std::uint64_t>(gridDim.x) * blockDim.x;
}

// ---- Kernels: each is a launch around a body from kernel_bodies.h ------------------------------

__global__ void __launch_bounds__(kBlock)
    MaskedMergeKernel(std::uint8_t* __restrict__ out, const std::uint8_t* __restrict__ page,
                      const std::uint8_t* __restrict__ delta, const std::uint8_t* __restrict__ mask,
                      std::uint64_t bytes) {
  kernels::MaskedMergeAll<kMergeUnroll>(out, page, delta, mask, bytes, ThreadId(), ThreadCount());
}

// out == page: the page pointer is the only one to its bytes, so it carries no __restrict__.
__global__ void __launch_bounds__(kBlock)
    MaskedMergeInPlaceKernel(std::uint8_t* page, const std::uint8_t* __restrict__ delta,
                             const std::uint8_t* __restrict__ mask, std::uint64_t bytes) {
  kernels::MaskedMergeAll<kMergeUnroll>(page, page, delta, mask, bytes, ThreadId(), ThreadCount());
}

__global__ void __launch_bounds__(kBlock) DenseApplyKernel(const ApplyBatchView batch) {
  kernels::DenseApplyGranules(batch, ThreadId(), ThreadCount());
}

__global__ void __launch_bounds__(kBlock)
    CompareMaskKernel(const std::uint8_t* __restrict__ a, const std::uint8_t* __restrict__ b,
                      std::uint64_t bytes, std::uint64_t* __restrict__ mask64) {
  kernels::CompareMaskGranules(a, b, bytes, mask64, ThreadId(), ThreadCount());
}

__global__ void __launch_bounds__(kBlock)
    DiffCountKernel(const DiffTarget* __restrict__ targets, std::uint32_t num_targets,
                    std::uint64_t num_granules, std::uint64_t* __restrict__ masks,
                    std::uint64_t* __restrict__ counts) {
  if (ThreadId() == 0) counts[num_granules] = 0;  // the scan's last output is then the totals
  kernels::DiffCountGranules(targets, num_targets, num_granules, masks, counts, ThreadId(),
                             ThreadCount());
}

__global__ void __launch_bounds__(kBlock)
    DiffEmitKernel(const DiffTarget* __restrict__ targets, std::uint32_t num_targets,
                   std::uint64_t num_granules, const std::uint64_t* __restrict__ masks,
                   const std::uint64_t* __restrict__ prefix, DiffRun* __restrict__ runs,
                   std::uint64_t max_runs, std::uint8_t* __restrict__ packed,
                   std::uint64_t max_bytes, DiffTotals* __restrict__ totals) {
  kernels::DiffEmitGranules(targets, num_targets, num_granules, masks, prefix, runs, max_runs,
                            packed, max_bytes, totals, ThreadId(), ThreadCount());
}

// ---- Iterators for cub::DeviceMemcpy::Batched ---------------------------------------------------
// Buffer i < n is sparse segment i into its target's primary copy; buffer n + i the same segment
// into the secondary (only when the batch has secondaries; a target without one gets size 0).

struct SegmentSource {
  const SparseSegment* seg;
  const std::uint8_t* payload;
  std::uint64_t n;
  __host__ __device__ void* operator()(std::uint64_t i) const {
    return const_cast<std::uint8_t*>(payload + seg[i % n].src);
  }
};

struct SegmentDestination {
  const SparseSegment* seg;
  const ApplyTarget* targets;
  std::uint64_t n;
  __host__ __device__ void* operator()(std::uint64_t i) const {
    const SparseSegment s = seg[i % n];
    const ApplyTarget& t = targets[s.target];
    std::uint8_t* base = (i < n || t.secondary == nullptr) ? t.primary : t.secondary;
    return base + s.offset;
  }
};

struct SegmentSize {
  const SparseSegment* seg;
  const ApplyTarget* targets;
  std::uint64_t n;
  __host__ __device__ std::uint32_t operator()(std::uint64_t i) const {
    const std::uint64_t k = i % n;
    if (i >= n && targets[seg[k].target].secondary == nullptr) return 0;
    return seg[k + 1].src - seg[k].src;
  }
};

// Gather (to_packed) and scatter (from_packed) over PackedRun descriptors.
struct RunPointer {
  const PackedRun* runs;
  std::uint8_t* base;
  bool packed_side;
  __host__ __device__ void* operator()(std::uint64_t i) const {
    return base + (packed_side ? runs[i].packed : runs[i].offset);
  }
};

struct RunSize {
  const PackedRun* runs;
  __host__ __device__ std::uint32_t operator()(std::uint64_t i) const { return runs[i].length; }
};

template <class F>
auto Iter(F f) {
  return thrust::make_transform_iterator(thrust::counting_iterator<std::uint64_t>(0), f);
}

// ---- The backend
// ---------------------------------------------------------------------------------

class CudaBackend final : public DeviceBackend {
 public:
  static Expected<std::unique_ptr<DeviceBackend>> Create(const CudaBackendOptions& options);
  ~CudaBackend() override;

  const DeviceInfo& info() const override { return info_; }
  Status MemoryInfo(std::uint64_t* free_bytes, std::uint64_t* total_bytes) override;
  void* native_stream() const override { return stream_; }

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

 private:
  CudaBackend() = default;
  // Blocks for `work` grid-stride steps: enough to fill the device, no more.
  unsigned Grid(std::uint64_t work) const {
    const std::uint64_t want = (work + kBlock - 1) / kBlock;
    return static_cast<unsigned>(std::max<std::uint64_t>(1, std::min(want, max_blocks_)));
  }
  Status Enter() { return FromCuda(cudaSetDevice(info_.ordinal), "cudaSetDevice"); }
  Status Launched(const char* what) { return FromCuda(cudaGetLastError(), what); }
  // Device scratch of at least `bytes` (CUB temporaries, diff masks and counts).
  Expected<std::uint8_t*> Scratch(std::size_t bytes);
  template <class Src, class Dst, class Size>
  Status BatchedCopy(Src src, Dst dst, Size size, std::uint64_t count, const char* what);

  DeviceInfo info_;
  cudaStream_t stream_ = nullptr;
  std::uint64_t max_blocks_ = 1;
  std::uint8_t* scratch_ = nullptr;
  std::size_t scratch_bytes_ = 0;
};

Expected<std::unique_ptr<DeviceBackend>> CudaBackend::Create(const CudaBackendOptions& options) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) return FromCuda(e, "cudaGetDeviceCount");
  if (count == 0) return Unsupported("no CUDA device");
  if (options.device < 0 || options.device >= count) {
    return Unsupported("CUDA device " + std::to_string(options.device) + " does not exist (" +
                       std::to_string(count) + " present)");
  }
  std::unique_ptr<CudaBackend> b(new CudaBackend());
  b->info_.ordinal = options.device;
  MMSB_RETURN_IF_ERROR(b->Enter());
  cudaDeviceProp prop{};
  MMSB_RETURN_IF_ERROR(
      FromCuda(cudaGetDeviceProperties(&prop, options.device), "cudaGetDeviceProperties"));
  int major = 0, minor = 0, sms = 0, managed = 0, concurrent = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, options.device);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, options.device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, options.device);
  cudaDeviceGetAttribute(&managed, cudaDevAttrManagedMemory, options.device);
  cudaDeviceGetAttribute(&concurrent, cudaDevAttrConcurrentManagedAccess, options.device);
  b->info_.name = prop.name;
  b->info_.compute_capability = major * 10 + minor;
  b->info_.multiprocessors = sms;
  b->info_.total_bytes = prop.totalGlobalMem;
  b->info_.managed_memory = managed != 0;
  b->info_.concurrent_managed = concurrent != 0;
  // A binary without code for this GPU fails here, not at the first commit.
  cudaFuncAttributes attr{};
  MMSB_RETURN_IF_ERROR(
      FromCuda(cudaFuncGetAttributes(&attr, MaskedMergeKernel), "loading the MMSB kernels"));
  int per_sm = 0;
  MMSB_RETURN_IF_ERROR(
      FromCuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, MaskedMergeKernel, kBlock, 0),
               "occupancy"));
  b->max_blocks_ = static_cast<std::uint64_t>(std::max(1, sms) * std::max(1, per_sm));
  MMSB_RETURN_IF_ERROR(
      FromCuda(cudaStreamCreateWithFlags(&b->stream_, cudaStreamNonBlocking), "cudaStreamCreate"));
  return std::unique_ptr<DeviceBackend>(std::move(b));
}

CudaBackend::~CudaBackend() {
  (void)cudaSetDevice(info_.ordinal);
  if (stream_ != nullptr) (void)cudaStreamSynchronize(stream_);
  if (scratch_ != nullptr) (void)cudaFree(scratch_);
  if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
  (void)cudaGetLastError();
}

Status CudaBackend::MemoryInfo(std::uint64_t* free_bytes, std::uint64_t* total_bytes) {
  MMSB_RETURN_IF_ERROR(Enter());
  std::size_t f = 0, t = 0;
  MMSB_RETURN_IF_ERROR(FromCuda(cudaMemGetInfo(&f, &t), "cudaMemGetInfo"));
  if (free_bytes) *free_bytes = f;
  if (total_bytes) *total_bytes = t;
  return Status::Ok();
}

Expected<void*> CudaBackend::Allocate(std::size_t bytes) {
  MMSB_RETURN_IF_ERROR(Enter());
  void* p = nullptr;
  MMSB_RETURN_IF_ERROR(FromCuda(cudaMalloc(&p, std::max<std::size_t>(bytes, 1)), "cudaMalloc"));
  return p;
}

void CudaBackend::Free(void* p) {
  if (p == nullptr) return;
  (void)cudaSetDevice(info_.ordinal);
  (void)cudaFree(p);
  (void)cudaGetLastError();
}

Expected<void*> CudaBackend::AllocatePinned(std::size_t bytes) {
  MMSB_RETURN_IF_ERROR(Enter());
  void* p = nullptr;
  cudaError_t e = cudaMallocHost(&p, std::max<std::size_t>(bytes, 1));
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    return OutOfMemory("cannot pin " + std::to_string(bytes) + " bytes of host memory");
  }
  MMSB_RETURN_IF_ERROR(FromCuda(e, "cudaMallocHost"));
  return p;
}

void CudaBackend::FreePinned(void* p) {
  if (p == nullptr) return;
  (void)cudaFreeHost(p);
  (void)cudaGetLastError();
}

Expected<void*> CudaBackend::AllocateManaged(std::size_t bytes) {
  if (!info_.managed_memory) return Unsupported(info_.name + " has no managed memory");
  MMSB_RETURN_IF_ERROR(Enter());
  void* p = nullptr;
  MMSB_RETURN_IF_ERROR(
      FromCuda(cudaMallocManaged(&p, std::max<std::size_t>(bytes, 1), cudaMemAttachGlobal),
               "cudaMallocManaged"));
  // Hints: live on the device, and keep the device's mapping when the host touches the pages, so a
  // host read does not have to fault the device back in. Advice is best-effort.
  cudaMemLocation dev{};
  dev.type = cudaMemLocationTypeDevice;
  dev.id = info_.ordinal;
  (void)cudaMemAdvise(p, bytes, cudaMemAdviseSetPreferredLocation, dev);
  (void)cudaMemAdvise(p, bytes, cudaMemAdviseSetAccessedBy, dev);
  (void)cudaGetLastError();
  return p;
}

void CudaBackend::FreeManaged(void* p) { Free(p); }

Status CudaBackend::Prefetch(const void* ptr, std::size_t bytes, MemoryPlace place) {
  if (!info_.concurrent_managed || bytes == 0)
    return Status::Ok();  // a hint the device cannot take
  MMSB_RETURN_IF_ERROR(Enter());
  cudaMemLocation loc{};
  if (place == MemoryPlace::kDevice) {
    loc.type = cudaMemLocationTypeDevice;
    loc.id = info_.ordinal;
  } else {
    loc.type = cudaMemLocationTypeHost;
    loc.id = 0;
  }
  return FromCuda(cudaMemPrefetchAsync(ptr, bytes, loc, 0, stream_), "cudaMemPrefetchAsync");
}

Status CudaBackend::CopyToDevice(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return Status::Ok();
  MMSB_RETURN_IF_ERROR(Enter());
  return FromCuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_),
                  "copy to device");
}

Status CudaBackend::CopyToHost(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return Status::Ok();
  MMSB_RETURN_IF_ERROR(Enter());
  return FromCuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_),
                  "copy to host");
}

Status CudaBackend::Copy(void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return Status::Ok();
  MMSB_RETURN_IF_ERROR(Enter());
  return FromCuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_),
                  "device copy");
}

Status CudaBackend::Zero(void* dst, std::size_t bytes) {
  if (bytes == 0) return Status::Ok();
  MMSB_RETURN_IF_ERROR(Enter());
  return FromCuda(cudaMemsetAsync(dst, 0, bytes, stream_), "device zero");
}

Status CudaBackend::MaskedMerge(void* out, const void* page, const void* delta, const void* mask,
                                std::size_t bytes) {
  if (bytes == 0) return Status::Ok();
  MMSB_RETURN_IF_ERROR(Enter());
  auto* o = static_cast<std::uint8_t*>(out);
  const auto* p = static_cast<const std::uint8_t*>(page);
  const auto* d = static_cast<const std::uint8_t*>(delta);
  const auto* m = static_cast<const std::uint8_t*>(mask);
  const std::uint64_t work =
      kernels::AllAligned16(o, p, d, m) ? (bytes / 16 + kMergeUnroll - 1) / kMergeUnroll : bytes;
  const unsigned grid = Grid(work);
  if (o == p) {
    MaskedMergeInPlaceKernel<<<grid, kBlock, 0, stream_>>>(o, d, m, bytes);
  } else {
    MaskedMergeKernel<<<grid, kBlock, 0, stream_>>>(o, p, d, m, bytes);
  }
  return Launched("masked merge");
}

Expected<std::uint8_t*> CudaBackend::Scratch(std::size_t bytes) {
  if (bytes <= scratch_bytes_) return scratch_;
  const std::size_t want = std::max(bytes, scratch_bytes_ * 2);
  if (scratch_ != nullptr) {
    (void)cudaFree(scratch_);  // waits for the work that used it
    scratch_ = nullptr;
    scratch_bytes_ = 0;
  }
  void* p = nullptr;
  MMSB_RETURN_IF_ERROR(FromCuda(cudaMalloc(&p, want), "cudaMalloc (scratch)"));
  scratch_ = static_cast<std::uint8_t*>(p);
  scratch_bytes_ = want;
  return scratch_;
}

template <class Src, class Dst, class Size>
Status CudaBackend::BatchedCopy(Src src, Dst dst, Size size, std::uint64_t count,
                                const char* what) {
  std::size_t temp = 0;
  MMSB_RETURN_IF_ERROR(
      FromCuda(cub::DeviceMemcpy::Batched(nullptr, temp, src, dst, size,
                                          static_cast<std::int64_t>(count), stream_),
               what));
  // Never hand CUB a null buffer: that would turn the call into another size query.
  auto scratch = Scratch(std::max<std::size_t>(temp, 256));
  if (!scratch.ok()) return scratch.status();
  MMSB_RETURN_IF_ERROR(
      FromCuda(cub::DeviceMemcpy::Batched(*scratch, temp, src, dst, size,
                                          static_cast<std::int64_t>(count), stream_),
               what));
  return Launched(what);
}

Status CudaBackend::ApplyBatch(const ApplyBatchView& b) {
  MMSB_RETURN_IF_ERROR(Enter());
  if (b.num_sparse > 0) {
    const std::uint64_t n = b.num_sparse;
    MMSB_RETURN_IF_ERROR(BatchedCopy(Iter(SegmentSource{b.sparse, b.payload, n}),
                                     Iter(SegmentDestination{b.sparse, b.targets, n}),
                                     Iter(SegmentSize{b.sparse, b.targets, n}),
                                     b.any_secondary ? 2 * n : n, "batched sparse apply"));
  }
  if (b.num_dense > 0 && b.num_granules > 0) {
    DenseApplyKernel<<<Grid(b.num_granules), kBlock, 0, stream_>>>(b);
    MMSB_RETURN_IF_ERROR(Launched("batched dense apply"));
  }
  return Status::Ok();
}

Status CudaBackend::Gather(std::uint8_t* packed, const std::uint8_t* page, const PackedRun* runs,
                           std::uint32_t count) {
  if (count == 0) return Status::Ok();
  MMSB_RETURN_IF_ERROR(Enter());
  return BatchedCopy(Iter(RunPointer{runs, const_cast<std::uint8_t*>(page), false}),
                     Iter(RunPointer{runs, packed, true}), Iter(RunSize{runs}), count, "gather");
}

Status CudaBackend::Scatter(std::uint8_t* page, const std::uint8_t* packed, const PackedRun* runs,
                            std::uint32_t count) {
  if (count == 0) return Status::Ok();
  MMSB_RETURN_IF_ERROR(Enter());
  return BatchedCopy(Iter(RunPointer{runs, const_cast<std::uint8_t*>(packed), true}),
                     Iter(RunPointer{runs, page, false}), Iter(RunSize{runs}), count, "scatter");
}

Status CudaBackend::CompareMask(const void* a, const void* b, std::size_t bytes,
                                std::uint64_t* mask64) {
  if (bytes == 0) return Status::Ok();
  MMSB_RETURN_IF_ERROR(Enter());
  CompareMaskKernel<<<Grid(GranuleCount(bytes)), kBlock, 0, stream_>>>(
      static_cast<const std::uint8_t*>(a), static_cast<const std::uint8_t*>(b), bytes, mask64);
  return Launched("compare");
}

Status CudaBackend::DiffToRuns(const DiffTarget* targets, std::uint32_t num_targets,
                               std::uint32_t num_granules, DiffRun* runs, std::uint64_t max_runs,
                               std::uint8_t* packed, std::uint64_t max_bytes, DiffTotals* totals) {
  if (num_granules > kMaxDiffGranules) {
    return InvalidArgument("diff: more than 4 GiB compared in one call");
  }
  MMSB_RETURN_IF_ERROR(Enter());
  if (num_targets == 0 || num_granules == 0) {
    return FromCuda(cudaMemsetAsync(totals, 0, sizeof(DiffTotals), stream_), "diff totals");
  }
  const std::uint64_t g = num_granules;
  const std::size_t words = (g + 1) * sizeof(std::uint64_t);
  const std::size_t aligned = (words + 255) & ~std::size_t{255};
  std::size_t temp = 0;
  MMSB_RETURN_IF_ERROR(
      FromCuda(cub::DeviceScan::ExclusiveSum(nullptr, temp, static_cast<std::uint64_t*>(nullptr),
                                             static_cast<std::uint64_t*>(nullptr),
                                             static_cast<std::int64_t>(g + 1), stream_),
               "diff scan"));
  auto scratch = Scratch(3 * aligned + temp);
  if (!scratch.ok()) return scratch.status();
  auto* masks = reinterpret_cast<std::uint64_t*>(*scratch);
  auto* counts = reinterpret_cast<std::uint64_t*>(*scratch + aligned);
  auto* prefix = reinterpret_cast<std::uint64_t*>(*scratch + 2 * aligned);
  void* cub_temp = *scratch + 3 * aligned;
  DiffCountKernel<<<Grid(g), kBlock, 0, stream_>>>(targets, num_targets, g, masks, counts);
  MMSB_RETURN_IF_ERROR(Launched("diff: compare"));
  MMSB_RETURN_IF_ERROR(
      FromCuda(cub::DeviceScan::ExclusiveSum(cub_temp, temp, counts, prefix,
                                             static_cast<std::int64_t>(g + 1), stream_),
               "diff scan"));
  DiffEmitKernel<<<Grid(g), kBlock, 0, stream_>>>(targets, num_targets, g, masks, prefix, runs,
                                                  max_runs, packed, max_bytes, totals);
  return Launched("diff: emit");
}

Status CudaBackend::Synchronize() {
  MMSB_RETURN_IF_ERROR(Enter());
  return FromCuda(cudaStreamSynchronize(stream_), "synchronize");
}

}  // namespace

Expected<std::unique_ptr<DeviceBackend>> MakeBackend(const CudaBackendOptions& options) {
  return CudaBackend::Create(options);
}

}  // namespace mmsb::cuda
